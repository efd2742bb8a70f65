//! An app's functions as its live version defines them: asked of a ready replica's host (its
//! admin API, with the app's master key: the only complete answer, since language workers
//! index their own functions), or read from the live package's `function.json` files when no
//! replica serves.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::api::{Api, ApiError, ApiRequest, json_response};

/// How long a replica gets to answer.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET {url}/admin/functions` with `key`: the host's answer.
async fn ask(url: &str, key: &str) -> Result<Value, String> {
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
        let req = http::Request::builder()
            .method(Method::GET)
            .uri("/admin/functions")
            .header(http::header::HOST, &authority)
            .header("x-functions-key", key)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let r = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = r.status();
        let body = r
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("the host answered {status}"));
        }
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    };
    tokio::time::timeout(ASK_TIMEOUT, attempt)
        .await
        .map_err(|_| "the host did not answer in time".to_string())?
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
                            &json!({"source": "host", "version": active, "functions": functions}),
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
            &json!({"source": "package", "version": active, "note": why_not, "functions": functions}),
        ))
    }
}
