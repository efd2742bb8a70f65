//! Opening an app directory and its keys, shared by `start` and `keys`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use stratus_host::{App, KeyBackend, KeyService, LoadOptions};
use stratus_store::{FileKeys, Store};

use crate::config::Config;

/// The name of this machine (for the default host id).
pub fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Loads the app at `dir` as `func start` would (environment + local.settings.json).
pub fn load(dir: &Path) -> Result<App, stratus_host::LoadError> {
    let opts = LoadOptions {
        // Stratus's own configuration (database URL, encryption key) never reaches function code.
        env: std::env::vars()
            .filter(|(k, _)| !k.starts_with("STRATUS_"))
            .collect(),
        use_local_settings: true,
        machine_name: machine_name(),
    };
    stratus_host::app::load(dir, &opts)
}

/// Keys are kept in Azure secrets files when the app asks for it
/// (`AzureWebJobsSecretStorageType=files`), otherwise in the store.
/// Opens (creating it if needed) the store the configuration names.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let key = crate::secrets::encryption_key(&config.encryption_key)?;
    if let Some(path) = config.database_url.strip_prefix("sqlite:")
        && let Some(parent) = Path::new(path.trim_start_matches("//")).parent()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Store::open(&config.database_url, key)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(&config.database_url)))
}

pub async fn open_keys(
    app: &App,
    config: &Config,
) -> anyhow::Result<(Arc<KeyService>, Option<Store>, String)> {
    let files = app
        .settings
        .get("AzureWebJobsSecretStorageType")
        .is_some_and(|t| t.eq_ignore_ascii_case("files"));
    let functions: Vec<&str> = app.functions.iter().map(|f| f.name.as_str()).collect();
    // A worker's host: the management role keeps the app's keys for all its replicas.
    if let Some(link) = crate::managed::Link::from_env() {
        let link = link.map_err(|e| anyhow::anyhow!(e))?;
        let place = link.place();
        let keys = KeyService::open(
            KeyBackend::Remote(crate::managed::ManagedKeys::new(link)),
            &functions,
        )
        .await
        .with_context(|| format!("cannot read the app's keys from {place}"))?;
        return Ok((keys, None, place));
    }
    if files {
        let dir = match app.settings.get("FUNCTIONS_SECRETS_PATH") {
            Some(p) => Path::new(p).to_path_buf(),
            None => config.data_dir.join("secrets").join(&app.host_id),
        };
        let hash = machine_name()
            .encode_utf16()
            .fold(23i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        let instance = format!("{:0>32}", format!("{:X}", hash as u32));
        let backend = KeyBackend::Files(FileKeys::new(&dir, instance, None));
        let keys = KeyService::open(backend, &functions)
            .await
            .with_context(|| format!("cannot open the secrets in {}", dir.display()))?;
        return Ok((keys, None, format!("secrets files in {}", dir.display())));
    }
    let store = open_store(config).await?;
    let backend = KeyBackend::Store {
        keys: store.keys(),
        app: app.host_id.clone(),
    };
    let keys = KeyService::open(backend, &functions)
        .await
        .context("cannot open the function keys")?;
    let place = format!(
        "the {} store ({})",
        store.engine(),
        redact(&config.database_url)
    );
    Ok((keys, Some(store), place))
}

/// A database URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redaction() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite:/x"), "sqlite:/x");
    }
}
