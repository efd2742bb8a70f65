//! Function keys of an app (master, host function, system and per-function keys), stored
//! encrypted in the database.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Row as _;

use crate::crypto::EncryptionKey;
use crate::db::{Backend, on_pool};
use crate::error::Result;

/// Where a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope<'a> {
    /// The single master key (admin level).
    Master,
    /// Host-wide function keys (open every function-level trigger).
    HostFunction,
    /// Host system keys (extension webhooks).
    System,
    /// Keys of one function (its name; compared case-insensitively).
    Function(&'a str),
}

impl KeyScope<'_> {
    fn columns(&self) -> (&'static str, String) {
        match self {
            KeyScope::Master => ("master", String::new()),
            KeyScope::HostFunction => ("host", String::new()),
            KeyScope::System => ("system", String::new()),
            KeyScope::Function(f) => ("function", f.to_ascii_lowercase()),
        }
    }
}

/// A named key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey {
    pub name: String,
    pub value: String,
}

/// All keys of one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppKeys {
    pub master: Option<String>,
    pub function_keys: Vec<NamedKey>,
    pub system_keys: Vec<NamedKey>,
    /// Per-function keys, by lower-cased function name.
    pub functions: BTreeMap<String, Vec<NamedKey>>,
}

/// Whether a write created a key or replaced an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Replaced,
}

/// Keys in the SQL store.
#[derive(Debug, Clone)]
pub struct SqlKeys {
    pub(crate) backend: Backend,
    pub(crate) key: EncryptionKey,
}

const BUMP_VERSION: &str = "INSERT INTO key_versions (app, version) VALUES ($1, 1)
     ON CONFLICT (app) DO UPDATE SET version = key_versions.version + 1";

/// Name under which the master key is stored.
const MASTER_NAME: &str = "master";

fn context(app: &str, scope: &str, function: &str, name_lc: &str) -> Vec<u8> {
    format!("function-key\0{app}\0{scope}\0{function}\0{name_lc}").into_bytes()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqlKeys {
    /// Reads every key of `app`.
    pub async fn load(&self, app: &str) -> Result<AppKeys> {
        let rows = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "SELECT scope, function, name_lc, name, value FROM function_keys WHERE app = $1 ORDER BY scope, function, name_lc",
            )
            .bind(app)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| {
                Ok::<_, sqlx::Error>((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    r.try_get::<String, _>(2)?,
                    r.try_get::<String, _>(3)?,
                    r.try_get::<Vec<u8>, _>(4)?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?
        });
        let mut keys = AppKeys::default();
        for (scope, function, name_lc, name, sealed) in rows {
            let plain = self
                .key
                .open(&sealed, &context(app, &scope, &function, &name_lc))?;
            let value = String::from_utf8_lossy(&plain).into_owned();
            match scope.as_str() {
                "master" => keys.master = Some(value),
                "host" => keys.function_keys.push(NamedKey { name, value }),
                "system" => keys.system_keys.push(NamedKey { name, value }),
                "function" => keys
                    .functions
                    .entry(function)
                    .or_default()
                    .push(NamedKey { name, value }),
                other => tracing::warn!(scope = other, "ignoring a key of an unknown scope"),
            }
        }
        Ok(keys)
    }

    /// Creates or replaces a key. For [`KeyScope::Master`] the name is ignored.
    pub async fn put(
        &self,
        app: &str,
        scope: KeyScope<'_>,
        name: &str,
        value: &str,
    ) -> Result<Upsert> {
        let (scope_col, function) = scope.columns();
        let name = if scope == KeyScope::Master {
            MASTER_NAME
        } else {
            name
        };
        let name_lc = name.to_ascii_lowercase();
        let sealed = self.key.seal(
            value.as_bytes(),
            &context(app, scope_col, &function, &name_lc),
        )?;
        let now = now_ms();
        // SQLite: take the write lock up front; a read lock upgraded later fails at once when
        // another writer (another replica's host making its defaults) got there first.
        let begin = match &self.backend {
            Backend::Sqlite(_) => "BEGIN IMMEDIATE",
            Backend::Postgres(_) => "BEGIN",
        };
        let created = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin_with(begin).await?;
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT updated_at FROM function_keys WHERE app = $1 AND scope = $2 AND function = $3 AND name_lc = $4",
            )
            .bind(app)
            .bind(scope_col)
            .bind(&function)
            .bind(&name_lc)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO function_keys (app, scope, function, name_lc, name, value, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (app, scope, function, name_lc)
                 DO UPDATE SET name = excluded.name, value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(app)
            .bind(scope_col)
            .bind(&function)
            .bind(&name_lc)
            .bind(name)
            .bind(&sealed)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_VERSION)
                .bind(app)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            existing.is_none()
        });
        Ok(if created {
            Upsert::Created
        } else {
            Upsert::Replaced
        })
    }

    /// Deletes a key; returns whether it existed.
    pub async fn delete(&self, app: &str, scope: KeyScope<'_>, name: &str) -> Result<bool> {
        let (scope_col, function) = scope.columns();
        let name_lc = if scope == KeyScope::Master {
            MASTER_NAME.to_string()
        } else {
            name.to_ascii_lowercase()
        };
        let deleted = on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "DELETE FROM function_keys WHERE app = $1 AND scope = $2 AND function = $3 AND name_lc = $4",
            )
            .bind(app)
            .bind(scope_col)
            .bind(&function)
            .bind(&name_lc)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                sqlx::query(BUMP_VERSION)
                    .bind(app)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            n > 0
        });
        Ok(deleted)
    }

    /// A number that changes whenever a key of `app` changes (0 before any write).
    pub async fn version(&self, app: &str) -> Result<i64> {
        let v: Option<i64> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT version FROM key_versions WHERE app = $1")
                .bind(app)
                .fetch_optional(pool)
                .await?
        });
        Ok(v.unwrap_or(0))
    }
}
