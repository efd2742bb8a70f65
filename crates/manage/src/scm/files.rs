//! Kudu's settings and file routes: the app's settings (with what Azure adds for every app),
//! and the live version's files under `site/wwwroot` (read; a write or delete is a new
//! deployment, the package itself never changes).

use std::io::Read as _;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};
use stratus_store::{DeployOrigin, DeployStatus};

use super::{Scm, ScmRequest, error, read_body, reply};
use crate::app_files::Live;

/// A file's entity tag: the start of its content's SHA-256, quoted.
fn etag(content: &[u8]) -> String {
    format!("\"{}\"", &stratus_store::apps::sha256_hex(content)[..16])
}

fn time(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()))
        .unwrap_or(Value::Null)
}

fn mime(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("json") => "application/json",
        Some("js" | "mjs" | "cjs") => "text/javascript",
        Some("py" | "txt" | "md" | "ps1" | "sh" | "toml" | "cfg" | "ini") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("css") => "text/css",
        Some("xml") => "application/xml",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// The live package as a zip archive.
#[allow(
    clippy::result_large_err,
    reason = "the error is the response to give, made once per request"
)]
fn archive(live: &Live) -> Result<zip::ZipArchive<std::io::Cursor<&[u8]>>, Fail> {
    zip::ZipArchive::new(std::io::Cursor::new(&live.zip[..])).map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the live package cannot be read: {e}"),
        )
    })
}

/// Why a file route failed: the response to give.
type Fail = Response<Bytes>;

fn store_failed(e: impl std::fmt::Display) -> Fail {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the store failed: {e}"),
    )
}

impl Scm {
    /// `GET|POST /api/settings`, `GET|DELETE /api/settings/{key}`.
    pub(super) async fn settings(&self, req: &ScmRequest, body: Incoming) -> Response<Bytes> {
        let apps = &self.api.apps;
        let now = crate::now_ms();
        match (&req.method, req.segments.get(1)) {
            (&Method::GET, None) => match self.all_settings(&req.app).await {
                Ok(map) => reply(StatusCode::OK, &Value::Object(map)),
                Err(r) => r,
            },
            (&Method::GET, Some(key)) => match self.all_settings(&req.app).await {
                Ok(map) => match map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                    Some((_, v)) => reply(StatusCode::OK, v),
                    None => error(
                        StatusCode::NOT_FOUND,
                        format!("The setting '{key}' does not exist."),
                    ),
                },
                Err(r) => r,
            },
            (&Method::POST, None) => {
                let body = match read_body(body, 1 << 20).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let pairs: Vec<(String, String)> = match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Object(o))
                        if o.contains_key("key") && o.contains_key("value") && o.len() == 2 =>
                    {
                        vec![(
                            o["key"].as_str().unwrap_or_default().to_string(),
                            o["value"]
                                .as_str()
                                .map_or_else(|| o["value"].to_string(), str::to_string),
                        )]
                    }
                    Ok(Value::Object(o)) => o
                        .into_iter()
                        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                        .collect(),
                    _ => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "expected a JSON object of setting names and values",
                        );
                    }
                };
                for (k, v) in pairs {
                    if k.is_empty() {
                        return error(StatusCode::BAD_REQUEST, "a setting needs a name");
                    }
                    if let Err(e) = apps.set_setting(&req.app, &k, &v, now).await {
                        return store_failed(e);
                    }
                }
                crate::api::empty(StatusCode::NO_CONTENT)
            }
            (&Method::DELETE, Some(key)) => match apps.delete_setting(&req.app, key, now).await {
                Ok(_) => crate::api::empty(StatusCode::NO_CONTENT),
                Err(e) => store_failed(e),
            },
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here"),
        }
    }

    /// The app's settings as Kudu shows them: its own, and what Azure sets for every app
    /// unless the app says otherwise.
    async fn all_settings(&self, app: &str) -> Result<Map<String, Value>, Fail> {
        let own = self.api.apps.settings(app).await.map_err(store_failed)?;
        let mut map = Map::new();
        let defaults = [
            ("WEBSITE_SITE_NAME", app.to_string()),
            ("WEBSITE_RUN_FROM_PACKAGE", "1".to_string()),
            ("FUNCTIONS_EXTENSION_VERSION", "~4".to_string()),
            (
                "AzureWebJobsStorage",
                format!(
                    "DefaultEndpointsProtocol=http;AccountName={app};QueueEndpoint={}/queues/{app}",
                    self.config.api_url.trim_end_matches('/')
                ),
            ),
        ];
        for (k, v) in defaults {
            if !own.iter().any(|(o, _)| o.eq_ignore_ascii_case(k)) {
                map.insert(k.to_string(), Value::String(v));
            }
        }
        for (k, v) in own {
            map.insert(k, Value::String(v));
        }
        Ok(map)
    }

    async fn live(&self, app: &str) -> Result<Option<Live>, Fail> {
        crate::app_files::live(&self.api.apps, app)
            .await
            .map_err(store_failed)
    }

    /// `/api/vfs/site/wwwroot/...`: the live version's files.
    pub(super) async fn vfs(&self, req: &ScmRequest, body: Incoming) -> Response<Bytes> {
        let segs: Vec<&str> = req.segments[1..].iter().map(String::as_str).collect();
        let (["site", "wwwroot", rest @ ..] | ["home", "site", "wwwroot", rest @ ..]) =
            segs.as_slice()
        else {
            return error(
                StatusCode::NOT_FOUND,
                format!("'/{}' not found: only site/wwwroot is kept", segs.join("/")),
            );
        };
        let path = rest.join("/");
        let directory =
            path.is_empty() || req.url.split('?').next().is_some_and(|u| u.ends_with('/'));
        let result = match req.method {
            Method::GET | Method::HEAD => self.read_file(req, &path, directory).await,
            Method::PUT if directory => Err(error(
                StatusCode::CONFLICT,
                "directories exist as their files do: PUT the files",
            )),
            Method::PUT | Method::DELETE => self.change_file(req, &path, body).await,
            _ => Err(error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here",
            )),
        };
        result.unwrap_or_else(|r| r)
    }

    async fn read_file(
        &self,
        req: &ScmRequest,
        path: &str,
        directory: bool,
    ) -> Result<Response<Bytes>, Fail> {
        let Some(live) = self.live(&req.app).await? else {
            return Err(error(StatusCode::NOT_FOUND, "the app has no live version"));
        };
        let mut archive = archive(&live)?;
        if !directory
            && let Ok(mut f) = archive.by_name(path)
            && !f.is_dir()
        {
            let mut content = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0));
            f.read_to_end(&mut content)
                .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("{path}: {e}")))?;
            let tag = etag(&content);
            let mut r = Response::new(Bytes::from(content));
            for (k, v) in [
                (header::CONTENT_TYPE, mime(path).to_string()),
                (header::ETAG, tag),
            ] {
                if let Ok(v) = http::HeaderValue::from_str(&v) {
                    r.headers_mut().insert(k, v);
                }
            }
            return Ok(r);
        }
        // A directory: its direct children.
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{}/", path.trim_end_matches('/'))
        };
        let mut children: std::collections::BTreeMap<String, Option<u64>> =
            std::collections::BTreeMap::new();
        for i in 0..archive.len() {
            let Ok(f) = archive.by_index_raw(i) else {
                continue;
            };
            let Some(rest) = f.name().strip_prefix(&prefix) else {
                continue;
            };
            match rest.split_once('/') {
                Some((dir, _)) if !dir.is_empty() => {
                    children.insert(format!("{dir}/"), None);
                }
                None if !rest.is_empty() => {
                    children.insert(rest.to_string(), Some(f.size()));
                }
                _ => {}
            }
        }
        if children.is_empty() && !path.is_empty() {
            return Err(error(StatusCode::NOT_FOUND, format!("'{path}' not found.")));
        }
        let base = format!("{}/api/vfs/site/wwwroot/{prefix}", req.base);
        let list: Vec<Value> = children
            .into_iter()
            .map(|(name, size)| {
                let dir = size.is_none();
                let shown = name.trim_end_matches('/').to_string();
                json!({
                    "name": shown,
                    "size": size.unwrap_or(0),
                    "mtime": time(live.created_ms),
                    "crtime": time(live.created_ms),
                    "mime": if dir { "inode/directory" } else { mime(&shown) },
                    "href": format!("{base}{name}"),
                    "path": format!("/home/site/wwwroot/{prefix}{name}"),
                })
            })
            .collect();
        Ok(reply(StatusCode::OK, &Value::Array(list)))
    }

    /// A PUT or DELETE of one file: the live package with that change, deployed (run from
    /// package: the files themselves never change). `If-Match` guards existing files.
    async fn change_file(
        &self,
        req: &ScmRequest,
        path: &str,
        body: Incoming,
    ) -> Result<Response<Bytes>, Fail> {
        if path.split('/').any(|p| p == ".." || p == ".") || path.starts_with('/') {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("'{path}' is not a path inside the app"),
            ));
        }
        let content = match req.method {
            Method::PUT => Some(read_body(body, crate::api::PACKAGE_LIMIT).await?),
            _ => None,
        };
        let Some(live) = self.live(&req.app).await? else {
            return Err(error(
                StatusCode::NOT_FOUND,
                "the app has no live version to change",
            ));
        };
        let mut archive = archive(&live)?;
        let current = match archive.by_name(path) {
            Ok(mut f) if !f.is_dir() => {
                let mut c = Vec::new();
                f.read_to_end(&mut c).map_err(|e| {
                    error(StatusCode::INTERNAL_SERVER_ERROR, format!("{path}: {e}"))
                })?;
                Some(c)
            }
            _ => None,
        };
        let if_match = req
            .headers
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok());
        let precondition = |tag: &str| {
            if_match.is_some_and(|m| m.trim() == "*" || m.split(',').any(|t| t.trim() == tag))
        };
        match (&current, &content) {
            (None, None) => {
                return Err(error(StatusCode::NOT_FOUND, format!("'{path}' not found.")));
            }
            (Some(c), _) if !precondition(&etag(c)) => {
                let mut r = error(
                    StatusCode::PRECONDITION_FAILED,
                    "the file exists: send If-Match with its ETag (or *) to change it",
                );
                if let Ok(v) = http::HeaderValue::from_str(&etag(c)) {
                    r.headers_mut().insert(header::ETAG, v);
                }
                return Err(r);
            }
            _ => {}
        }
        // The new package: every other entry as it was, then the new content.
        let package = crate::app_files::rebuild(
            Some(&live.zip),
            &[(path.to_string(), content.as_ref().map(|c| c.to_vec()))],
        )
        .map_err(|e| match e {
            crate::app_files::FilesError::BadPath(_) => {
                error(StatusCode::BAD_REQUEST, e.to_string())
            }
            e => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        })?;
        let origin = DeployOrigin {
            author: req.author.clone(),
            author_email: String::new(),
            deployer: "VFS".into(),
            message: format!(
                "{} /home/site/wwwroot/{path}",
                if content.is_some() {
                    "Wrote"
                } else {
                    "Deleted"
                }
            ),
        };
        let engine = self.api.deployer();
        let d = match engine.begin(&req.app, &origin, crate::now_ms()).await {
            Ok(d) => d,
            Err(crate::deploy::DeployError::Busy(id)) => {
                return Err(error(
                    StatusCode::CONFLICT,
                    format!("a deployment is in progress ({id})"),
                ));
            }
            Err(e) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        };
        match engine.store(&d, &package, crate::now_ms()).await {
            Ok(_) => {}
            Err(crate::deploy::DeployError::Refused(reason)) => {
                return Err(error(StatusCode::BAD_REQUEST, reason));
            }
            Err(e) => {
                let _ = engine.fail(&d, &e.to_string(), crate::now_ms()).await;
                return Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
            }
        }
        let deadline = crate::now_ms() + self.config.deploy_timeout_ms + 10_000;
        loop {
            match self
                .api
                .deployments
                .get(&req.app, &d.id)
                .await
                .map_err(store_failed)?
            {
                Some(done) if done.complete => {
                    if done.status != DeployStatus::Success {
                        return Err(error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("deployment {} of the change failed: see its log", d.id),
                        ));
                    }
                    break;
                }
                _ if crate::now_ms() > deadline => {
                    return Err(error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("deployment {} did not finish in time", d.id),
                    ));
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        let status = match (&current, &content) {
            (None, Some(_)) => StatusCode::CREATED,
            (Some(_), Some(_)) => StatusCode::NO_CONTENT,
            _ => StatusCode::OK,
        };
        let mut r = crate::api::empty(status);
        if let Some(c) = &content
            && let Ok(v) = http::HeaderValue::from_str(&etag(c))
        {
            r.headers_mut().insert(header::ETAG, v);
        }
        Ok(r)
    }
}
