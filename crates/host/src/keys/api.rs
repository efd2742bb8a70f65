//! The key management API: `/admin/functions/{name}/keys[/{key}]` and
//! `/admin/host/{keys|functionkeys|systemkeys}[/{key}]`, with the host's shapes and codes.

use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use stratus_store::{KeyScope, NamedKey, Upsert};

use super::MASTER_KEY_NAME;
use crate::Host;
use crate::http::response::{HostError, HttpResponse, json as json_response, text};

/// The request URL without its query (the `self` link, and `Location` of created keys).
fn self_href<B>(req: &Request<B>) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!(
        "http://{}{}",
        host.to_ascii_lowercase(),
        crate::http_data::path_decode(req.uri().path())
    )
}

fn with_links(mut v: Value, href: &str) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("links".into(), json!([{ "rel": "self", "href": href }]));
    }
    v
}

fn key_list(keys: &[NamedKey], href: &str) -> HttpResponse {
    let items: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "name": k.name, "value": k.value }))
        .collect();
    json_response(StatusCode::OK, &with_links(json!({ "keys": items }), href))
}

fn single(name: &str, value: &str, href: &str, status: StatusCode) -> HttpResponse {
    let mut r = json_response(
        status,
        &with_links(json!({ "name": name, "value": value }), href),
    );
    if status == StatusCode::CREATED
        && let Ok(loc) = HeaderValue::from_str(href)
    {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

/// The `value` of a PUT body, or the host's 400.
async fn put_value(body: Incoming) -> Result<String, HostError> {
    let invalid = || HostError::BadRequest("Invalid key value".into());
    let bytes = crate::http::body::collect_limited(body, 64 * 1024)
        .await
        .map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let value = v
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    Ok(value.to_string())
}

fn status_of(outcome: Upsert) -> StatusCode {
    match outcome {
        Upsert::Created => StatusCode::CREATED,
        Upsert::Replaced => StatusCode::OK,
    }
}

/// Whether `name` is a function of the app (loaded, or present but in error).
fn is_function(host: &Host, name: &str) -> bool {
    host.app.function(name).is_some() || host.app.function_errors(name).is_some()
}

/// Handles a key API request; `seg` are the decoded path segments (`admin`, ...).
pub async fn handle(
    host: &Host,
    req: Request<Incoming>,
    seg: &[&str],
) -> Result<HttpResponse, HostError> {
    let href = self_href(&req);
    let method = req.method().clone();
    let keys = &host.keys;
    // Literal segments match in any case; names keep the caller's spelling.
    let lower: Vec<String> = seg.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    match l.as_slice() {
        ["admin", "functions", _, "keys"] => {
            let function = &seg[2];
            if method != Method::GET {
                return Err(HostError::NotFound);
            }
            if !is_function(host, function) {
                return Err(HostError::NotFound);
            }
            Ok(key_list(&keys.function_keys(function), &href))
        }
        ["admin", "functions", _, "keys", _] => {
            let (function, name) = (&seg[2], &seg[4]);
            if method == Method::DELETE && name.eq_ignore_ascii_case(MASTER_KEY_NAME) {
                return Ok(text(StatusCode::BAD_REQUEST, "Cannot delete System Key."));
            }
            if !is_function(host, function) {
                return Err(HostError::NotFound);
            }
            let scope = KeyScope::Function(function);
            match method {
                Method::GET => {
                    let list = keys.function_keys(function);
                    let k = list
                        .iter()
                        .find(|k| k.name.eq_ignore_ascii_case(name))
                        .ok_or(HostError::NotFound)?;
                    Ok(single(name, &k.value, &href, StatusCode::OK))
                }
                Method::POST => {
                    let (outcome, value) = keys.put(scope, name, None).await?;
                    Ok(single(name, &value, &href, status_of(outcome)))
                }
                Method::PUT => {
                    let value = put_value(req.into_body()).await?;
                    let (outcome, value) = keys.put(scope, name, Some(&value)).await?;
                    Ok(single(name, &value, &href, status_of(outcome)))
                }
                Method::DELETE => {
                    if keys.delete(scope, name).await? {
                        Ok(crate::http::response::empty(StatusCode::NO_CONTENT))
                    } else {
                        Err(HostError::NotFound)
                    }
                }
                _ => Err(HostError::NotFound),
            }
        }
        ["admin", "host", scope] => {
            let scope = *scope;
            if method != Method::GET {
                return Err(HostError::NotFound);
            }
            let all = keys.keys();
            let list = if scope.eq_ignore_ascii_case("systemkeys") {
                all.system_keys
            } else {
                all.function_keys
            };
            Ok(key_list(&list, &href))
        }
        ["admin", "host", scope, _] => {
            let (scope, name) = (*scope, &seg[3]);
            let system = scope.eq_ignore_ascii_case("systemkeys");
            let master = name.eq_ignore_ascii_case(MASTER_KEY_NAME);
            let key_scope = if master {
                KeyScope::Master
            } else if system {
                KeyScope::System
            } else {
                KeyScope::HostFunction
            };
            match method {
                Method::GET => {
                    let all = keys.keys();
                    let value = if master {
                        if !system {
                            return Err(HostError::NotFound);
                        }
                        all.master.ok_or(HostError::NotFound)?
                    } else {
                        let list = if system {
                            all.system_keys
                        } else {
                            all.function_keys
                        };
                        list.into_iter()
                            .find(|k| k.name.eq_ignore_ascii_case(name))
                            .ok_or(HostError::NotFound)?
                            .value
                    };
                    Ok(single(name, &value, &href, StatusCode::OK))
                }
                Method::POST => {
                    let (outcome, value) = keys.put(key_scope, name, None).await?;
                    let status = if master {
                        StatusCode::CREATED
                    } else {
                        status_of(outcome)
                    };
                    Ok(single(name, &value, &href, status))
                }
                Method::PUT => {
                    let value = put_value(req.into_body()).await?;
                    let (outcome, value) = keys.put(key_scope, name, Some(&value)).await?;
                    let status = if master {
                        StatusCode::OK
                    } else {
                        status_of(outcome)
                    };
                    Ok(single(name, &value, &href, status))
                }
                Method::DELETE => {
                    if master {
                        return Ok(text(StatusCode::BAD_REQUEST, "Cannot delete System Key."));
                    }
                    if keys.delete(key_scope, name).await? {
                        Ok(crate::http::response::empty(StatusCode::NO_CONTENT))
                    } else {
                        Err(HostError::NotFound)
                    }
                }
                _ => Err(HostError::NotFound),
            }
        }
        _ => Err(HostError::NotFound),
    }
}
