//! What a worker's host reaches through the management role rather than a store of its own:
//! the app's function keys, shared by all its replicas, the leases and timer status that
//! make each timer fire once among them, and the app's queues (its own account of the
//! management role's queue service, so the replicas compete for its messages). The worker passes the management API's address, the
//! app's path under its worker id and its join token in the environment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use stratus_host::executor::BoxFuture;
use stratus_host::keys::{KeyError, KeyStorage};
use stratus_host::queues::{QueueError, QueueStore};
use stratus_host::triggers::state::{LeaseStore, TimerStatusStore};
use stratus_storage::client::{ClientError, QueueClient};
use stratus_store::queues::Message;
use stratus_store::{AppKeys, KeyScope, TimerStatus, Upsert};

use crate::api_client::Client;

/// The management API (`http://host:port`).
pub const ENV_URL: &str = "STRATUS_MANAGED_URL";
/// The app's path under its worker (`/api/workers/{id}/apps/{app}`).
pub const ENV_APP: &str = "STRATUS_MANAGED_APP";
/// The worker's join token.
pub const ENV_TOKEN: &str = "STRATUS_JOIN_TOKEN";
/// The app version the host runs (its number), for what it reports.
pub const ENV_VERSION: &str = "STRATUS_MANAGED_VERSION";

/// How long a read of the keys answers both `version` and `load`.
const FRESH: Duration = Duration::from_millis(500);

/// The management role, as one app's host on a worker reaches it.
pub struct Link {
    client: Client,
    url: String,
    base: String,
    token: String,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({}{})", self.url, self.base)
    }
}

impl Link {
    /// The link the environment describes, if it describes one.
    pub fn from_env() -> Option<Result<Arc<Link>, String>> {
        let url = std::env::var(ENV_URL).ok().filter(|u| !u.is_empty())?;
        let build = || {
            let base = std::env::var(ENV_APP)
                .map_err(|_| format!("{ENV_URL} is set but {ENV_APP} is not"))?;
            let token = std::env::var(ENV_TOKEN)
                .map_err(|_| format!("{ENV_URL} is set but {ENV_TOKEN} is not"))?;
            let client =
                Client::with_token(&url, &token).map_err(|e| format!("{:#}", e.error()))?;
            Ok(Arc::new(Link {
                client,
                url: url.clone(),
                base: base.trim_end_matches('/').to_string(),
                token,
            }))
        };
        Some(build())
    }

    /// The app's name (the last segment of its path).
    fn app(&self) -> String {
        stratus_model::text::url_decode(self.base.rsplit('/').next().unwrap_or_default())
    }

    /// Where the state is, for messages.
    pub fn place(&self) -> String {
        format!("the management role ({})", self.url)
    }

    /// Sends a batch of invocation records, log lines and statistics (`reporting`).
    pub async fn report(&self, batch: &serde_json::Value) -> Result<(), String> {
        self.send("POST", "telemetry", batch.to_string().into_bytes())
            .await
            .map(|_| ())
            .map_err(|e| format!("{:#}", e.error()))
    }

    async fn send(
        &self,
        method: &str,
        rest: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, crate::ExitError> {
        self.client
            .send(
                method,
                &format!("{}/{rest}", self.base),
                body,
                "application/json",
            )
            .await
    }
}

/// The app's keys, kept by the management role.
#[derive(Debug)]
pub struct ManagedKeys {
    link: Arc<Link>,
    last: Mutex<Option<(Instant, AppKeys, i64)>>,
}

fn remote(e: crate::ExitError) -> KeyError {
    KeyError::Remote(format!("{:#}", e.error()))
}

impl ManagedKeys {
    pub fn new(link: Arc<Link>) -> Arc<ManagedKeys> {
        Arc::new(ManagedKeys {
            link,
            last: Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<(AppKeys, i64), KeyError> {
        if let Some((at, keys, version)) = &*self.last.lock()
            && at.elapsed() < FRESH
        {
            return Ok((keys.clone(), *version));
        }
        let v = self
            .link
            .client
            .send(
                "GET",
                &format!("{}/keys", self.link.base),
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
                self.link.base,
                stratus_manage::keys::scope_path(scope, name),
                if replace { "" } else { "?replace=false" }
            );
            let body = serde_json::json!({ "value": value })
                .to_string()
                .into_bytes();
            let v = self
                .link
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
                self.link.base,
                stratus_manage::keys::scope_path(scope, name)
            );
            *self.last.lock() = None;
            match self
                .link
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

/// Leases and timer status of the app's hosts, kept by the management role (the app and
/// time are the management role's: the names the host gives are kept under its app).
#[derive(Debug)]
pub struct ManagedState {
    link: Arc<Link>,
}

impl ManagedState {
    pub fn new(link: Arc<Link>) -> Arc<ManagedState> {
        Arc::new(ManagedState { link })
    }
}

fn text(e: crate::ExitError) -> String {
    format!("{:#}", e.error())
}

impl TimerStatusStore for ManagedState {
    fn get<'a>(
        &'a self,
        _app: &'a str,
        timer: &'a str,
    ) -> BoxFuture<'a, Result<Option<TimerStatus>, String>> {
        Box::pin(async move {
            let path = format!("timers/{}", crate::api_client::encode(timer));
            match self.link.send("GET", &path, Vec::new()).await {
                Ok(v) => stratus_manage::state::status_from_json(&v)
                    .map(Some)
                    .ok_or_else(|| format!("unexpected timer status: {v}")),
                Err(crate::ExitError::NotFound(_)) => Ok(None),
                Err(e) => Err(text(e)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        _app: &'a str,
        timer: &'a str,
        status: TimerStatus,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let path = format!("timers/{}", crate::api_client::encode(timer));
            let body = stratus_manage::state::status_json(&status)
                .to_string()
                .into_bytes();
            self.link
                .send("PUT", &path, body)
                .await
                .map(|_| ())
                .map_err(text)
        })
    }
}

impl LeaseStore for ManagedState {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        _now_ms: i64,
        ttl_ms: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let body = serde_json::json!({"name": name, "holder": holder, "ttlMs": ttl_ms})
                .to_string()
                .into_bytes();
            let v = self.link.send("POST", "leases", body).await.map_err(text)?;
            Ok(v["held"] == true)
        })
    }

    fn release<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let body = serde_json::json!({"name": name, "holder": holder})
                .to_string()
                .into_bytes();
            self.link
                .send("POST", "leases/release", body)
                .await
                .map(|_| ())
                .map_err(text)
        })
    }
}

/// The app's queues at the management role: an account named after the app, opened with the
/// worker's token (the account the host names is the app's, whatever it is called there).
#[derive(Debug)]
pub struct ManagedQueues {
    client: QueueClient,
}

impl ManagedQueues {
    pub fn open(link: &Link) -> Result<Arc<dyn QueueStore>, String> {
        let app = link.app();
        let endpoint = format!(
            "{}/queues/{}",
            link.url.trim_end_matches('/'),
            crate::api_client::encode(&app)
        );
        let client =
            QueueClient::with_bearer(&endpoint, &app, &link.token).map_err(|e| e.to_string())?;
        Ok(Arc::new(ManagedQueues { client }))
    }
}

fn queue_error(e: ClientError) -> QueueError {
    match e {
        ClientError::Service { code, .. } if code == "QueueNotFound" => QueueError::QueueNotFound,
        e => QueueError::Other(e.to_string()),
    }
}

/// Seconds, rounded up.
fn seconds(ms: i64) -> i64 {
    (ms.max(0) + 999) / 1000
}

impl QueueStore for ManagedQueues {
    fn create_queue<'a>(
        &'a self,
        _account: &'a str,
        queue: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move { self.client.create(queue).await.map_err(queue_error) })
    }

    fn put_many<'a>(
        &'a self,
        _account: &'a str,
        queue: &'a str,
        texts: &'a [&'a str],
        _now_ms: i64,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            for text in texts {
                self.client.put(queue, text).await.map_err(queue_error)?;
            }
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        _account: &'a str,
        queue: &'a str,
        count: usize,
        visibility_ms: i64,
        _now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<Message>, QueueError>> {
        Box::pin(async move {
            let got = self
                .client
                .receive(queue, count, seconds(visibility_ms))
                .await
                .map_err(queue_error)?;
            Ok(got
                .into_iter()
                .map(|r| Message {
                    id: r.id,
                    pop_receipt: r.pop_receipt,
                    text: r.text,
                    insertion_ms: r.insertion_ms,
                    expiration_ms: r.expiration_ms,
                    next_visible_ms: r.next_visible_ms,
                    dequeue_count: r.dequeue_count,
                })
                .collect())
        })
    }

    fn update<'a>(
        &'a self,
        _account: &'a str,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_ms: i64,
        _now_ms: i64,
    ) -> BoxFuture<'a, Result<String, QueueError>> {
        Box::pin(async move {
            self.client
                .update(queue, id, pop_receipt, seconds(visibility_ms))
                .await
                .map_err(queue_error)
        })
    }

    fn delete<'a>(
        &'a self,
        _account: &'a str,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            match self.client.delete(queue, id, pop_receipt).await {
                Ok(()) => Ok(()),
                Err(ClientError::Service { code, .. }) if code == "MessageNotFound" => Ok(()),
                Err(e) => Err(queue_error(e)),
            }
        })
    }
}

/// The file whose presence holds a host's timers and queue triggers back (a version being
/// deployed, not live yet), named by `STRATUS_TRIGGER_GATE`.
pub const ENV_TRIGGER_GATE: &str = "STRATUS_TRIGGER_GATE";

/// The trigger gate, if the host was given one.
pub fn trigger_gate() -> Option<std::path::PathBuf> {
    std::env::var_os(ENV_TRIGGER_GATE)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}
