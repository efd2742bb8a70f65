//! An app's functions as its live version defines them: asked of a ready replica's host (its
//! admin API, with the app's master key: the only complete answer, since language workers
//! index their own functions), or read from the live package's `function.json` files when no
//! replica serves.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::api::{Api, ApiError, ApiRequest, json_response};

/// How long a replica gets to answer.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a replica answered: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Bytes);

/// One request to the replica at `url` (`http://host:port`) on a connection of its own, the
/// body of the answer at most `limit` bytes, within `within`.
async fn replica_call(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    limit: usize,
    within: std::time::Duration,
) -> Result<Answer, String> {
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url} is not an http:// URL"))?
        .trim_end_matches('/')
        .to_string();
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("{method} is not an HTTP method"))?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &authority);
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(http_body_util::Full::new(Bytes::from(body)))
            .map_err(|e| format!("the request is not valid: {e}"))?;
        let r = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).to_string(),
                )
            })
            .collect();
        let body = http_body_util::Limited::new(r.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("the response body: {e}"))?
            .to_bytes();
        Ok((status, headers, body))
    };
    tokio::time::timeout(within, attempt)
        .await
        .map_err(|_| format!("no answer within {} s", within.as_secs()))?
}

/// `GET {url}/admin/functions` with `key`: the host's answer.
async fn ask(url: &str, key: &str) -> Result<Value, String> {
    let headers = [("x-functions-key".to_string(), key.to_string())];
    let (status, _, body) = replica_call(
        url,
        "GET",
        "/admin/functions",
        &headers,
        Vec::new(),
        8 << 20,
        ASK_TIMEOUT,
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(format!("the host answered {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// The trigger of a function's bindings (`config.bindings`).
fn trigger(config: &Value) -> Option<&Value> {
    config["bindings"].as_array()?.iter().find(|b| {
        b["type"]
            .as_str()
            .is_some_and(|t| t.to_ascii_lowercase().ends_with("trigger"))
    })
}

/// One function as the API lists it; `app_url` is the app's URL through the front door.
fn entry(
    name: &str,
    config: &Value,
    disabled: bool,
    route_prefix: &str,
    app_url: Option<&str>,
) -> Value {
    let t = trigger(config).cloned().unwrap_or(Value::Null);
    let kind = t["type"].as_str().unwrap_or("").to_string();
    let http = kind.eq_ignore_ascii_case("httpTrigger");
    let route = t["route"]
        .as_str()
        .unwrap_or(name)
        .trim_matches('/')
        .to_string();
    let path = [route_prefix.trim_matches('/'), route.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    json!({
        "name": name,
        "trigger": kind,
        "authLevel": if http { t["authLevel"].as_str().unwrap_or("function").to_ascii_lowercase() } else { String::new() },
        "methods": if http { t["methods"].clone() } else { Value::Null },
        "route": if http { Value::String(route) } else { Value::Null },
        "url": match (http, app_url) {
            (true, Some(base)) if !base.is_empty() => Value::String(format!("{}/{path}", base.trim_end_matches('/'))),
            _ => Value::Null,
        },
        "disabled": disabled,
    })
}

impl Api {
    /// `GET /api/apps/{name}/functions`.
    pub(crate) async fn functions(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        if *req.method != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        let record = self
            .apps
            .get(app)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no app named {app}")))?;
        let Some(active) = record.active_version else {
            return Ok(json_response(
                StatusCode::OK,
                &json!({"source": "none", "functions": []}),
            ));
        };
        let app_url = self.front_url.as_deref().map(|t| t.replace("{app}", app));
        // The live package's route prefix (host.json), for the URLs.
        let versions = self.apps.versions(app).await?;
        let package = match versions.iter().find(|v| v.number == active) {
            Some(v) => self.apps.package(&v.sha256).await?,
            None => None,
        };
        let index = package
            .as_deref()
            .map(crate::package::index)
            .unwrap_or_default();
        // A ready replica of the live version knows best.
        let master = self.keys.load(&crate::keys::owner(app)).await?.master;
        let replicas = crate::front::table::replicas(&self.workers).await?;
        let mut why_not = String::from("no replica of the live version is ready");
        if let Some(master) = master {
            for r in replicas
                .iter()
                .filter(|r| r.app == app && r.ready && r.version == Some(active))
            {
                let Some(url) = &r.url else { continue };
                match ask(url, &master).await {
                    Ok(Value::Array(list)) => {
                        let functions: Vec<Value> = list
                            .iter()
                            .map(|f| {
                                entry(
                                    f["name"].as_str().unwrap_or_default(),
                                    &f["config"],
                                    f["isDisabled"] == true,
                                    &index.route_prefix,
                                    app_url.as_deref(),
                                )
                            })
                            .collect();
                        return Ok(json_response(
                            StatusCode::OK,
                            &json!({"source": "host", "version": active, "routePrefix": index.route_prefix, "functions": functions}),
                        ));
                    }
                    Ok(_) => why_not = "a host answered something else than a list".into(),
                    Err(e) => why_not = e,
                }
            }
        }
        let disabled = |name: &str| {
            let key = format!("AzureWebJobs.{name}.Disabled");
            async move {
                self.apps
                    .settings(app)
                    .await
                    .map(|s| {
                        s.iter().any(|(k, v)| {
                            k.eq_ignore_ascii_case(&key)
                                && (v == "1" || v.eq_ignore_ascii_case("true"))
                        })
                    })
                    .unwrap_or(false)
            }
        };
        let mut functions = Vec::new();
        for (name, config) in &index.functions {
            functions.push(entry(
                name,
                config,
                disabled(name).await,
                &index.route_prefix,
                app_url.as_deref(),
            ));
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({"source": "package", "version": active, "routePrefix": index.route_prefix, "note": why_not, "functions": functions}),
        ))
    }
}

/// The header a host names an invocation in, when asked with `TRACE_INVOCATION`.
const INVOCATION_ID: &str = "x-stratus-invocation-id";
const TRACE_INVOCATION: &str = "x-stratus-trace-invocation";

/// Largest test request or response body the portal's test panel carries.
const TEST_BODY_LIMIT: usize = 1 << 20;

/// Sends one test request to a replica at `url` and gives back what came: status, headers,
/// body (text, or base64 when not UTF-8) and the time it took.
async fn send_test(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Value, String> {
    let started = std::time::Instant::now();
    let within = std::time::Duration::from_secs(230);
    let (status, headers, body) =
        replica_call(url, method, path, headers, body, TEST_BODY_LIMIT, within).await?;
    let (text, encoding) = match std::str::from_utf8(&body) {
        Ok(t) => (t.to_string(), "utf-8"),
        Err(_) => {
            use base64::Engine as _;
            (
                base64::engine::general_purpose::STANDARD.encode(&body),
                "base64",
            )
        }
    };
    let invocation = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(INVOCATION_ID))
        .map(|(_, v)| v.clone());
    let headers: Vec<Value> = headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(INVOCATION_ID))
        .map(|(k, v)| json!([k, v]))
        .collect();
    Ok(json!({
        "invocationId": invocation,
        "status": status,
        "headers": headers,
        "body": text,
        "bodyEncoding": encoding,
        "durationMs": started.elapsed().as_secs_f64() * 1000.0,
    }))
}

impl Api {
    /// `POST /api/apps/{name}/test`: sends `{method, path, query?, headers?, body?}` to a
    /// ready replica of the live version, as the front door would, and answers with what
    /// came back (the portal's test panel: same origin, signed in, no CORS needed).
    pub(crate) async fn test_request(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        if *req.method != Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        if req.body.len() > TEST_BODY_LIMIT {
            return Err(ApiError::TooLarge(TEST_BODY_LIMIT));
        }
        let v: Value = serde_json::from_slice(req.body).map_err(|e| {
            ApiError::BadRequest(format!(
                "expected {{method, path, query, headers, body}}: {e}"
            ))
        })?;
        let method = v["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let mut path = v["path"].as_str().unwrap_or("/").to_string();
        if !path.starts_with('/') || path.contains(['\r', '\n', ' ', '#']) {
            return Err(ApiError::BadRequest(format!(
                "\"{path}\" is not a path (it starts with /)"
            )));
        }
        if let Some(q) = v["query"].as_str().filter(|q| !q.is_empty()) {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(q.trim_start_matches('?'));
        }
        let headers: Vec<(String, String)> = v["headers"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut headers = headers;
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(TRACE_INVOCATION));
        headers.push((TRACE_INVOCATION.into(), "1".into()));
        let body = v["body"].as_str().unwrap_or("").as_bytes().to_vec();
        let active = self
            .apps
            .get(app)
            .await?
            .and_then(|a| a.active_version)
            .ok_or_else(|| ApiError::Conflict(format!("{app} has no live version")))?;
        let replica = crate::front::table::replicas(&self.workers)
            .await?
            .into_iter()
            .find(|r| r.app == app && r.ready && r.version == Some(active))
            .and_then(|r| r.url)
            .ok_or_else(|| ApiError::Conflict(format!("no replica of {app} is ready")))?;
        let answer = send_test(&replica, &method, &path, &headers, body)
            .await
            .map_err(|e| ApiError::Conflict(format!("the test request failed: {e}")))?;
        Ok(json_response(StatusCode::OK, &answer))
    }
}
