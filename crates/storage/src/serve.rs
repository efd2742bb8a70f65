//! Serving HTTP on a listener of its own: the connection loop the Queue service (on
//! development storage's `127.0.0.1:10001` by default), the management API and the
//! publishing endpoint (over TLS) share.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::queue_api::{QueueRequest, QueueService};

/// Largest request body read (a message is at most 64 KiB of text, escaped in XML).
const BODY_LIMIT: usize = 1 << 20;

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn answer(
    service: Arc<QueueService>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let mut r = hyper::Response::new(Full::new(Bytes::from(crate::xml::error(
                "RequestBodyTooLarge",
                "The request body is too large.",
            ))));
            *r.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
            return Ok(r);
        }
    };
    let request = QueueRequest {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        now_ms: now_ms(),
    };
    let resp = service.handle(&request).await;
    Ok(resp.map(Full::new))
}

/// Serves `service` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: QueueService,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let service = Arc::new(service);
    serve_http(listener, "queue service", shutdown, move |req| {
        answer(service.clone(), req)
    })
    .await;
}

/// Accepts HTTP/1.1 connections on `listener` until `shutdown` completes, answering each
/// request with `answer` (its body streamed as it comes); `what` names the service in logs.
pub async fn serve_http<F, Fut, B>(
    listener: tokio::net::TcpListener,
    what: &'static str,
    shutdown: impl std::future::Future<Output = ()>,
    answer: F,
) where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<hyper::Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let plain = |stream: tokio::net::TcpStream| std::future::ready(Some(stream));
    serve_connections(listener, what, shutdown, None, plain, answer).await;
}

/// The connection loop itself: each accepted connection is first turned by `open` into what
/// HTTP runs over (itself, or a TLS session after its handshake; None drops it), then served
/// on a task of its own; with `head_timeout`, a client that does not send a request's head in
/// that time is let go.
pub async fn serve_connections<F, Fut, B, O, OFut, IO>(
    listener: tokio::net::TcpListener,
    what: &'static str,
    shutdown: impl std::future::Future<Output = ()>,
    head_timeout: Option<std::time::Duration>,
    open: O,
    answer: F,
) where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<hyper::Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    O: Fn(tokio::net::TcpStream) -> OFut + Clone + Send + 'static,
    OFut: std::future::Future<Output = Option<IO>> + Send + 'static,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("{what}: accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let (answer, open) = (answer.clone(), open.clone());
        tokio::spawn(async move {
            let Some(io) = open(stream).await else {
                return;
            };
            let svc = hyper::service::service_fn(answer);
            let mut http = hyper::server::conn::http1::Builder::new();
            if let Some(t) = head_timeout {
                http.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(t);
            }
            if let Err(e) = http.serve_connection(TokioIo::new(io), svc).await {
                tracing::debug!("{what} connection: {e}");
            }
        });
    }
}
