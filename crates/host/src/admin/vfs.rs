//! `GET /admin/vfs/{path}`: read-only access to the app's files (the links in function
//! metadata point here). Paths outside the app directory are refused.

use std::path::PathBuf;

use http::{Request, StatusCode};
use serde_json::{Value, json};

use super::base_url;
use crate::Host;
use crate::http::response::{HostError, HttpResponse, json as json_response, with_body};

/// Largest file served.
const MAX_FILE: u64 = 64 * 1024 * 1024;

pub async fn get<B>(
    host: &Host,
    req: &Request<B>,
    rest: &[&str],
) -> Result<HttpResponse, HostError> {
    let root = host.app.root.clone();
    let base = base_url(req);
    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || read(&root, &base, &rest))
        .await
        .map_err(|e| HostError::Internal(e.to_string()))?
}

fn read(root: &std::path::Path, base: &str, rest: &[String]) -> Result<HttpResponse, HostError> {
    if rest.iter().any(|s| s == ".." || s == ".") {
        return Err(HostError::BadRequest(
            "path segments '.' and '..' are not allowed".into(),
        ));
    }
    let wanted: PathBuf = std::iter::once("/")
        .chain(rest.iter().map(String::as_str).filter(|s| !s.is_empty()))
        .collect();
    let resolved = std::fs::canonicalize(&wanted).map_err(|_| HostError::NotFound)?;
    if !resolved.starts_with(root) {
        return Err(HostError::NotFound);
    }
    if resolved.is_dir() {
        let mut entries: Vec<Value> = Vec::new();
        let dir = std::fs::read_dir(&resolved).map_err(|e| HostError::Internal(e.to_string()))?;
        for entry in dir.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let p = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let href = format!(
                "{base}/admin/vfs/{}{}",
                p.to_string_lossy().trim_start_matches('/'),
                if meta.is_dir() { "/" } else { "" }
            );
            let mtime = meta
                .modified()
                .ok()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
            entries.push(json!({
                "name": name,
                "size": if meta.is_dir() { 0 } else { meta.len() },
                "mtime": mtime,
                "mime": if meta.is_dir() { "inode/directory" } else { "application/octet-stream" },
                "href": href,
                "path": p.to_string_lossy(),
            }));
        }
        entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        return Ok(json_response(StatusCode::OK, &Value::Array(entries)));
    }
    let meta = std::fs::metadata(&resolved).map_err(|_| HostError::NotFound)?;
    if !meta.is_file() {
        return Err(HostError::NotFound);
    }
    if meta.len() > MAX_FILE {
        return Err(HostError::BadRequest(format!(
            "the file is larger than {MAX_FILE} bytes"
        )));
    }
    let bytes = std::fs::read(&resolved).map_err(|_| HostError::NotFound)?;
    Ok(with_body(StatusCode::OK, "application/octet-stream", bytes))
}
