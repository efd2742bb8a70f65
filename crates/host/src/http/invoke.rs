//! The pipeline of an HTTP-triggered invocation: keys, disabled check, body limit, logs,
//! `functionTimeout`, then the executor.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use http::Request;
use http::header::CONTENT_LENGTH;
use hyper::body::Incoming;
use stratus_model::AuthLevel;
use stratus_model::route::RouteValues;
use uuid::Uuid;

use super::response::{HostError, HttpResponse};
use crate::app::Function;
use crate::executor::{ConnectionContext, HttpCall, InvokeError};
use crate::keys::Principal;
use crate::{AuthMode, Host, logging};

const FUNCTIONS_KEY: http::HeaderName = http::HeaderName::from_static("x-functions-key");
const CLIENT_PRINCIPAL: http::HeaderName = http::HeaderName::from_static("x-ms-client-principal");

/// The key a request presents: the `x-functions-key` header (even empty) wins over `?code=`.
pub(crate) fn presented_key<B>(req: &Request<B>) -> Option<String> {
    if let Some(h) = req.headers().get(FUNCTIONS_KEY) {
        return Some(String::from_utf8_lossy(h.as_bytes()).into_owned());
    }
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k.eq_ignore_ascii_case("code")
            .then(|| crate::http_data::url_decode(v))
    })
}

impl Host {
    /// Resolves the caller of a function: None when no key was needed or presented.
    async fn authorize_function(
        &self,
        req: &Request<Incoming>,
        function: &Function,
    ) -> Result<Option<Principal>, HostError> {
        let required = function
            .config
            .http()
            .map_or(AuthLevel::Function, |h| h.auth_level);
        let key = presented_key(req);
        let needs_check = required != AuthLevel::Anonymous
            || key.is_some()
            || req.headers().contains_key(CLIENT_PRINCIPAL);
        if !needs_check {
            return Ok(None);
        }
        let principal = match self.auth {
            AuthMode::Relaxed => Principal::admin(),
            AuthMode::Enforce => match key.as_deref() {
                Some(k) => self
                    .keys
                    .resolve_or_reload(k, Some(&function.name))
                    .await
                    .unwrap_or(Principal::ANONYMOUS),
                None => Principal::ANONYMOUS,
            },
        };
        if !principal.level.satisfies(required) {
            return Err(HostError::Unauthorized);
        }
        Ok(Some(principal))
    }

    pub(super) async fn call_function(
        &self,
        req: Request<Incoming>,
        function: Arc<Function>,
        route_values: RouteValues,
        conn: &ConnectionContext,
    ) -> Result<HttpResponse, HostError> {
        let principal = self.authorize_function(&req, &function).await?;
        if function.disabled
            && principal
                .as_ref()
                .is_none_or(|p| p.level != AuthLevel::Admin)
        {
            return Err(HostError::NotFound);
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.body_limit) {
            return Err(HostError::TooLarge);
        }

        let invocation_id = Uuid::new_v4();
        let traced = req.headers().contains_key(super::TRACE_INVOCATION_HEADER);
        let dispatched = Arc::new(AtomicU64::new(0));
        // Expressions in output bindings may name route values and query parameters.
        let data = (!function.outputs.is_empty()).then(|| binding_data(&req, &route_values));
        // The runtime's clock, which the timeout and a response body's timer follow too.
        let started = tokio::time::Instant::now();
        let deadline = self.app.config.function_timeout.map(|t| started + t);
        logging::executing(&function, invocation_id, logging::HTTP_REASON);
        let call = HttpCall {
            function: function.clone(),
            invocation_id,
            request: req,
            route_values,
            principal,
            scheme: "http",
            body_limit: self.body_limit,
            deadline,
            dispatched: dispatched.clone(),
        };
        let work = async {
            let mut response = self.executor.call_http(call, conn).await?;
            if let Some(data) = &data {
                let values = response
                    .extensions_mut()
                    .remove::<crate::bindings::OutputValues>()
                    .unwrap_or_default();
                crate::triggers::flush(self.invoker.outputs.as_deref(), &function, &values.0, data)
                    .await?;
            }
            Ok(response)
        };
        let outcome = crate::executor::within_timeout(
            self.executor.as_ref(),
            &function,
            invocation_id,
            &dispatched,
            self.app.config.function_timeout.zip(deadline),
            work,
        )
        .await;
        let elapsed = started.elapsed();
        let result = match outcome {
            Ok(resp) => {
                logging::executed(&function, invocation_id, elapsed, None);
                Ok(resp)
            }
            Err(InvokeError::TooLarge) => {
                logging::executed(
                    &function,
                    invocation_id,
                    elapsed,
                    Some("the request body is larger than the limit"),
                );
                Err(HostError::TooLarge)
            }
            Err(InvokeError::Unavailable(reason)) => {
                logging::executed(&function, invocation_id, elapsed, Some(&reason));
                Err(HostError::Unavailable(reason))
            }
            Err(InvokeError::Failed(reason)) => {
                logging::executed(&function, invocation_id, elapsed, Some(&reason));
                Err(HostError::InvocationFailed)
            }
        };
        if !traced {
            return result;
        }
        let mut resp = result.unwrap_or_else(HostError::into_response);
        resp.headers_mut().insert(
            super::INVOCATION_ID_HEADER,
            http::HeaderValue::from_str(&invocation_id.to_string())
                .expect("a UUID is a header value"),
        );
        Ok(resp)
    }
}

/// Binding data of an HTTP request for output binding expressions: query parameters, then
/// route values (which win), and `Query`.
fn binding_data(
    req: &Request<Incoming>,
    route_values: &RouteValues,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut data = serde_json::Map::new();
    let mut query = serde_json::Map::new();
    for pair in req.uri().query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            crate::http_data::url_decode(k),
            crate::http_data::url_decode(v),
        );
        data.insert(k.clone(), Value::String(v.clone()));
        query.insert(k, Value::String(v));
    }
    for (k, v) in route_values {
        if let Some(v) = v {
            data.insert(k.clone(), Value::String(v.clone()));
        }
    }
    data.insert("Query".into(), Value::Object(query));
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_presentation() {
        let r = Request::get("/api/x?a=1&CODE=q%2Bk").body(()).unwrap();
        assert_eq!(presented_key(&r).as_deref(), Some("q+k"));
        let r = Request::get("/api/x?code=q")
            .header("x-functions-key", "")
            .body(())
            .unwrap();
        assert_eq!(
            presented_key(&r).as_deref(),
            Some(""),
            "an empty header still wins"
        );
        let r = Request::get("/api/x").body(()).unwrap();
        assert_eq!(presented_key(&r), None);
    }
}
