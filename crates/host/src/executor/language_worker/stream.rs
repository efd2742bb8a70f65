//! HTTP streaming for workers that serve HTTP themselves (`HttpUri`): the client's request is
//! proxied to the worker's own server, streamed both ways, tagged with the invocation id.

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use uuid::Uuid;

use super::super::{ConnectionContext, InvokeError, strip_hop_by_hop};
use crate::http::body::{Body, LimitedBody};
use crate::http::response::HttpResponse;

/// Where and how to send one request.
#[derive(Debug)]
pub struct Target<'a> {
    /// The worker's `HttpUri` (e.g. `http://127.0.0.1:5000/`).
    pub base: &'a str,
    pub scheme: &'static str,
    pub invocation_id: Uuid,
    pub body_limit: u64,
    pub deadline: Option<tokio::time::Instant>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> InvokeError {
    InvokeError::Failed(format!("{what}: {e}"))
}

/// Sends the client's request to the worker's HTTP server and returns its response (the
/// body streams on after the head).
pub async fn forward(
    target: Target<'_>,
    mut parts: http::request::Parts,
    body: Incoming,
    conn: &ConnectionContext,
) -> Result<HttpResponse, InvokeError> {
    let base: Uri = target
        .base
        .parse()
        .map_err(|e| failed("the worker's HttpUri is not a URI", e))?;
    let authority = base
        .authority()
        .ok_or_else(|| InvokeError::Failed("the worker's HttpUri names no host".into()))?
        .clone();
    let prefix = base.path().trim_end_matches('/');
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("{prefix}{path_and_query}")
        .parse()
        .map_err(|e| failed("cannot forward the path", e))?;

    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| failed("cannot connect to the worker's HTTP server", e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
        .map_err(|e| failed("cannot talk HTTP to the worker", e))?;
    if !conn.drive(Box::pin(async move {
        let _ = connection.await;
    })) {
        return Err(InvokeError::Failed(
            "the client connection is closing".into(),
        ));
    }

    let original_host = parts.headers.get(header::HOST).cloned();
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
        headers.insert(header::HOST, v);
    }
    if let Some(h) = original_host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), h);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(target.scheme),
    );
    if let Ok(v) = HeaderValue::from_str(&target.invocation_id.to_string()) {
        headers.insert(HeaderName::from_static("x-ms-invocation-id"), v);
    }
    let (limited, exceeded) = LimitedBody::new(body, target.body_limit);
    let mut req = Request::new(Body::Limited(limited));
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.headers_mut() = parts.headers;
    let resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(_) if exceeded.load(std::sync::atomic::Ordering::Acquire) => {
            return Err(InvokeError::TooLarge);
        }
        Err(e) => return Err(failed("the worker's HTTP server did not answer", e)),
    };
    let (mut head, body) = resp.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let body = match target.deadline {
        Some(at) => Body::timed(body, at, target.invocation_id),
        None => Body::Stream(body),
    };
    Ok(http::Response::from_parts(head, body))
}
