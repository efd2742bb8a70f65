//! A client of the management API for the commands that use it (`apps`, `tokens`,
//! `workers`): where it is, the admin token, errors as exit codes.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::ExitError;
use crate::config::{Config, ConfigFlags};

pub use stratus_model::text::url_encode as encode;

/// Longest a request to the management API may take (packages included).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Prints a JSON answer (nothing for an empty one).
pub fn print(v: &Value) {
    if !v.is_null() {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

/// Where the management API is, for the commands that call it.
#[derive(Debug, clap::Args)]
pub struct ApiFlags {
    /// The management API.
    #[arg(
        long,
        global = true,
        env = "STRATUS_MANAGE_URL",
        default_value = "http://127.0.0.1:7080"
    )]
    pub url: String,
    #[command(flatten)]
    pub config: ConfigFlags,
}

pub struct Client {
    authority: String,
    token: String,
    /// What to say when the token is refused.
    token_hint: &'static str,
}

/// `host:port` of an `http://host:port` URL.
fn authority(url: &str) -> Result<String, ExitError> {
    url.strip_prefix("http://")
        .map(|r| r.trim_end_matches('/').to_string())
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ExitError::Usage(anyhow::anyhow!("expected http://host:port, found {url}")))
}

impl Client {
    /// A client of the API at `--url` (`http://host:port`) with the admin token:
    /// `STRATUS_ADMIN_TOKEN`, else the data directory's `admin-token`.
    pub fn connect(flags: &ApiFlags) -> Result<Client, ExitError> {
        let authority = authority(&flags.url)?;
        let token = match std::env::var("STRATUS_ADMIN_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let config = Config::resolve(&flags.config, &crate::config::ProcessEnv)
                    .map_err(|e| ExitError::Config(e.into()))?;
                crate::secrets::admin_token(&config.data_dir)
                    .map_err(ExitError::Config)?
                    .0
            }
        };
        Ok(Client {
            authority,
            token,
            token_hint: "the admin token is STRATUS_ADMIN_TOKEN, or the admin-token file in the management role's data directory",
        })
    }

    /// A client of the API at `url` that presents `token` (a worker's join token).
    pub fn with_token(url: &str, token: &str) -> Result<Client, ExitError> {
        Ok(Client {
            authority: authority(url)?,
            token: token.to_string(),
            token_hint: "the join token is wrong or was revoked: create one with `stratus tokens create`",
        })
    }

    /// Sends a request; the JSON answer (null when empty), or the error as an exit code.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Value, ExitError> {
        let bytes = self.send_raw(method, path, body, content_type).await?;
        Ok(if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        })
    }

    /// Sends a request; the answer's bytes, or the error as an exit code.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Bytes, ExitError> {
        // A connection that went quiet (a partition, a rebooted machine) fails the call rather
        // than hold it forever; long polls wait at most 25 s.
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.exchange(method, path, body, content_type),
        )
        .await
        .map_err(|_| {
            ExitError::Unavailable(anyhow::anyhow!(
                "the management API at http://{} did not answer within {} s",
                self.authority,
                REQUEST_TIMEOUT.as_secs()
            ))
        })?
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Bytes, ExitError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| {
                ExitError::Unavailable(anyhow::anyhow!(
                    "cannot reach the management API at http://{} ({e}); is `stratus manage` running? (--url, STRATUS_MANAGE_URL)",
                    self.authority
                ))
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ExitError::Other(e.into()))?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ExitError::Other(e.into()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ExitError::Other(e.into()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ExitError::Other(e.into()))?
            .to_bytes();
        if status.is_success() {
            return Ok(bytes);
        }
        // A long poll that saw no change.
        if status == http::StatusCode::NOT_MODIFIED {
            return Ok(Bytes::new());
        }
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        let message = value["error"]["message"]
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        let e = anyhow::anyhow!("{status}: {message}");
        Err(match status.as_u16() {
            404 => ExitError::NotFound(e),
            400 | 409 | 413 => ExitError::Usage(e),
            401 => ExitError::Config(anyhow::anyhow!("{e} ({})", self.token_hint)),
            410 => ExitError::Gone(e),
            _ => ExitError::Other(e),
        })
    }
}
