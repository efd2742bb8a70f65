//! The portal's editor: an app's live files listed and read, and a set of changes to them
//! (files written or deleted, templates' new functions) checked and deployed as a new
//! version, refused with what is wrong per file when a `host.json` or `function.json` it
//! touches is invalid.

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use serde_json::{Value, json};
use stratus_store::DeployOrigin;

use crate::api::{Api, ApiError, ApiRequest, json_response};
use crate::app_files::{self, Change, FilesError};

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::BadPath(_) => ApiError::BadRequest(e.to_string()),
            FilesError::Store(e) => ApiError::Store(e),
            FilesError::Unreadable(_) | FilesError::Build(_) => ApiError::Conflict(e.to_string()),
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("json") => "application/json",
        Some("js" | "mjs" | "cjs" | "ts") => "text/javascript; charset=utf-8",
        Some("py" | "txt" | "md" | "sh" | "toml" | "cfg" | "ini" | "ps1") => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// Reads `{baseVersion, message, files: [{path, content} | {path, delete: true}]}`.
fn changes_of(body: &[u8]) -> Result<(Option<i64>, String, Vec<Change>), ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let base = match &v["baseVersion"] {
        Value::Null => None,
        b => Some(b.as_i64().ok_or_else(|| {
            ApiError::BadRequest("$.baseVersion: expected a version number or null".into())
        })?),
    };
    let message = v["message"].as_str().unwrap_or("").trim().to_string();
    let files = v["files"]
        .as_array()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::BadRequest("$.files: expected a list of changed files".into()))?;
    let mut changes: Vec<Change> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let path = f["path"]
            .as_str()
            .ok_or_else(|| ApiError::BadRequest(format!("$.files[{i}].path: expected a string")))?;
        app_files::check_path(path)?;
        if changes.iter().any(|(p, _)| p == path) {
            return Err(ApiError::BadRequest(format!(
                "$.files[{i}]: {path} is changed twice"
            )));
        }
        let content = match (&f["content"], f["delete"].as_bool().unwrap_or(false)) {
            (Value::String(c), false) => Some(c.as_bytes().to_vec()),
            (Value::Null, true) => None,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "$.files[{i}]: expected \"content\" (a string) or \"delete\": true"
                )));
            }
        };
        changes.push((path.to_string(), content));
    }
    Ok((base, message, changes))
}

/// What is wrong with the app after `changes`, per file: an invalid package (host.json
/// first of all) or an invalid `function.json` among the functions the changes touch.
fn problems(package: &[u8], changes: &[Change]) -> Vec<(String, String)> {
    let info = match crate::package::validate(package) {
        Ok(info) => info,
        Err(e) => {
            let text = e.to_string();
            let file = if text.contains("host.json") {
                "host.json"
            } else {
                ""
            };
            return vec![(file.to_string(), text)];
        }
    };
    info.functions
        .into_iter()
        .filter(|(name, _)| {
            changes
                .iter()
                .any(|(p, _)| p.split('/').next() == Some(name.as_str()))
        })
        .filter_map(|(name, outcome)| outcome.err().map(|e| (format!("{name}/function.json"), e)))
        .collect()
}

impl Api {
    /// `GET /api/apps/{app}/files[/{path}]`, `POST /api/apps/{app}/changes`.
    pub(crate) async fn code_route(
        &self,
        req: &ApiRequest<'_>,
        app: &str,
        rest: &[&str],
    ) -> Result<Response<Bytes>, ApiError> {
        match (req.method, rest) {
            (&Method::GET, ["files"]) => {
                let live = app_files::live(&self.apps, app).await?;
                let (version, files) = match &live {
                    Some(l) => (Some(l.version), l.files()?),
                    None => (None, Vec::new()),
                };
                let files: Vec<Value> = files
                    .into_iter()
                    .map(|(path, size)| json!({"path": path, "size": size}))
                    .collect();
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"version": version, "files": files}),
                ))
            }
            (&Method::GET, ["files", path @ ..]) if !path.is_empty() => {
                let path = path.join("/");
                app_files::check_path(&path)?;
                let live = app_files::live(&self.apps, app)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("{app} has no live version")))?;
                let content = live
                    .read(&path)?
                    .ok_or_else(|| ApiError::NotFound(format!("{app} has no file {path}")))?;
                let tag = format!(
                    "\"{}-{}\"",
                    live.version,
                    &stratus_store::apps::sha256_hex(&content)[..16]
                );
                let mut r = Response::new(Bytes::from(content));
                for (k, v) in [
                    (header::CONTENT_TYPE, content_type(&path).to_string()),
                    (header::ETAG, tag),
                    (
                        header::HeaderName::from_static("x-stratus-version"),
                        live.version.to_string(),
                    ),
                ] {
                    if let Ok(v) = http::HeaderValue::from_str(&v) {
                        r.headers_mut().insert(k, v);
                    }
                }
                Ok(r)
            }
            (&Method::POST, ["changes"]) => self.change(req, app).await,
            (_, ["files", ..] | ["changes"]) => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound("no such route".into())),
        }
    }

    async fn change(&self, req: &ApiRequest<'_>, app: &str) -> Result<Response<Bytes>, ApiError> {
        let (base, message, changes) = changes_of(req.body)?;
        let live = app_files::live(&self.apps, app).await?;
        let live_version = live.as_ref().map(|l| l.version);
        if base != live_version {
            return Err(ApiError::Conflict(format!(
                "the files changed meanwhile: version {} is live, not {}",
                live_version.map_or("none".into(), |v| v.to_string()),
                base.map_or("none".into(), |v| v.to_string())
            )));
        }
        let package = app_files::rebuild(live.as_ref().map(|l| &l.zip[..]), &changes)?;
        let problems = problems(&package, &changes);
        if !problems.is_empty() {
            let summary = problems
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ApiError::Invalid(summary, problems));
        }
        let message = if message.is_empty() {
            let names: Vec<&str> = changes.iter().map(|(p, _)| p.as_str()).collect();
            format!("Changed {}", names.join(", "))
        } else {
            message
        };
        let origin = DeployOrigin {
            author: "portal".into(),
            author_email: String::new(),
            deployer: "Portal".into(),
            message,
        };
        let deployer = self.deployer();
        let d = deployer.begin(app, &origin, req.now_ms).await?;
        // Another version may have gone live since the files were read (no other deployment
        // can start now that this one has).
        let now_live = self.apps.get(app).await?.and_then(|a| a.active_version);
        if now_live != live_version {
            let reason = "another version went live while the change was prepared";
            let _ = deployer.fail(&d, reason, crate::now_ms()).await;
            return Err(ApiError::Conflict(format!(
                "the files changed meanwhile: {reason}"
            )));
        }
        let version = match deployer.store(&d, &package, req.now_ms).await {
            Ok(v) => v,
            Err(crate::deploy::DeployError::Refused(reason)) => {
                return Err(ApiError::Invalid(
                    reason.clone(),
                    vec![(String::new(), reason)],
                ));
            }
            Err(e) => {
                let _ = deployer.fail(&d, &e.to_string(), crate::now_ms()).await;
                return Err(e.into());
            }
        };
        Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({"deployment": d.id, "version": version}),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_sets_are_read_strictly() {
        let ok = json!({"baseVersion": 3, "message": "m", "files": [
            {"path": "a/x.py", "content": "x"}, {"path": "b/y.py", "delete": true}]});
        let (base, message, changes) = changes_of(ok.to_string().as_bytes()).unwrap();
        assert_eq!((base, message.as_str()), (Some(3), "m"));
        assert_eq!(changes[1], ("b/y.py".to_string(), None));
        for bad in [
            json!({"files": []}),
            json!({"files": [{"path": "../x", "content": ""}]}),
            json!({"files": [{"path": "a", "content": 5}]}),
            json!({"files": [{"path": "a", "content": ""}, {"path": "a", "delete": true}]}),
            json!({"baseVersion": "x", "files": [{"path": "a", "content": ""}]}),
        ] {
            assert!(changes_of(bad.to_string().as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn problems_name_the_file() {
        let host = (
            "host.json".to_string(),
            Some(br#"{"version": "2.0"}"#.to_vec()),
        );
        let bad_fn = (
            "hello/function.json".to_string(),
            Some(br#"{"bindings": [{"type": "httpTrigger"}]}"#.to_vec()),
        );
        let package = app_files::rebuild(None, &[host.clone(), bad_fn.clone()]).unwrap();
        let p = problems(&package, &[bad_fn]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "hello/function.json");
        assert!(p[0].1.contains("$.bindings[0]"), "{}", p[0].1);
        // An untouched broken function does not block other changes.
        let other = ("other/run.py".to_string(), Some(b"".to_vec()));
        assert!(problems(&package, &[other]).is_empty());
        let bad_host = (
            "host.json".to_string(),
            Some(br#"{"version": "1.0"}"#.to_vec()),
        );
        let package = app_files::rebuild(None, std::slice::from_ref(&bad_host)).unwrap();
        let p = problems(&package, &[bad_host]);
        assert_eq!(p[0].0, "host.json");
    }
}
