//! What a worker's host reaches through the management role rather than a store of its own:
//! the app's function keys, shared by all its replicas. The worker passes the management
//! API's address, the app's path under its worker id and its join token in the environment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use stratus_host::executor::BoxFuture;
use stratus_host::keys::{KeyError, KeyStorage};
use stratus_store::{AppKeys, KeyScope, Upsert};

use crate::api_client::Client;

/// The management API (`http://host:port`).
pub const ENV_URL: &str = "STRATUS_MANAGED_URL";
/// The app's path under its worker (`/api/workers/{id}/apps/{app}`).
pub const ENV_APP: &str = "STRATUS_MANAGED_APP";
/// The worker's join token.
pub const ENV_TOKEN: &str = "STRATUS_JOIN_TOKEN";

/// How long a read of the keys answers both `version` and `load`.
const FRESH: Duration = Duration::from_millis(500);

/// The app's keys, kept by the management role.
pub struct ManagedKeys {
    client: Client,
    url: String,
    base: String,
    last: Mutex<Option<(Instant, AppKeys, i64)>>,
}

impl std::fmt::Debug for ManagedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManagedKeys({}{}/keys)", self.url, self.base)
    }
}

fn remote(e: crate::ExitError) -> KeyError {
    KeyError::Remote(format!("{:#}", e.error()))
}

impl ManagedKeys {
    /// The keys of the app the environment names, if it names one.
    pub fn from_env() -> Option<Result<Arc<ManagedKeys>, String>> {
        let url = std::env::var(ENV_URL).ok().filter(|u| !u.is_empty())?;
        let build = || {
            let base = std::env::var(ENV_APP)
                .map_err(|_| format!("{ENV_URL} is set but {ENV_APP} is not"))?;
            let token = std::env::var(ENV_TOKEN)
                .map_err(|_| format!("{ENV_URL} is set but {ENV_TOKEN} is not"))?;
            let client =
                Client::with_token(&url, &token).map_err(|e| format!("{:#}", e.error()))?;
            Ok(Arc::new(ManagedKeys {
                client,
                url: url.clone(),
                base: base.trim_end_matches('/').to_string(),
                last: Mutex::new(None),
            }))
        };
        Some(build())
    }

    /// Where the keys are, for messages.
    pub fn place(&self) -> String {
        format!("the management role ({})", self.url)
    }

    async fn fetch(&self) -> Result<(AppKeys, i64), KeyError> {
        if let Some((at, keys, version)) = &*self.last.lock()
            && at.elapsed() < FRESH
        {
            return Ok((keys.clone(), *version));
        }
        let v = self
            .client
            .send(
                "GET",
                &format!("{}/keys", self.base),
                Vec::new(),
                "application/json",
            )
            .await
            .map_err(remote)?;
        let (keys, version) = stratus_manage::keys::keys_from_json(&v)
            .ok_or_else(|| KeyError::Remote(format!("unexpected keys answer: {v}")))?;
        *self.last.lock() = Some((Instant::now(), keys.clone(), version));
        Ok((keys, version))
    }
}

impl KeyStorage for ManagedKeys {
    fn load(&self) -> BoxFuture<'_, Result<AppKeys, KeyError>> {
        Box::pin(async move { Ok(self.fetch().await?.0) })
    }

    fn version(&self) -> BoxFuture<'_, Result<i64, KeyError>> {
        Box::pin(async move {
            // A version check always asks again; the load that may follow reuses the answer.
            *self.last.lock() = None;
            Ok(self.fetch().await?.1)
        })
    }

    fn put<'a>(
        &'a self,
        scope: KeyScope<'a>,
        name: &'a str,
        value: &'a str,
        replace: bool,
    ) -> BoxFuture<'a, Result<Upsert, KeyError>> {
        Box::pin(async move {
            let path = format!(
                "{}/keys/{}{}",
                self.base,
                stratus_manage::keys::scope_path(scope, name),
                if replace { "" } else { "?replace=false" }
            );
            let body = serde_json::json!({ "value": value })
                .to_string()
                .into_bytes();
            let v = self
                .client
                .send("PUT", &path, body, "application/json")
                .await
                .map_err(remote)?;
            *self.last.lock() = None;
            Ok(if v["created"] == true {
                Upsert::Created
            } else {
                Upsert::Replaced
            })
        })
    }

    fn delete<'a>(
        &'a self,
        scope: KeyScope<'a>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, KeyError>> {
        Box::pin(async move {
            let path = format!(
                "{}/keys/{}",
                self.base,
                stratus_manage::keys::scope_path(scope, name)
            );
            *self.last.lock() = None;
            match self
                .client
                .send("DELETE", &path, Vec::new(), "application/json")
                .await
            {
                Ok(_) => Ok(true),
                Err(crate::ExitError::NotFound(_)) => Ok(false),
                Err(e) => Err(remote(e)),
            }
        })
    }
}
