//! Connecting to SQLite or PostgreSQL and bringing the schema up to date.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::{Error, Result};

/// A pool on one of the two supported engines.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool the backend holds.
macro_rules! on_pool {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            $crate::db::Backend::Sqlite($pool) => $body,
            $crate::db::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Backend {
    /// How a transaction that reads before it writes begins: on SQLite it takes the write
    /// lock at once (waiting for it), since upgrading a read transaction to a writer fails
    /// at once with "database is locked" when another writer is busy.
    pub(crate) fn begin_writing(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "BEGIN IMMEDIATE",
            Backend::Postgres(_) => "BEGIN",
        }
    }
}

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The schema, in order. Never edit a released migration: add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "function keys",
        sqlite: "CREATE TABLE function_keys (
            app TEXT NOT NULL,
            scope TEXT NOT NULL,
            function TEXT NOT NULL,
            name_lc TEXT NOT NULL,
            name TEXT NOT NULL,
            value BLOB NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (app, scope, function, name_lc)
        );
        CREATE TABLE key_versions (app TEXT PRIMARY KEY, version INTEGER NOT NULL);",
        postgres: "CREATE TABLE function_keys (
            app TEXT NOT NULL,
            scope TEXT NOT NULL,
            function TEXT NOT NULL,
            name_lc TEXT NOT NULL,
            name TEXT NOT NULL,
            value BYTEA NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (app, scope, function, name_lc)
        );
        CREATE TABLE key_versions (app TEXT PRIMARY KEY, version BIGINT NOT NULL);",
    },
    Migration {
        version: 2,
        name: "leases and timer status",
        sqlite: "CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE TABLE timer_status (
            app TEXT NOT NULL,
            timer TEXT NOT NULL,
            last_at INTEGER,
            next_at INTEGER NOT NULL,
            last_updated_at INTEGER NOT NULL,
            PRIMARY KEY (app, timer)
        );",
        postgres: "CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at BIGINT NOT NULL
        );
        CREATE TABLE timer_status (
            app TEXT NOT NULL,
            timer TEXT NOT NULL,
            last_at BIGINT,
            next_at BIGINT NOT NULL,
            last_updated_at BIGINT NOT NULL,
            PRIMARY KEY (app, timer)
        );",
    },
    Migration {
        version: 3,
        name: "storage queues",
        // A queue gets a new id each time it is created, so messages left behind by a put
        // that raced a queue deletion never show up in a queue created later with that name.
        // `get` scans `queue_messages_ready` in order (queue, visible time, sequence) and stops
        // after the batch; `queue_messages_expiry` serves `purge_expired`.
        sqlite: "CREATE TABLE queues (
            queue_id INTEGER PRIMARY KEY AUTOINCREMENT,
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            metadata TEXT NOT NULL,
            UNIQUE (account, name)
        );
        CREATE TABLE queue_messages (
            seq INTEGER PRIMARY KEY,
            queue_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            pop_receipt TEXT NOT NULL,
            body TEXT NOT NULL,
            inserted_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            visible_at INTEGER NOT NULL,
            dequeue_count INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX queue_messages_id ON queue_messages (message_id);
        CREATE INDEX queue_messages_ready ON queue_messages (queue_id, visible_at, seq, expires_at);
        CREATE INDEX queue_messages_expiry ON queue_messages (expires_at);",
        // Names sort and compare bytewise (COLLATE \"C\"), as on SQLite.
        postgres: "CREATE TABLE queues (
            queue_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            account TEXT COLLATE \"C\" NOT NULL,
            name TEXT COLLATE \"C\" NOT NULL,
            metadata TEXT NOT NULL,
            UNIQUE (account, name)
        );
        CREATE TABLE queue_messages (
            message_id TEXT COLLATE \"C\" PRIMARY KEY,
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            queue_id BIGINT NOT NULL,
            pop_receipt TEXT COLLATE \"C\" NOT NULL,
            body TEXT NOT NULL,
            inserted_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            visible_at BIGINT NOT NULL,
            dequeue_count BIGINT NOT NULL
        );
        CREATE INDEX queue_messages_ready ON queue_messages (queue_id, visible_at, seq, expires_at);
        CREATE INDEX queue_messages_expiry ON queue_messages (expires_at);",
    },
    Migration {
        version: 4,
        name: "managed apps",
        // Packages are kept once per content (SHA-256); versions point at them.
        sqlite: "CREATE TABLE apps (
            name TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            active_version INTEGER,
            min_replicas INTEGER NOT NULL,
            max_replicas INTEGER NOT NULL,
            labels TEXT NOT NULL,
            generation INTEGER NOT NULL
        );
        CREATE TABLE app_settings (
            app TEXT NOT NULL REFERENCES apps (name),
            name_lc TEXT NOT NULL,
            name TEXT NOT NULL,
            value BLOB NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (app, name_lc)
        );
        CREATE TABLE packages (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            content BLOB NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE app_versions (
            app TEXT NOT NULL REFERENCES apps (name),
            number INTEGER NOT NULL,
            sha256 TEXT NOT NULL REFERENCES packages (sha256),
            created_at INTEGER NOT NULL,
            author TEXT NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (app, number)
        );
        CREATE INDEX app_versions_package ON app_versions (sha256);",
        postgres: "CREATE TABLE apps (
            name TEXT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            active_version BIGINT,
            min_replicas BIGINT NOT NULL,
            max_replicas BIGINT NOT NULL,
            labels TEXT NOT NULL,
            generation BIGINT NOT NULL
        );
        CREATE TABLE app_settings (
            app TEXT NOT NULL REFERENCES apps (name),
            name_lc TEXT NOT NULL,
            name TEXT NOT NULL,
            value BYTEA NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (app, name_lc)
        );
        CREATE TABLE packages (
            sha256 TEXT PRIMARY KEY,
            size BIGINT NOT NULL,
            content BYTEA NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE app_versions (
            app TEXT NOT NULL REFERENCES apps (name),
            number BIGINT NOT NULL,
            sha256 TEXT NOT NULL REFERENCES packages (sha256),
            created_at BIGINT NOT NULL,
            author TEXT NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (app, number)
        );
        CREATE INDEX app_versions_package ON app_versions (sha256);",
    },
    Migration {
        version: 5,
        name: "join tokens and workers",
        sqlite: "CREATE TABLE join_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            cpu_millis INTEGER NOT NULL,
            memory_mib INTEGER NOT NULL,
            max_apps INTEGER NOT NULL,
            labels TEXT NOT NULL,
            availability TEXT,
            version TEXT NOT NULL,
            token_id TEXT NOT NULL REFERENCES join_tokens (id),
            joined_at INTEGER NOT NULL,
            heartbeat_at INTEGER NOT NULL,
            draining BOOLEAN NOT NULL
        );",
        postgres: "CREATE TABLE join_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            revoked_at BIGINT
        );
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            cpu_millis BIGINT NOT NULL,
            memory_mib BIGINT NOT NULL,
            max_apps BIGINT NOT NULL,
            labels TEXT NOT NULL,
            availability TEXT,
            version TEXT NOT NULL,
            token_id TEXT NOT NULL REFERENCES join_tokens (id),
            joined_at BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL,
            draining BOOLEAN NOT NULL
        );",
    },
    Migration {
        version: 6,
        name: "placements",
        // Written by the scheduler leader only; a placement outlives a removed worker or app
        // until the next plan drops it.
        sqlite: "CREATE TABLE placements (
            app TEXT NOT NULL,
            worker_id TEXT NOT NULL,
            assigned_at INTEGER NOT NULL,
            PRIMARY KEY (app, worker_id)
        );",
        postgres: "CREATE TABLE placements (
            app TEXT NOT NULL,
            worker_id TEXT NOT NULL,
            assigned_at BIGINT NOT NULL,
            PRIMARY KEY (app, worker_id)
        );",
    },
    Migration {
        version: 7,
        name: "worker status",
        sqlite: "ALTER TABLE workers ADD COLUMN status TEXT NOT NULL DEFAULT '{}';",
        postgres: "ALTER TABLE workers ADD COLUMN status TEXT NOT NULL DEFAULT '{}';",
    },
    Migration {
        version: 8,
        name: "deployments, publishing credentials and certificates",
        // At most one deployment of an app is unfinished at a time (the partial index).
        sqlite: "CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            app TEXT NOT NULL,
            status INTEGER NOT NULL,
            status_text TEXT NOT NULL,
            author TEXT NOT NULL,
            author_email TEXT NOT NULL,
            deployer TEXT NOT NULL,
            message TEXT NOT NULL,
            version INTEGER,
            base_version INTEGER,
            received_at INTEGER NOT NULL,
            end_at INTEGER,
            touched_at INTEGER NOT NULL,
            complete INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX deployments_unfinished ON deployments (app) WHERE complete = 0;
        CREATE INDEX deployments_by_app ON deployments (app, received_at);
        CREATE TABLE deployment_log (
            deployment_id TEXT NOT NULL,
            ord INTEGER NOT NULL,
            at INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (deployment_id, ord)
        );
        CREATE TABLE publishing_credentials (
            app TEXT PRIMARY KEY,
            salt TEXT NOT NULL,
            hash TEXT NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE certificates (
            name TEXT PRIMARY KEY,
            cert_pem TEXT NOT NULL,
            key_sealed BLOB NOT NULL,
            created_at INTEGER NOT NULL
        );",
        postgres: "CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            app TEXT NOT NULL,
            status BIGINT NOT NULL,
            status_text TEXT NOT NULL,
            author TEXT NOT NULL,
            author_email TEXT NOT NULL,
            deployer TEXT NOT NULL,
            message TEXT NOT NULL,
            version BIGINT,
            base_version BIGINT,
            received_at BIGINT NOT NULL,
            end_at BIGINT,
            touched_at BIGINT NOT NULL,
            complete BIGINT NOT NULL
        );
        CREATE UNIQUE INDEX deployments_unfinished ON deployments (app) WHERE complete = 0;
        CREATE INDEX deployments_by_app ON deployments (app, received_at);
        CREATE TABLE deployment_log (
            deployment_id TEXT NOT NULL,
            ord BIGINT NOT NULL,
            at BIGINT NOT NULL,
            kind BIGINT NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (deployment_id, ord)
        );
        CREATE TABLE publishing_credentials (
            app TEXT PRIMARY KEY,
            salt TEXT NOT NULL,
            hash TEXT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE certificates (
            name TEXT PRIMARY KEY,
            cert_pem TEXT NOT NULL,
            key_sealed BYTEA NOT NULL,
            created_at BIGINT NOT NULL
        );",
    },
    Migration {
        version: 9,
        name: "portal users and sessions",
        // Session and bootstrap tokens are kept as their SHA-256 only.
        sqlite: "CREATE TABLE portal_users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE portal_sessions (
            token_hash TEXT PRIMARY KEY,
            user_name TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE TABLE portal_bootstrap (
            token_hash TEXT PRIMARY KEY,
            expires_at INTEGER NOT NULL
        );",
        postgres: "CREATE TABLE portal_users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE portal_sessions (
            token_hash TEXT PRIMARY KEY,
            user_name TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL
        );
        CREATE TABLE portal_bootstrap (
            token_hash TEXT PRIMARY KEY,
            expires_at BIGINT NOT NULL
        );",
    },
    Migration {
        version: 10,
        name: "invocation records, function logs and latency statistics",
        // A statistics row is one host process's totals of a function in a minute (replaced
        // as they grow); the hosts' rows are summed when read.
        sqlite: "CREATE TABLE invocations (
            app TEXT NOT NULL,
            id TEXT NOT NULL,
            function TEXT NOT NULL,
            trigger_type TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            duration_us INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            error TEXT,
            worker TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (app, id)
        );
        CREATE INDEX invocations_by_time ON invocations (app, started_at);
        CREATE TABLE function_logs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            app TEXT NOT NULL,
            function TEXT NOT NULL,
            invocation_id TEXT NOT NULL,
            logged_at INTEGER NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            worker TEXT NOT NULL
        );
        CREATE INDEX function_logs_by_app ON function_logs (app, seq);
        CREATE INDEX function_logs_by_invocation ON function_logs (app, invocation_id);
        CREATE INDEX function_logs_by_time ON function_logs (app, logged_at);
        CREATE TABLE invocation_stats (
            app TEXT NOT NULL,
            function TEXT NOT NULL,
            minute INTEGER NOT NULL,
            worker TEXT NOT NULL,
            host TEXT NOT NULL,
            count INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            histogram TEXT NOT NULL,
            PRIMARY KEY (app, minute, function, worker, host)
        );",
        postgres: "CREATE TABLE invocations (
            app TEXT NOT NULL,
            id TEXT NOT NULL,
            function TEXT NOT NULL,
            trigger_type TEXT NOT NULL,
            started_at BIGINT NOT NULL,
            duration_us BIGINT NOT NULL,
            failed BIGINT NOT NULL,
            error TEXT,
            worker TEXT NOT NULL,
            version BIGINT NOT NULL,
            PRIMARY KEY (app, id)
        );
        CREATE INDEX invocations_by_time ON invocations (app, started_at);
        CREATE TABLE function_logs (
            seq BIGSERIAL PRIMARY KEY,
            app TEXT NOT NULL,
            function TEXT NOT NULL,
            invocation_id TEXT NOT NULL,
            logged_at BIGINT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            worker TEXT NOT NULL
        );
        CREATE INDEX function_logs_by_app ON function_logs (app, seq);
        CREATE INDEX function_logs_by_invocation ON function_logs (app, invocation_id);
        CREATE INDEX function_logs_by_time ON function_logs (app, logged_at);
        CREATE TABLE invocation_stats (
            app TEXT NOT NULL,
            function TEXT NOT NULL,
            minute BIGINT NOT NULL,
            worker TEXT NOT NULL,
            host TEXT NOT NULL,
            count BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            histogram TEXT NOT NULL,
            PRIMARY KEY (app, minute, function, worker, host)
        );",
    },
];

impl Backend {
    pub(crate) async fn connect(url: &str) -> Result<Backend> {
        let backend = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err(Error::BadUrl(url.to_string()));
            }
            let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            Backend::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(opts)
                    .await?,
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            Backend::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?,
            )
        } else {
            return Err(Error::BadUrl(url.to_string()));
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// Applies the migrations not yet applied, each in its own transaction. On PostgreSQL an
    /// advisory lock keeps concurrent starters from racing.
    async fn migrate(&self) -> Result<()> {
        let postgres = matches!(self, Backend::Postgres(_));
        on_pool!(self, |pool| {
            for m in MIGRATIONS {
                let mut tx = pool.begin().await?;
                if postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock(7355608)")
                        .execute(&mut *tx)
                        .await?;
                }
                // BIGINT is an INTEGER to SQLite.
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS stratus_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
                )
                .execute(&mut *tx)
                .await?;
                let done: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM stratus_migrations WHERE version = $1")
                        .bind(m.version)
                        .fetch_optional(&mut *tx)
                        .await?;
                if done.is_some() {
                    continue;
                }
                let sql = if postgres { m.postgres } else { m.sqlite };
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| Error::Migration {
                        version: m.version,
                        name: m.name,
                        source,
                    })?;
                sqlx::query("INSERT INTO stratus_migrations (version, name) VALUES ($1, $2)")
                    .bind(m.version)
                    .bind(m.name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        });
        Ok(())
    }

    pub(crate) async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}
