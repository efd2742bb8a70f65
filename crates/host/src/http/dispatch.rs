//! Where each request goes: CORS preflight, the admin API, function routes, the homepage.

use http::header::{self, HeaderValue};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use stratus_model::route::path;

use super::response::{BeforePipeline, HostError, HttpResponse, empty, with_body};
use crate::Host;
use crate::executor::ConnectionContext;

const HOMEPAGE: &str = include_str!("homepage.html");

/// Whether `path` is `/admin` or below it.
fn is_admin(path: &str) -> bool {
    let lower = path.get(..6).map(str::to_ascii_lowercase);
    lower.as_deref() == Some("/admin") && (path.len() == 6 || path.as_bytes()[6] == b'/')
}

impl Host {
    /// Answers one request; never fails (errors become responses).
    pub async fn handle(&self, req: Request<Incoming>, conn: &ConnectionContext) -> HttpResponse {
        if let Some(pre) = self.cors.preflight(req.method(), req.headers()) {
            return pre;
        }
        let origin = if self.cors.enabled() {
            req.headers().get(header::ORIGIN).cloned()
        } else {
            None
        };
        let mut resp = match self.route(req, conn).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        if resp.extensions().get::<BeforePipeline>().is_none() {
            for (k, v) in &self.custom_headers {
                if !resp.headers().contains_key(k) {
                    resp.headers_mut().insert(k.clone(), v.clone());
                }
            }
        }
        self.cors.apply(origin.as_ref(), &mut resp);
        resp
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        conn: &ConnectionContext,
    ) -> Result<HttpResponse, HostError> {
        let raw_path = req.uri().path();
        if is_admin(raw_path) {
            return crate::admin::handle(self, req).await;
        }
        // Everything but the admin API counts against the request limits, as in the host.
        let _ticket = match &self.throttle {
            None => None,
            Some(t) => Some(t.admit().await.ok_or(HostError::Throttled)?),
        };
        let decoded =
            path::decode(raw_path).map_err(|_| HostError::BadRequest("invalid path".into()))?;
        let found = self
            .app
            .routes
            .find(req.method().as_str(), &decoded)
            .map(|(e, values)| (e.value.clone(), values));
        let Some((function, values)) = found else {
            if decoded == "/" {
                return Ok(self.homepage());
            }
            return Err(HostError::NotFound);
        };
        self.call_function(req, function, values, conn).await
    }

    fn homepage(&self) -> HttpResponse {
        if self.homepage_disabled {
            return empty(StatusCode::NO_CONTENT);
        }
        let mut r = with_body(StatusCode::OK, "text/html", HOMEPAGE);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths() {
        assert!(is_admin("/admin"));
        assert!(is_admin("/admin/host/status"));
        assert!(is_admin("/ADMIN/host/status"));
        assert!(!is_admin("/administrators"));
        assert!(!is_admin("/api/admin"));
    }
}
