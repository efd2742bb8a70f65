//! What publishing needs kept: each app's publishing credential (a salt and the hash of the
//! password, never the password) and the management role's TLS certificates (private keys
//! encrypted at rest), shared by every management process.

use crate::crypto::EncryptionKey;
use crate::db::Backend;
use crate::db::on_pool;
use crate::error::Result;

/// A publishing credential as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub salt: String,
    /// Lower-case hex SHA-256 of the password.
    pub hash: String,
    pub updated_ms: i64,
}

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Credentials and certificates of the store.
#[derive(Debug, Clone)]
pub struct SqlPublishing {
    pub(crate) backend: Backend,
    pub(crate) key: EncryptionKey,
}

fn context(name: &str) -> Vec<u8> {
    format!("certificate\0{name}").into_bytes()
}

impl SqlPublishing {
    /// The publishing password of `app` for credential `salt`: derived from the store's key,
    /// so only its hash is kept, yet a publish profile can show it again.
    pub fn password(&self, app: &str, salt: &str) -> String {
        use base64::Engine as _;
        let secret = self
            .key
            .derive(format!("publishing password\0{app}\0{salt}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    }

    /// The publishing credential of `app`, if one was made.
    pub async fn credential(&self, app: &str) -> Result<Option<Credential>> {
        let row: Option<(String, String, i64)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT salt, hash, updated_at FROM publishing_credentials WHERE app = $1",
            )
            .bind(app)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(salt, hash, updated_ms)| Credential {
            salt,
            hash,
            updated_ms,
        }))
    }

    /// Sets `app`'s credential; with `replace` false an existing one stays. The credential
    /// in force afterwards.
    pub async fn set_credential(
        &self,
        app: &str,
        salt: &str,
        hash: &str,
        replace: bool,
        now_ms: i64,
    ) -> Result<Credential> {
        let sql = if replace {
            "INSERT INTO publishing_credentials (app, salt, hash, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (app) DO UPDATE SET salt = $2, hash = $3, updated_at = $4"
        } else {
            "INSERT INTO publishing_credentials (app, salt, hash, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (app) DO NOTHING"
        };
        on_pool!(&self.backend, |pool| {
            sqlx::query(sql)
                .bind(app)
                .bind(salt)
                .bind(hash)
                .bind(now_ms)
                .execute(pool)
                .await?;
        });
        self.credential(app).await?.ok_or_else(|| {
            crate::Error::Corrupt(format!("publishing credential of {app} vanished"))
        })
    }

    /// Certificate `name`, if stored.
    pub async fn certificate(&self, name: &str) -> Result<Option<Certificate>> {
        let row: Option<(String, Vec<u8>)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as("SELECT cert_pem, key_sealed FROM certificates WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        match row {
            None => Ok(None),
            Some((cert_pem, sealed)) => {
                let key = self.key.open(&sealed, &context(name))?;
                Ok(Some(Certificate {
                    cert_pem,
                    key_pem: String::from_utf8(key).map_err(|_| {
                        crate::Error::Corrupt(format!("key of certificate {name} is not text"))
                    })?,
                }))
            }
        }
    }

    /// Stores certificate `name` unless one is there already; the one stored afterwards
    /// (another management process may have been first).
    pub async fn put_certificate(
        &self,
        name: &str,
        cert: &Certificate,
        now_ms: i64,
    ) -> Result<Certificate> {
        let sealed = self.key.seal(cert.key_pem.as_bytes(), &context(name))?;
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO certificates (name, cert_pem, key_sealed, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(&cert.cert_pem)
            .bind(&sealed)
            .bind(now_ms)
            .execute(pool)
            .await?;
        });
        self.certificate(name)
            .await?
            .ok_or_else(|| crate::Error::Corrupt(format!("certificate {name} vanished")))
    }
}
