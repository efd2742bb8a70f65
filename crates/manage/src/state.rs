//! What a worker's hosts keep through the management role rather than a store of their own:
//! leases (one replica runs each timer) and timer schedule status, per app, at
//! `/api/workers/{id}/apps/{app}/leases` and `/timers/{name}`. Times are the management
//! role's, so the workers' clocks may differ.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stratus_store::TimerStatus;

use crate::api::{Api, ApiError, ApiRequest, empty, json_response};

/// Where app `app`'s leases and timers are kept in the store.
pub fn owner(app: &str) -> String {
    format!("app:{app}")
}

/// Longest lease a host may ask for.
const MAX_TTL_MS: i64 = 10 * 60 * 1000;

fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))
}

fn text<'a>(v: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    v[field]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 512)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "expected \"{field}\": a string of 1 to 512 characters"
            ))
        })
}

/// A timer status as JSON: `{"last": ms|null, "next": ms, "lastUpdated": ms}`.
pub fn status_json(s: &TimerStatus) -> Value {
    json!({"last": s.last_ms, "next": s.next_ms, "lastUpdated": s.last_updated_ms})
}

/// The timer status in [`status_json`]'s form.
pub fn status_from_json(v: &Value) -> Option<TimerStatus> {
    Some(TimerStatus {
        last_ms: match &v["last"] {
            Value::Null => None,
            x => Some(x.as_i64()?),
        },
        next_ms: v["next"].as_i64()?,
        last_updated_ms: v["lastUpdated"].as_i64()?,
    })
}

impl Api {
    /// `leases` (take or renew: `{"name", "holder", "ttlMs"}` → `{"held"}`),
    /// `leases/release` (`{"name", "holder"}`) and `timers/{name}` (GET, PUT) of `app`.
    pub(crate) async fn state_route(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
        rest: &[&str],
    ) -> Result<Response<Bytes>, ApiError> {
        let owner = owner(app);
        let m = req.method;
        match rest {
            ["leases"] if m == Method::POST => {
                let v = body_json(req.body)?;
                let (name, holder) = (text(&v, "name")?, text(&v, "holder")?);
                let ttl = v["ttlMs"]
                    .as_i64()
                    .filter(|t| (1..=MAX_TTL_MS).contains(t))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("expected \"ttlMs\" from 1 to {MAX_TTL_MS}"))
                    })?;
                let held = self
                    .leases
                    .acquire(&format!("{owner}/{name}"), holder, req.now_ms, ttl)
                    .await?;
                Ok(json_response(StatusCode::OK, &json!({ "held": held })))
            }
            ["leases", "release"] if m == Method::POST => {
                let v = body_json(req.body)?;
                let (name, holder) = (text(&v, "name")?, text(&v, "holder")?);
                self.leases
                    .release(&format!("{owner}/{name}"), holder)
                    .await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            ["timers", timer] if m == Method::GET => match self.timers.get(&owner, timer).await? {
                Some(s) => Ok(json_response(StatusCode::OK, &status_json(&s))),
                None => Err(ApiError::NotFound(format!(
                    "no status recorded for timer {timer}"
                ))),
            },
            ["timers", timer] if m == Method::PUT => {
                let status = status_from_json(&body_json(req.body)?).ok_or_else(|| {
                    ApiError::BadRequest(
                        "expected {\"last\": ms or null, \"next\": ms, \"lastUpdated\": ms}".into(),
                    )
                })?;
                self.timers.put(&owner, timer, status).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            ["leases", ..] | ["timers", ..] => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound("no such route".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_status_round_trips() {
        for s in [
            TimerStatus {
                last_ms: None,
                next_ms: 5,
                last_updated_ms: 1,
            },
            TimerStatus {
                last_ms: Some(3),
                next_ms: 5,
                last_updated_ms: 4,
            },
        ] {
            assert_eq!(status_from_json(&status_json(&s)), Some(s));
        }
    }
}
