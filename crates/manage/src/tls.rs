//! HTTPS for the publishing endpoint: a certificate the operator supplies, or one issued on
//! first start by a certificate authority of the cluster's own (kept in the store, so every
//! management process serves the same one; its certificate is exported for clients to trust).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use stratus_store::{Certificate, SqlPublishing};

/// The store's name of the cluster's certificate authority.
const CA: &str = "scm-ca";

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Certificate(String),
    #[error("the store failed: {0}")]
    Store(#[from] stratus_store::Error),
}

/// What the listener serves with, and the authority's certificate clients should trust
/// (none when the operator supplied the certificate).
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: Option<String>,
}

fn bad(e: impl std::fmt::Display) -> TlsError {
    TlsError::Certificate(e.to_string())
}

fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("the certificate is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad("the certificate file holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| bad(format!("the private key is not PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(bad)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(format!("the certificate and key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// HTTPS with the operator's certificate chain and key (PEM files).
pub fn supplied(
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
) -> Result<ServerTls, TlsError> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| bad(format!("{}: {e}", p.display())))
    };
    Ok(ServerTls {
        config: server_config(&read(cert_path)?, &read(key_path)?)?,
        ca_pem: None,
    })
}

/// The authority's certificate fields (the same every time: its key makes it unique).
fn ca_params() -> Result<rcgen::CertificateParams, TlsError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Stratus publishing CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(params)
}

fn new_ca() -> Result<Certificate, TlsError> {
    let key = rcgen::KeyPair::generate().map_err(bad)?;
    let cert = ca_params()?.self_signed(&key).map_err(bad)?;
    Ok(Certificate {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn new_server(ca: &Certificate, names: &[String]) -> Result<Certificate, TlsError> {
    let ca_key = rcgen::KeyPair::from_pem(&ca.key_pem).map_err(bad)?;
    // The issuer as it signs: its name and key (what a chain is checked by).
    let issuer = ca_params()?.self_signed(&ca_key).map_err(bad)?;
    let key = rcgen::KeyPair::generate().map_err(bad)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(bad)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2044, 1, 1);
    let cert = params.signed_by(&key, &issuer, &ca_key).map_err(bad)?;
    Ok(Certificate {
        cert_pem: format!("{}{}", cert.pem(), ca.cert_pem),
        key_pem: key.serialize_pem(),
    })
}

/// HTTPS with a certificate for `names` (DNS names or IP addresses) issued by the cluster's
/// authority, both made on first use and kept in the store.
pub async fn generated(
    publishing: &SqlPublishing,
    names: &[String],
    now_ms: i64,
) -> Result<ServerTls, TlsError> {
    let ca = match publishing.certificate(CA).await? {
        Some(ca) => ca,
        None => publishing.put_certificate(CA, &new_ca()?, now_ms).await?,
    };
    let mut sorted = names.to_vec();
    sorted.sort();
    sorted.dedup();
    // One certificate per set of names: processes serving other names get their own.
    let id = format!(
        "scm-server-{}",
        &stratus_store::apps::sha256_hex(sorted.join(",").as_bytes())[..16]
    );
    let server = match publishing.certificate(&id).await? {
        Some(s) => s,
        None => {
            publishing
                .put_certificate(&id, &new_server(&ca, names)?, now_ms)
                .await?
        }
    };
    Ok(ServerTls {
        config: server_config(&server.cert_pem, &server.key_pem)?,
        ca_pem: Some(ca.cert_pem),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_certificate_is_read_from_files_and_checked() {
        let ca = new_ca().unwrap();
        let server = new_server(&ca, &["stratus.example.test".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, &server.cert_pem).unwrap();
        std::fs::write(&key, &server.key_pem).unwrap();
        let tls = supplied(&cert, &key).unwrap();
        assert!(tls.ca_pem.is_none());
        // A key that is not the certificate's, or no PEM at all, is refused with the reason.
        let other = new_ca().unwrap();
        std::fs::write(&key, &other.key_pem).unwrap();
        let e = supplied(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("do not go together"), "{e}");
        std::fs::write(&cert, "not pem").unwrap();
        let e = supplied(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("no certificate") || e.contains("PEM"), "{e}");
    }

    #[test]
    fn a_generated_server_certificate_chains_to_the_authority() {
        use rustls::client::danger::ServerCertVerifier as _;
        let ca = new_ca().unwrap();
        let server = new_server(&ca, &["*.scm.example.test".into(), "127.0.0.1".into()]).unwrap();
        assert!(
            server.cert_pem.ends_with(&ca.cert_pem),
            "the chain carries the CA"
        );
        server_config(&server.cert_pem, &server.key_pem).unwrap();
        // The server certificate verifies against the authority as a client would check it.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let leaf = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("shop.scm.example.test").unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], rustls::pki_types::UnixTime::now())
            .unwrap();
        let other = rustls::pki_types::ServerName::try_from("shop.example.test").unwrap();
        assert!(
            verifier
                .verify_server_cert(&leaf, &[], &other, &[], rustls::pki_types::UnixTime::now())
                .is_err()
        );
    }
}
