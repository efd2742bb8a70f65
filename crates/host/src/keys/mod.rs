//! Function keys of the app: resolving a presented key to an authorization level, and
//! managing keys (the admin key API and `stratus keys`).
//!
//! Keys live in the store (encrypted) or in Azure secrets files. The service keeps a
//! snapshot in memory, indexed by a SHA-256 of each value so that a lookup neither scans
//! nor compares secrets byte by byte; it reloads when the backing storage changes.

pub mod api;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use stratus_model::AuthLevel;
use stratus_model::keys::{KEY_RANDOM_BYTES, KeyKind, identifiable_key};
use stratus_store::{AppKeys, FileKeys, KeyScope, NamedKey, SqlKeys, Upsert};
use tokio::time::Instant;

use crate::executor::BoxFuture;

/// Name of the master key in API responses and claims.
pub const MASTER_KEY_NAME: &str = "_master";
/// Name of the key generated for the host and for each function.
pub const DEFAULT_KEY_NAME: &str = "default";

/// Where the keys are kept.
#[derive(Debug, Clone)]
pub enum KeyBackend {
    /// The store, under the app's host id.
    Store { keys: SqlKeys, app: String },
    /// Azure secrets files (`AzureWebJobsSecretStorageType=files`).
    Files(FileKeys),
    /// Kept elsewhere (the management role keeps a managed app's keys for all its replicas).
    Remote(Arc<dyn KeyStorage>),
}

/// Keys kept outside this process.
pub trait KeyStorage: Send + Sync + std::fmt::Debug {
    fn load(&self) -> BoxFuture<'_, Result<AppKeys, KeyError>>;
    /// Changes whenever a key changes.
    fn version(&self) -> BoxFuture<'_, Result<i64, KeyError>>;
    /// Writes a key; with `replace` false an existing key of that name is kept.
    fn put<'a>(
        &'a self,
        scope: KeyScope<'a>,
        name: &'a str,
        value: &'a str,
        replace: bool,
    ) -> BoxFuture<'a, Result<Upsert, KeyError>>;
    fn delete<'a>(
        &'a self,
        scope: KeyScope<'a>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, KeyError>>;
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key storage: {0}")]
    Store(#[from] stratus_store::Error),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("key storage: {0}")]
    Remote(String),
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub level: AuthLevel,
    /// Name of the key that matched (`master` for the master key).
    pub key_name: Option<String>,
}

impl Principal {
    pub const ANONYMOUS: Principal = Principal {
        level: AuthLevel::Anonymous,
        key_name: None,
    };

    pub fn admin() -> Principal {
        Principal {
            level: AuthLevel::Admin,
            key_name: Some("master".into()),
        }
    }
}

#[derive(Debug, Clone)]
enum Hit {
    Master,
    System(String),
    Host(String),
    Function { function: String, name: String },
}

#[derive(Debug, Default)]
struct Snapshot {
    keys: AppKeys,
    index: HashMap<[u8; 32], Vec<Hit>>,
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl Snapshot {
    fn new(keys: AppKeys) -> Snapshot {
        let mut index: HashMap<[u8; 32], Vec<Hit>> = HashMap::new();
        let mut add = |value: &str, hit: Hit| {
            if !value.is_empty() {
                index.entry(digest(value)).or_default().push(hit);
            }
        };
        if let Some(m) = &keys.master {
            add(m, Hit::Master);
        }
        for k in &keys.system_keys {
            add(&k.value, Hit::System(k.name.clone()));
        }
        for k in &keys.function_keys {
            add(&k.value, Hit::Host(k.name.clone()));
        }
        for (function, list) in &keys.functions {
            for k in list {
                add(
                    &k.value,
                    Hit::Function {
                        function: function.clone(),
                        name: k.name.clone(),
                    },
                );
            }
        }
        Snapshot { keys, index }
    }
}

/// The keys of one app.
#[derive(Debug)]
pub struct KeyService {
    backend: KeyBackend,
    snapshot: RwLock<Arc<Snapshot>>,
    version: AtomicI64,
    last_miss_reload: Mutex<Option<Instant>>,
    /// Serialises writes so that read-modify-write backends (files) do not lose updates.
    writes: tokio::sync::Mutex<()>,
    loading: tokio::sync::Mutex<()>,
}

/// Generates a new key value in Azure's identifiable format.
pub fn generate_key(kind: KeyKind) -> Result<String, KeyError> {
    let mut random = [0u8; KEY_RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(identifiable_key(kind, random))
}

/// How often a failed lookup may trigger a reload from storage.
const MISS_RELOAD_INTERVAL: Duration = Duration::from_millis(100);

impl KeyService {
    /// Opens the keys, creating the master key, a `default` host key and a `default` key for
    /// each of `functions` where missing (the host creates them lazily; doing it up front keeps
    /// writes off the request path).
    pub async fn open(
        backend: KeyBackend,
        functions: &[&str],
    ) -> Result<Arc<KeyService>, KeyError> {
        let svc = KeyService {
            backend,
            snapshot: RwLock::new(Arc::default()),
            version: AtomicI64::new(i64::MIN),
            last_miss_reload: Mutex::new(None),
            writes: tokio::sync::Mutex::new(()),
            loading: tokio::sync::Mutex::new(()),
        };
        let keys = svc.load().await?;
        if keys.master.is_none() {
            svc.write_default(KeyScope::Master, "master", &generate_key(KeyKind::Master)?)
                .await?;
        }
        if keys.master.is_none() && keys.function_keys.is_empty() {
            svc.write_default(
                KeyScope::HostFunction,
                DEFAULT_KEY_NAME,
                &generate_key(KeyKind::Function)?,
            )
            .await?;
        }
        for f in functions {
            if !keys.functions.contains_key(&f.to_ascii_lowercase()) {
                svc.write_default(
                    KeyScope::Function(f),
                    DEFAULT_KEY_NAME,
                    &generate_key(KeyKind::Function)?,
                )
                .await?;
            }
        }
        svc.reload().await?;
        Ok(Arc::new(svc))
    }

    async fn load(&self) -> Result<AppKeys, KeyError> {
        Ok(match &self.backend {
            KeyBackend::Store { keys, app } => keys.load(app).await?,
            KeyBackend::Files(f) => f.load().await?,
            KeyBackend::Remote(r) => r.load().await?,
        })
    }

    async fn storage_version(&self) -> Result<i64, KeyError> {
        Ok(match &self.backend {
            KeyBackend::Store { keys, app } => keys.version(app).await?,
            KeyBackend::Files(f) => f.version().await?,
            KeyBackend::Remote(r) => r.version().await?,
        })
    }

    /// Reads every key from storage again.
    pub async fn reload(&self) -> Result<(), KeyError> {
        // One load at a time, so an older read can never replace a newer snapshot.
        let _loading = self.loading.lock().await;
        let version = self.storage_version().await?;
        let keys = self.load().await?;
        *self.snapshot.write() = Arc::new(Snapshot::new(keys));
        self.version.store(version, Ordering::Release);
        Ok(())
    }

    /// Reloads if storage changed since the last load (keys edited by `stratus keys`, by
    /// another process, or in the secrets files).
    pub async fn refresh(&self) -> Result<bool, KeyError> {
        let version = self.storage_version().await?;
        if version == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Keeps the snapshot in step with storage until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(interval) => {
                    if let Err(e) = self.refresh().await {
                        tracing::warn!(error = %e, "cannot refresh function keys");
                    }
                }
            }
        }
    }

    /// The level granted by `key` for a request to `function` (None for admin routes).
    /// Order: master, system keys, host function keys, the function's own keys.
    pub fn resolve(&self, key: &str, function: Option<&str>) -> Option<Principal> {
        if key.is_empty() {
            return None;
        }
        let snap = self.snapshot.read().clone();
        let hits = snap.index.get(&digest(key))?;
        let rank = |h: &Hit| match h {
            Hit::Master => 0,
            Hit::System(_) => 1,
            Hit::Host(_) => 2,
            Hit::Function { .. } => 3,
        };
        hits.iter()
            .filter(|h| match h {
                Hit::Function { function: f, .. } => {
                    function.is_some_and(|name| name.eq_ignore_ascii_case(f))
                }
                _ => true,
            })
            .min_by_key(|h| rank(h))
            .map(|h| match h {
                Hit::Master => Principal::admin(),
                Hit::System(n) => Principal {
                    level: AuthLevel::System,
                    key_name: Some(n.clone()),
                },
                Hit::Host(n) | Hit::Function { name: n, .. } => Principal {
                    level: AuthLevel::Function,
                    key_name: Some(n.clone()),
                },
            })
    }

    /// Like [`resolve`](Self::resolve), but on a miss reloads from storage (at most once per
    /// 100 ms) and tries again, so that keys created elsewhere work at once.
    pub async fn resolve_or_reload(&self, key: &str, function: Option<&str>) -> Option<Principal> {
        if let Some(p) = self.resolve(key, function) {
            return Some(p);
        }
        {
            let mut last = self.last_miss_reload.lock();
            let now = Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < MISS_RELOAD_INTERVAL) {
                return None;
            }
            *last = Some(now);
        }
        match self.refresh().await {
            Ok(true) => self.resolve(key, function),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh function keys");
                None
            }
        }
    }

    /// The current keys.
    pub fn keys(&self) -> AppKeys {
        self.snapshot.read().keys.clone()
    }

    /// The keys of `function` (lower-cased lookup).
    pub fn function_keys(&self, function: &str) -> Vec<NamedKey> {
        self.snapshot
            .read()
            .keys
            .functions
            .get(&function.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    async fn write(
        &self,
        scope: KeyScope<'_>,
        name: &str,
        value: &str,
    ) -> Result<Upsert, KeyError> {
        Ok(match &self.backend {
            KeyBackend::Store { keys, app } => keys.put(app, scope, name, value).await?,
            KeyBackend::Files(f) => f.put(scope, name, value).await?,
            KeyBackend::Remote(r) => r.put(scope, name, value, true).await?,
        })
    }

    /// Writes a default key unless one of that name exists (another replica of the app may
    /// have just made it).
    async fn write_default(
        &self,
        scope: KeyScope<'_>,
        name: &str,
        value: &str,
    ) -> Result<(), KeyError> {
        match &self.backend {
            KeyBackend::Remote(r) => {
                r.put(scope, name, value, false).await?;
            }
            _ => {
                self.write(scope, name, value).await?;
            }
        }
        Ok(())
    }

    /// Creates or replaces a key (`value` None generates one), then reloads.
    pub async fn put(
        &self,
        scope: KeyScope<'_>,
        name: &str,
        value: Option<&str>,
    ) -> Result<(Upsert, String), KeyError> {
        let value = match value {
            Some(v) => v.to_string(),
            None => generate_key(match scope {
                KeyScope::Master => KeyKind::Master,
                KeyScope::System => KeyKind::System,
                _ => KeyKind::Function,
            })?,
        };
        let _guard = self.writes.lock().await;
        let outcome = self.write(scope, name, &value).await?;
        self.reload().await?;
        Ok((outcome, value))
    }

    /// Deletes a key, then reloads; returns whether it existed.
    pub async fn delete(&self, scope: KeyScope<'_>, name: &str) -> Result<bool, KeyError> {
        let _guard = self.writes.lock().await;
        let existed = match &self.backend {
            KeyBackend::Store { keys, app } => keys.delete(app, scope, name).await?,
            KeyBackend::Files(f) => f.delete(scope, name).await?,
            KeyBackend::Remote(r) => r.delete(scope, name).await?,
        };
        self.reload().await?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn service(dir: &std::path::Path) -> Arc<KeyService> {
        let files = FileKeys::new(dir, "0", None);
        KeyService::open(KeyBackend::Files(files), &["Hello"])
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn defaults_and_resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        let keys = svc.keys();
        let master = keys.master.clone().unwrap();
        assert!(stratus_model::keys::is_identifiable(
            KeyKind::Master,
            &master
        ));
        let host = keys.function_keys[0].value.clone();
        let own = svc.function_keys("hello")[0].value.clone();
        assert_eq!(
            svc.resolve(&master, Some("Hello")).unwrap().level,
            AuthLevel::Admin
        );
        assert_eq!(svc.resolve(&host, None).unwrap().level, AuthLevel::Function);
        assert_eq!(
            svc.resolve(&own, Some("HELLO")).unwrap().level,
            AuthLevel::Function
        );
        assert_eq!(
            svc.resolve(&own, None),
            None,
            "function keys do not open admin routes"
        );
        assert_eq!(svc.resolve(&own, Some("Other")), None);
        assert_eq!(svc.resolve("wrong", Some("Hello")), None);
        let (outcome, _) = svc
            .put(KeyScope::System, "x_extension", Some(&host))
            .await
            .unwrap();
        assert_eq!(outcome, Upsert::Created);
        let p = svc.resolve(&host, None).unwrap();
        assert_eq!(
            p,
            Principal {
                level: AuthLevel::System,
                key_name: Some("x_extension".into())
            },
            "system beats host keys"
        );
    }

    #[tokio::test]
    async fn edits_by_others_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        let other = FileKeys::new(dir.path(), "0", None);
        other
            .put(KeyScope::HostFunction, "ci", "testFunctionKey")
            .await
            .unwrap();
        assert_eq!(svc.resolve("testFunctionKey", None), None);
        assert!(
            svc.resolve_or_reload("testFunctionKey", None)
                .await
                .is_some()
        );
        other.delete(KeyScope::HostFunction, "ci").await.unwrap();
        assert!(svc.refresh().await.unwrap());
        assert_eq!(svc.resolve("testFunctionKey", None), None);
    }
}
