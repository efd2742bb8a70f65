//! The HTTP front of a host: accepting connections, dispatching requests, shutting down
//! gracefully.

pub mod body;
pub mod cors;
mod dispatch;
mod invoke;
pub(crate) use invoke::presented_key;

/// Names the invocation a response came from: always on an admin invoke's answer, and on an
/// HTTP function's answer when the request asks with `x-stratus-trace-invocation` (a
/// management role's test request), so other clients see the Azure host's headers only.
pub const INVOCATION_ID_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-stratus-invocation-id");

/// The request header that asks for `INVOCATION_ID_HEADER`.
pub const TRACE_INVOCATION_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-stratus-trace-invocation");
pub mod response;
pub mod throttle;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future as _;
use std::pin::Pin;
use std::task::Poll;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::Host;
use crate::executor::{ConnectionContext, Driven};

impl Host {
    /// Serves `listener` until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish (at most `drain`), and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
        drain: Duration,
    ) {
        let stops = Arc::new(Stops::default());
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let stop = stops.register();
                        connections.spawn(serve_connection(self.clone(), stream, stop));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        stops.stop_all();
        let in_flight = connections.len();
        if in_flight > 0 {
            tracing::info!(
                connections = in_flight,
                "waiting for in-flight requests to finish"
            );
        }
        let drained = tokio::time::timeout(drain, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "in-flight requests did not finish in time; closing them"
            );
            connections.shutdown().await;
        }
    }
}

/// The stop signals of the open connections: one each, so that a connection's task waits
/// on its own signal (a shared one would be a shared lock on every poll).
#[derive(Default)]
struct Stops {
    inner: parking_lot::Mutex<StopsInner>,
}

#[derive(Default)]
struct StopsInner {
    next: u64,
    senders: std::collections::HashMap<u64, oneshot::Sender<()>>,
    stopping: bool,
}

/// One connection's stop signal; it leaves the registry when dropped.
struct Stop {
    id: u64,
    rx: oneshot::Receiver<()>,
    stops: Arc<Stops>,
}

impl Stops {
    fn register(self: &Arc<Self>) -> Stop {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock();
        let id = inner.next;
        inner.next += 1;
        if inner.stopping {
            let _ = tx.send(());
        } else {
            inner.senders.insert(id, tx);
        }
        Stop {
            id,
            rx,
            stops: self.clone(),
        }
    }

    fn stop_all(&self) {
        let mut inner = self.inner.lock();
        inner.stopping = true;
        for (_, tx) in inner.senders.drain() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.stops.inner.lock().senders.remove(&self.id);
    }
}

async fn serve_connection(host: Arc<Host>, stream: tokio::net::TcpStream, mut stop: Stop) {
    let _ = stream.set_nodelay(true);
    let ctx = Arc::new(ConnectionContext::inline());
    let service = {
        let ctx = ctx.clone();
        service_fn(move |req| {
            let host = host.clone();
            let ctx = ctx.clone();
            async move { Ok::<_, Infallible>(host.handle(req, &ctx).await) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Usually one upstream connection per client connection: polled directly; more (after a
    // handler restart) go to a set. All of it on this task, polled by hand: a request costs
    // no waker registration besides the sockets'.
    let mut current: Option<Driven> = None;
    let mut others: FuturesUnordered<Driven> = FuturesUnordered::new();
    let mut stopping = false;
    std::future::poll_fn(|cx| {
        if !stopping && Pin::new(&mut stop.rx).poll(cx).is_ready() {
            stopping = true;
            conn.as_mut().graceful_shutdown();
        }
        loop {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                if let Err(e) = result
                    && !e.is_incomplete_message()
                {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
                return Poll::Ready(());
            }
            let fresh = ctx.take_driven();
            if fresh.is_empty() {
                break;
            }
            for fut in fresh {
                if let Some(previous) = current.replace(fut) {
                    others.push(previous);
                }
            }
            // The new upstream connection is polled below; the request that made it may
            // progress once it has been: poll the client connection again then.
            if let Some(c) = current.as_mut()
                && c.as_mut().poll(cx).is_ready()
            {
                current = None;
            }
        }
        if let Some(c) = current.as_mut()
            && c.as_mut().poll(cx).is_ready()
        {
            current = None;
        }
        while !others.is_empty() && others.poll_next_unpin(cx).is_ready() {}
        Poll::Pending
    })
    .await;
    ctx.close();
}
