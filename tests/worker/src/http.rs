//! The worker's own HTTP server for `HttpUri` mode: the host forwards each HTTP request here
//! with `x-ms-invocation-id`; the server answers it and records the invocation as answered.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The invocations whose proxied request the server has answered.
#[derive(Default)]
pub struct Answered {
    ids: Mutex<HashSet<String>>,
    changed: Notify,
}

impl Answered {
    fn record(&self, id: String) {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        self.changed.notify_waiters();
    }

    fn take(&self, id: &str) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }

    /// Waits until the request of `invocation_id` has been answered (at once if it has);
    /// false after `limit`.
    pub async fn wait(&self, invocation_id: &str, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self.take(invocation_id) {
                    return;
                }
                changed.await;
            }
        })
        .await
        .is_ok()
    }
}

/// Starts the server on a free loopback port; returns its address.
pub async fn start(answered: Arc<Answered>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let answered = answered.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, answered.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

async fn answer(
    req: Request<Incoming>,
    answered: Arc<Answered>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let id = header(&req, "x-ms-invocation-id");
    let host = header(&req, "x-forwarded-host");
    let proto = header(&req, "x-forwarded-proto");
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let text = format!(
        "streamed {id} host={host} proto={proto} {method} {target} {}",
        String::from_utf8_lossy(&body)
    );
    if !id.is_empty() {
        answered.record(id);
    }
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}
