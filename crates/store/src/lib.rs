//! Stratus's persistent state over SQLite (one machine) or PostgreSQL (many), with secrets
//! encrypted at rest, and Azure's file-based secrets format.
//!
//! Only this crate knows SQL. Every query runs on both engines; `tests/conformance.rs` runs
//! one suite against each.

#![forbid(unsafe_code)]

pub mod apps;
mod crypto;
mod db;
pub mod deployments;
mod error;
pub mod files;
pub mod keys;
pub mod leases;
pub mod portal;
pub mod publishing;
mod queue_group;
pub mod queues;
pub mod telemetry;
pub mod timers;
pub mod workers;

pub use apps::{AppRecord, AppVersion, Scale, SqlApps};
pub use crypto::EncryptionKey;
pub use deployments::{
    Begin, DeployOrigin, DeployStatus, Deployment, Finish, LogEntry, LogKind, SqlDeployments,
};
pub use error::{Error, Result};
pub use files::FileKeys;
pub use keys::{AppKeys, KeyScope, NamedKey, SqlKeys, Upsert};
pub use leases::{Lease, SqlLeases};
pub use portal::{Session, SqlPortal};
pub use publishing::{Certificate, Credential, SqlPublishing};
pub use queues::{
    CreateQueue, DeleteMessage, Message, PeekedMessage, QueueInfo, QueueProperties, SqlQueues,
    Updated,
};
pub use telemetry::{
    InvocationFilter, InvocationRecord, LogLine, Retention, SqlTelemetry, StatRow,
};
pub use timers::{SqlTimers, TimerStatus};
pub use workers::{JoinToken, SqlWorkers, WorkerRecord, WorkerSpec};

use db::Backend;

/// A connection pool to the store, with the key that encrypts its secrets.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    key: EncryptionKey,
    /// The writer of grouped queue puts and deletes.
    group: queue_group::GroupCommit,
}

impl Store {
    /// Opens (and migrates) the store at `url`: `sqlite:PATH` or `postgres://...`.
    pub async fn open(url: &str, key: EncryptionKey) -> Result<Store> {
        let backend = Backend::connect(url).await?;
        Ok(Store {
            group: queue_group::GroupCommit::start(backend.clone()),
            backend,
            key,
        })
    }

    /// The function keys of apps.
    pub fn keys(&self) -> SqlKeys {
        SqlKeys {
            backend: self.backend.clone(),
            key: self.key.clone(),
        }
    }

    /// Managed apps: settings, versions, packages.
    pub fn apps(&self) -> SqlApps {
        SqlApps {
            backend: self.backend.clone(),
            key: self.key.clone(),
        }
    }

    /// Deployments of managed apps and their logs.
    pub fn deployments(&self) -> SqlDeployments {
        SqlDeployments {
            backend: self.backend.clone(),
        }
    }

    /// Portal users, sessions and bootstrap tokens.
    pub fn portal(&self) -> SqlPortal {
        SqlPortal {
            backend: self.backend.clone(),
        }
    }

    /// Invocation records, function logs and latency statistics of managed apps.
    pub fn telemetry(&self) -> SqlTelemetry {
        SqlTelemetry {
            backend: self.backend.clone(),
        }
    }

    /// Publishing credentials and TLS certificates.
    pub fn publishing(&self) -> SqlPublishing {
        SqlPublishing {
            backend: self.backend.clone(),
            key: self.key.clone(),
        }
    }

    /// Join tokens and the workers that joined.
    pub fn workers(&self) -> SqlWorkers {
        SqlWorkers {
            backend: self.backend.clone(),
        }
    }

    /// Leases (timer singletons, leadership).
    pub fn leases(&self) -> SqlLeases {
        SqlLeases {
            backend: self.backend.clone(),
        }
    }

    /// Timer schedule status.
    pub fn timers(&self) -> SqlTimers {
        SqlTimers {
            backend: self.backend.clone(),
        }
    }

    /// The built-in queue service's queues and messages.
    pub fn queues(&self) -> SqlQueues {
        SqlQueues {
            backend: self.backend.clone(),
            group: self.group.clone(),
        }
    }

    /// Which engine this store runs on, for logs.
    pub fn engine(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        self.backend.close().await;
    }
}
