//! Kudu's deployment routes: zip deploy and OneDeploy (receive, check, store, wait or answer
//! 202 with where to look), the deployment history, one deployment, its log, and deployments
//! recorded from outside.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use stratus_store::{DeployOrigin, DeployStatus, Deployment, LogKind};

use super::{Scm, ScmRequest, error, reply};
use crate::deploy::DeployError;

/// Kudu's time format: ISO 8601 in UTC.
fn time(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
        .unwrap_or(Value::Null)
}

/// A deployment as Kudu's `DeployResult`.
fn result_json(d: &Deployment, base: &str, active: bool, last_success: Option<i64>) -> Value {
    let url = format!("{base}/api/deployments/{}", d.id);
    json!({
        "id": d.id,
        "status": d.status as i64,
        "status_text": d.status_text,
        "author_email": d.origin.author_email,
        "author": d.origin.author,
        "deployer": d.origin.deployer,
        "message": d.origin.message,
        "progress": if d.complete { "" } else { d.status_text.as_str() },
        "received_time": time(d.received_ms),
        "start_time": time(d.received_ms),
        "end_time": d.end_ms.map_or(Value::Null, time),
        "last_success_end_time": last_success.map_or(Value::Null, time),
        "complete": d.complete,
        "active": active,
        "is_temp": false,
        "is_readonly": false,
        "url": url,
        "log_url": format!("{url}/log"),
        "site_name": d.app,
        "provisioningState": match d.status {
            DeployStatus::Failed => "Failed",
            DeployStatus::Success => "Succeeded",
            _ => "InProgress",
        },
        "version": d.version,
    })
}

fn with_header(mut r: Response<Bytes>, name: &'static str, value: &str) -> Response<Bytes> {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// How long clients are told to wait between looks at a pending deployment.
const RETRY_AFTER: &str = "2";

impl Scm {
    /// Every deployment of the app as JSON, newest first, with which one is live.
    async fn history(&self, req: &ScmRequest) -> Result<Vec<(Deployment, Value)>, DeployError> {
        let list = self.api.deployments.list(&req.app).await?;
        let active = self
            .api
            .apps
            .get(&req.app)
            .await?
            .and_then(|a| a.active_version);
        // The live one: the newest successful deployment of the active version.
        let live = list
            .iter()
            .find(|d| {
                d.status == DeployStatus::Success && d.version.is_some() && d.version == active
            })
            .map(|d| d.id.clone());
        let last_success = list
            .iter()
            .filter(|d| d.status == DeployStatus::Success)
            .find_map(|d| d.end_ms);
        Ok(list
            .into_iter()
            .map(|d| {
                let v = result_json(
                    &d,
                    &req.base,
                    live.as_deref() == Some(d.id.as_str()),
                    last_success,
                );
                (d, v)
            })
            .collect())
    }

    /// `/api/deployments[/{id}[/log[/{entry}]]]`.
    pub(super) async fn deployments(&self, req: &ScmRequest, body: Incoming) -> Response<Bytes> {
        let segs: Vec<&str> = req.segments[1..].iter().map(String::as_str).collect();
        let outcome = async {
            Ok::<_, DeployError>(match (&req.method, segs.as_slice()) {
                (&Method::GET, []) => {
                    let list: Vec<Value> = self
                        .history(req)
                        .await?
                        .into_iter()
                        .map(|(_, v)| v)
                        .collect();
                    reply(StatusCode::OK, &Value::Array(list))
                }
                (&Method::GET, [id]) => {
                    let history = self.history(req).await?;
                    let found = if id.eq_ignore_ascii_case("latest") {
                        history
                            .iter()
                            .find(|(d, _)| !d.complete)
                            .or_else(|| history.first())
                    } else {
                        history.iter().find(|(d, _)| d.id == *id)
                    };
                    match found {
                        None => error(
                            StatusCode::NOT_FOUND,
                            format!("Deployment '{id}' not found."),
                        ),
                        // Unfinished: 202, look again here.
                        Some((d, v)) if !d.complete => with_header(
                            with_header(reply(StatusCode::ACCEPTED, v), "location", &req.url),
                            "retry-after",
                            RETRY_AFTER,
                        ),
                        Some((_, v)) => reply(StatusCode::OK, v),
                    }
                }
                (&Method::GET, [id, log]) if log.eq_ignore_ascii_case("log") => {
                    if self.api.deployments.get(&req.app, id).await?.is_none() {
                        return Ok(error(
                            StatusCode::NOT_FOUND,
                            format!("Deployment '{id}' not found."),
                        ));
                    }
                    let entries: Vec<Value> = self
                        .api
                        .deployments
                        .log_entries(id)
                        .await?
                        .into_iter()
                        .map(|e| {
                            json!({
                                "log_time": time(e.at_ms),
                                "id": format!("{id}-{}", e.ord),
                                "message": e.message,
                                "type": e.kind as i64,
                                "details_url": Value::Null,
                            })
                        })
                        .collect();
                    reply(StatusCode::OK, &Value::Array(entries))
                }
                (&Method::GET, [id, log, _]) if log.eq_ignore_ascii_case("log") => {
                    if self.api.deployments.get(&req.app, id).await?.is_none() {
                        return Ok(error(
                            StatusCode::NOT_FOUND,
                            format!("Deployment '{id}' not found."),
                        ));
                    }
                    // Entries have no details.
                    reply(StatusCode::OK, &json!([]))
                }
                (&Method::PUT, [id]) => return Ok(self.record(req, id, body).await),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here"),
            })
        }
        .await;
        outcome.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    /// `PUT /api/deployments/{id}`: a deployment made elsewhere, into the history.
    async fn record(&self, req: &ScmRequest, id: &str, body: Incoming) -> Response<Bytes> {
        let body = match super::read_body(body, 1 << 20).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expected a JSON object with status, message, deployer and author",
                );
            }
        };
        if id.is_empty()
            || id.len() > 100
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return error(
                StatusCode::BAD_REQUEST,
                "a deployment id is letters, digits, '-' and '_'",
            );
        }
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let success = match v["status"].as_i64() {
            Some(4) => true,
            Some(3) => false,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "status must be 3 (failed) or 4 (success)",
                );
            }
        };
        let origin = DeployOrigin {
            author: text("author"),
            author_email: text("author_email"),
            deployer: text("deployer"),
            message: text("message"),
        };
        let outcome = async {
            if self.api.deployments.get(&req.app, id).await?.is_some() {
                return Ok::<_, DeployError>(error(
                    StatusCode::CONFLICT,
                    format!("Deployment '{id}' exists."),
                ));
            }
            let now = crate::now_ms();
            if !self
                .api
                .deployments
                .record(&req.app, id, &origin, success, now)
                .await?
            {
                return Ok(error(
                    StatusCode::CONFLICT,
                    format!("Deployment '{id}' exists."),
                ));
            }
            let history = self.history(req).await?;
            let v = history
                .into_iter()
                .find(|(d, _)| d.id == id)
                .map(|(_, v)| v);
            Ok(reply(StatusCode::OK, &v.unwrap_or(Value::Null)))
        }
        .await;
        outcome.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    /// `POST|PUT /api/zipdeploy` and `/api/publish` (OneDeploy, `type=zip`).
    pub(super) async fn deploy(&self, req: &ScmRequest, body: Incoming) -> Response<Bytes> {
        if req.method != Method::POST && req.method != Method::PUT {
            return error(StatusCode::METHOD_NOT_ALLOWED, "deploy with POST or PUT");
        }
        if req.segments.len() > 1 {
            return error(
                StatusCode::NOT_FOUND,
                format!("no such publishing route: /{}", req.segments.join("/")),
            );
        }
        let one_deploy = req.segments[0].eq_ignore_ascii_case("publish");
        let (asynchronous, deployer) = if one_deploy {
            match req.query("type").as_deref() {
                None | Some("") => {
                    return error(StatusCode::BAD_REQUEST, "type is required (type=zip)");
                }
                Some(t) if t.eq_ignore_ascii_case("zip") => {}
                Some(t) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "type={t} is not supported: an Azure Functions app is deployed as type=zip"
                        ),
                    );
                }
            }
            if let Some(path) = req.query("path").filter(|p| !p.is_empty() && p != "/") {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("path={path} is not supported: a zip deploys the whole app"),
                );
            }
            (
                req.flag("async"),
                req.query("deployer").unwrap_or_else(|| "OneDeploy".into()),
            )
        } else {
            (
                req.flag("isAsync"),
                req.query("deployer").unwrap_or_else(|| "ZipDeploy".into()),
            )
        };
        let origin = DeployOrigin {
            author: req.query("author").unwrap_or_else(|| req.author.clone()),
            author_email: req.query("authorEmail").unwrap_or_default(),
            deployer: deployer.clone(),
            message: req
                .query("message")
                .unwrap_or_else(|| "Created via a push deployment".into()),
        };
        let deployer_engine = self.api.deployer();
        let now = crate::now_ms();
        let d = match deployer_engine.begin(&req.app, &origin, now).await {
            Ok(d) => d,
            Err(DeployError::Busy(id)) => {
                return error(
                    StatusCode::CONFLICT,
                    format!(
                        "There is a deployment currently in progress ({id}). Please try again when it completes."
                    ),
                );
            }
            Err(DeployError::NoApp(app)) => {
                return error(StatusCode::NOT_FOUND, format!("no app named {app}"));
            }
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        let package = match self.receive(&d, body).await {
            Ok(p) => p,
            Err((status, reason)) => {
                let _ = deployer_engine.fail(&d, &reason, crate::now_ms()).await;
                return error(status, reason);
            }
        };
        let stored = deployer_engine.store(&d, &package, crate::now_ms()).await;
        drop(package);
        match stored {
            Ok(_) => {}
            Err(DeployError::Refused(reason)) => return error(StatusCode::BAD_REQUEST, reason),
            Err(e) => {
                let _ = deployer_engine
                    .fail(&d, &e.to_string(), crate::now_ms())
                    .await;
                return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
        }
        if asynchronous {
            let stamp = chrono::Utc::now().format("%Y-%m-%d_%H-%M-%SZ");
            let location = format!(
                "{}/api/deployments/latest?deployer={}&time={stamp}",
                req.base,
                stratus_model::text::url_encode(&deployer)
            );
            let now = self
                .api
                .deployments
                .get(&req.app, &d.id)
                .await
                .ok()
                .flatten()
                .unwrap_or(d.clone());
            let r = reply(
                StatusCode::ACCEPTED,
                &result_json(&now, &req.base, false, None),
            );
            let r = with_header(r, "location", &location);
            let r = with_header(r, "retry-after", RETRY_AFTER);
            return with_header(r, "scm-deployment-id", &d.id);
        }
        // Synchronous: answer when it is live or failed.
        let deadline = crate::now_ms() + self.config.deploy_timeout_ms + 10_000;
        loop {
            match self.api.deployments.get(&req.app, &d.id).await {
                Ok(Some(done)) if done.complete => {
                    let v = result_json(
                        &done,
                        &req.base,
                        done.status == DeployStatus::Success,
                        done.end_ms,
                    );
                    let status = if done.status == DeployStatus::Success {
                        StatusCode::OK
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    };
                    return with_header(reply(status, &v), "scm-deployment-id", &d.id);
                }
                Ok(Some(_)) if crate::now_ms() < deadline => {}
                Ok(_) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("deployment {} did not finish in time", d.id),
                    );
                }
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Reads the package of deployment `d`, showing it is alive while that takes.
    async fn receive(
        &self,
        d: &Deployment,
        body: Incoming,
    ) -> Result<Vec<u8>, (StatusCode, String)> {
        use http_body_util::BodyExt as _;
        let mut body = body;
        let mut package = Vec::new();
        let mut touched = std::time::Instant::now();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("The upload broke off: {e}"),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if package.len() + data.len() > crate::api::PACKAGE_LIMIT {
                    return Err((
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "The package is larger than {} bytes",
                            crate::api::PACKAGE_LIMIT
                        ),
                    ));
                }
                package.extend_from_slice(&data);
            }
            if touched.elapsed() > std::time::Duration::from_secs(5) {
                touched = std::time::Instant::now();
                let _ = self.api.deployments.touch(&d.id, crate::now_ms()).await;
            }
        }
        if package.is_empty() {
            return Err((
                StatusCode::BAD_REQUEST,
                "The body is empty: send the app's files as a zip".into(),
            ));
        }
        let _ = self
            .api
            .deployments
            .log(&d.id, LogKind::Message, "Upload received", crate::now_ms())
            .await;
        Ok(package)
    }
}
