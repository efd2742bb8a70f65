//! Forwarding one request to a replica of its app: the replica with the fewest outstanding
//! requests, over an upstream connection kept by the client's connection (and driven on its
//! task); a request that never reached a replica, or an idempotent one whose body is kept,
//! is tried again on another replica.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::{BodyExt as _, Either, Full};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::table::{Replica, Table};
use super::{Driven, FrontDoor, FrontError};

/// What goes to a replica: the client's body streamed, or a kept copy.
pub type UpstreamBody = Either<Incoming, Full<Bytes>>;
/// What goes back to the client.
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

/// Largest body kept so an idempotent request can be tried on another replica.
const RETRY_BODY_LIMIT: u64 = 64 << 10;
/// Most replicas one request is tried on.
const MAX_ATTEMPTS: usize = 3;
/// How long a connection to a replica may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most upstream connections a client connection keeps.
const MAX_UPSTREAMS: usize = 8;

/// A client connection's state: its upstream connections, by replica.
pub struct Conn {
    pub(super) driver: tokio::sync::mpsc::UnboundedSender<Driven>,
    pub(super) peer: SocketAddr,
    upstreams: parking_lot::Mutex<Vec<(u64, SendRequest<UpstreamBody>)>>,
}

impl Conn {
    pub(super) fn new(
        driver: tokio::sync::mpsc::UnboundedSender<Driven>,
        peer: SocketAddr,
    ) -> Conn {
        Conn {
            driver,
            peer,
            upstreams: parking_lot::Mutex::new(Vec::new()),
        }
    }

    fn take(&self, replica: u64) -> Option<SendRequest<UpstreamBody>> {
        let mut ups = self.upstreams.lock();
        let i = ups.iter().position(|(id, _)| *id == replica)?;
        let (_, s) = ups.swap_remove(i);
        (!s.is_closed()).then_some(s)
    }

    fn keep(&self, replica: u64, sender: SendRequest<UpstreamBody>) {
        let mut ups = self.upstreams.lock();
        if ups.len() >= MAX_UPSTREAMS {
            ups.remove(0);
        }
        ups.push((replica, sender));
    }

    /// A new connection to `replica`, driven on this connection's task.
    async fn connect(&self, replica: &Replica) -> Result<SendRequest<UpstreamBody>, String> {
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(&replica.authority),
        )
        .await
        .map_err(|_| format!("{} did not accept a connection in time", replica.authority))?
        .map_err(|e| format!("{}: {e}", replica.authority))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{}: {e}", replica.authority))?;
        let drive: Driven = Box::pin(async move {
            let _ = connection.await;
        });
        if self.driver.send(drive).is_err() {
            return Err("the client connection is closing".into());
        }
        Ok(sender)
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
        || name == header::PROXY_AUTHENTICATE
        || name == header::PROXY_AUTHORIZATION
}

/// Removes the hop-by-hop headers, and those `Connection` names as such.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.keys().any(is_hop_by_hop) {
        let mut found: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        found.extend(headers.keys().filter(|n| is_hop_by_hop(n)).cloned());
        for name in found {
            headers.remove(name);
        }
    }
}

fn now_ms() -> i64 {
    crate::now_ms()
}

/// The request's body, streamed once or kept for another attempt.
enum Payload {
    Stream(Option<Incoming>),
    Kept(Bytes),
}

impl Payload {
    fn next(&mut self) -> Option<UpstreamBody> {
        match self {
            Payload::Stream(b) => b.take().map(Either::Left),
            Payload::Kept(b) => Some(Either::Right(Full::new(b.clone()))),
        }
    }

    /// Gives back a body that was not sent.
    fn restore(&mut self, body: UpstreamBody) {
        if let (Payload::Stream(slot), Either::Left(b)) = (self, body) {
            *slot = Some(b);
        }
    }
}

impl FrontDoor {
    /// Forwards `req` (already resolved to `app` and the path the app sees).
    pub(super) async fn forward(
        &self,
        conn: &Conn,
        table: &Table,
        app: &str,
        path_and_query: &str,
        req: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, FrontError> {
        let Some(route) = table.apps.get(app) else {
            return Err(FrontError::NoApp(app.to_string()));
        };
        if route.replicas.is_empty() {
            return Err(FrontError::NoReplica(app.to_string()));
        }
        let (parts, body) = req.into_parts();
        let uri: http::Uri = path_and_query.parse().map_err(|_| {
            FrontError::BadRequest(format!("not a valid request target: {path_and_query}"))
        })?;
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        let original_host = headers.get(header::HOST).cloned();
        if let Some(h) = &original_host {
            headers.insert(HeaderName::from_static("x-forwarded-host"), h.clone());
        }
        let peer = conn.peer.ip().to_string();
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {peer}"),
            None => peer,
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
        let idempotent = matches!(
            parts.method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::PUT
                | Method::DELETE
                | Method::TRACE
        );
        let mut payload = match body.size_hint().exact() {
            Some(n) if idempotent && n <= RETRY_BODY_LIMIT => Payload::Kept(
                body.collect()
                    .await
                    .map_err(|e| {
                        FrontError::BadRequest(format!("the request body broke off: {e}"))
                    })?
                    .to_bytes(),
            ),
            _ => Payload::Stream(Some(body)),
        };
        let mut tried: Vec<u64> = Vec::with_capacity(MAX_ATTEMPTS);
        let mut last = String::new();
        while tried.len() < MAX_ATTEMPTS {
            let Some(replica) = table.pick(route, &tried, now_ms()) else {
                break;
            };
            if !tried.is_empty() {
                crate::metrics::inc(&self.metrics.front_retries);
            }
            tried.push(replica.id);
            // A kept connection first; a new one if it was closed meanwhile.
            let mut fresh = false;
            let mut sender = match conn.take(replica.id) {
                Some(s) => s,
                None => {
                    fresh = true;
                    match conn.connect(&replica).await {
                        Ok(s) => s,
                        Err(e) => {
                            // Nothing was sent: any request may go elsewhere.
                            tracing::warn!(app, replica = %replica.authority, "{e}");
                            replica.set_aside(now_ms());
                            last = e;
                            continue;
                        }
                    }
                }
            };
            loop {
                let Some(body) = payload.next() else {
                    return Err(FrontError::Broken(last));
                };
                let mut request = Request::new(body);
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = headers.clone();
                let in_flight = replica.begin();
                let sent = sender.try_send_request(request).await;
                drop(in_flight);
                match sent {
                    Ok(mut response) => {
                        conn.keep(replica.id, sender);
                        strip_hop_by_hop(response.headers_mut());
                        return Ok(response.map(Either::Left));
                    }
                    Err(mut e) => {
                        let unsent = e.take_message();
                        last = format!("{}: {}", replica.authority, e.error());
                        if let Some(r) = unsent {
                            payload.restore(r.into_body());
                            // A kept connection that closed as it was reused: once more on a
                            // new one to the same replica.
                            if !fresh {
                                fresh = true;
                                match conn.connect(&replica).await {
                                    Ok(s) => {
                                        sender = s;
                                        continue;
                                    }
                                    Err(e) => last = e,
                                }
                            }
                        } else if matches!(payload, Payload::Stream(_)) {
                            // Sent, and the body cannot be sent again.
                            tracing::warn!(app, replica = %replica.authority, "{last}");
                            replica.set_aside(now_ms());
                            return Err(FrontError::Broken(last));
                        }
                        tracing::warn!(app, replica = %replica.authority, "{last}; trying another replica");
                        replica.set_aside(now_ms());
                        break;
                    }
                }
            }
        }
        Err(FrontError::Unreachable(app.to_string(), last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
    }
}
