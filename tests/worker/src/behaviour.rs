//! What an invocation does, chosen by the function's entry point: `echo` (the default),
//! `fail`, `log`, `cookie`, `status`, `slow` and `stream`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stratus_proto::FromWorker;
use stratus_proto::msg::{
    Cookie, FunctionLoad, Invocation, InvocationResponse, Log, LogLevel, Outcome, ParameterBinding,
    RpcException, RpcHttp, SameSite, StatusResult, TypedData,
};
use tokio::sync::{mpsc, oneshot};

use crate::echo;
use crate::http::Answered;

/// How long `slow` takes unless cancelled.
const SLOW: Duration = Duration::from_secs(30);
/// How long `stream` waits for its proxied request.
const STREAM_WAIT: Duration = Duration::from_secs(60);

/// A loaded function.
#[derive(Debug)]
pub struct Function {
    pub id: String,
    pub name: String,
    pub entry_point: String,
    /// The name of its `http` output binding, when that is not `$return`.
    pub http_output: Option<String>,
}

impl Function {
    pub fn from_load(l: &FunctionLoad) -> Function {
        let m = &l.metadata;
        let http_output = m
            .bindings
            .iter()
            .find(|(name, b)| {
                b.type_name.eq_ignore_ascii_case("http")
                    && b.direction == stratus_proto::msg::BindingDirection::Out
                    && name.as_str() != "$return"
            })
            .map(|(name, _)| name.clone());
        Function {
            id: l.function_id.clone(),
            name: if m.name.is_empty() {
                l.function_id.clone()
            } else {
                m.name.clone()
            },
            entry_point: if m.entry_point.is_empty() {
                "echo".to_string()
            } else {
                m.entry_point.clone()
            },
            http_output,
        }
    }
}

/// What an invocation task needs besides its request.
pub struct Context {
    pub outbound: mpsc::UnboundedSender<FromWorker>,
    pub answered: Arc<Answered>,
    /// Fires when the host cancels the invocation.
    pub cancelled: oneshot::Receiver<()>,
}

pub fn failure(message: String, stack_trace: &str) -> StatusResult {
    StatusResult {
        status: Outcome::Failure,
        exception: Some(RpcException {
            message,
            stack_trace: stack_trace.to_string(),
            ..RpcException::default()
        }),
        ..StatusResult::default()
    }
}

fn success() -> InvocationResponse {
    InvocationResponse {
        result: StatusResult::success(),
        ..InvocationResponse::default()
    }
}

/// Success with an HTTP answer, in the function's `http` output binding or as its return value.
fn http_answer(function: &Function, http: RpcHttp) -> InvocationResponse {
    let data = TypedData::Http(Box::new(http));
    let mut r = success();
    match &function.http_output {
        Some(name) => r.output_data.push(ParameterBinding {
            name: name.clone(),
            data,
        }),
        None => r.return_value = Some(data),
    }
    r
}

fn log(function: &Function, inv: &Invocation, level: LogLevel, message: &str) -> FromWorker {
    FromWorker::Log(Log {
        invocation_id: inv.invocation_id.clone(),
        category: format!("Function.{}.User", function.name),
        level,
        message: message.to_string(),
        exception: None,
        system: false,
    })
}

/// Runs one invocation and sends its answer.
pub async fn invoke(function: Arc<Function>, inv: Invocation, cx: Context) {
    let f = function.as_ref();
    let mut response = match f.entry_point.as_str() {
        "fail" => InvocationResponse {
            result: failure("boom from the test worker".to_string(), "at test"),
            ..InvocationResponse::default()
        },
        "log" => {
            let _ = cx.outbound.send(log(
                f,
                &inv,
                LogLevel::Information,
                "hello from the test worker",
            ));
            let _ = cx.outbound.send(log(f, &inv, LogLevel::Warning, "careful"));
            InvocationResponse {
                return_value: Some(TypedData::String("logged".to_string())),
                ..success()
            }
        }
        "cookie" => http_answer(
            f,
            RpcHttp {
                body: Some(TypedData::String("cookie set".to_string())),
                cookies: vec![Cookie {
                    name: "session".to_string(),
                    value: "a b".to_string(),
                    path: Some("/api".to_string()),
                    http_only: Some(true),
                    same_site: SameSite::Lax,
                    max_age: Some(60.0),
                    ..Cookie::default()
                }],
                ..RpcHttp::default()
            },
        ),
        "status" => http_answer(
            f,
            RpcHttp {
                status_code: "418".to_string(),
                headers: vec![("x-test".to_string(), "1".to_string())],
                body: Some(TypedData::Bytes(Bytes::from_static(b"\x00\x01"))),
                ..RpcHttp::default()
            },
        ),
        "slow" => {
            tokio::select! {
                () = tokio::time::sleep(SLOW) => http_answer(f, RpcHttp {
                    status_code: "200".to_string(),
                    body: Some(TypedData::String("slow done".to_string())),
                    ..RpcHttp::default()
                }),
                Ok(()) = cx.cancelled => InvocationResponse {
                    result: StatusResult {
                        status: Outcome::Cancelled,
                        ..StatusResult::default()
                    },
                    ..InvocationResponse::default()
                },
            }
        }
        "stream" => {
            if cx.answered.wait(&inv.invocation_id, STREAM_WAIT).await {
                // Like a streaming Node function: it logs after its response went out.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let _ =
                    cx.outbound
                        .send(log(f, &inv, LogLevel::Information, "streamed and logged"));
                success()
            } else {
                InvocationResponse {
                    result: failure(
                        format!(
                            "the proxied request of invocation {} never arrived",
                            inv.invocation_id
                        ),
                        "",
                    ),
                    ..InvocationResponse::default()
                }
            }
        }
        _ => {
            let body = echo::describe(f, &inv).to_string();
            http_answer(
                f,
                RpcHttp {
                    status_code: "200".to_string(),
                    headers: vec![("content-type".to_string(), "application/json".to_string())],
                    body: Some(TypedData::String(body)),
                    ..RpcHttp::default()
                },
            )
        }
    };
    response.invocation_id = inv.invocation_id;
    let _ = cx
        .outbound
        .send(FromWorker::InvocationResponse(Box::new(response)));
}
