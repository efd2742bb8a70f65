//! The encryption key for secrets at rest: from a value, a file, or generated on first start
//! into the data directory (readable by its owner only).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use stratus_store::EncryptionKey;

use crate::config::KeySource;

/// Files others can read are refused unless this is set to 1.
const ALLOW_READABLE: &str = "STRATUS_ALLOW_WORLD_READABLE_SECRETS";

fn read_key_file(path: &Path) -> anyhow::Result<EncryptionKey> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the encryption key file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 && std::env::var(ALLOW_READABLE).as_deref() != Ok("1")
    {
        bail!(
            "the encryption key file {} can be read by other users (mode {:o}); run `chmod 600` on it, or set {ALLOW_READABLE}=1",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the encryption key file {}", path.display()))?;
    EncryptionKey::from_base64(&text).with_context(|| format!("in {}", path.display()))
}

/// Loads the key, creating the default one when needed.
pub fn encryption_key(source: &KeySource) -> anyhow::Result<EncryptionKey> {
    match source {
        KeySource::Value(v) => {
            EncryptionKey::from_base64(v).context("in STRATUS_ENCRYPTION_KEY / encryption_key")
        }
        KeySource::File(p) => read_key_file(p),
        KeySource::Default(p) => {
            if !p.exists() {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let key = EncryptionKey::generate()?;
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(p);
                match created {
                    Ok(mut f) => {
                        f.write_all(key.as_bytes())
                            .with_context(|| format!("cannot write {}", p.display()))?;
                        tracing::info!(path = %p.display(), "generated the key that encrypts secrets at rest; back it up with the data directory");
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot create {}", p.display()));
                    }
                }
            }
            read_key_file(p)
        }
    }
}

/// The management API's admin token: `STRATUS_ADMIN_TOKEN`, else the one in
/// `<data dir>/admin-token`, generated on first use (readable by its owner only); and where it
/// came from.
pub fn admin_token(data_dir: &Path) -> anyhow::Result<(String, String)> {
    if let Ok(t) = std::env::var("STRATUS_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok((t.trim().to_string(), "STRATUS_ADMIN_TOKEN".into()));
    }
    let p = data_dir.join("admin-token");
    if !p.exists() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let token = EncryptionKey::generate()?
            .trim_end_matches('=')
            .replace(['+', '/'], "x");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
        {
            Ok(mut f) => f
                .write_all(token.as_bytes())
                .with_context(|| format!("cannot write {}", p.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", p.display())),
        }
    }
    let meta = std::fs::metadata(&p).with_context(|| format!("cannot read {}", p.display()))?;
    if meta.permissions().mode() & 0o077 != 0 && std::env::var(ALLOW_READABLE).as_deref() != Ok("1")
    {
        bail!(
            "the admin token file {} can be read by other users; run `chmod 600` on it",
            p.display()
        );
    }
    let token =
        std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok((token.trim().to_string(), p.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_key_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/encryption.key");
        encryption_key(&KeySource::Default(p.clone())).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let first = std::fs::read_to_string(&p).unwrap();
        encryption_key(&KeySource::Default(p.clone())).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), first);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = encryption_key(&KeySource::File(p)).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
