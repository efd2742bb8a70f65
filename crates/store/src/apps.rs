//! Managed function apps: the apps themselves (scale settings, placement labels, the active
//! version), their settings (encrypted at rest), their versions, and the zip packages those
//! point to, stored once each by SHA-256. Times are given by the caller.

use sqlx::Row as _;

use crate::crypto::EncryptionKey;
use crate::db::{Backend, on_pool};
use crate::error::{Error, Result};

/// An app as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub name: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The version serving, if any.
    pub active_version: Option<i64>,
    pub min_replicas: i64,
    pub max_replicas: i64,
    /// Placement labels a worker must carry (`key=value`), sorted.
    pub labels: Vec<(String, String)>,
    /// Grows with every change to the app, its settings or versions (for watchers).
    pub generation: i64,
}

/// A version of an app: which package, when, by whom, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppVersion {
    pub number: i64,
    /// Lower-case hex SHA-256 of the package.
    pub sha256: String,
    pub size: i64,
    pub created_ms: i64,
    pub author: String,
    pub message: String,
}

/// How many replicas an app runs, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub min_replicas: i64,
    pub max_replicas: i64,
    pub labels: Vec<(String, String)>,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            min_replicas: 1,
            max_replicas: 1,
            labels: Vec::new(),
        }
    }
}

/// The apps of the store.
#[derive(Debug, Clone)]
pub struct SqlApps {
    pub(crate) backend: Backend,
    pub(crate) key: EncryptionKey,
}

type AppRow = (String, i64, i64, Option<i64>, i64, i64, String, i64);

macro_rules! app_columns {
    () => {
        "SELECT name, created_at, updated_at, active_version, min_replicas, max_replicas, labels, generation FROM apps "
    };
}

fn record(row: AppRow) -> Result<AppRecord> {
    let labels: Vec<(String, String)> = serde_json::from_str(&row.6)
        .map_err(|e| Error::Corrupt(format!("labels of app {}: {e}", row.0)))?;
    Ok(AppRecord {
        name: row.0,
        created_ms: row.1,
        updated_ms: row.2,
        active_version: row.3,
        min_replicas: row.4,
        max_replicas: row.5,
        labels,
        generation: row.7,
    })
}

fn labels_json(labels: &[(String, String)]) -> String {
    let mut sorted = labels.to_vec();
    sorted.sort();
    serde_json::to_string(&sorted).unwrap_or_else(|_| "[]".into())
}

fn context(app: &str, name_lc: &str) -> Vec<u8> {
    format!("app-setting\0{app}\0{name_lc}").into_bytes()
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

const BUMP: &str = "UPDATE apps SET generation = generation + 1, updated_at = $2 WHERE name = $1";

impl SqlApps {
    /// Creates app `name` (already normalized); false when it exists.
    pub async fn create(&self, name: &str, scale: &Scale, now_ms: i64) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO apps (name, created_at, updated_at, active_version, min_replicas, max_replicas, labels, generation)
                 VALUES ($1, $2, $2, NULL, $3, $4, $5, 1) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_ms)
            .bind(scale.min_replicas)
            .bind(scale.max_replicas)
            .bind(labels_json(&scale.labels))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Every app, by name.
    pub async fn list(&self) -> Result<Vec<AppRecord>> {
        let rows: Vec<AppRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(app_columns!(), "ORDER BY name"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(record).collect()
    }

    /// App `name`, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<AppRecord>> {
        let row: Option<AppRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(concat!(app_columns!(), "WHERE name = $1"))
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        row.map(record).transpose()
    }

    /// Deletes an app with its settings, versions, deployments and publishing credentials (packages stay until
    /// [`collect_packages`](Self::collect_packages)); whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            for sql in [
                "DELETE FROM app_settings WHERE app = $1",
                "DELETE FROM app_versions WHERE app = $1",
                "DELETE FROM deployment_log WHERE deployment_id IN (SELECT id FROM deployments WHERE app = $1)",
                "DELETE FROM deployments WHERE app = $1",
                "DELETE FROM publishing_credentials WHERE app = $1",
            ] {
                sqlx::query(sql).bind(name).execute(&mut *tx).await?;
            }
            let n = sqlx::query("DELETE FROM apps WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    /// Changes an app's replicas and labels; false when there is no such app.
    pub async fn set_scale(&self, name: &str, scale: &Scale, now_ms: i64) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "UPDATE apps SET min_replicas = $2, max_replicas = $3, labels = $4,
                 generation = generation + 1, updated_at = $5 WHERE name = $1",
            )
            .bind(name)
            .bind(scale.min_replicas)
            .bind(scale.max_replicas)
            .bind(labels_json(&scale.labels))
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Sets a setting (names compare case-insensitively; the latest spelling is kept);
    /// false when there is no such app.
    pub async fn set_setting(
        &self,
        app: &str,
        name: &str,
        value: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let name_lc = name.to_ascii_lowercase();
        let sealed = self.key.seal(value.as_bytes(), &context(app, &name_lc))?;
        let n = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(BUMP)
                .bind(app)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                sqlx::query(
                    "INSERT INTO app_settings (app, name_lc, name, value, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (app, name_lc) DO UPDATE SET name = excluded.name, value = excluded.value,
                     updated_at = excluded.updated_at",
                )
                .bind(app)
                .bind(&name_lc)
                .bind(name)
                .bind(&sealed)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    /// Deletes a setting; whether it existed.
    pub async fn delete_setting(&self, app: &str, name: &str, now_ms: i64) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("DELETE FROM app_settings WHERE app = $1 AND name_lc = $2")
                .bind(app)
                .bind(name.to_ascii_lowercase())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                sqlx::query(BUMP)
                    .bind(app)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    }

    /// An app's settings, decrypted, by name.
    pub async fn settings(&self, app: &str) -> Result<Vec<(String, String)>> {
        let rows = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "SELECT name_lc, name, value FROM app_settings WHERE app = $1 ORDER BY name_lc",
            )
            .bind(app)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| -> (String, String, Vec<u8>) { (r.get(0), r.get(1), r.get(2)) })
            .collect::<Vec<_>>()
        });
        rows.into_iter()
            .map(|(name_lc, name, sealed)| {
                let plain = self.key.open(&sealed, &context(app, &name_lc))?;
                let value = String::from_utf8(plain)
                    .map_err(|_| Error::Corrupt(format!("setting {name} of app {app}")))?;
                Ok((name, value))
            })
            .collect()
    }

    /// Stores a package once; its SHA-256 (lower-case hex).
    pub async fn put_package(&self, content: &[u8], now_ms: i64) -> Result<String> {
        let sha = sha256_hex(content);
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO packages (sha256, size, content, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(&sha)
            .bind(content.len() as i64)
            .bind(content)
            .bind(now_ms)
            .execute(pool)
            .await?;
        });
        Ok(sha)
    }

    /// A package's content, checked against its hash.
    pub async fn package(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let content: Option<Vec<u8>> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT content FROM packages WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(pool)
                .await?
        });
        match content {
            Some(c) if sha256_hex(&c) != sha256 => Err(Error::Corrupt(format!(
                "package {sha256} does not match its hash"
            ))),
            other => Ok(other),
        }
    }

    /// Deletes the packages no version points to; how many.
    pub async fn collect_packages(&self) -> Result<u64> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query(
                "DELETE FROM packages WHERE sha256 NOT IN (SELECT sha256 FROM app_versions)",
            )
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// Records a new version of `app` on a stored package; its number (1, 2, ...), or None
    /// when there is no such app. With `activate`, it becomes the active version at once.
    #[allow(
        clippy::too_many_arguments,
        reason = "a version's fields, the activation choice and the time"
    )]
    pub async fn add_version(
        &self,
        app: &str,
        sha256: &str,
        author: &str,
        message: &str,
        activate: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        // Versions of one app are numbered one writer at a time: SQLite takes its write lock
        // up front (upgrading a read lock would fail at once under contention), PostgreSQL
        // locks the app's row. Should two writers still pick one number, the loser retries.
        let (begin, lock) = match &self.backend {
            Backend::Sqlite(_) => (
                "BEGIN IMMEDIATE",
                "SELECT generation FROM apps WHERE name = $1",
            ),
            Backend::Postgres(_) => (
                "BEGIN",
                "SELECT generation FROM apps WHERE name = $1 FOR UPDATE",
            ),
        };
        for _ in 0..5 {
            let outcome: std::result::Result<Option<i64>, sqlx::Error> = on_pool!(
                &self.backend,
                |pool| {
                    async {
                        let mut tx = pool.begin_with(begin).await?;
                        let exists: Option<i64> =
                            sqlx::query_scalar(lock)
                                .bind(app)
                                .fetch_optional(&mut *tx)
                                .await?;
                        if exists.is_none() {
                            return Ok(None);
                        }
                        let number: i64 = sqlx::query_scalar(
                            "SELECT COALESCE(MAX(number), 0) + 1 FROM app_versions WHERE app = $1",
                        )
                        .bind(app)
                        .fetch_one(&mut *tx)
                        .await?;
                        sqlx::query(
                            "INSERT INTO app_versions (app, number, sha256, created_at, author, message)
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(app)
                        .bind(number)
                        .bind(sha256)
                        .bind(now_ms)
                        .bind(author)
                        .bind(message)
                        .execute(&mut *tx)
                        .await?;
                        let update = if activate {
                            sqlx::query(
                                "UPDATE apps SET active_version = $3, generation = generation + 1, updated_at = $2 WHERE name = $1",
                            )
                            .bind(app)
                            .bind(now_ms)
                            .bind(number)
                        } else {
                            sqlx::query(BUMP).bind(app).bind(now_ms)
                        };
                        update.execute(&mut *tx).await?;
                        tx.commit().await?;
                        Ok(Some(number))
                    }
                    .await
                }
            );
            match outcome {
                Ok(n) => return Ok(n),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                    return Err(Error::PackageNotFound(sha256.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Corrupt(format!(
            "app {app}: could not number a new version after 5 tries"
        )))
    }

    /// The versions of `app`, newest first.
    pub async fn versions(&self, app: &str) -> Result<Vec<AppVersion>> {
        let rows: Vec<(i64, String, i64, i64, String, String)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT v.number, v.sha256, p.size, v.created_at, v.author, v.message
                 FROM app_versions v JOIN packages p ON p.sha256 = v.sha256
                 WHERE v.app = $1 ORDER BY v.number DESC",
            )
            .bind(app)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(number, sha256, size, created_ms, author, message)| AppVersion {
                    number,
                    sha256,
                    size,
                    created_ms,
                    author,
                    message,
                },
            )
            .collect())
    }

    /// Makes version `number` the active one (a rollback is activating an older one); false
    /// when the app or the version does not exist.
    pub async fn activate(&self, app: &str, number: i64, now_ms: i64) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "UPDATE apps SET active_version = $2, generation = generation + 1, updated_at = $3
                 WHERE name = $1 AND EXISTS (SELECT 1 FROM app_versions WHERE app = $1 AND number = $2)",
            )
            .bind(app)
            .bind(number)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
