//! The custom-handler executor: the app's own HTTP server, started as a process and called
//! either by forwarding the client's request (`enableForwardingHttpRequest`) or with the
//! JSON invocation protocol (`POST /{FunctionName}`).
//!
//! Each client connection keeps its own upstream connection to the handler, driven on the
//! same task as the client connection, so a forwarded request never hops between tasks.

mod payload;
mod process;
mod result;

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::BodyExt as _;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use stratus_model::CustomHandlerConfig;
use stratus_sandbox::ProcessSpec;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use self::process::{Control, Launch, State};
use super::{
    BoxFuture, ConnectionContext, Executor, HttpCall, InvokeError, TriggerCall, TriggerOutcome,
    strip_hop_by_hop,
};
use crate::app::{App, Function};
use crate::http::body::{Body, CollectError, LimitedBody, collect_limited};
use crate::http::response::HttpResponse;
use crate::http_data::{parse_query, rebuild_query};

/// How long an invocation waits for the handler to be (re)started.
const DEFAULT_INITIALIZATION_TIMEOUT: Duration = Duration::from_secs(30);

/// One client connection's connection to the handler.
struct Upstream {
    generation: u64,
    sender: SendRequest<Body>,
}

/// The custom-handler executor of one app.
#[derive(Debug)]
pub struct CustomHandler {
    forward: bool,
    legacy: bool,
    launch: Launch,
    state: watch::Receiver<State>,
    /// The ready handler's generation and port, read without the watch's lock.
    ready_word: Arc<AtomicU64>,
    state_tx: Mutex<Option<process::StateTx>>,
    control: mpsc::UnboundedSender<Control>,
    control_rx: Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
    user_agent: HeaderValue,
    host_version: HeaderValue,
    /// Upstream connections kept for non-HTTP invocations (which come from no client
    /// connection), reused one invocation at a time.
    idle: Mutex<Vec<ConnectionContext>>,
}

/// Most idle upstream connections kept for non-HTTP invocations.
const MAX_IDLE_TRIGGER_CONNECTIONS: usize = 64;

impl CustomHandler {
    /// Prepares the handler of `app` (the process starts with [`Executor::start`]).
    pub fn new(app: &App, config: &CustomHandlerConfig) -> Result<CustomHandler, String> {
        let spec = process_spec(app, config)?;
        let (state_tx, state) = watch::channel(State::Starting);
        let (state_tx, ready_word) = process::StateTx::new(state_tx);
        let (control, control_rx) = mpsc::unbounded_channel();
        let version = crate::HOST_VERSION;
        Ok(CustomHandler {
            forward: config.enable_forwarding_http_request,
            legacy: config.legacy_http_worker,
            launch: Launch {
                spec,
                initialization_timeout: DEFAULT_INITIALIZATION_TIMEOUT,
                app_root: app.root.display().to_string(),
            },
            state,
            ready_word,
            state_tx: Mutex::new(Some(state_tx)),
            control,
            control_rx: Mutex::new(Some(control_rx)),
            idle: Mutex::new(Vec::new()),
            user_agent: HeaderValue::from_str(&format!("Azure-Functions-Host/{version}"))
                .unwrap_or(HeaderValue::from_static("Azure-Functions-Host")),
            host_version: HeaderValue::from_static(version),
        })
    }

    /// The handler's executable and arguments, for logs.
    pub fn command_line(&self) -> String {
        let mut s = self.launch.spec.program.display().to_string();
        for a in &self.launch.spec.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Waits until the handler answers HTTP; returns its generation and port.
    async fn ready(&self) -> Result<(u64, u16), InvokeError> {
        if let Some(ready) = process::ready_from_word(self.ready_word.load(Ordering::Acquire)) {
            return Ok(ready);
        }
        let mut rx = self.state.clone();
        let deadline = tokio::time::Instant::now() + self.launch.initialization_timeout;
        loop {
            match &*rx.borrow_and_update() {
                State::Ready {
                    generation, port, ..
                } => return Ok((*generation, *port)),
                State::Stopped => {
                    return Err(InvokeError::Unavailable(
                        "the custom handler is stopped".into(),
                    ));
                }
                _ => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(InvokeError::Unavailable(
                        "the custom handler is stopped".into(),
                    ));
                }
                Err(_) => {
                    let why = match &*rx.borrow() {
                        State::Down(reason) => reason.clone(),
                        _ => "it is still starting".into(),
                    };
                    return Err(InvokeError::Unavailable(format!(
                        "the custom handler is not ready: {why}"
                    )));
                }
            }
        }
    }

    /// Opens a connection to the handler, driven by the client connection's task.
    async fn connect(
        &self,
        conn: &ConnectionContext,
        generation: u64,
        port: u16,
    ) -> Result<Upstream, InvokeError> {
        let stream = tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| {
                InvokeError::Failed(format!(
                    "cannot connect to the custom handler on port {port}: {e}"
                ))
            })?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                InvokeError::Failed(format!("cannot talk HTTP to the custom handler: {e}"))
            })?;
        if !conn.drive(Box::pin(async move {
            let _ = connection.await;
        })) {
            return Err(InvokeError::Failed(
                "the client connection is closing".into(),
            ));
        }
        Ok(Upstream { generation, sender })
    }

    /// Waits (briefly) until the handler of `generation` is known to be gone.
    async fn wait_past(&self, generation: u64) {
        let mut rx = self.state.clone();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            rx.wait_for(|s| !matches!(s, State::Ready { generation: g, .. } if *g == generation)),
        )
        .await;
    }

    /// Sends `req` on the connection reserved for this client connection (opened on first
    /// use, and again after a handler restart).
    async fn send(
        &self,
        conn: &ConnectionContext,
        req: Request<Body>,
        dispatched: &AtomicU64,
    ) -> Result<http::Response<hyper::body::Incoming>, InvokeError> {
        let (generation, port) = self.ready().await?;
        let mut slot = conn.slot.lock().await;
        let reusable = slot
            .as_mut()
            .and_then(|b| b.downcast_mut::<Upstream>())
            .is_some_and(|up| up.generation == generation && !up.sender.is_closed());
        if !reusable {
            *slot = None;
            let fresh = match self.connect(conn, generation, port).await {
                Ok(up) => up,
                Err(first) => {
                    // Nothing was sent: the handler may just have exited. Wait for its restart, once.
                    self.wait_past(generation).await;
                    let (generation, port) = self.ready().await?;
                    self.connect(conn, generation, port)
                        .await
                        .map_err(|_| first)?
                }
            };
            *slot = Some(Box::new(fresh));
        }
        let Some(up) = slot.as_mut().and_then(|b| b.downcast_mut::<Upstream>()) else {
            return Err(InvokeError::Failed(
                "no connection to the custom handler".into(),
            ));
        };
        let sent = async {
            up.sender.ready().await.map_err(|e| {
                InvokeError::Failed(format!("the custom handler connection failed: {e}"))
            })?;
            dispatched.store(up.generation, Ordering::Release);
            up.sender
                .send_request(req)
                .await
                .map_err(|e| InvokeError::Failed(format!("the custom handler did not answer: {e}")))
        }
        .await;
        let generation = up.generation;
        match sent {
            Err(InvokeError::Failed(why)) => {
                *slot = None;
                drop(slot);
                // The handler may have died with the request (its memory limit, say): then
                // the failure says how.
                Err(InvokeError::Failed(
                    match self.down_reason(generation).await {
                        Some(exit) => format!("{why}: {exit}"),
                        None => why,
                    },
                ))
            }
            other => other,
        }
    }

    /// Why the handler of `generation` went down, if it is found down within a moment; or,
    /// when its exit is not noticed by then, what the app's control group says: a kill for
    /// the memory limit since the handler started (the kernel counts it as it decides the
    /// kill, before the victim's connections drop).
    async fn down_reason(&self, generation: u64) -> Option<String> {
        // Taken first: by the time the exit is seen, a restart may have replaced the state.
        let memory = match &*self.state.borrow() {
            State::Ready {
                generation: g,
                memory,
                ..
            } if *g == generation => *memory,
            _ => None,
        };
        let mut rx = self.state.clone();
        let seen = tokio::time::timeout(
            Duration::from_millis(300),
            rx.wait_for(|s| !matches!(s, State::Ready { generation: g, .. } if *g == generation)),
        )
        .await;
        if let Ok(Ok(state)) = seen
            && let State::Down(reason) = &*state
        {
            return Some(reason.clone());
        }
        memory
            .and_then(|m| m.killed_for_memory())
            .map(|why| format!("the custom handler or a process it started was {why}"))
    }

    fn add_host_headers(&self, headers: &mut HeaderMap, invocation_id: Uuid) {
        headers.insert(
            HeaderName::from_static("x-azure-functions-hostversion"),
            self.host_version.clone(),
        );
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        if let Ok(v) = HeaderValue::from_str(invocation_id.hyphenated().encode_lower(&mut text)) {
            headers.insert(HeaderName::from_static("x-azure-functions-invocationid"), v);
        }
        let ua = match headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            Some(existing) if !existing.is_empty() => HeaderValue::from_str(&format!(
                "{existing} {}",
                self.user_agent.to_str().unwrap_or_default()
            ))
            .unwrap_or_else(|_| self.user_agent.clone()),
            _ => self.user_agent.clone(),
        };
        headers.insert(header::USER_AGENT, ua);
    }

    /// Forwards the client's request as it is (streamed both ways).
    async fn forward(
        &self,
        call: HttpCall,
        conn: &ConnectionContext,
    ) -> Result<HttpResponse, InvokeError> {
        let (deadline, invocation_id, dispatched) =
            (call.deadline, call.invocation_id, call.dispatched.clone());
        let (mut parts, body) = call.request.into_parts();
        // The legacy `httpWorker` section forwards to /{FunctionName}; `customHandler` to the
        // original path (as it came when rebuilding its query would change nothing).
        let as_it_came = !self.legacy
            && parts.uri.scheme().is_none()
            && parts.uri.path().starts_with('/')
            && parts
                .uri
                .query()
                .is_none_or(crate::http_data::query_is_canonical);
        let uri = if as_it_came {
            std::mem::take(&mut parts.uri)
        } else {
            let path = if self.legacy {
                format!("/{}", call.function.name)
            } else {
                parts.uri.path().to_string()
            };
            let path_and_query = match parts.uri.query() {
                Some(q) if !q.is_empty() => format!("{path}{}", rebuild_query(q)),
                _ => path,
            };
            path_and_query
                .parse::<Uri>()
                .map_err(|e| InvokeError::Failed(format!("cannot forward the path: {e}")))?
        };
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        self.add_host_headers(&mut headers, invocation_id);
        // A body of unknown length (chunked) is read first and sent with its length, as a
        // buffering proxy does: many handler servers cannot read chunked requests.
        let known_length =
            headers.contains_key(header::CONTENT_LENGTH) || http_body::Body::is_end_stream(&body);
        let (up_body, exceeded) = if known_length {
            let (limited, exceeded) = LimitedBody::new(body, call.body_limit);
            (Body::Limited(limited), exceeded)
        } else {
            let bytes = collect_limited(body, call.body_limit)
                .await
                .map_err(|e| match e {
                    CollectError::TooLarge => InvokeError::TooLarge,
                    CollectError::Read(m) => InvokeError::Failed(m),
                })?;
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            (Body::Full(Some(bytes)), Default::default())
        };
        let mut req = Request::new(up_body);
        *req.method_mut() = parts.method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        match self.send(conn, req, &dispatched).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = match deadline {
                    Some(at) => Body::timed(body, at, invocation_id),
                    None => Body::Stream(body),
                };
                Ok(http::Response::from_parts(parts, body))
            }
            Err(_) if exceeded.load(Ordering::Acquire) => Err(InvokeError::TooLarge),
            Err(e) => Err(e),
        }
    }

    /// Calls the function with the JSON invocation protocol.
    async fn invoke_json(
        &self,
        call: HttpCall,
        conn: &ConnectionContext,
    ) -> Result<HttpResponse, InvokeError> {
        let function = call.function.clone();
        let (parts, body) = call.request.into_parts();
        let body = collect_limited(body, call.body_limit)
            .await
            .map_err(|e| match e {
                CollectError::TooLarge => InvokeError::TooLarge,
                CollectError::Read(m) => InvokeError::Failed(m),
            })?;
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let url = format!(
            "{}://{}{}",
            call.scheme,
            host,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let view = payload::HttpRequestView {
            method: parts.method.as_str(),
            url,
            query: parse_query(parts.uri.query()),
            headers: &parts.headers,
            params: &call.route_values,
            principal: call.principal.as_ref(),
            body: &body,
        };
        let payload = payload::http_invocation(&function, &view);
        let result = self
            .post_invocation(
                &function,
                call.invocation_id,
                payload,
                conn,
                &call.dispatched,
            )
            .await?;
        let mut response = result::http_response(function.http_output.as_deref(), &result)
            .map_err(InvokeError::Failed)?;
        if !function.outputs.is_empty() {
            let mut outputs = result.outputs.unwrap_or_default();
            if let Some(v) = result.return_value {
                outputs.insert("$return".into(), v);
            }
            response
                .extensions_mut()
                .insert(crate::bindings::OutputValues(outputs));
        }
        Ok(response)
    }
}

impl CustomHandler {
    /// `POST /{FunctionName}` with an invocation payload; the handler's answer, its `Logs`
    /// already written to the function's log.
    async fn post_invocation(
        &self,
        function: &Function,
        invocation_id: Uuid,
        payload: Vec<u8>,
        conn: &ConnectionContext,
        dispatched: &AtomicU64,
    ) -> Result<result::HandlerResult, InvokeError> {
        let uri: Uri = format!("/{}", function.name)
            .parse()
            .map_err(|e| InvokeError::Failed(format!("bad function name: {e}")))?;
        let mut req = Request::post(uri)
            .body(Body::Full(Some(Bytes::from(payload))))
            .map_err(|e| InvokeError::Failed(e.to_string()))?;
        let headers = req.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1"));
        self.add_host_headers(headers, invocation_id);
        let resp = self.send(conn, req, dispatched).await?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                InvokeError::Failed(format!("cannot read the custom handler's answer: {e}"))
            })?
            .to_bytes();
        let result =
            result::parse(status, content_type.as_deref(), &bytes).map_err(InvokeError::Failed)?;
        for line in &result.logs {
            crate::logging::user_log(function, invocation_id, line);
        }
        Ok(result)
    }

    /// Calls a non-HTTP function with the JSON invocation protocol.
    async fn invoke_trigger(&self, call: TriggerCall) -> Result<TriggerOutcome, InvokeError> {
        let function = call.function.clone();
        let payload = payload::trigger_invocation(
            &function,
            &call.value,
            &call.metadata,
            call.retry.as_ref(),
            chrono::Utc::now(),
            Uuid::new_v4(),
        );
        let conn = self
            .idle
            .lock()
            .pop()
            .unwrap_or_else(super::detached_context);
        let result = self
            .post_invocation(
                &function,
                call.invocation_id,
                payload,
                &conn,
                &call.dispatched,
            )
            .await?;
        {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE_TRIGGER_CONNECTIONS {
                idle.push(conn);
            }
        }
        let mut outputs = result.outputs.unwrap_or_default();
        if let Some(v) = result.return_value {
            outputs.insert("$return".into(), v);
        }
        Ok(TriggerOutcome { outputs })
    }
}

impl Executor for CustomHandler {
    fn call(&self, call: TriggerCall) -> BoxFuture<'_, Result<TriggerOutcome, InvokeError>> {
        Box::pin(self.invoke_trigger(call))
    }

    fn status(&self) -> super::ExecutorStatus {
        match &*self.state.borrow() {
            State::Starting => super::ExecutorStatus::Starting,
            State::Ready { .. } => super::ExecutorStatus::Ready,
            State::Down(reason) => super::ExecutorStatus::Down(reason.clone()),
            State::Stopped => super::ExecutorStatus::Stopped,
        }
    }

    fn call_http<'a>(
        &'a self,
        call: HttpCall,
        conn: &'a ConnectionContext,
    ) -> BoxFuture<'a, Result<HttpResponse, InvokeError>> {
        // Boxed apart: each future is only as large as its own state.
        if self.forward && call.function.config.is_pure_http() {
            Box::pin(self.forward(call, conn))
        } else {
            Box::pin(self.invoke_json(call, conn))
        }
    }

    fn timed_out(&self, _function: &Function, invocation_id: Uuid, dispatched: u64) {
        if dispatched == 0 {
            return;
        }
        let _ = self
            .control
            .send(Control::timeout_restart(invocation_id, dispatched));
    }

    fn start(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let (Some(state), Some(control)) =
                (self.state_tx.lock().take(), self.control_rx.lock().take())
            else {
                return;
            };
            tokio::spawn(process::supervise(
                self.launch.clone(),
                state,
                control,
                process::console_sink(),
            ));
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (ack, done) = oneshot::channel();
            if self.control.send(Control::Stop(ack)).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
            }
        })
    }
}

fn expand_keep(text: &str, settings: &stratus_model::AppSettings) -> String {
    settings.expand_percent_keep(text)
}

/// Resolves `customHandler.description` into a process to start, as the host does.
fn process_spec(app: &App, config: &CustomHandlerConfig) -> Result<ProcessSpec, String> {
    let settings = &app.settings;
    let root = &app.root;
    let worker_dir = match &config.worker_directory {
        Some(d) => root.join(expand_keep(d, settings)),
        None => root.clone(),
    };
    let exe_text = expand_keep(&config.default_executable_path, settings);
    let exe_path = Path::new(&exe_text);
    let program = if exe_path.is_absolute() {
        exe_path.to_path_buf()
    } else if worker_dir.join(exe_path).is_file() {
        worker_dir.join(exe_path)
    } else if exe_text.contains('/') {
        return Err(format!(
            "host.json: $.customHandler.description.defaultExecutablePath: expected an executable, found \"{exe_text}\" \
             (no such file in {})",
            worker_dir.display()
        ));
    } else {
        super::find_on_path(&exe_text, settings.get("PATH")).ok_or_else(|| {
            format!(
                "host.json: $.customHandler.description.defaultExecutablePath: expected an executable, found \"{exe_text}\" \
                 (not in {} and not on PATH)",
                worker_dir.display()
            )
        })?
    };
    let mut args: Vec<OsString> = config
        .arguments
        .iter()
        .map(|a| settings.expand_percent(a).into())
        .collect();
    if let Some(w) = &config.default_worker_path {
        let w = expand_keep(w, settings);
        let p = Path::new(&w);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            worker_dir.join(p)
        };
        args.push(full.into_os_string());
    }
    args.extend(
        config
            .worker_arguments
            .iter()
            .map(|a| OsString::from(settings.expand_percent(a))),
    );
    let cwd = match &config.working_directory {
        Some(d) => root.join(expand_keep(d, settings)),
        None => root.clone(),
    };
    if !cwd.is_dir() {
        return Err(format!(
            "host.json: $.customHandler.description.workingDirectory: expected a directory, found \"{}\"",
            cwd.display()
        ));
    }
    let env = settings
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    Ok(ProcessSpec {
        program,
        args,
        cwd,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_keeps_unknown_names() {
        let mut s = stratus_model::AppSettings::new();
        s.set("HOME", "/h");
        assert_eq!(expand_keep("%HOME%/x/%NOPE%", &s), "/h/x/%NOPE%");
    }
}
