//! Join tokens (created by an admin, kept only as their SHA-256, revocable) and the workers
//! that joined with them: capacity, labels, availability window, heartbeats, drain state.
//! Times are given by the caller.

use crate::db::{Backend, on_pool};
use crate::error::{Error, Result};

/// A join token as listed (its value is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// What a worker says about itself when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    /// Its name (unique; joining again under the same name replaces the record).
    pub name: String,
    /// Milli-CPUs, memory in MiB, and how many apps it takes.
    pub cpu_millis: i64,
    pub memory_mib: i64,
    pub max_apps: i64,
    pub labels: Vec<(String, String)>,
    /// When it takes placements, e.g. `22:00-06:00` (None: always).
    pub window: Option<String>,
    pub version: String,
}

/// A worker as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    pub id: String,
    pub spec: WorkerSpec,
    /// The join token it used.
    pub token_id: String,
    pub joined_ms: i64,
    pub heartbeat_ms: i64,
    /// Takes no new placements and gives its apps back.
    pub draining: bool,
    /// What it last reported of itself (JSON, e.g. its hosts and their addresses).
    pub status: String,
}

/// Join tokens and workers of the store.
#[derive(Debug, Clone)]
pub struct SqlWorkers {
    pub(crate) backend: Backend,
}

type WorkerRow = (
    String,
    String,
    i64,
    i64,
    i64,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    bool,
    String,
);

macro_rules! worker_columns {
    () => {
        "SELECT id, name, cpu_millis, memory_mib, max_apps, labels, availability, version, token_id, joined_at, heartbeat_at, draining, status FROM workers "
    };
}

fn worker(row: WorkerRow) -> Result<WorkerRecord> {
    let labels: Vec<(String, String)> = serde_json::from_str(&row.5)
        .map_err(|e| Error::Corrupt(format!("labels of worker {}: {e}", row.1)))?;
    Ok(WorkerRecord {
        id: row.0,
        spec: WorkerSpec {
            name: row.1,
            cpu_millis: row.2,
            memory_mib: row.3,
            max_apps: row.4,
            labels,
            window: row.6,
            version: row.7,
        },
        token_id: row.8,
        joined_ms: row.9,
        heartbeat_ms: row.10,
        draining: row.11,
        status: row.12,
    })
}

/// Lower-case hex SHA-256 of a token's text.
fn token_hash(token: &str) -> String {
    crate::apps::sha256_hex(token.as_bytes())
}

impl SqlWorkers {
    /// Creates a join token named `name`; its id and its value (shown once, stored hashed).
    pub async fn create_token(&self, name: &str, now_ms: i64) -> Result<(String, String)> {
        let id = crate::queues::new_guid()?;
        let value = format!("sjt_{}", crate::queues::new_guid()?.replace('-', ""));
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO join_tokens (id, name, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(&id)
            .bind(name)
            .bind(token_hash(&value))
            .bind(now_ms)
            .execute(pool)
            .await?;
        });
        Ok((id, value))
    }

    /// Every join token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<JoinToken>> {
        let rows: Vec<(String, String, i64, Option<i64>)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT id, name, created_at, revoked_at FROM join_tokens ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, name, created_ms, revoked_ms)| JoinToken {
                id,
                name,
                created_ms,
                revoked_ms,
            })
            .collect())
    }

    /// Revokes a token (workers that joined with it are refused from now on); whether it
    /// existed and was not revoked yet.
    pub async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "UPDATE join_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The id of the live (not revoked) token whose value is `token`.
    pub async fn admit(&self, token: &str) -> Result<Option<String>> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT id FROM join_tokens WHERE hash = $1 AND revoked_at IS NULL")
                .bind(token_hash(token))
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Records a worker that joined with token `token_id` (replacing one of the same name);
    /// its id.
    pub async fn join(&self, spec: &WorkerSpec, token_id: &str, now_ms: i64) -> Result<String> {
        let id = crate::queues::new_guid()?;
        let mut labels = spec.labels.clone();
        labels.sort();
        let labels = serde_json::to_string(&labels).map_err(|e| Error::Corrupt(e.to_string()))?;
        on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM workers WHERE name = $1")
                .bind(&spec.name)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO workers (id, name, cpu_millis, memory_mib, max_apps, labels, availability, version,
                 token_id, joined_at, heartbeat_at, draining, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, FALSE, '{}')",
            )
            .bind(&id)
            .bind(&spec.name)
            .bind(spec.cpu_millis)
            .bind(spec.memory_mib)
            .bind(spec.max_apps)
            .bind(&labels)
            .bind(&spec.window)
            .bind(&spec.version)
            .bind(token_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(id)
    }

    /// Every worker, by name.
    pub async fn list(&self) -> Result<Vec<WorkerRecord>> {
        let rows: Vec<WorkerRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(worker_columns!(), "ORDER BY name"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(worker).collect()
    }

    /// Worker `id`, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<WorkerRecord>> {
        let row: Option<WorkerRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(worker_columns!(), "WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(worker).transpose()
    }

    /// Records a heartbeat with the worker's `status` (JSON); false when the worker is
    /// unknown (removed) or its token revoked.
    pub async fn heartbeat(&self, id: &str, status: &str, now_ms: i64) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "UPDATE workers SET heartbeat_at = $2, status = $3 WHERE id = $1 AND EXISTS
                 (SELECT 1 FROM join_tokens t WHERE t.id = workers.token_id AND t.revoked_at IS NULL)",
            )
            .bind(id)
            .bind(now_ms)
            .bind(status)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Sets or clears a worker's drain state; whether the worker exists.
    pub async fn set_draining(&self, id: &str, draining: bool) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query("UPDATE workers SET draining = $2 WHERE id = $1")
                .bind(id)
                .bind(draining)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Forgets a worker; whether it existed.
    pub async fn remove(&self, id: &str) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query("DELETE FROM workers WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Every placement: (app, worker id, since when).
    pub async fn placements(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT app, worker_id, assigned_at FROM placements ORDER BY app, worker_id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Makes the placements exactly `wanted` ((app, worker id) pairs), keeping the time of
    /// those already there; how many were added and removed.
    pub async fn set_placements(
        &self,
        wanted: &std::collections::BTreeSet<(String, String)>,
        now_ms: i64,
    ) -> Result<(usize, usize)> {
        let current: std::collections::BTreeSet<(String, String)> = self
            .placements()
            .await?
            .into_iter()
            .map(|(a, w, _)| (a, w))
            .collect();
        let added: Vec<&(String, String)> = wanted.difference(&current).collect();
        let removed: Vec<&(String, String)> = current.difference(wanted).collect();
        if added.is_empty() && removed.is_empty() {
            return Ok((0, 0));
        }
        on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            for (app, worker) in &removed {
                sqlx::query("DELETE FROM placements WHERE app = $1 AND worker_id = $2")
                    .bind(app)
                    .bind(worker)
                    .execute(&mut *tx)
                    .await?;
            }
            for (app, worker) in &added {
                sqlx::query(
                    "INSERT INTO placements (app, worker_id, assigned_at) VALUES ($1, $2, $3)
                     ON CONFLICT (app, worker_id) DO NOTHING",
                )
                .bind(app)
                .bind(worker)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok((added.len(), removed.len()))
    }
}
