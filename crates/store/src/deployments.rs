//! Deployments of managed apps, as Kudu reports them: who sent what, how far it got, its
//! log, and which version it made live. At most one deployment of an app is unfinished at a
//! time; finishing one with success makes its version active in the same transaction.

use crate::db::{Backend, on_pool};
use crate::error::{Error, Result};

/// Kudu's deployment states (the integers clients read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployStatus {
    Pending = 0,
    Building = 1,
    Deploying = 2,
    Failed = 3,
    Success = 4,
}

impl DeployStatus {
    fn from_i64(n: i64) -> Result<DeployStatus> {
        Ok(match n {
            0 => DeployStatus::Pending,
            1 => DeployStatus::Building,
            2 => DeployStatus::Deploying,
            3 => DeployStatus::Failed,
            4 => DeployStatus::Success,
            _ => return Err(Error::Corrupt(format!("deployment status {n}"))),
        })
    }
}

/// Who started a deployment and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployOrigin {
    pub author: String,
    pub author_email: String,
    pub deployer: String,
    pub message: String,
}

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    pub app: String,
    pub status: DeployStatus,
    pub status_text: String,
    pub origin: DeployOrigin,
    /// The version it makes live, once stored.
    pub version: Option<i64>,
    pub received_ms: i64,
    pub end_ms: Option<i64>,
    /// Last sign of life of whoever drives it.
    pub touched_ms: i64,
    pub complete: bool,
}

/// How serious a log entry is (Kudu's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Message = 0,
    Warning = 1,
    Error = 2,
}

/// One line of a deployment's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub ord: i64,
    pub at_ms: i64,
    pub kind: LogKind,
    pub message: String,
}

/// What finishing a deployment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Done,
    /// It was finished already (by another process).
    AlreadyFinished,
    /// It would have succeeded, but another version went live since it began: failed so.
    Superseded(String),
}

/// Why a deployment could not begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    Started(Deployment),
    /// Another deployment of the app is unfinished (its id).
    Busy(String),
    NoApp,
}

/// The deployments of the store.
#[derive(Debug, Clone)]
pub struct SqlDeployments {
    pub(crate) backend: Backend,
}

type Row = (
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<i64>,
    i64,
    i64,
);

macro_rules! columns {
    () => {
        "SELECT id, app, status, status_text, author, author_email, deployer, message, version, received_at, end_at, touched_at, complete FROM deployments "
    };
}

fn record(r: Row) -> Result<Deployment> {
    Ok(Deployment {
        id: r.0,
        app: r.1,
        status: DeployStatus::from_i64(r.2)?,
        status_text: r.3,
        origin: DeployOrigin {
            author: r.4,
            author_email: r.5,
            deployer: r.6,
            message: r.7,
        },
        version: r.8,
        received_ms: r.9,
        end_ms: r.10,
        touched_ms: r.11,
        complete: r.12 != 0,
    })
}

impl SqlDeployments {
    /// Starts deployment `id` of `app` (pending), unless another one of the app is unfinished.
    pub async fn begin(
        &self,
        app: &str,
        id: &str,
        origin: &DeployOrigin,
        now_ms: i64,
    ) -> Result<Begin> {
        let outcome: std::result::Result<u64, sqlx::Error> = on_pool!(&self.backend, |pool| {
            async {
                let mut tx = pool.begin_with(self.backend.begin_writing()).await?;
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT name FROM apps WHERE name = $1")
                        .bind(app)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    return Ok(0);
                }
                // The version live now: the deployment replaces it, and only it.
                sqlx::query(
                    "INSERT INTO deployments (id, app, status, status_text, author, author_email, deployer, message, version, base_version, received_at, end_at, touched_at, complete)
                     VALUES ($1, $2, 0, 'Receiving', $3, $4, $5, $6, NULL, (SELECT active_version FROM apps WHERE name = $2), $7, NULL, $7, 0)",
                )
                .bind(id)
                .bind(app)
                .bind(&origin.author)
                .bind(&origin.author_email)
                .bind(&origin.deployer)
                .bind(&origin.message)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(1)
            }
            .await
        });
        match outcome {
            Ok(0) => Ok(Begin::NoApp),
            Ok(_) => Ok(Begin::Started(self.get(app, id).await?.ok_or_else(
                || Error::Corrupt(format!("deployment {id} vanished")),
            )?)),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                match self.unfinished(app).await? {
                    Some(d) => Ok(Begin::Busy(d.id)),
                    // Finished in between: the caller may try again.
                    None => Ok(Begin::Busy(String::new())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records a deployment made elsewhere (Kudu's `PUT /api/deployments/{id}`), finished.
    pub async fn record(
        &self,
        app: &str,
        id: &str,
        origin: &DeployOrigin,
        success: bool,
        now_ms: i64,
    ) -> Result<bool> {
        let (status, text) = if success {
            (DeployStatus::Success, "Recorded")
        } else {
            (DeployStatus::Failed, "Recorded as failed")
        };
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO deployments (id, app, status, status_text, author, author_email, deployer, message, version, received_at, end_at, touched_at, complete)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $9, $9, 1 WHERE EXISTS (SELECT 1 FROM apps WHERE name = $2)
                 ON CONFLICT (id) DO UPDATE SET status = $3, status_text = $4, author = $5, author_email = $6, deployer = $7, message = $8
                 WHERE deployments.app = $2 AND deployments.complete = 1",
            )
            .bind(id)
            .bind(app)
            .bind(status as i64)
            .bind(text)
            .bind(&origin.author)
            .bind(&origin.author_email)
            .bind(&origin.deployer)
            .bind(&origin.message)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Deployment `id` of `app`.
    pub async fn get(&self, app: &str, id: &str) -> Result<Option<Deployment>> {
        let row: Option<Row> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(columns!(), "WHERE app = $1 AND id = $2"))
                .bind(app)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(record).transpose()
    }

    /// The deployments of `app`, newest first.
    pub async fn list(&self, app: &str) -> Result<Vec<Deployment>> {
        let rows: Vec<Row> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(
                columns!(),
                "WHERE app = $1 ORDER BY received_at DESC, id DESC"
            ))
            .bind(app)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(record).collect()
    }

    /// The unfinished deployment of `app`, if any.
    pub async fn unfinished(&self, app: &str) -> Result<Option<Deployment>> {
        let row: Option<Row> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(columns!(), "WHERE app = $1 AND complete = 0"))
                .bind(app)
                .fetch_optional(pool)
                .await?
        });
        row.map(record).transpose()
    }

    /// Every unfinished deployment.
    pub async fn all_unfinished(&self) -> Result<Vec<Deployment>> {
        let rows: Vec<Row> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(columns!(), "WHERE complete = 0 ORDER BY app"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(record).collect()
    }

    /// Moves an unfinished deployment on (`status` Pending..Deploying), with the version it
    /// will make live once known; false when it is finished or gone.
    pub async fn advance(
        &self,
        id: &str,
        status: DeployStatus,
        text: &str,
        version: Option<i64>,
        now_ms: i64,
    ) -> Result<bool> {
        debug_assert!((status as i64) < 3);
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "UPDATE deployments SET status = $2, status_text = $3, version = COALESCE($4, version), touched_at = $5
                 WHERE id = $1 AND complete = 0",
            )
            .bind(id)
            .bind(status as i64)
            .bind(text)
            .bind(version)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Notes that whoever drives deployment `id` is still at it.
    pub async fn touch(&self, id: &str, now_ms: i64) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query("UPDATE deployments SET touched_at = $2 WHERE id = $1 AND complete = 0")
                .bind(id)
                .bind(now_ms)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Finishes deployment `id`: with success its version becomes the app's active one in
    /// the same transaction, provided the version live when it began still is (else it fails
    /// as superseded).
    pub async fn finish(&self, id: &str, success: bool, text: &str, now_ms: i64) -> Result<Finish> {
        let (begin, lock) = match &self.backend {
            Backend::Sqlite(_) => (
                "BEGIN IMMEDIATE",
                "SELECT d.version, d.base_version, a.active_version FROM deployments d JOIN apps a ON a.name = d.app WHERE d.id = $1 AND d.complete = 0",
            ),
            Backend::Postgres(_) => (
                "BEGIN",
                "SELECT d.version, d.base_version, a.active_version FROM deployments d JOIN apps a ON a.name = d.app WHERE d.id = $1 AND d.complete = 0 FOR UPDATE",
            ),
        };
        let outcome = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(lock)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((version, base, active)) = row else {
                tx.rollback().await?;
                return Ok(Finish::AlreadyFinished);
            };
            let superseded = success && (version.is_none() || active != base);
            let (status, text) = if superseded {
                (
                    DeployStatus::Failed,
                    format!(
                        "Superseded: version {} went live while this deployment ran",
                        active.map_or("none".into(), |v| v.to_string())
                    ),
                )
            } else if success {
                (DeployStatus::Success, text.to_string())
            } else {
                (DeployStatus::Failed, text.to_string())
            };
            sqlx::query(
                "UPDATE deployments SET status = $2, status_text = $3, end_at = $4, touched_at = $4, complete = 1
                 WHERE id = $1 AND complete = 0",
            )
            .bind(id)
            .bind(status as i64)
            .bind(&text)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if status == DeployStatus::Success {
                sqlx::query(
                    "UPDATE apps SET active_version = $3, generation = generation + 1, updated_at = $2
                     WHERE name = (SELECT app FROM deployments WHERE id = $1)",
                )
                .bind(id)
                .bind(now_ms)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            if superseded {
                Finish::Superseded(text)
            } else {
                Finish::Done
            }
        });
        Ok(outcome)
    }

    /// Fails the unfinished deployments not yet handed to the scheduler (pending or
    /// building) whose driver gave no sign of life since `before_ms`; their ids.
    pub async fn fail_abandoned(&self, before_ms: i64, now_ms: i64) -> Result<Vec<String>> {
        let ids: Vec<String> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM deployments WHERE complete = 0 AND status < 2 AND touched_at < $1",
            )
            .bind(before_ms)
            .fetch_all(pool)
            .await?
        });
        let mut failed = Vec::new();
        for id in ids {
            let text =
                "The management process receiving this deployment stopped before it was stored";
            if self.finish(&id, false, text, now_ms).await? == Finish::Done {
                self.log(&id, LogKind::Error, text, now_ms).await?;
                failed.push(id);
            }
        }
        Ok(failed)
    }

    /// Appends a line to deployment `id`'s log.
    pub async fn log(&self, id: &str, kind: LogKind, message: &str, now_ms: i64) -> Result<()> {
        for _ in 0..5 {
            let outcome: std::result::Result<_, sqlx::Error> = on_pool!(&self.backend, |pool| {
                sqlx::query(
                    "INSERT INTO deployment_log (deployment_id, ord, at, kind, message)
                     SELECT $1, COALESCE(MAX(ord), 0) + 1, $2, $3, $4 FROM deployment_log WHERE deployment_id = $1",
                )
                .bind(id)
                .bind(now_ms)
                .bind(kind as i64)
                .bind(message)
                .execute(pool)
                .await
                .map(|_| ())
            });
            match outcome {
                Ok(_) => return Ok(()),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Corrupt(format!(
            "deployment {id}: could not append to its log"
        )))
    }

    /// Deployment `id`'s log, oldest first.
    pub async fn log_entries(&self, id: &str) -> Result<Vec<LogEntry>> {
        let rows: Vec<(i64, i64, i64, String)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT ord, at, kind, message FROM deployment_log WHERE deployment_id = $1 ORDER BY ord",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(ord, at_ms, kind, message)| LogEntry {
                ord,
                at_ms,
                kind: match kind {
                    1 => LogKind::Warning,
                    2 => LogKind::Error,
                    _ => LogKind::Message,
                },
                message,
            })
            .collect())
    }
}
