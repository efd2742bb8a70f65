//! Executors run function code. Triggers and the HTTP front talk to them through one trait
//! and never know which kind they have.

pub mod custom_handler;
pub mod language_worker;
pub(crate) mod supervision;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;
use stratus_model::route::RouteValues;
use uuid::Uuid;

use crate::app::Function;
use crate::http::response::HttpResponse;
use crate::keys::Principal;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An HTTP request routed to a function.
#[derive(Debug)]
pub struct HttpCall {
    pub function: Arc<Function>,
    pub invocation_id: Uuid,
    pub request: Request<Incoming>,
    pub route_values: RouteValues,
    /// Who called, when a key was presented or required.
    pub principal: Option<Principal>,
    /// `http` or `https`, as the client reached the host.
    pub scheme: &'static str,
    pub body_limit: u64,
    /// When the invocation must be over (`functionTimeout`), for response bodies streamed
    /// after the head.
    pub deadline: Option<tokio::time::Instant>,
    /// Set by the executor to a non-zero token once the request reached the function's code
    /// (which process, for a custom handler), so a timeout restarts only what it concerns.
    pub dispatched: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A non-HTTP invocation (timer, queue, admin invoke): the trigger's value and metadata.
#[derive(Debug)]
pub struct TriggerCall {
    pub function: Arc<Function>,
    pub invocation_id: Uuid,
    /// The value bound to the trigger parameter (e.g. `TimerInfo` as JSON).
    pub value: serde_json::Value,
    /// Trigger metadata (binding data) by name; `sys` is added by the executor.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The attempt, when the function has a retry policy.
    pub retry: Option<RetryContext>,
    /// Set by the executor to the token of the process the call went to (see [`HttpCall::dispatched`]).
    pub dispatched: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Which attempt of an invocation this is, under a retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryContext {
    /// 0 for the first attempt.
    pub retry_count: u32,
    /// -1 when unbounded.
    pub max_retry_count: i64,
    /// The error of the previous attempt.
    pub exception: Option<String>,
}

/// What a non-HTTP invocation produced.
#[derive(Debug, Default)]
pub struct TriggerOutcome {
    /// Output binding values by name (`$return` for the return value).
    pub outputs: serde_json::Map<String, serde_json::Value>,
}

/// Why an invocation did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("request body too large")]
    TooLarge,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// Work the connection's own task must drive (e.g. an upstream connection kept beside the
/// client connection, so that forwarding never hops to another task).
pub type Driven = BoxFuture<'static, ()>;

/// Per-client-connection state an executor may keep (its upstream connection).
pub struct ConnectionContext {
    driver: Driver,
    /// Executor-specific slot, reused across the requests of one client connection.
    pub slot: tokio::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

/// Where driven work goes.
enum Driver {
    /// Into an inbox the client connection's task empties each time it has polled the
    /// connection: `drive` is only called from a request's handling, which that very poll
    /// runs, so no wake-up is needed and nothing is registered per poll.
    Inline(Inbox),
    /// To a task of its own (calls that come from no client connection).
    Channel(tokio::sync::mpsc::UnboundedSender<Driven>),
}

/// Work handed to a client connection's task.
#[derive(Default)]
pub(crate) struct Inbox {
    waiting: parking_lot::Mutex<Vec<Driven>>,
    /// Something is waiting (read without the lock on every poll).
    any: std::sync::atomic::AtomicBool,
    /// The connection's task has ended: nothing would drive new work.
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for ConnectionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionContext")
    }
}

impl ConnectionContext {
    /// The context of a client connection whose task calls `take_driven` after each poll of
    /// the connection, and `close` when it ends.
    pub(crate) fn inline() -> ConnectionContext {
        ConnectionContext {
            driver: Driver::Inline(Inbox::default()),
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs `fut` on the connection's task until the client connection ends; false when the
    /// connection has ended already.
    pub fn drive(&self, fut: Driven) -> bool {
        use std::sync::atomic::Ordering;
        match &self.driver {
            Driver::Channel(tx) => tx.send(fut).is_ok(),
            Driver::Inline(inbox) => {
                let mut waiting = inbox.waiting.lock();
                if inbox.closed.load(Ordering::Acquire) {
                    return false;
                }
                waiting.push(fut);
                inbox.any.store(true, Ordering::Release);
                true
            }
        }
    }

    /// Work handed over since the last call (for the connection's own task).
    pub(crate) fn take_driven(&self) -> Vec<Driven> {
        use std::sync::atomic::Ordering;
        match &self.driver {
            Driver::Inline(inbox) if inbox.any.load(Ordering::Acquire) => {
                let mut waiting = inbox.waiting.lock();
                inbox.any.store(false, Ordering::Release);
                std::mem::take(&mut *waiting)
            }
            _ => Vec::new(),
        }
    }

    /// The connection's task has ended: later `drive` calls fail, and what was handed over
    /// but not taken is dropped.
    pub(crate) fn close(&self) {
        use std::sync::atomic::Ordering;
        if let Driver::Inline(inbox) = &self.driver {
            let left = {
                let mut waiting = inbox.waiting.lock();
                inbox.closed.store(true, Ordering::Release);
                std::mem::take(&mut *waiting)
            };
            drop(left);
        }
    }
}

/// A connection context for calls that come from no client connection (triggers): the
/// work it is asked to drive runs on a task of its own until the context is dropped.
pub(crate) fn detached_context() -> ConnectionContext {
    use futures_util::StreamExt as _;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Driven>();
    tokio::spawn(async move {
        let mut running = futures_util::stream::FuturesUnordered::new();
        loop {
            tokio::select! {
                f = rx.recv() => match f {
                    Some(f) => running.push(f),
                    None => break,
                },
                Some(()) = running.next(), if !running.is_empty() => {}
            }
        }
        while running.next().await.is_some() {}
    });
    ConnectionContext {
        driver: Driver::Channel(tx),
        slot: tokio::sync::Mutex::new(None),
    }
}

/// Whether the executor can run functions now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorStatus {
    Starting,
    Ready,
    /// Not available, and why (e.g. the process exited and is being restarted).
    Down(String),
    Stopped,
}

/// Runs function code.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Whether functions can run now.
    fn status(&self) -> ExecutorStatus;

    /// Handles an HTTP-triggered invocation and produces the response.
    fn call_http<'a>(
        &'a self,
        call: HttpCall,
        conn: &'a ConnectionContext,
    ) -> BoxFuture<'a, Result<HttpResponse, InvokeError>>;

    /// Runs a non-HTTP invocation.
    fn call(&self, call: TriggerCall) -> BoxFuture<'_, Result<TriggerOutcome, InvokeError>>;

    /// An invocation of `function` ran past its timeout: recover (e.g. restart the process
    /// the request was dispatched to; `dispatched` is the token of [`HttpCall::dispatched`],
    /// 0 when it never reached the code).
    fn timed_out(&self, function: &Function, invocation_id: Uuid, dispatched: u64);

    /// Starts the function code (processes, connections).
    fn start(self: Arc<Self>) -> BoxFuture<'static, ()>;

    /// Stops the function code; in-flight work is abandoned.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Runs `work`, an invocation of `function`, within `functionTimeout` (`limit`, and the
/// deadline it gives): past it the invocation fails, and the executor recovers the process
/// `dispatched` names.
pub(crate) async fn within_timeout<T>(
    executor: &dyn Executor,
    function: &Function,
    invocation_id: Uuid,
    dispatched: &std::sync::atomic::AtomicU64,
    limit: Option<(std::time::Duration, tokio::time::Instant)>,
    work: impl Future<Output = Result<T, InvokeError>>,
) -> Result<T, InvokeError> {
    let Some((limit, deadline)) = limit else {
        return work.await;
    };
    match tokio::time::timeout_at(deadline, work).await {
        Ok(r) => r,
        Err(_) => {
            crate::logging::timed_out(function, invocation_id, limit);
            executor.timed_out(
                function,
                invocation_id,
                dispatched.load(std::sync::atomic::Ordering::Acquire),
            );
            Err(InvokeError::Failed(format!(
                "Timeout value of {} was exceeded by function: {}",
                crate::logging::timespan(limit),
                function.short_name
            )))
        }
    }
}

/// The first `exe` in the directories of a `PATH` value.
pub(crate) fn find_on_path(exe: &str, path_var: Option<&str>) -> Option<std::path::PathBuf> {
    path_var?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| std::path::Path::new(d).join(exe))
        .find(|p| p.is_file())
}

/// Whether a header is hop-by-hop, which a proxy never passes on.
fn is_hop_by_hop(name: &http::header::HeaderName) -> bool {
    name == http::header::CONNECTION
        || name == http::header::TE
        || name == http::header::TRAILER
        || name == http::header::TRANSFER_ENCODING
        || name == http::header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Removes hop-by-hop headers (one pass when there are none, the usual case).
pub(crate) fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let found: Vec<http::header::HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for name in found {
        headers.remove(name);
    }
}
