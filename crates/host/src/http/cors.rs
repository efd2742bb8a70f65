//! CORS as `func start --cors` configures it: listed origins (or `*`), any header, any method.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use super::body::Body;
use super::response::{HttpResponse, empty};

/// Allowed origins and whether credentials are allowed.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    pub origins: Vec<String>,
    pub credentials: bool,
}

impl Cors {
    pub fn enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| {
            o == "*"
                || o.trim_end_matches('/')
                    .eq_ignore_ascii_case(origin.trim_end_matches('/'))
        })
    }

    fn wildcard(&self) -> bool {
        self.origins.iter().any(|o| o == "*") && !self.credentials
    }

    /// Answers a preflight request (OPTIONS with Origin and Access-Control-Request-Method).
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<HttpResponse> {
        if !self.enabled() || method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        let requested = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
        let mut r = empty(StatusCode::NO_CONTENT);
        if !self.allows(origin) {
            return Some(r);
        }
        self.decorate(origin, r.headers_mut());
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_METHODS, requested.clone());
        if let Some(h) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            r.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
        }
        Some(r)
    }

    /// Adds the CORS headers of an actual request to its response.
    pub fn apply(&self, origin: Option<&HeaderValue>, resp: &mut http::Response<Body>) {
        let Some(origin) = origin.and_then(|o| o.to_str().ok()) else {
            return;
        };
        if self.enabled() && self.allows(origin) {
            self.decorate(origin, resp.headers_mut());
        }
    }

    fn decorate(&self, origin: &str, h: &mut HeaderMap) {
        if self.wildcard() {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        } else if let Ok(v) = HeaderValue::from_str(origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}
