//! Building responses, and the one place where host errors become HTTP responses.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use super::body::Body;

pub type HttpResponse = Response<Body>;

pub const APPLICATION_JSON: &str = "application/json; charset=utf-8";
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut r = Response::new(Body::Empty);
    *r.status_mut() = status;
    r
}

/// A response with a body and a content type.
pub fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A compact JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> HttpResponse {
    with_body(
        status,
        APPLICATION_JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// A plain-text response.
pub fn text(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    with_body(status, TEXT_PLAIN, message.into())
}

/// Marks responses the host produces before the app's pipeline (429 throttling, 503 not
/// ready), which do not get `customHeaders`.
#[derive(Debug, Clone, Copy)]
pub struct BeforePipeline;

/// Everything the host answers with an error status, in one place.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No route, unknown function, or disabled function for a non-admin caller.
    #[error("not found")]
    NotFound,
    /// A function call without a sufficient key: 401, empty body.
    #[error("unauthorized")]
    Unauthorized,
    /// An admin API call without a usable key: 401 with `WWW-Authenticate: Bearer`.
    #[error("admin key required")]
    AdminUnauthorized,
    /// A recognised key of the wrong kind on an admin API: 403.
    #[error("forbidden")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body too large")]
    TooLarge,
    /// `maxOutstandingRequests` reached.
    #[error("too many requests")]
    Throttled,
    /// The function's code is not available (its process is starting or restarting).
    #[error("function host not ready: {0}")]
    Unavailable(String),
    /// The invocation failed (error, crash, timeout): 500 with an empty body, as the host does.
    #[error("invocation failed")]
    InvocationFailed,
    #[error("internal error: {0}")]
    Internal(String),
}

impl HostError {
    pub fn into_response(self) -> HttpResponse {
        match self {
            HostError::NotFound => empty(StatusCode::NOT_FOUND),
            HostError::Unauthorized => empty(StatusCode::UNAUTHORIZED),
            HostError::AdminUnauthorized => {
                let mut r = empty(StatusCode::UNAUTHORIZED);
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
                r
            }
            HostError::Forbidden => empty(StatusCode::FORBIDDEN),
            HostError::BadRequest(m) => text(StatusCode::BAD_REQUEST, m),
            HostError::TooLarge => empty(StatusCode::PAYLOAD_TOO_LARGE),
            HostError::Throttled => {
                let mut r = empty(StatusCode::TOO_MANY_REQUESTS);
                r.headers_mut()
                    .insert("x-function-scaleout", HeaderValue::from_static("1"));
                r.extensions_mut().insert(BeforePipeline);
                r
            }
            HostError::Unavailable(_) => {
                let mut r = empty(StatusCode::SERVICE_UNAVAILABLE);
                r.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                r.extensions_mut().insert(BeforePipeline);
                r
            }
            HostError::InvocationFailed => empty(StatusCode::INTERNAL_SERVER_ERROR),
            HostError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                empty(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl From<crate::keys::KeyError> for HostError {
    fn from(e: crate::keys::KeyError) -> Self {
        HostError::Internal(e.to_string())
    }
}
