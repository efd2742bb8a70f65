//! `GET /admin/functions[/{name}[/status]]`: function metadata and load errors.

use std::path::Path;

use http::{Request, StatusCode};
use serde_json::{Map, Value, json};

use super::base_url;
use crate::Host;
use crate::app::Function;
use crate::http::response::{HostError, HttpResponse, json as json_response};
use stratus_model::route::table::{effective_route, full_template};

/// `/admin/vfs/...` link of a path inside the app.
fn vfs_href(base: &str, path: &Path, dir: bool) -> String {
    let rel = path.to_string_lossy();
    let rel = rel.trim_start_matches('/');
    format!("{base}/admin/vfs/{rel}{}", if dir { "/" } else { "" })
}

fn metadata(host: &Host, base: &str, f: &Function) -> Value {
    let invoke_url = f.config.http().map(|h| {
        let route = effective_route(&f.name, h);
        format!(
            "{base}/{}",
            full_template(&host.app.config.http.route_prefix, route)
        )
        .to_lowercase()
    });
    let is_direct = f
        .config
        .raw
        .get("configurationSource")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("attributes"));
    let mut m = Map::new();
    m.insert("name".into(), Value::String(f.name.clone()));
    m.insert(
        "script_root_path_href".into(),
        Value::String(vfs_href(base, &f.dir, true)),
    );
    m.insert(
        "script_href".into(),
        f.script_file
            .as_ref()
            .map_or(Value::Null, |p| Value::String(vfs_href(base, p, false))),
    );
    m.insert(
        "config_href".into(),
        Value::String(vfs_href(base, &f.dir.join("function.json"), false)),
    );
    m.insert("test_data_href".into(), Value::Null);
    m.insert(
        "href".into(),
        Value::String(format!("{base}/admin/functions/{}", f.name)),
    );
    m.insert(
        "invoke_url_template".into(),
        invoke_url.map_or(Value::Null, Value::String),
    );
    // Language-worker apps report their runtime; custom handlers none.
    let language = match &host.app.config.custom_handler {
        None => host
            .app
            .settings
            .get("FUNCTIONS_WORKER_RUNTIME")
            .map_or(Value::Null, |l| {
                Value::String(l.trim().to_ascii_lowercase())
            }),
        Some(_) => Value::Null,
    };
    m.insert("language".into(), language);
    m.insert("config".into(), f.config.raw.clone());
    m.insert("files".into(), Value::Null);
    m.insert("test_data".into(), Value::Null);
    m.insert("isDisabled".into(), Value::Bool(f.disabled));
    m.insert("isDirect".into(), Value::Bool(is_direct));
    m.insert("isProxy".into(), Value::Bool(false));
    Value::Object(m)
}

pub fn list<B>(host: &Host, req: &Request<B>) -> HttpResponse {
    let base = base_url(req);
    let items: Vec<Value> = host
        .app
        .functions
        .iter()
        .map(|f| metadata(host, &base, f))
        .collect();
    json_response(StatusCode::OK, &Value::Array(items))
}

pub fn get<B>(host: &Host, req: &Request<B>, name: &str) -> Result<HttpResponse, HostError> {
    let f = host.app.function(name).ok_or(HostError::NotFound)?;
    Ok(json_response(
        StatusCode::OK,
        &metadata(host, &base_url(req), f),
    ))
}

pub fn status(host: &Host, name: &str) -> Result<HttpResponse, HostError> {
    if let Some(e) = host.app.function_errors(name) {
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "errors": e.errors }),
        ));
    }
    host.app.function(name).ok_or(HostError::NotFound)?;
    Ok(json_response(StatusCode::OK, &json!({})))
}
