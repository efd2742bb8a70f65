//! The REST API over managed apps (`/api/apps/...`), answered from a request's method, path
//! and collected body; errors become responses in one place ([`ApiError`]).

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use serde_json::{Value, json};
use stratus_model::text::url_decode as decode;
use stratus_store::{
    AppRecord, AppVersion, Scale, SqlApps, SqlKeys, SqlLeases, SqlQueues, SqlTimers, SqlWorkers,
    WorkerRecord, WorkerSpec,
};

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// How often a waiting worker's assignments are read again.
const ASSIGNMENT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Largest package accepted (a zip of an app).
pub const PACKAGE_LIMIT: usize = 256 << 20;

/// Why a request failed; [`ApiError::response`] is the only place that maps errors to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Known, but not allowed to: a portal session's change without its CSRF token, say.
    #[error("{1}")]
    Forbidden(&'static str, String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// A change that would leave the app invalid: what is wrong, per file.
    #[error("{0}")]
    Invalid(String, Vec<(String, String)>),
    #[error("the store failed: {0}")]
    Store(#[from] stratus_store::Error),
}

impl From<crate::deploy::DeployError> for ApiError {
    fn from(e: crate::deploy::DeployError) -> Self {
        use crate::deploy::DeployError as D;
        match e {
            D::Busy(_) => ApiError::Conflict(e.to_string()),
            D::NoApp(_) => ApiError::NotFound(e.to_string()),
            D::Refused(reason) => ApiError::BadRequest(reason),
            D::Store(e) => ApiError::Store(e),
        }
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ApiError::Gone(_) => (StatusCode::GONE, "Gone"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            ApiError::Forbidden(code, _) => (StatusCode::FORBIDDEN, code),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "TooLarge"),
            ApiError::Invalid(..) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "StoreFailure"),
        }
    }

    /// `{"error": {"code", "message"}}` with the status that says what went wrong.
    pub fn response(&self) -> Response<Bytes> {
        let (status, code) = self.parts();
        if status.is_server_error() {
            tracing::error!("management API: {self}");
        }
        let mut error = json!({"code": code, "message": self.to_string()});
        if let ApiError::Invalid(_, details) = self {
            error["details"] = details
                .iter()
                .map(|(file, message)| json!({"file": file, "message": message}))
                .collect();
        }
        let mut r = json_response(status, &json!({ "error": error }));
        if matches!(self, ApiError::Unauthorized) {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

pub(crate) fn empty(status: StatusCode) -> Response<Bytes> {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = status;
    r
}

fn app_json(a: &AppRecord) -> Value {
    json!({
        "name": a.name,
        "createdAt": a.created_ms,
        "updatedAt": a.updated_ms,
        "activeVersion": a.active_version,
        "minReplicas": a.min_replicas,
        "maxReplicas": a.max_replicas,
        "labels": a.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "generation": a.generation,
    })
}

fn version_json(v: &AppVersion) -> Value {
    json!({
        "number": v.number,
        "sha256": v.sha256,
        "size": v.size,
        "createdAt": v.created_ms,
        "author": v.author,
        "message": v.message,
    })
}

/// Reads `{"minReplicas", "maxReplicas", "labels"}` (all optional) over `base`.
fn scale_of(body: &[u8], base: Scale) -> Result<Scale, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(base);
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(ApiError::BadRequest(
            "expected a JSON object such as {\"minReplicas\": 1, \"maxReplicas\": 2, \"labels\": {\"zone\": \"a\"}}".into(),
        ));
    };
    let mut scale = base;
    for (k, v) in &o {
        match k.as_str() {
            "minReplicas" | "maxReplicas" => {
                let n = v
                    .as_i64()
                    .filter(|n| (0..=1000).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "$.{k}: expected an integer from 0 to 1000, found {v}"
                        ))
                    })?;
                if k == "minReplicas" {
                    scale.min_replicas = n;
                } else {
                    scale.max_replicas = n;
                }
            }
            "labels" => {
                let Value::Object(labels) = v else {
                    return Err(ApiError::BadRequest(format!(
                        "$.labels: expected an object of strings, found {v}"
                    )));
                };
                scale.labels = labels
                    .iter()
                    .map(|(lk, lv)| match lv {
                        Value::String(s) => Ok((lk.clone(), s.clone())),
                        other => Err(ApiError::BadRequest(format!(
                            "$.labels.{lk}: expected a string, found {other}"
                        ))),
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "$.{other}: unknown property (expected minReplicas, maxReplicas, labels)"
                )));
            }
        }
    }
    if scale.min_replicas > scale.max_replicas {
        return Err(ApiError::BadRequest(format!(
            "minReplicas ({}) is above maxReplicas ({})",
            scale.min_replicas, scale.max_replicas
        )));
    }
    Ok(scale)
}

pub(crate) fn query_value<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == key).then_some(v)
    })
}

/// A request as the API sees it.
#[derive(Debug)]
pub struct ApiRequest<'a> {
    /// Whether the caller presented the admin token.
    pub admin: bool,
    /// The bearer token presented, for the routes workers call with their join token.
    pub bearer: Option<&'a str>,
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    pub now_ms: i64,
}

/// The management API over a store's apps.
#[derive(Debug, Clone)]
pub struct Api {
    pub apps: SqlApps,
    pub workers: SqlWorkers,
    /// Managed apps' function keys.
    pub keys: SqlKeys,
    /// Leases and timer status of managed apps' hosts.
    pub leases: SqlLeases,
    pub timers: SqlTimers,
    /// Managed apps' queues (an account per app), served under `/queues/`.
    pub queues: SqlQueues,
    /// Deployments and their logs.
    pub deployments: stratus_store::SqlDeployments,
    /// Publishing credentials and certificates.
    pub publishing: stratus_store::SqlPublishing,
    /// How the publishing endpoint is reached (none when it is off).
    pub scm: Option<crate::scm::ScmConfig>,
    /// The portal's users and sessions.
    pub portal: stratus_store::SqlPortal,
    /// What managed apps' hosts report: invocations, function logs, latency statistics.
    pub telemetry: stratus_store::SqlTelemetry,
    /// An app's URL through the front door, `{app}` in place of its name (none when the
    /// front door is off).
    pub front_url: Option<String>,
}

/// Whether `path` is open without the admin token: workers' routes (their join token), the
/// OpenAPI document, and the publishing authority's certificate.
pub fn is_public_route(path: &str) -> bool {
    is_worker_route(path)
        || path == "/api/openapi.json"
        || path == "/api/scm/ca.pem"
        || crate::portal::is_sign_in_route(path)
}

/// Whether `path` is one workers call with their join token rather than the admin token.
pub fn is_worker_route(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        segs.as_slice(),
        ["api", "workers", "join"]
            | ["api", "workers", _, "heartbeat"]
            | ["api", "workers", _, "assignments"]
            | ["api", "workers", _, "leave"]
            | ["api", "workers", _, "packages", _]
            | [
                "api",
                "workers",
                _,
                "apps",
                _,
                "keys" | "leases" | "timers" | "telemetry",
                ..
            ]
    )
}

fn worker_json(w: &WorkerRecord, now_ms: i64) -> Value {
    json!({
        "id": w.id,
        "name": w.spec.name,
        "cpuMillis": w.spec.cpu_millis,
        "memoryMib": w.spec.memory_mib,
        "maxApps": w.spec.max_apps,
        "labels": w.spec.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "window": w.spec.window,
        "version": w.spec.version,
        "joinedAt": w.joined_ms,
        "heartbeatAt": w.heartbeat_ms,
        "heartbeatAgeMs": (now_ms - w.heartbeat_ms).max(0),
        "draining": w.draining,
        // As its last heartbeat reported it.
        "load": serde_json::from_str::<Value>(&w.status).map(|s| s["load"].clone()).unwrap_or(Value::Null),
        // How it isolates its apps' function processes, layer by layer.
        "isolation": serde_json::from_str::<Value>(&w.status).map(|s| s["isolation"].clone()).unwrap_or(Value::Null),
    })
}

/// Checks an availability window `HH:MM-HH:MM` (it may wrap past midnight).
fn check_window(w: &str) -> Result<(), ApiError> {
    let valid = |t: &str| {
        let (h, m) = t.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && t.len() == 5).then_some(())
    };
    match w.split_once('-') {
        Some((a, b)) if valid(a).is_some() && valid(b).is_some() && a != b => Ok(()),
        _ => Err(ApiError::BadRequest(format!(
            "$.window: expected HH:MM-HH:MM (e.g. 22:00-06:00), found \"{w}\""
        ))),
    }
}

/// A worker's self-description as it joins.
fn worker_spec(body: &[u8]) -> Result<WorkerSpec, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let text = |k: &str| v[k].as_str().map(str::to_string);
    let num = |k: &str, default: i64| -> Result<i64, ApiError> {
        match &v[k] {
            Value::Null => Ok(default),
            n => n.as_i64().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::BadRequest(format!("$.{k}: expected a positive integer, found {n}"))
            }),
        }
    };
    let name = text("name")
        .filter(|n| !n.trim().is_empty() && n.len() <= 128)
        .ok_or_else(|| ApiError::BadRequest("$.name: expected the worker's name".into()))?;
    let version = text("version")
        .ok_or_else(|| ApiError::BadRequest("$.version: expected the worker's version".into()))?;
    let labels = match &v["labels"] {
        Value::Null => Vec::new(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(ApiError::BadRequest(format!(
                    "$.labels.{k}: expected a string, found {other}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(ApiError::BadRequest(format!(
                "$.labels: expected an object of strings, found {other}"
            )));
        }
    };
    let window = text("window");
    if let Some(w) = &window {
        check_window(w)?;
    }
    Ok(WorkerSpec {
        name,
        cpu_millis: num("cpuMillis", 1000)?,
        memory_mib: num("memoryMib", 1024)?,
        max_apps: num("maxApps", 8)?,
        labels,
        window,
        version,
    })
}

/// Whether a worker of `version` may join this management role (same major and minor).
fn compatible(version: &str) -> bool {
    let mine: Vec<&str> = env!("CARGO_PKG_VERSION").split('.').take(2).collect();
    let theirs: Vec<&str> = version.split('.').take(2).collect();
    mine == theirs
}

impl Api {
    /// Deployments over this API's store.
    pub fn deployer(&self) -> crate::deploy::Deployer {
        crate::deploy::Deployer {
            apps: self.apps.clone(),
            deployments: self.deployments.clone(),
            workers: self.workers.clone(),
        }
    }

    /// Answers a request: admin routes need `admin`; the worker routes check the join token.
    pub async fn handle(&self, req: &ApiRequest<'_>) -> Result<Response<Bytes>, ApiError> {
        if !req.admin && !is_public_route(req.path) {
            return Err(ApiError::Unauthorized);
        }
        let segments: Vec<String> = req.path.trim_matches('/').split('/').map(decode).collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let m = req.method;
        match segs.as_slice() {
            ["api", "openapi.json"] if m == Method::GET => {
                let mut r = Response::new(Bytes::from_static(OPENAPI.as_bytes()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                Ok(r)
            }
            ["api", "apps"] if m == Method::GET => {
                let apps = self.apps.list().await?;
                let replicas = crate::front::table::replicas(&self.workers).await?;
                let mut list = Vec::with_capacity(apps.len());
                for a in &apps {
                    let mut v = app_json(a);
                    // Ready replicas of the live version, and the last minute's rates.
                    v["replicasReady"] = json!(
                        replicas
                            .iter()
                            .filter(|r| r.app == a.name && r.ready && r.version == a.active_version)
                            .count()
                    );
                    let (invocations, errors) = self.rates(&a.name, req.now_ms).await?;
                    v["invocationsPerMinute"] = json!(invocations);
                    v["errorsPerMinute"] = json!(errors);
                    list.push(v);
                }
                Ok(json_response(StatusCode::OK, &Value::Array(list)))
            }
            ["api", "apps", name] => self.app(req, name).await,
            ["api", "scm", "ca.pem"] if m == Method::GET => self.ca_certificate().await,
            ["api", "apps", name, "functions"] => {
                let app = self.existing(name).await?;
                self.functions(req, &app.name).await
            }
            ["api", "apps", name, rest @ ("files" | "changes"), more @ ..] => {
                let app = self.existing(name).await?;
                let mut segs = vec![*rest];
                segs.extend_from_slice(more);
                self.code_route(req, &app.name, &segs).await
            }
            ["api", "apps", name, "invocations", rest @ ..] => {
                let app = self.existing(name).await?;
                self.invocations_route(req, &app.name, rest).await
            }
            ["api", "apps", name, "stats"] => {
                let app = self.existing(name).await?;
                self.stats_route(req, &app.name).await
            }
            ["api", "workers", id, "apps", app, "telemetry"] => {
                let worker = self.worker_by_token(req, id).await?;
                self.placed_on(app, id).await?;
                self.report(req, app, &worker.spec.name).await
            }
            ["api", "apps", name, "test"] => {
                let app = self.existing(name).await?;
                self.test_request(req, &app.name).await
            }
            ["api", "portal", "users", rest @ ..] => self.portal_users(req, rest).await,
            [
                "api",
                "apps",
                name,
                rest @ ("publishing" | "publishprofile" | "deployments" | "rollback"),
                more @ ..,
            ] => {
                let app = self.existing(name).await?;
                let mut segs = vec![*rest];
                segs.extend_from_slice(more);
                self.publishing_route(req, &app.name, &segs).await
            }
            ["api", "apps", name, "settings"] if m == Method::GET => {
                let app = self.existing(name).await?;
                let settings = self.apps.settings(&app.name).await?;
                let map: serde_json::Map<String, Value> = settings
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                Ok(json_response(StatusCode::OK, &Value::Object(map)))
            }
            ["api", "apps", name, "settings", setting] => self.setting(req, name, setting).await,
            ["api", "apps", name, "versions"] => self.versions(req, name).await,
            ["api", "apps", name, "versions", number, "activate"] if m == Method::POST => {
                let app = self.existing(name).await?;
                let n: i64 = number.parse().map_err(|_| {
                    ApiError::BadRequest(format!("expected a version number, found \"{number}\""))
                })?;
                if !self
                    .apps
                    .versions(&app.name)
                    .await?
                    .iter()
                    .any(|v| v.number == n)
                {
                    return Err(ApiError::NotFound(format!(
                        "app {} has no version {n}",
                        app.name
                    )));
                }
                // Going back (or forth) to a version is a deployment like any other: it goes
                // live on every replica at once.
                let origin = stratus_store::DeployOrigin {
                    author: "api".into(),
                    author_email: String::new(),
                    deployer: "Rollback".into(),
                    message: format!("Activate version {n}"),
                };
                let deployer = self.deployer();
                let d = deployer.begin(&app.name, &origin, req.now_ms).await?;
                deployer.stage(&d, n, req.now_ms).await?;
                let d = self.deployments.get(&app.name, &d.id).await?;
                Ok(json_response(
                    StatusCode::ACCEPTED,
                    &json!({"deployment": d.as_ref().map(|d| d.id.clone()), "version": n, "status": d.map(|d| d.status as i64)}),
                ))
            }
            ["api", "tokens"] if m == Method::POST => {
                let v: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
                let name = v["name"]
                    .as_str()
                    .filter(|n| !n.trim().is_empty())
                    .ok_or_else(|| {
                        ApiError::BadRequest("expected {\"name\": \"...\"} naming the token".into())
                    })?;
                let (id, token) = self.workers.create_token(name, req.now_ms).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"id": id, "name": name, "token": token}),
                ))
            }
            ["api", "tokens"] if m == Method::GET => {
                let tokens = self.workers.tokens().await?;
                let list: Vec<Value> = tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "name": t.name, "createdAt": t.created_ms, "revokedAt": t.revoked_ms}))
                    .collect();
                Ok(json_response(StatusCode::OK, &Value::Array(list)))
            }
            ["api", "tokens", id] if m == Method::DELETE => {
                if !self.workers.revoke_token(id, req.now_ms).await? {
                    return Err(ApiError::NotFound(format!("no live token {id}")));
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            ["api", "workers", "join"] if m == Method::POST => {
                let token_id = match req.bearer {
                    Some(t) => self.workers.admit(t).await?,
                    None => None,
                }
                .ok_or(ApiError::Unauthorized)?;
                let spec = worker_spec(req.body)?;
                if !compatible(&spec.version) {
                    return Err(ApiError::Conflict(format!(
                        "worker version {} cannot join management version {}: major and minor versions must match",
                        spec.version,
                        env!("CARGO_PKG_VERSION")
                    )));
                }
                let id = self.workers.join(&spec, &token_id, req.now_ms).await?;
                Ok(json_response(StatusCode::CREATED, &json!({"id": id})))
            }
            ["api", "workers", id, "heartbeat"] if m == Method::POST => {
                // Only with the token the worker joined with, while it is live.
                self.worker_by_token(req, id).await?;
                // Its status: what it runs, where (kept as reported, at most 64 KiB of JSON).
                let status = if req.body.is_empty() {
                    "{}".to_string()
                } else {
                    match serde_json::from_slice::<Value>(req.body) {
                        Ok(v @ Value::Object(_)) if req.body.len() <= 64 << 10 => v.to_string(),
                        _ => {
                            return Err(ApiError::BadRequest(
                                "the heartbeat's body must be a JSON object of at most 64 KiB"
                                    .into(),
                            ));
                        }
                    }
                };
                if !self.workers.heartbeat(id, &status, req.now_ms).await? {
                    return Err(ApiError::Gone(format!(
                        "worker {id} was removed: join again"
                    )));
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            ["api", "apps", name, "keys", rest @ ..] => {
                let app = self.existing(name).await?;
                self.keys_route(req, &app.name, rest).await
            }
            [
                "api",
                "workers",
                id,
                "apps",
                app,
                section @ ("keys" | "leases" | "timers"),
                rest @ ..,
            ] => {
                self.worker_by_token(req, id).await?;
                // Only the keys of apps placed on it.
                self.placed_on(app, id).await?;
                if *section == "keys" {
                    self.keys_route(req, app, rest).await
                } else {
                    let mut path = vec![*section];
                    path.extend_from_slice(rest);
                    self.state_route(req, app, &path).await
                }
            }
            ["api", "workers", id, "leave"] if m == Method::POST => {
                // A worker shutting down: it drains (its replicas move, each once its
                // replacement is ready); once nothing is placed on it, it is forgotten.
                self.worker_by_token(req, id).await?;
                self.workers.set_draining(id, true).await?;
                let placed = self
                    .workers
                    .placements()
                    .await?
                    .iter()
                    .filter(|(_, w, _)| w == id)
                    .count();
                let removed = placed == 0 && self.workers.remove(id).await?;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"placed": placed, "removed": removed}),
                ))
            }
            ["api", "workers", id, "assignments"] if m == Method::GET => {
                // A long poll: with `known` (the digest of what the worker has) and `wait`
                // (seconds, at most 25), the answer comes when the assignments change, or as
                // 304 when they have not within the wait.
                self.worker_by_token(req, id).await?;
                let known = query_value(req.query, "known");
                let wait = query_value(req.query, "wait")
                    .and_then(|w| w.parse::<u64>().ok())
                    .unwrap_or(0)
                    .min(25);
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
                loop {
                    let list = Value::Array(self.assignments(id).await?);
                    let digest = stratus_store::apps::sha256_hex(list.to_string().as_bytes());
                    if known != Some(digest.as_str()) {
                        let mut r = json_response(StatusCode::OK, &list);
                        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{digest}\"")) {
                            r.headers_mut().insert(header::ETAG, v);
                        }
                        return Ok(r);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Ok(empty(StatusCode::NOT_MODIFIED));
                    }
                    tokio::time::sleep(ASSIGNMENT_POLL).await;
                }
            }
            ["api", "workers", id, "packages", sha] if m == Method::GET => {
                self.worker_by_token(req, id).await?;
                // Only the packages of the apps placed on it.
                let allowed = self
                    .assignments(id)
                    .await?
                    .iter()
                    .any(|a| a["sha256"] == *sha);
                if !allowed {
                    return Err(ApiError::NotFound(format!(
                        "no package {sha} among this worker's assignments"
                    )));
                }
                self.package(sha).await
            }
            ["api", "workers"] if m == Method::GET => {
                let workers = self.workers.list().await?;
                let replicas = crate::front::table::replicas(&self.workers).await?;
                let list = workers
                    .iter()
                    .map(|w| {
                        let mut v = worker_json(w, req.now_ms);
                        // What each app's processes use there, as its heartbeat said.
                        let status: Value = serde_json::from_str(&w.status).unwrap_or(Value::Null);
                        let usage = |app: &str, version: Option<i64>| {
                            status["hosts"]
                                .as_array()
                                .and_then(|hosts| {
                                    hosts.iter().find(|h| {
                                        h["app"] == app && h["version"].as_i64() == version
                                    })
                                })
                                .map_or(Value::Null, |h| h["usage"].clone())
                        };
                        v["apps"] = replicas
                            .iter()
                            .filter(|r| r.worker_id == w.id)
                            .map(|r| {
                                json!({"app": r.app, "version": r.version, "url": r.url, "ready": r.ready, "usage": usage(&r.app, r.version)})
                            })
                            .collect();
                        v
                    })
                    .collect();
                Ok(json_response(StatusCode::OK, &Value::Array(list)))
            }
            ["api", "workers", id, "drain"] if m == Method::POST => {
                if !self.workers.set_draining(id, true).await? {
                    return Err(ApiError::NotFound(format!("no worker {id}")));
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            ["api", "workers", id] if m == Method::DELETE => {
                if !self.workers.remove(id).await? {
                    return Err(ApiError::NotFound(format!("no worker {id}")));
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            ["api", "placements"] if m == Method::GET => {
                let list: Vec<Value> = crate::front::table::replicas(&self.workers)
                    .await?
                    .into_iter()
                    .map(|r| {
                        json!({
                            "app": r.app,
                            "workerName": r.worker_name,
                            "workerId": r.worker_id,
                            "since": r.since_ms,
                            "version": r.version,
                            "url": r.url,
                            "ready": r.ready,
                        })
                    })
                    .collect();
                Ok(json_response(StatusCode::OK, &Value::Array(list)))
            }
            ["api", "packages", sha] if m == Method::GET => self.package(sha).await,
            ["api", "apps"]
            | ["api", "tokens"]
            | ["api", "tokens", _]
            | ["api", "workers"]
            | ["api", "workers", _]
            | ["api", "workers", _, _]
            | ["api", "apps", _, "settings"]
            | ["api", "apps", _, "versions", _, "activate"]
            | ["api", "packages", _]
            | ["api", "placements"]
            | ["api", "openapi.json"] => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound(format!(
                "no such resource: {}",
                req.path
            ))),
        }
    }

    /// Checks that the bearer token is the live join token worker `id` joined with.
    /// Whether `app` is placed on worker `id` (404 otherwise).
    async fn placed_on(&self, app: &str, id: &str) -> Result<(), ApiError> {
        let placed = self
            .workers
            .placements()
            .await?
            .iter()
            .any(|(a, w, _)| a == app && w == id);
        if !placed {
            return Err(ApiError::NotFound(format!(
                "app {app} is not placed on worker {id}"
            )));
        }
        Ok(())
    }

    async fn worker_by_token(
        &self,
        req: &ApiRequest<'_>,
        id: &str,
    ) -> Result<WorkerRecord, ApiError> {
        let token_id = match req.bearer {
            Some(t) => self.workers.admit(t).await?,
            None => None,
        }
        .ok_or(ApiError::Unauthorized)?;
        let worker = self
            .workers
            .get(id)
            .await?
            .ok_or_else(|| ApiError::Gone(format!("worker {id} was removed: join again")))?;
        if worker.token_id != token_id {
            return Err(ApiError::Unauthorized);
        }
        Ok(worker)
    }

    /// What worker `id` runs: each placed app's active version, package and settings (its
    /// own apps' settings only).
    async fn assignments(&self, id: &str) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for (app, worker, since) in self.workers.placements().await? {
            if worker != id {
                continue;
            }
            let Some(record) = self.apps.get(&app).await? else {
                continue;
            };
            let Some(active) = record.active_version else {
                continue;
            };
            let versions = self.apps.versions(&app).await?;
            let Some(version) = versions.iter().find(|v| v.number == active) else {
                continue;
            };
            let settings: serde_json::Map<String, Value> = self
                .apps
                .settings(&app)
                .await?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            out.push(json!({
                "app": app,
                "version": version.number,
                "sha256": version.sha256,
                "size": version.size,
                "since": since,
                "settings": settings,
            }));
            // A version being deployed runs beside the live one until it goes live.
            if let Some(d) = self.deployments.unfinished(&app).await?
                && d.status == stratus_store::DeployStatus::Deploying
                && let Some(staged) = d.version.filter(|v| *v != active)
                && let Some(v) = versions.iter().find(|v| v.number == staged)
            {
                out.push(json!({
                    "app": app,
                    "version": v.number,
                    "sha256": v.sha256,
                    "size": v.size,
                    "since": since,
                    "settings": settings,
                    "staged": true,
                }));
            }
        }
        Ok(out)
    }

    /// A stored package as `application/zip`.
    async fn package(&self, sha: &str) -> Result<Response<Bytes>, ApiError> {
        let content = self
            .apps
            .package(sha)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no package {sha}")))?;
        let mut r = Response::new(Bytes::from(content));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/zip"),
        );
        Ok(r)
    }

    async fn existing(&self, name: &str) -> Result<AppRecord, ApiError> {
        let name = stratus_model::app_name::normalize(name).map_err(ApiError::NotFound)?;
        self.apps
            .get(&name)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no app named {name}")))
    }

    async fn app(&self, req: &ApiRequest<'_>, name: &str) -> Result<Response<Bytes>, ApiError> {
        match *req.method {
            Method::GET => {
                let app = self.existing(name).await?;
                Ok(json_response(StatusCode::OK, &app_json(&app)))
            }
            Method::PUT => {
                let name =
                    stratus_model::app_name::normalize(name).map_err(ApiError::BadRequest)?;
                match self.apps.get(&name).await? {
                    None => {
                        let scale = scale_of(req.body, Scale::default())?;
                        if !self.apps.create(&name, &scale, req.now_ms).await? {
                            return Err(ApiError::Conflict(format!(
                                "app {name} was created meanwhile"
                            )));
                        }
                        let app = self.existing(&name).await?;
                        Ok(json_response(StatusCode::CREATED, &app_json(&app)))
                    }
                    Some(existing) => {
                        let base = Scale {
                            min_replicas: existing.min_replicas,
                            max_replicas: existing.max_replicas,
                            labels: existing.labels,
                        };
                        let scale = scale_of(req.body, base)?;
                        self.apps.set_scale(&name, &scale, req.now_ms).await?;
                        let app = self.existing(&name).await?;
                        Ok(json_response(StatusCode::OK, &app_json(&app)))
                    }
                }
            }
            Method::DELETE => {
                let app = self.existing(name).await?;
                self.apps.delete(&app.name).await?;
                self.drop_keys(&app.name).await?;
                self.drop_queues(&app.name).await?;
                self.telemetry.forget(&app.name).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    async fn setting(
        &self,
        req: &ApiRequest<'_>,
        name: &str,
        setting: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        let app = self.existing(name).await?;
        match *req.method {
            Method::PUT => {
                if setting.is_empty() || setting.contains(['=', '\0']) {
                    return Err(ApiError::BadRequest(format!(
                        "\"{setting}\" cannot be a setting name (empty, or with '=' or NUL)"
                    )));
                }
                let value = std::str::from_utf8(req.body)
                    .map_err(|_| ApiError::BadRequest("the value is not UTF-8 text".into()))?;
                self.apps
                    .set_setting(&app.name, setting, value, req.now_ms)
                    .await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Method::DELETE => {
                if !self
                    .apps
                    .delete_setting(&app.name, setting, req.now_ms)
                    .await?
                {
                    return Err(ApiError::NotFound(format!(
                        "app {} has no setting {setting}",
                        app.name
                    )));
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    async fn versions(
        &self,
        req: &ApiRequest<'_>,
        name: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        let app = self.existing(name).await?;
        match *req.method {
            Method::GET => {
                let versions = self.apps.versions(&app.name).await?;
                Ok(json_response(
                    StatusCode::OK,
                    &Value::Array(versions.iter().map(version_json).collect()),
                ))
            }
            Method::POST => {
                if !req.body.starts_with(b"PK\x03\x04") && !req.body.starts_with(b"PK\x05\x06") {
                    return Err(ApiError::BadRequest(
                        "the body is not a zip archive (expected the app's files zipped, as for zip deploy)".into(),
                    ));
                }
                let activate = query_value(req.query, "activate").is_none_or(|v| v != "false");
                let message = query_value(req.query, "message")
                    .map(decode)
                    .unwrap_or_default();
                let author = query_value(req.query, "author")
                    .map(decode)
                    .unwrap_or_else(|| "api".into());
                let sha = stratus_store::apps::sha256_hex(req.body);
                if !activate {
                    crate::package::validate(req.body).map_err(|e| {
                        ApiError::BadRequest(format!("The package was refused: {e}"))
                    })?;
                    let sha = self.apps.put_package(req.body, req.now_ms).await?;
                    let number = self
                        .apps
                        .add_version(&app.name, &sha, &author, &message, false, req.now_ms)
                        .await?
                        .ok_or_else(|| ApiError::NotFound(format!("no app named {}", app.name)))?;
                    return Ok(json_response(
                        StatusCode::CREATED,
                        &json!({"number": number, "sha256": sha, "size": req.body.len(), "active": false}),
                    ));
                }
                let origin = stratus_store::DeployOrigin {
                    author,
                    author_email: String::new(),
                    deployer: "stratus".into(),
                    message,
                };
                let deployer = self.deployer();
                let d = deployer.begin(&app.name, &origin, req.now_ms).await?;
                let number = match deployer.store(&d, req.body, req.now_ms).await {
                    Ok(n) => n,
                    Err(e @ crate::deploy::DeployError::Refused(_)) => return Err(e.into()),
                    Err(e) => {
                        let _ = deployer.fail(&d, &e.to_string(), crate::now_ms()).await;
                        return Err(e.into());
                    }
                };
                let d = self.deployments.get(&app.name, &d.id).await?;
                let live = d
                    .as_ref()
                    .is_some_and(|d| d.status == stratus_store::DeployStatus::Success);
                Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"number": number, "sha256": sha, "size": req.body.len(), "active": live,
                        "deployment": d.as_ref().map(|d| d.id.clone()), "status": d.map(|d| d.status as i64)}),
                ))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_queries() {
        let s = scale_of(
            br#"{"minReplicas": 2, "maxReplicas": 3, "labels": {"zone": "a"}}"#,
            Scale::default(),
        )
        .unwrap();
        assert_eq!((s.min_replicas, s.max_replicas), (2, 3));
        assert_eq!(s.labels, vec![("zone".to_string(), "a".to_string())]);
        assert!(
            scale_of(br#"{"minReplicas": 3}"#, Scale::default())
                .unwrap_err()
                .to_string()
                .contains("above")
        );
        assert!(
            scale_of(br#"{"replicas": 3}"#, Scale::default())
                .unwrap_err()
                .to_string()
                .contains("unknown property")
        );
        assert!(scale_of(br#"{"labels": {"a": 1}}"#, Scale::default()).is_err());
        assert_eq!(scale_of(b"  ", Scale::default()).unwrap(), Scale::default());
        assert_eq!(
            query_value(Some("a=1&message=hi%20there"), "message")
                .map(decode)
                .as_deref(),
            Some("hi there")
        );
        assert_eq!(decode("a%2Fb+c%"), "a/b c%");
    }

    #[test]
    fn workers_describe_themselves() {
        let s = worker_spec(br#"{"name": "box", "version": "0.1.9", "labels": {"zone": "a"}, "window": "22:00-06:00", "maxApps": 3}"#).unwrap();
        assert_eq!((s.max_apps, s.cpu_millis), (3, 1000));
        assert!(
            worker_spec(br#"{"name": "box", "version": "0.1.0", "window": "25:00-06:00"}"#)
                .is_err()
        );
        assert!(
            worker_spec(br#"{"name": "box", "version": "0.1.0", "window": "22:00-22:00"}"#)
                .is_err()
        );
        assert!(
            worker_spec(br#"{"version": "0.1.0"}"#)
                .unwrap_err()
                .to_string()
                .contains("$.name")
        );
        assert!(worker_spec(br#"{"name": "b", "version": "0.1.0", "maxApps": 0}"#).is_err());
        assert!(compatible(env!("CARGO_PKG_VERSION")));
        assert!(!compatible("99.0.0"));
        assert!(is_worker_route("/api/workers/join"));
        assert!(is_worker_route("/api/workers/abc/heartbeat"));
        assert!(is_worker_route("/api/workers/abc/assignments"));
        assert!(is_worker_route("/api/workers/abc/packages/00ff"));
        assert!(!is_worker_route("/api/workers/abc"));
    }

    #[test]
    fn the_openapi_document_is_json() {
        let v: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(v["openapi"], "3.0.3");
        assert!(v["paths"]["/api/apps/{name}/versions"]["post"].is_object());
    }
}
