//! The management role: the REST API over managed apps (their scale, settings and versions),
//! served with an admin bearer token; the scheduler; the front door to the apps' replicas.

#![forbid(unsafe_code)]

pub mod api;
pub mod front;
pub mod keys;
pub mod leader;
pub mod scheduler;
pub mod state;

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

fn digest(text: &str) -> [u8; 32] {
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

async fn answer(
    api: Arc<(Api, AdminToken)>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let (api, token) = &*api;
    let authorization = parts.headers.get(http::header::AUTHORIZATION);
    let admin = token.admits(authorization);
    let bearer = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let public = parts.uri.path() == "/api/openapi.json" || api::is_worker_route(parts.uri.path());
    let result = if !public && !admin {
        Err(ApiError::Unauthorized)
    } else {
        match Limited::new(body, api::PACKAGE_LIMIT).collect().await {
            Err(_) => Err(ApiError::TooLarge(api::PACKAGE_LIMIT)),
            Ok(body) => {
                let body = body.to_bytes();
                let request = ApiRequest {
                    admin,
                    bearer,
                    method: &parts.method,
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    body: &body,
                    now_ms: now_ms(),
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
    shutdown: impl std::future::Future<Output = ()>,
) {
    let shared = Arc::new((api, token));
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
