//! Errors of the store.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database URL \"{0}\": expected sqlite:PATH or postgres://...")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("invalid encryption key: {0}")]
    BadEncryptionKey(String),
    #[error("{0}")]
    Crypto(String),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("secrets file {path}: {problem}")]
    SecretsFile { path: String, problem: String },
    #[error("secrets directory {path}: {source}")]
    SecretsIo {
        path: String,
        source: std::io::Error,
    },
    #[error("queue \"{queue}\" does not exist in account \"{account}\"")]
    QueueNotFound { account: String, queue: String },
    #[error("the message is {size} bytes long; the limit is {limit} bytes")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("message {id} does not exist in queue \"{queue}\"")]
    MessageNotFound { queue: String, id: String },
    #[error("the pop receipt does not match message {id} of queue \"{queue}\"")]
    PopReceiptMismatch { queue: String, id: String },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("no package with SHA-256 {0} is stored")]
    PackageNotFound(String),
    #[error("the store is closed")]
    Closed,
    #[error("database error: {0}")]
    Grouped(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
