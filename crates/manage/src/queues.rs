//! The built-in queue service as the management role serves it under `/queues/{app}/...`:
//! each managed app is an account of its own, opened to the workers its replicas are placed
//! on, with their join token as a bearer token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use stratus_storage::queue_api::{BearerAuth, QueueService};
use stratus_store::{SqlQueues, SqlWorkers};

/// How long a decision is reused (a worker that loses the app loses its queues this late).
const REMEMBER: Duration = Duration::from_secs(5);

/// (SHA-256 of a token, account) → (when decided, admitted).
type Decisions = HashMap<([u8; 32], String), (Instant, bool)>;

/// Admits a worker's token to the accounts of the apps placed on it.
#[derive(Debug)]
pub struct WorkerQueues {
    workers: SqlWorkers,
    decided: Mutex<Decisions>,
}

impl WorkerQueues {
    async fn decide(&self, token: &str, account: &str) -> Result<bool, stratus_store::Error> {
        let Some(token_id) = self.workers.admit(token).await? else {
            return Ok(false);
        };
        let ids: Vec<String> = self
            .workers
            .list()
            .await?
            .into_iter()
            .filter(|w| w.token_id == token_id)
            .map(|w| w.id)
            .collect();
        Ok(self
            .workers
            .placements()
            .await?
            .iter()
            .any(|(app, worker, _)| app == account && ids.contains(worker)))
    }
}

impl BearerAuth for WorkerQueues {
    fn admits<'a>(
        &'a self,
        token: &'a str,
        account: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let key = (crate::digest(token), account.to_string());
            if let Some((at, ok)) = self.decided.lock().get(&key)
                && at.elapsed() < REMEMBER
            {
                return Ok(*ok);
            }
            let ok = self
                .decide(token, account)
                .await
                .map_err(|e| e.to_string())?;
            let mut decided = self.decided.lock();
            if decided.len() > 10_000 {
                decided.clear();
            }
            decided.insert(key, (Instant::now(), ok));
            Ok(ok)
        })
    }
}

/// The queue service of managed apps: bearer tokens of workers only.
pub fn service(queues: SqlQueues, workers: SqlWorkers) -> QueueService {
    QueueService {
        queues,
        accounts: Vec::new(),
        bearer: Some(Arc::new(WorkerQueues {
            workers,
            decided: Mutex::new(HashMap::new()),
        })),
    }
}

impl crate::api::Api {
    /// Deletes the queues of `app`'s account (it was deleted), messages and all.
    pub(crate) async fn drop_queues(&self, app: &str) -> Result<(), crate::api::ApiError> {
        loop {
            let (page, _) = self.queues.list_queues(app, "", None, 1000).await?;
            if page.is_empty() {
                return Ok(());
            }
            for q in page {
                self.queues.delete_queue(app, &q.name).await?;
            }
        }
    }
}
