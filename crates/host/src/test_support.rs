//! Fixtures the host's unit tests share: a function from its bindings, and an executor whose
//! non-HTTP calls a closure answers.

use std::sync::Arc;

use crate::app::Function;
use crate::executor::{
    BoxFuture, ConnectionContext, Executor, ExecutorStatus, HttpCall, InvokeError, TriggerCall,
    TriggerOutcome,
};
use crate::http::response::HttpResponse;

/// A loaded function named `name` with the given `bindings` (a JSON array).
pub fn function(name: &str, bindings: serde_json::Value) -> Function {
    let doc = serde_json::json!({ "bindings": bindings });
    let config =
        stratus_model::FunctionConfig::parse(name, &format!("{name}/function.json"), doc).unwrap();
    let http_output = config
        .bindings
        .iter()
        .find(|b| b.is_type("http") && b.direction == stratus_model::Direction::Out)
        .map(|b| b.name.clone());
    Function {
        name: name.into(),
        short_name: format!("Functions.{name}"),
        config,
        dir: "/tmp".into(),
        disabled: false,
        script_file: None,
        invocation_log_level: stratus_model::LogLevel::Information,
        user_log_level: stratus_model::LogLevel::Information,
        http_output,
        outputs: Vec::new(),
        retry: None,
    }
}

/// An executor whose non-HTTP invocations `answer` handles (HTTP ones fail).
pub struct FnExecutor<F>(pub F);

impl<F> std::fmt::Debug for FnExecutor<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnExecutor")
    }
}

impl<F> Executor for FnExecutor<F>
where
    F: Fn(TriggerCall) -> Result<TriggerOutcome, InvokeError> + Send + Sync + 'static,
{
    fn status(&self) -> ExecutorStatus {
        ExecutorStatus::Ready
    }
    fn call_http<'a>(
        &'a self,
        _call: HttpCall,
        _conn: &'a ConnectionContext,
    ) -> BoxFuture<'a, Result<HttpResponse, InvokeError>> {
        Box::pin(async { Err(InvokeError::Failed("no HTTP here".into())) })
    }
    fn call(&self, call: TriggerCall) -> BoxFuture<'_, Result<TriggerOutcome, InvokeError>> {
        let answer = (self.0)(call);
        Box::pin(async move { answer })
    }
    fn timed_out(&self, _f: &Function, _id: uuid::Uuid, _d: u64) {}
    fn start(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
