//! The language-worker executor: Microsoft's Python and Node workers (or any worker that
//! speaks `FunctionRpc`), started as processes that connect back to the host's gRPC server.
//!
//! Each worker process is a slot with its own supervisor; invocations go to the ready slots
//! in turn and are matched to their answers by invocation id.

mod capabilities;
mod catalog;
mod channel;
pub mod discover;
mod http;
mod stream;

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::http::header;
use parking_lot::Mutex;
use stratus_proto::msg::{Invocation, Outcome, ParameterBinding, TypedData};
use stratus_proto::{RpcServer, ToWorker};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use self::channel::{Control, Live, Pending, Setup, State};
pub use self::discover::{WorkerLaunch, WorkerOptions};
use super::{
    BoxFuture, ConnectionContext, Executor, ExecutorStatus, HttpCall, InvokeError, TriggerCall,
    TriggerOutcome,
};
use crate::app::{App, Function};
use crate::http::body::{CollectError, collect_limited};
use crate::http::response::HttpResponse;

/// How long a streamed invocation's answer is awaited after its response began, when the
/// app sets no `functionTimeout` (the Azure host's proxy activity timeout).
const STREAM_ANSWER_TIMEOUT: Duration = Duration::from_secs(240);

/// How long an invocation waits for a worker to be (re)started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Slot {
    state: watch::Receiver<State>,
    state_tx: Mutex<Option<watch::Sender<State>>>,
    control: mpsc::UnboundedSender<Control>,
    control_rx: Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
}

/// The language-worker executor of one app.
pub struct LanguageWorker {
    setup: Arc<Setup>,
    slots: Vec<Slot>,
    next: AtomicUsize,
    server: Mutex<Option<Arc<RpcServer>>>,
}

impl std::fmt::Debug for LanguageWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanguageWorker")
            .field("language", &self.setup.launch.language)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl LanguageWorker {
    /// Prepares the workers of `app` (processes start with [`Executor::start`]).
    pub fn new(app: &App, options: &WorkerOptions) -> Result<LanguageWorker, String> {
        let launch = discover::discover(&app.settings, options)?;
        let root = app.root.display().to_string();
        let mut env: Vec<(OsString, OsString)> = app
            .settings
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        let mut add = |k: &str, v: &str| {
            if app.settings.get(k).is_none() {
                env.push((k.into(), v.into()));
            }
        };
        add(
            "FUNCTIONS_WORKER_DIRECTORY",
            &launch.worker_dir.display().to_string(),
        );
        add("FUNCTIONS_APPLICATION_DIRECTORY", &root);
        add("AzureWebJobsScriptRoot", &root);
        if let Some(v) = &launch.runtime_version {
            add("FUNCTIONS_WORKER_RUNTIME_VERSION", v);
        }
        if launch.language == "python" {
            add("PYTHONUNBUFFERED", "1");
            let packages = app.root.join(".python_packages/lib/site-packages");
            if packages.is_dir() {
                let mut path = packages.display().to_string();
                if let Some(existing) = app.settings.get("PYTHONPATH") {
                    path = format!("{path}:{existing}");
                }
                env.retain(|(k, _)| k != "PYTHONPATH");
                env.push(("PYTHONPATH".into(), path.into()));
            }
        }

        let load_timeout = app
            .config
            .function_timeout
            .map_or(Duration::from_secs(3600 * 24), |t| {
                t.max(Duration::from_secs(60))
            });
        // The Azure host sends no log categories; workers log at their own defaults.
        let log_levels = HashMap::new();
        let slots = (0..launch.process_count)
            .map(|_| {
                let (state_tx, state) = watch::channel(State::Starting);
                let (control, control_rx) = mpsc::unbounded_channel();
                Slot {
                    state,
                    state_tx: Mutex::new(Some(state_tx)),
                    control,
                    control_rx: Mutex::new(Some(control_rx)),
                }
            })
            .collect();
        Ok(LanguageWorker {
            setup: Arc::new(Setup {
                launch,
                env,
                app_root: root,
                host_loads: catalog::host_indexed(&app.functions),
                index: catalog::IndexContext {
                    root: app.root.clone(),
                    config: app.config.clone(),
                    settings: app.settings.clone(),
                },
                indexed: std::sync::OnceLock::new(),
                generations: std::sync::atomic::AtomicU64::new(0),
                load_timeout,
                log_levels,
            }),
            slots,
            next: AtomicUsize::new(0),
            server: Mutex::new(None),
        })
    }

    /// The app's functions as the worker indexed them, once a worker has (None for host
    /// indexing, or while no worker has answered).
    pub fn indexed(&self) -> Option<(Vec<Arc<Function>>, Vec<crate::app::FunctionErrors>)> {
        let indexed = self.setup.indexed.get()?.as_ref()?;
        Some((indexed.functions.clone(), indexed.errors.clone()))
    }

    /// Whether the worker describes the app's functions (worker indexing).
    pub fn worker_indexing(&self) -> bool {
        self.setup.launch.worker_indexing
    }

    /// What runs the workers, for logs.
    pub fn describe(&self) -> String {
        let l = &self.setup.launch;
        format!(
            "{} worker ({} process{}) from {}",
            l.language,
            self.slots.len(),
            if self.slots.len() == 1 { "" } else { "es" },
            l.source
        )
    }

    /// A ready worker, in turn; waits for any to (re)start when none is.
    async fn ready(&self) -> Result<Arc<Live>, InvokeError> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut receivers: Vec<watch::Receiver<State>> =
            self.slots.iter().map(|s| s.state.clone()).collect();
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let mut stopped = 0;
            for i in 0..n {
                let rx = &mut receivers[(start + i) % n];
                match &*rx.borrow_and_update() {
                    State::Ready(live) => return Ok(live.clone()),
                    State::Stopped => stopped += 1,
                    _ => {}
                }
            }
            if stopped == n {
                return Err(InvokeError::Unavailable(
                    "the language worker is stopped".into(),
                ));
            }
            let changed = futures_util::future::select_all(
                receivers.iter_mut().map(|rx| Box::pin(rx.changed())),
            );
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let why = receivers
                    .iter()
                    .find_map(|rx| match &*rx.borrow() {
                        State::Down(reason) => Some(reason.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "it is still starting".into());
                return Err(InvokeError::Unavailable(format!(
                    "the language worker is not ready: {why}"
                )));
            }
        }
    }

    async fn invoke_http(
        &self,
        call: HttpCall,
        conn: &ConnectionContext,
    ) -> Result<HttpResponse, InvokeError> {
        let function = call.function.clone();
        let live = self.ready().await?;
        let function_id = loaded(&live, &function)?;
        let caps = live.capabilities.clone();
        let caps = &caps;
        let (parts, body) = call.request.into_parts();
        // A worker that serves HTTP itself gets the body streamed; others get it read.
        let (bytes, streamed) = match &caps.http_uri {
            Some(_) => (None, Some(body)),
            None => {
                let declared = parts
                    .headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let bytes = collect_limited(body, call.body_limit)
                    .await
                    .map_err(|e| match e {
                        CollectError::TooLarge => InvokeError::TooLarge,
                        CollectError::Read(m) => InvokeError::Failed(m),
                    })?;
                // The host hands the body over only when the request declared a length.
                (declared.filter(|n| *n > 0).map(|_| bytes), None)
            }
        };
        let trigger = function.config.trigger_binding().name.clone();
        let (rpc, trigger_metadata) = {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let view = http::RequestView {
                method: parts.method.as_str(),
                url: format!(
                    "{}://{}{}",
                    call.scheme,
                    host,
                    parts.uri.path_and_query().map_or("/", |p| p.as_str())
                ),
                query: parts.uri.query(),
                headers: &parts.headers,
                params: &call.route_values,
                principal: call.principal.as_ref(),
                body: bytes,
            };
            let rpc = match &caps.http_uri {
                Some(_) => http::streamed_rpc_http(&view, caps),
                None => http::rpc_http(&view, caps),
            };
            let metadata = http::trigger_metadata(&view, &rpc, &trigger, caps);
            (rpc, metadata)
        };
        let invocation_id = call.invocation_id.to_string();
        let invocation = Invocation {
            invocation_id: invocation_id.clone(),
            function_id,
            input_data: vec![ParameterBinding {
                name: trigger,
                data: TypedData::Http(Box::new(rpc)),
            }],
            trigger_metadata,
            ..Invocation::default()
        };
        let (live, mut forget, mut answered) = self
            .dispatch(
                live,
                &function,
                call.invocation_id,
                invocation,
                &call.dispatched,
            )
            .await?;
        if let (Some(base), Some(body)) = (&caps.http_uri, streamed) {
            let target = stream::Target {
                base,
                scheme: call.scheme,
                invocation_id: call.invocation_id,
                body_limit: call.body_limit,
                deadline: call.deadline,
            };
            let proxied = stream::forward(target, parts, body, conn);
            tokio::pin!(proxied);
            let mut answer_pending = true;
            // The response comes from the worker's HTTP server; a failed invocation that
            // ends before it answers fails the request.
            loop {
                tokio::select! {
                    resp = &mut proxied => {
                        if resp.is_err() && answer_pending && caps.handles_invocation_cancel {
                            // The worker waits for a request that will not come.
                            let _ = live.outbound.send(ToWorker::InvocationCancel {
                                invocation_id: invocation_id.clone(),
                            });
                        }
                        if resp.is_ok() && answer_pending {
                            // The body streams on; the invocation (and its logs) ends when the
                            // worker answers: keep it known until then.
                            forget.armed = false;
                            let (live, id, function) = (live.clone(), invocation_id.clone(), function.clone());
                            let until = call.deadline.unwrap_or_else(|| {
                                tokio::time::Instant::now() + STREAM_ANSWER_TIMEOUT
                            });
                            tokio::spawn(async move {
                                if let Ok(Ok(Ok(answer))) = tokio::time::timeout_at(until, answered).await
                                    && let Err(InvokeError::Failed(reason)) = check(&answer)
                                {
                                    tracing::error!(function = %function.name, invocation_id = %id,
                                        "the streamed invocation failed after its response began: {reason}");
                                }
                                live.forget(&id);
                            });
                        }
                        return resp;
                    }
                    answer = &mut answered, if answer_pending => {
                        answer_pending = false;
                        let answer = answer
                            .map_err(|_| InvokeError::Failed("the language worker went away".into()))?
                            .map_err(InvokeError::Failed)?;
                        check(&answer)?;
                    }
                }
            }
        }
        let response = answered
            .await
            .map_err(|_| InvokeError::Failed("the language worker went away".into()))?
            .map_err(InvokeError::Failed)?;
        check(&response)?;
        let mut reply = http::response(function.http_output.as_deref(), &response)
            .map_err(InvokeError::Failed)?;
        if !function.outputs.is_empty() {
            reply
                .extensions_mut()
                .insert(crate::bindings::OutputValues(outputs_of(&response)));
        }
        Ok(reply)
    }
}

/// The output values of an answer by binding name (`$return` for the return value); bytes
/// that are UTF-8 text become strings, as the queue writes them.
fn outputs_of(
    response: &stratus_proto::msg::InvocationResponse,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let value = |t: &TypedData| match t {
        TypedData::Bytes(b) | TypedData::Stream(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => http::json_of(t),
        },
        other => http::json_of(other),
    };
    let mut outputs = serde_json::Map::new();
    for p in &response.output_data {
        outputs.insert(p.name.clone(), value(&p.data));
    }
    if let Some(v) = &response.return_value {
        outputs.insert("$return".into(), value(v));
    }
    outputs
}

impl LanguageWorker {
    /// Runs a non-HTTP invocation: the trigger's value as JSON, its metadata as strings and
    /// JSON, as the host converts binding data.
    async fn invoke_trigger(&self, call: TriggerCall) -> Result<TriggerOutcome, InvokeError> {
        let function = call.function.clone();
        let live = self.ready().await?;
        let function_id = loaded(&live, &function)?;
        let trigger = function.config.trigger_binding().name.clone();
        let trigger_metadata = call
            .metadata
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let data = match v {
                    serde_json::Value::String(s) => TypedData::String(s.clone()),
                    other => TypedData::Json(other.to_string()),
                };
                (k.clone(), data)
            })
            .collect();
        let invocation = Invocation {
            invocation_id: call.invocation_id.to_string(),
            function_id,
            input_data: vec![ParameterBinding {
                name: trigger,
                // Text (a queue message) goes as a string, as the host sends it.
                data: match call.value {
                    serde_json::Value::String(s) => TypedData::String(s),
                    other => TypedData::Json(other.to_string()),
                },
            }],
            trigger_metadata,
            retry_context: call
                .retry
                .as_ref()
                .map(|r| stratus_proto::msg::RetryContext {
                    retry_count: i32::try_from(r.retry_count).unwrap_or(i32::MAX),
                    max_retry_count: i32::try_from(r.max_retry_count).unwrap_or(i32::MAX),
                    exception: r
                        .exception
                        .as_ref()
                        .map(|m| stratus_proto::msg::RpcException {
                            message: m.clone(),
                            ..Default::default()
                        }),
                }),
            ..Invocation::default()
        };
        let (_live, _forget, answered) = self
            .dispatch(
                live,
                &function,
                call.invocation_id,
                invocation,
                &call.dispatched,
            )
            .await?;
        let response = answered
            .await
            .map_err(|_| InvokeError::Failed("the language worker went away".into()))?
            .map_err(InvokeError::Failed)?;
        check(&response)?;
        Ok(TriggerOutcome {
            outputs: outputs_of(&response),
        })
    }

    /// Registers an invocation with a live worker (the next one, once, if that one is gone
    /// meanwhile) and sends it; the worker that took it, a guard that forgets it when
    /// dropped, and where its answer arrives.
    async fn dispatch(
        &self,
        live: Arc<Live>,
        function: &Arc<Function>,
        invocation_id: uuid::Uuid,
        mut invocation: Invocation,
        dispatched: &std::sync::atomic::AtomicU64,
    ) -> Result<(Arc<Live>, Forget, oneshot::Receiver<channel::Answer>), InvokeError> {
        let id = invocation_id.to_string();
        let (answer, answered) = oneshot::channel();
        let mut pending = Pending {
            function: function.clone(),
            invocation_id,
            answer,
        };
        let mut live = live;
        for attempt in 0..2 {
            match live.register(id.clone(), pending) {
                Ok(()) => break,
                Err(back) if attempt == 0 => {
                    pending = back;
                    live = self.ready().await?;
                    invocation.function_id = loaded(&live, function)?;
                }
                Err(_) => {
                    return Err(InvokeError::Unavailable(
                        "the language worker went away before the invocation started".into(),
                    ));
                }
            }
        }
        let forget = Forget {
            live: live.clone(),
            id,
            armed: true,
        };
        dispatched.store(live.generation, Ordering::Release);
        if live
            .outbound
            .send(ToWorker::Invocation(Box::new(invocation)))
            .is_err()
        {
            return Err(InvokeError::Failed(
                "the language worker's stream is closed".into(),
            ));
        }
        Ok((live, forget, answered))
    }
}

/// Forgets an invocation when dropped (timeout, client gone), unless it was handed over to a
/// task that still waits for the worker's answer.
struct Forget {
    live: Arc<Live>,
    id: String,
    armed: bool,
}

impl Drop for Forget {
    fn drop(&mut self) {
        if self.armed {
            self.live.forget(&self.id);
        }
    }
}

/// The id `live` knows `function` by, unless it could not load it.
fn loaded(live: &Live, function: &Function) -> Result<String, InvokeError> {
    if let Some(reason) = live.load_errors.get(&function.name) {
        return Err(InvokeError::Failed(format!(
            "the worker could not load function {}: {reason}",
            function.name
        )));
    }
    live.ids
        .get(&function.name.to_ascii_lowercase())
        .cloned()
        .ok_or_else(|| {
            InvokeError::Failed(format!(
                "the worker did not load function {}",
                function.name
            ))
        })
}

/// Fails unless the worker reports success.
fn check(response: &stratus_proto::msg::InvocationResponse) -> Result<(), InvokeError> {
    match response.result.status {
        Outcome::Success => Ok(()),
        Outcome::Cancelled => Err(InvokeError::Failed("the invocation was cancelled".into())),
        Outcome::Failure => {
            let reason = match &response.result.exception {
                Some(e) if !e.stack_trace.is_empty() => {
                    format!("{}\n{}", e.message, e.stack_trace)
                }
                _ => response.result.reason(),
            };
            Err(InvokeError::Failed(format!(
                "Result: Failure\nException: {reason}"
            )))
        }
    }
}

impl Executor for LanguageWorker {
    fn call(&self, call: TriggerCall) -> BoxFuture<'_, Result<TriggerOutcome, InvokeError>> {
        Box::pin(self.invoke_trigger(call))
    }

    fn status(&self) -> ExecutorStatus {
        let mut any_down = None;
        for s in &self.slots {
            match &*s.state.borrow() {
                State::Ready(_) => return ExecutorStatus::Ready,
                State::Down(reason) => any_down = Some(reason.clone()),
                State::Starting | State::Stopped => {}
            }
        }
        match any_down {
            Some(reason) => ExecutorStatus::Down(reason),
            None if self
                .slots
                .iter()
                .all(|s| matches!(&*s.state.borrow(), State::Stopped)) =>
            {
                ExecutorStatus::Stopped
            }
            None => ExecutorStatus::Starting,
        }
    }

    fn call_http<'a>(
        &'a self,
        call: HttpCall,
        conn: &'a ConnectionContext,
    ) -> BoxFuture<'a, Result<HttpResponse, InvokeError>> {
        Box::pin(self.invoke_http(call, conn))
    }

    fn timed_out(&self, _function: &Function, invocation_id: Uuid, dispatched: u64) {
        if dispatched == 0 {
            return;
        }
        for s in &self.slots {
            if let State::Ready(live) = &*s.state.borrow()
                && live.generation == dispatched
            {
                if live.capabilities.handles_invocation_cancel {
                    let _ = live.outbound.send(ToWorker::InvocationCancel {
                        invocation_id: invocation_id.to_string(),
                    });
                }
                let _ = s
                    .control
                    .send(Control::timeout_restart(invocation_id, dispatched));
            }
        }
    }

    fn start(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let server = match RpcServer::start().await {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::error!("{e}");
                    for s in &self.slots {
                        if let Some(tx) = s.state_tx.lock().take() {
                            tx.send_replace(State::Stopped);
                        }
                        // Nobody will answer control messages: let senders see that.
                        s.control_rx.lock().take();
                    }
                    return;
                }
            };
            *self.server.lock() = Some(server.clone());
            for s in &self.slots {
                let (Some(state), Some(control)) =
                    (s.state_tx.lock().take(), s.control_rx.lock().take())
                else {
                    continue;
                };
                tokio::spawn(channel::supervise(
                    self.setup.clone(),
                    server.clone(),
                    state,
                    control,
                ));
            }
            // Wait (bounded) for the first worker, so start-up output follows its logs and,
            // with worker indexing, the app's functions are known.
            let launch = &self.setup.launch;
            let wait = if launch.worker_indexing {
                launch.process.startup_timeout
                    + launch.process.initialization_timeout
                    + Duration::from_secs(60)
            } else {
                Duration::from_secs(10)
            };
            let deadline = tokio::time::Instant::now() + wait;
            if launch.worker_indexing {
                // Until a worker has said which functions the app has (a failed start is
                // retried by its supervisor meanwhile).
                while self.setup.indexed.get().is_none() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            } else {
                let mut rx = self.slots[0].state.clone();
                let _ = tokio::time::timeout_at(
                    deadline,
                    rx.wait_for(|s| !matches!(s, State::Starting)),
                )
                .await;
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut acks = Vec::new();
            for s in &self.slots {
                let (ack, done) = oneshot::channel();
                if s.control.send(Control::Stop(ack)).is_ok() {
                    acks.push(done);
                }
            }
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                futures_util::future::join_all(acks),
            )
            .await;
            self.server.lock().take();
        })
    }
}
