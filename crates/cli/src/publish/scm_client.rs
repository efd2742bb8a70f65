//! A client of an app's publishing endpoint: HTTPS trusting the given authority (or plain
//! HTTP when the endpoint is), Basic auth, one connection per request.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::TokioIo;

use crate::ExitError;

/// Where an endpoint is and how to talk to it.
#[derive(Clone)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The path the routes are under (empty, or `/scm/{app}`).
    pub prefix: String,
    pub authorization: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.url())
    }
}

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

fn usage(text: String) -> ExitError {
    ExitError::Usage(anyhow::anyhow!(text))
}

impl Endpoint {
    /// The endpoint at `url` (`https://host[:port][/path]`), with a user and password,
    /// trusting the authority certificates in `ca_pem` for HTTPS.
    pub fn new(
        url: &str,
        user: &str,
        password: &str,
        ca_pem: Option<&str>,
    ) -> Result<Endpoint, ExitError> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(usage(format!(
                "expected an https:// (or http://) URL, found {url}"
            )));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p.parse::<u16>()
                    .map_err(|_| usage(format!("bad port in {url}")))?,
            ),
            _ => (authority.to_string(), if https { 443 } else { 80 }),
        };
        let tls = if https {
            use rustls::pki_types::pem::PemObject as _;
            let pem = ca_pem.ok_or_else(|| {
                usage("HTTPS needs the authority to trust: --ca FILE (the management role serves its own at /api/scm/ca.pem)".into())
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert =
                    cert.map_err(|e| usage(format!("the authority certificate is not PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| usage(format!("the authority certificate cannot be used: {e}")))?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| ExitError::Other(e.into()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(Endpoint {
            https,
            host,
            port,
            prefix: if path.trim_matches('/').is_empty() {
                String::new()
            } else {
                format!("/{}", path.trim_matches('/'))
            },
            authorization: format!("Basic {basic}"),
            tls,
        })
    }

    pub fn url(&self) -> String {
        format!(
            "{}://{}:{}{}",
            if self.https { "https" } else { "http" },
            self.host,
            self.port,
            self.prefix
        )
    }

    /// The path and query of a URL this endpoint gave out.
    pub fn path_of(&self, url: &str) -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        rest.find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string())
    }

    /// Sends `method path` (`path` under the endpoint's prefix unless `absolute`); status,
    /// headers and body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<(http::StatusCode, http::HeaderMap, Bytes), ExitError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            ExitError::Unavailable(anyhow::anyhow!("{}: {e}", self.url()))
        };
        // Names under `localhost` are the loopback (RFC 6761), whatever the resolver says.
        let connect_to = if self.host == "localhost" || self.host.ends_with(".localhost") {
            "127.0.0.1".to_string()
        } else {
            self.host.clone()
        };
        let tcp = tokio::net::TcpStream::connect((connect_to.as_str(), self.port))
            .await
            .map_err(|e| unavailable(&e))?;
        let _ = tcp.set_nodelay(true);
        let authority = format!("{}:{}", self.host, self.port);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &authority)
            .header(http::header::AUTHORIZATION, &self.authorization)
            .header(
                http::header::USER_AGENT,
                concat!("stratus/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body).map_err(|e| ExitError::Other(e.into()))?;
        let response = match &self.tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| usage(format!("{}: {e}", self.host)))?;
                let stream = tls.connect(name, tcp).await.map_err(|e| unavailable(&e))?;
                exchange(TokioIo::new(stream), request).await
            }
            None => exchange(TokioIo::new(tcp), request).await,
        }
        .map_err(|e| unavailable(&e))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| unavailable(&e))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }
}

async fn exchange<T>(
    io: TokioIo<T>,
    request: http::Request<Body>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    sender.send_request(request).await
}
