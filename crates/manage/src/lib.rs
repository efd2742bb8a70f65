//! The management role: the REST API over managed apps (their scale, settings and versions),
//! served with an admin bearer token; the scheduler; the front door to the apps' replicas.

#![forbid(unsafe_code)]

pub mod api;
pub mod app_files;
mod code;
pub mod deploy;
pub mod front;
pub mod functions;
pub mod keys;
pub mod leader;
pub mod metrics;
pub mod monitor;
pub mod package;
pub mod portal;
pub mod publishing;
pub mod queues;
pub mod scheduler;
pub mod scm;
pub mod state;
pub mod tls;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;

pub use api::{Api, ApiError, ApiRequest};

/// Who may call the API: holders of the admin token (kept as its SHA-256 only).
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

pub(crate) fn digest(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        AdminToken(digest(token))
    }

    /// Whether `Authorization: Bearer <token>` names this token (compared in constant time,
    /// over hashes).
    pub fn admits(&self, authorization: Option<&http::HeaderValue>) -> bool {
        let Some(presented) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let d = digest(presented.trim());
        d.iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the management API's listener serves.
struct Served {
    api: Api,
    token: AdminToken,
    metrics: Arc<metrics::Metrics>,
    /// A worker without a heartbeat for this long is lost (for the gauges).
    worker_timeout_ms: i64,
    /// Managed apps' queues, under `/queues/`.
    queues: stratus_storage::queue_api::QueueService,
}

/// Largest queue request body (a message is at most 64 KiB of text, escaped in XML).
const QUEUE_BODY_LIMIT: usize = 1 << 20;

async fn answer_queue(
    queues: &stratus_storage::queue_api::QueueService,
    parts: http::request::Parts,
    body: Incoming,
) -> hyper::Response<Full<Bytes>> {
    let body = match Limited::new(body, QUEUE_BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let mut r = hyper::Response::new(Full::new(Bytes::new()));
            *r.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
            return r;
        }
    };
    let path = parts.uri.path().strip_prefix("/queues").unwrap_or("/");
    let request = stratus_storage::queue_api::QueueRequest {
        method: &parts.method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        now_ms: now_ms(),
    };
    queues.handle(&request).await.map(Full::new)
}

/// `/metrics`: this process's counters and the store's gauges.
async fn answer_metrics(served: &Served) -> hyper::Response<Full<Bytes>> {
    let now = now_ms();
    let mut g = metrics::Gauges::default();
    let gathered = async {
        for w in served.api.workers.list().await? {
            if now - w.heartbeat_ms > served.worker_timeout_ms {
                g.workers_lost += 1;
            } else if w.draining {
                g.workers_draining += 1;
            } else {
                g.workers_alive += 1;
            }
        }
        g.apps = served.api.apps.list().await?.len() as u64;
        let mut placed = std::collections::BTreeMap::new();
        for r in front::table::replicas(&served.api.workers).await? {
            *placed.entry((r.app, r.worker_id)).or_insert(false) |= r.ready;
        }
        g.placements = placed.len() as u64;
        g.placements_ready = placed.values().filter(|r| **r).count() as u64;
        Ok::<_, stratus_store::Error>(())
    }
    .await;
    if let Err(e) = gathered {
        return ApiError::from(e).response().map(Full::new);
    }
    let mut r = hyper::Response::new(Full::new(Bytes::from(served.metrics.render(&g))));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn answer(
    served: Arc<Served>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<monitor::StreamBody>, Infallible> {
    use http_body_util::BodyExt as _;
    let streamed = log_stream_route(&req);
    if let Some((app, function)) = streamed {
        return Ok(answer_stream(&served, req, app, function).await);
    }
    let Ok(whole) = answer_whole(served, req).await;
    Ok(whole.map(|b| b.map_err(|never| match never {}).boxed_unsync()))
}

/// The app and function filter of a live log stream request (`GET
/// /api/apps/{app}/logs/stream?function=`).
fn log_stream_route(req: &hyper::Request<Incoming>) -> Option<(String, Option<String>)> {
    if req.method() != http::Method::GET {
        return None;
    }
    let segs: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let ["api", "apps", app, "logs", "stream"] = segs.as_slice() else {
        return None;
    };
    let function = api::query_value(req.uri().query(), "function")
        .map(stratus_model::text::url_decode)
        .filter(|f| !f.is_empty());
    Some((stratus_model::text::url_decode(app), function))
}

/// A live log stream, for the admin token or a portal session.
async fn answer_stream(
    served: &Served,
    req: hyper::Request<Incoming>,
    app: String,
    function: Option<String>,
) -> hyper::Response<monitor::StreamBody> {
    use http_body_util::BodyExt as _;
    let refuse = |e: ApiError| {
        e.response()
            .map(|b| Full::new(b).map_err(|never| match never {}).boxed_unsync())
    };
    let headers = req.headers();
    let authorization = headers.get(http::header::AUTHORIZATION);
    let by_token = served.token.admits(authorization);
    let by_session = !by_token
        && authorization.is_none()
        && matches!(
            portal::session(&served.api.portal, headers, now_ms()).await,
            Ok(Some(_))
        );
    if !by_token && !by_session {
        return refuse(ApiError::Unauthorized);
    }
    // A session is checked again while the stream is open (it may end or be signed out).
    let allowed: monitor::StillAllowed = if by_session {
        let portal = served.api.portal.clone();
        let cookie = headers.get(http::header::COOKIE).cloned();
        std::sync::Arc::new(move || {
            let (portal, cookie) = (portal.clone(), cookie.clone());
            Box::pin(async move {
                let mut h = http::HeaderMap::new();
                if let Some(c) = cookie {
                    h.insert(http::header::COOKIE, c);
                }
                matches!(portal::session(&portal, &h, now_ms()).await, Ok(Some(_)))
            })
        })
    } else {
        std::sync::Arc::new(|| Box::pin(std::future::ready(true)))
    };
    let Ok(name) = stratus_model::app_name::normalize(&app) else {
        return refuse(ApiError::NotFound(format!("no app named {app}")));
    };
    let app = match served.api.apps.get(&name).await {
        Ok(Some(a)) => a.name,
        Ok(None) => return refuse(ApiError::NotFound(format!("no app named {app}"))),
        Err(e) => return refuse(e.into()),
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    monitor::log_stream(served.api.clone(), app, function, after, allowed)
}

async fn answer_whole(
    served: Arc<Served>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    if parts.uri.path().starts_with("/queues/") {
        return Ok(answer_queue(&served.queues, parts, body).await);
    }
    if let Some(r) = portal::assets(&parts.method, parts.uri.path()) {
        return Ok(r.map(Full::new));
    }
    if parts.uri.path() == "/metrics" && parts.method == http::Method::GET {
        return Ok(answer_metrics(&served).await);
    }
    let (api, token) = (&served.api, &served.token);
    let now = now_ms();
    if portal::is_sign_in_route(parts.uri.path()) {
        let answered = match Limited::new(body, 64 << 10).collect().await {
            Err(_) => Err(ApiError::TooLarge(64 << 10)),
            Ok(body) => {
                portal::sign_in(
                    &api.portal,
                    &parts.method,
                    parts.uri.path(),
                    &parts.headers,
                    &body.to_bytes(),
                    now,
                )
                .await
            }
        };
        return Ok(answered.unwrap_or_else(|e| e.response()).map(Full::new));
    }
    let authorization = parts.headers.get(http::header::AUTHORIZATION);
    let mut admin = token.admits(authorization);
    // A portal session opens the API as the admin token does; its changes carry its CSRF
    // token.
    if !admin && authorization.is_none() {
        let checked = match portal::session(&api.portal, &parts.headers, now).await {
            Ok(Some(s)) => portal::check_change(&s, &parts.method, &parts.headers).map(|()| true),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        match checked {
            Ok(signed_in) => admin = signed_in,
            Err(e) => return Ok(e.response().map(Full::new)),
        }
    }
    let bearer = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let public = api::is_public_route(parts.uri.path());
    let result = if !public && !admin {
        Err(ApiError::Unauthorized)
    } else {
        // A host's report is small; packages are not.
        let limit = if parts.uri.path().ends_with("/telemetry") {
            monitor::REPORT_LIMIT
        } else {
            api::PACKAGE_LIMIT
        };
        match Limited::new(body, limit).collect().await {
            Err(_) => Err(ApiError::TooLarge(limit)),
            Ok(body) => {
                let body = body.to_bytes();
                let request = ApiRequest {
                    admin,
                    bearer,
                    method: &parts.method,
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    body: &body,
                    now_ms: now,
                };
                api.handle(&request).await
            }
        }
    };
    let response = result.unwrap_or_else(|e| e.response());
    Ok(response.map(Full::new))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    token: AdminToken,
    metrics: Arc<metrics::Metrics>,
    worker_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let queues = queues::service(api.queues.clone(), api.workers.clone());
    let shared = Arc::new(Served {
        api,
        token,
        metrics,
        worker_timeout_ms: i64::try_from(worker_timeout.as_millis()).unwrap_or(i64::MAX),
        queues,
    });
    stratus_storage::serve::serve_http(listener, "management API", shutdown, move |req| {
        answer(shared.clone(), req)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = AdminToken::new("s3cret");
        assert!(t.admits(Some(&http::HeaderValue::from_static("Bearer s3cret"))));
        assert!(!t.admits(Some(&http::HeaderValue::from_static("Bearer s3cre"))));
        assert!(!t.admits(Some(&http::HeaderValue::from_static("s3cret"))));
        assert!(!t.admits(None));
    }
}
