//! The admin API of the host (`/admin/...`): status, ping, functions, keys, file reads.

mod functions;
mod invoke;
mod vfs;

use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};
use stratus_model::AuthLevel;

use crate::http::response::{HostError, HttpResponse, empty, json as json_response};
use crate::http_data::path_decode;
use crate::{AuthMode, ExecutorStatus, Host};

/// The base URL of a request (`http://host:port`).
pub(crate) fn base_url<B>(req: &Request<B>) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

impl Host {
    /// Requires the master key (or an admin in relaxed mode): no or unknown key → 401,
    /// a valid key of another kind → 403.
    pub(crate) async fn authorize_admin<B>(&self, req: &Request<B>) -> Result<(), HostError> {
        if self.auth == AuthMode::Relaxed {
            return Ok(());
        }
        let Some(key) = crate::http::presented_key(req) else {
            return Err(HostError::AdminUnauthorized);
        };
        match self.keys.resolve_or_reload(&key, None).await {
            None => Err(HostError::AdminUnauthorized),
            Some(p) if p.level == AuthLevel::Admin => Ok(()),
            Some(_) => Err(HostError::Forbidden),
        }
    }

    fn status_json(&self) -> Value {
        let (state, error) = match self.executor.status() {
            ExecutorStatus::Ready => ("Running", None),
            ExecutorStatus::Starting => ("Initialized", None),
            ExecutorStatus::Down(reason) => ("Error", Some(reason)),
            ExecutorStatus::Stopped => ("Stopped", None),
        };
        let setting = |k: &str| self.app.settings.get(k).unwrap_or("").to_string();
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.app.host_id.clone()));
        m.insert("state".into(), Value::String(state.into()));
        m.insert("version".into(), Value::String(crate::HOST_VERSION.into()));
        m.insert(
            "versionDetails".into(),
            Value::String(format!(
                "Stratus {} (Azure Functions host {} compatible)",
                env!("CARGO_PKG_VERSION"),
                crate::HOST_VERSION
            )),
        );
        m.insert(
            "platformVersion".into(),
            Value::String(setting("WEBSITE_PLATFORM_VERSION")),
        );
        m.insert(
            "instanceId".into(),
            Value::String(setting("WEBSITE_INSTANCE_ID").chars().take(32).collect()),
        );
        m.insert(
            "computerName".into(),
            Value::String(setting("COMPUTERNAME")),
        );
        if let Some(e) = error {
            m.insert("errors".into(), json!([e]));
        }
        m.insert(
            "processUptime".into(),
            json!(self.started.elapsed().as_millis() as u64),
        );
        m.insert(
            "functionAppContentEditingState".into(),
            Value::String("Unknown".into()),
        );
        if let Some(Value::Object(bundle)) = self.app.config.raw.get("extensionBundle") {
            m.insert(
                "extensionBundle".into(),
                json!({"id": bundle.get("id"), "version": bundle.get("version")}),
            );
        }
        Value::Object(m)
    }
}

/// The header a ping answers with the state of the app's functions in (`ready`,
/// `starting`, `down`): how a worker tells a host that serves from one that cannot.
pub const EXECUTOR_STATE_HEADER: &str = "x-stratus-executor";

fn ping(host: &Host) -> HttpResponse {
    let mut r = empty(StatusCode::OK);
    let state = match host.executor.status() {
        ExecutorStatus::Ready => "ready",
        ExecutorStatus::Starting => "starting",
        ExecutorStatus::Down(_) | ExecutorStatus::Stopped => "down",
    };
    r.headers_mut()
        .insert(EXECUTOR_STATE_HEADER, HeaderValue::from_static(state));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store,no-cache"),
    );
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Answers a request below `/admin`.
pub async fn handle(host: &Host, req: Request<Incoming>) -> Result<HttpResponse, HostError> {
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(path_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let lower: Vec<String> = seg.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();

    if matches!(l.as_slice(), ["admin", "host", "ping"]) {
        return if method == Method::GET || method == Method::POST {
            Ok(ping(host))
        } else {
            Err(HostError::NotFound)
        };
    }
    host.authorize_admin(&req).await?;
    match (method.clone(), l.as_slice()) {
        (Method::GET, ["admin", "host", "status"]) => {
            Ok(json_response(StatusCode::OK, &host.status_json()))
        }
        (Method::GET, ["admin", "functions"]) => Ok(functions::list(host, &req)),
        (Method::GET, ["admin", "functions", _]) => functions::get(host, &req, seg[2]),
        (Method::GET, ["admin", "functions", _, "status"]) => functions::status(host, seg[2]),
        (Method::POST, ["admin", "functions", _]) => {
            let name = seg[2].to_string();
            invoke::invoke(host, req, &name).await
        }
        (_, ["admin", "functions", _, "keys", ..])
        | (_, ["admin", "host", "keys" | "functionkeys" | "systemkeys", ..]) => {
            crate::keys::api::handle(host, req, &seg).await
        }
        (Method::GET, ["admin", "vfs", ..]) => vfs::get(host, &req, &seg[2..]).await,
        _ => Err(HostError::NotFound),
    }
}
