//! The publishing endpoint: Kudu's SCM API per app, as Azure's deployment tools call it
//! (zip deploy, OneDeploy, deployment status and logs, app settings, the app's files), on
//! `{app}.scm.{domain}` or under `/scm/{app}/` on one machine, with Basic auth by the app's
//! publishing credential, over HTTPS.

mod deployments;
mod files;
pub mod profile;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::api::Api;

/// How the endpoint is reached from outside, for the URLs it gives out.
#[derive(Debug, Clone)]
pub struct ScmConfig {
    /// Apps are `{app}.scm.{domain}`.
    pub domain: String,
    /// The port clients reach the endpoint on.
    pub port: u16,
    pub https: bool,
    /// An app's URL through the front door, with `{app}` in place of its name.
    pub app_url: String,
    /// The management API's URL (the apps' queue service is under `/queues/{app}`).
    pub api_url: String,
    /// How long a synchronous deployment is waited for.
    pub deploy_timeout_ms: i64,
}

impl ScmConfig {
    /// `{app}.scm.{domain}:{port}` as publish profiles give it.
    pub fn publish_host(&self, app: &str) -> String {
        format!("{app}.scm.{}:{}", self.domain, self.port)
    }

    pub fn app_url(&self, app: &str) -> String {
        self.app_url.replace("{app}", app)
    }
}

/// The SCM endpoint over the management API's store.
#[derive(Debug, Clone)]
pub struct Scm {
    pub api: Api,
    pub publishing: stratus_store::SqlPublishing,
    pub token: crate::AdminToken,
    pub config: ScmConfig,
}

/// A request as the routes see it: the app, the Kudu path (`api/...` or legacy, without
/// the leading slash), and the URL the client reached the app's endpoint at.
pub(crate) struct ScmRequest {
    pub app: String,
    pub method: Method,
    pub segments: Vec<String>,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// `https://{app}.scm.{domain}:{port}` or `https://host/scm/{app}`: the base of the
    /// URLs given out.
    pub base: String,
    /// The full URL of this request.
    pub url: String,
    pub author: String,
}

impl ScmRequest {
    pub fn query(&self, key: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.eq_ignore_ascii_case(key)
                .then(|| stratus_model::text::url_decode(&v.replace('+', " ")))
        })
    }

    pub fn flag(&self, key: &str) -> bool {
        self.query(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

/// A Kudu-style error: `{"Message": ...}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response<Bytes> {
    let message = message.into();
    if status.is_server_error() {
        tracing::error!("publishing endpoint: {message}");
    }
    crate::api::json_response(status, &json!({ "Message": message }))
}

/// The app and Kudu path a request is for: by host name (`{app}.scm.{domain}`) or path
/// (`/scm/{app}/...`); the base URL's path part.
fn target(host: Option<&str>, path: &str, domain: &str) -> Option<(String, String, String)> {
    let host = host.map(|h| {
        let name = match h.find(']') {
            Some(end) => &h[..=end],
            None => match h.rsplit_once(':') {
                Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => h,
            },
        };
        name.trim_end_matches('.').to_ascii_lowercase()
    });
    let suffix = format!(".scm.{}", domain.to_ascii_lowercase());
    if let Some(app) = host.as_deref().and_then(|h| h.strip_suffix(&suffix))
        && !app.is_empty()
        && !app.contains('.')
    {
        return Some((
            app.to_string(),
            path.trim_start_matches('/').to_string(),
            String::new(),
        ));
    }
    let rest = path.strip_prefix("/scm/")?;
    let (app, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if app.is_empty() {
        return None;
    }
    Some((
        app.to_ascii_lowercase(),
        rest.to_string(),
        format!("/scm/{app}"),
    ))
}

/// The user name a Basic `Authorization` header carries and its password.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Scm {
    /// Who is calling for `app`: `$app` with the app's publishing password (or the FTP
    /// form `app\$app`), or the admin token as a bearer token. The author name.
    async fn authorise(
        &self,
        app: &str,
        headers: &HeaderMap,
    ) -> Result<Option<String>, Response<Bytes>> {
        if self.token.admits(headers.get(header::AUTHORIZATION)) {
            return Ok(Some("admin".into()));
        }
        let Some((user, password)) = basic(headers) else {
            return Ok(None);
        };
        let user_app = user
            .rsplit_once('\\')
            .map_or(user.as_str(), |(_, u)| u)
            .strip_prefix('$')
            .unwrap_or_default()
            .to_ascii_lowercase();
        if user_app != app {
            return Ok(None);
        }
        let credential = self.publishing.credential(app).await.map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the store failed: {e}"),
            )
        })?;
        let Some(credential) = credential else {
            return Ok(None);
        };
        let presented = stratus_store::apps::sha256_hex(password.as_bytes());
        Ok(same(presented.as_bytes(), credential.hash.as_bytes()).then(|| format!("${app}")))
    }

    /// Answers one request.
    pub async fn answer(&self, req: hyper::Request<Incoming>) -> Response<Bytes> {
        let (parts, body) = req.into_parts();
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(parts.uri.host())
            .map(str::to_string);
        let Some((app, rest, prefix)) =
            target(host.as_deref(), parts.uri.path(), &self.config.domain)
        else {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "address an app's publishing endpoint as {{app}}.scm.{} or /scm/{{app}}/",
                    self.config.domain
                ),
            );
        };
        let author = match self.authorise(&app, &parts.headers).await {
            Ok(Some(author)) => author,
            Ok(None) => {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "the app's publishing credential is required (Basic auth, user $app)",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Basic realm=\"site\""),
                );
                return r;
            }
            Err(r) => return r,
        };
        match self.api.apps.get(&app).await {
            Ok(Some(_)) => {}
            Ok(None) => return error(StatusCode::NOT_FOUND, format!("no app named {app}")),
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the store failed: {e}"),
                );
            }
        }
        let scheme = if self.config.https { "https" } else { "http" };
        let authority = host.unwrap_or_else(|| self.config.publish_host(&app));
        let base = format!("{scheme}://{authority}{prefix}");
        let url = format!(
            "{scheme}://{authority}{}",
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(stratus_model::text::url_decode)
            .collect();
        // Every route also exists without the `/api` prefix (Kudu's legacy paths).
        if segments
            .first()
            .is_some_and(|s| s.eq_ignore_ascii_case("api"))
        {
            segments.remove(0);
        }
        let req = ScmRequest {
            app,
            method: parts.method,
            segments,
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            base,
            url,
            author,
        };
        let first = req
            .segments
            .first()
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        match first.as_str() {
            "zipdeploy" | "publish" => self.deploy(&req, body).await,
            "deployments" => self.deployments(&req, body).await,
            "settings" => self.settings(&req, body).await,
            "vfs" => self.vfs(&req, body).await,
            _ => error(
                StatusCode::NOT_FOUND,
                format!("no such publishing route: /{}", req.segments.join("/")),
            ),
        }
    }
}

/// Reads a request body of at most `limit` bytes; the error is the response to give.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<Bytes>> {
    use http_body_util::BodyExt as _;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {e}"),
        )),
    }
}

pub(crate) fn reply(status: StatusCode, v: &Value) -> Response<Bytes> {
    crate::api::json_response(status, v)
}

/// Serves the endpoint on `listener` (HTTPS with `tls`, plain HTTP without) until
/// `shutdown` completes. A client gets 10 s for the TLS handshake and 30 s to send a request's
/// head.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<crate::tls::ServerTls>,
    scm: Scm,
    shutdown: impl std::future::Future<Output = ()>,
) {
    const WHAT: &str = "publishing endpoint";
    let head = Some(std::time::Duration::from_secs(30));
    let scm = Arc::new(scm);
    let answer = move |req| {
        let scm = scm.clone();
        async move { Ok::<_, Infallible>(scm.answer(req).await.map(Full::new)) }
    };
    match tls {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
            let handshake = move |stream: tokio::net::TcpStream| {
                let acceptor = acceptor.clone();
                async move {
                    let limit = std::time::Duration::from_secs(10);
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(session)) => Some(session),
                        Ok(Err(e)) => {
                            tracing::debug!("{WHAT}: TLS handshake failed: {e}");
                            None
                        }
                        Err(_) => None,
                    }
                }
            };
            stratus_storage::serve::serve_connections(
                listener, WHAT, shutdown, head, handshake, answer,
            )
            .await;
        }
        None => {
            let plain = |stream: tokio::net::TcpStream| std::future::ready(Some(stream));
            stratus_storage::serve::serve_connections(
                listener, WHAT, shutdown, head, plain, answer,
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_by_host_name_or_path() {
        let d = "stratus.test";
        assert_eq!(
            target(Some("shop.scm.stratus.test:443"), "/api/zipdeploy", d),
            Some(("shop".into(), "api/zipdeploy".into(), String::new()))
        );
        assert_eq!(
            target(Some("Shop.SCM.stratus.test"), "/zipdeploy", d).map(|t| t.0),
            Some("shop".into())
        );
        assert_eq!(
            target(Some("127.0.0.1:7443"), "/scm/shop/api/settings", d),
            Some(("shop".into(), "api/settings".into(), "/scm/shop".into()))
        );
        assert_eq!(target(Some("127.0.0.1:7443"), "/api/settings", d), None);
        assert_eq!(
            target(Some("a.b.scm.stratus.test"), "/api/settings", d),
            None
        );
    }

    #[test]
    fn basic_credentials() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic JHNob3A6cHc="),
        );
        assert_eq!(basic(&h), Some(("$shop".into(), "pw".into())));
        h.insert(
            header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer x"),
        );
        assert_eq!(basic(&h), None);
    }
}
