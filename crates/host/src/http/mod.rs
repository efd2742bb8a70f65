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

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

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
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(self.clone(), stream, stop_rx.clone()));
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
        let _ = stop_tx.send(true);
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

async fn serve_connection(
    host: Arc<Host>,
    stream: tokio::net::TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Driven>();
    let ctx = Arc::new(ConnectionContext::new(tx));
    let service = service_fn(move |req| {
        let host = host.clone();
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(host.handle(req, &ctx).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Usually one upstream connection per client connection: poll it directly; more (after a
    // handler restart) go to a set.
    let mut current: Option<Driven> = None;
    let mut others: FuturesUnordered<Driven> = FuturesUnordered::new();
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    let stop_signal = stop.changed();
    tokio::pin!(stop_signal);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result
                    && !e.is_incomplete_message()
                {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
                break;
            }
            Some(fut) = rx.recv() => {
                if let Some(previous) = current.replace(fut) {
                    others.push(previous);
                }
            }
            () = async { current.as_mut().expect("guarded by the branch condition").await }, if current.is_some() => {
                current = None;
            }
            Some(()) = others.next(), if !others.is_empty() => {}
            _ = &mut stop_signal, if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
