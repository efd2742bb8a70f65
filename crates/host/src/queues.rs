//! Where an app's queues are: the store under `stratus start`, the management role's queue
//! service for a worker's hosts. Queue triggers and output bindings reach them through
//! [`QueueStore`].

use stratus_store::SqlQueues;
use stratus_store::queues::{DeleteMessage, Message};

use crate::executor::BoxFuture;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue does not exist")]
    QueueNotFound,
    #[error("{0}")]
    Other(String),
}

impl From<stratus_store::Error> for QueueError {
    fn from(e: stratus_store::Error) -> QueueError {
        match e {
            stratus_store::Error::QueueNotFound { .. } => QueueError::QueueNotFound,
            e => QueueError::Other(e.to_string()),
        }
    }
}

/// The queue operations triggers and bindings use. Times are milliseconds; `now_ms` is the
/// caller's clock (a remote service may use its own).
pub trait QueueStore: Send + Sync + std::fmt::Debug {
    /// Creates `queue` if it does not exist.
    fn create_queue<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Adds messages (visible now, the default time to live).
    fn put_many<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        texts: &'a [&'a str],
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Receives up to `count` visible messages, invisible for `visibility_ms`.
    fn get<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        count: usize,
        visibility_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<Message>, QueueError>>;
    /// Makes a received message visible again after `visibility_ms`; its new pop receipt.
    #[allow(
        clippy::too_many_arguments,
        reason = "the message, its receipt, the timeout and the time"
    )]
    fn update<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<String, QueueError>>;
    /// Deletes a received message (its latest pop receipt).
    fn delete<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
}

impl QueueStore for SqlQueues {
    fn create_queue<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            SqlQueues::create_queue(self, account, queue, &[]).await?;
            Ok(())
        })
    }

    fn put_many<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        texts: &'a [&'a str],
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            SqlQueues::put_many(self, account, queue, texts, 0, None, now_ms).await?;
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        count: usize,
        visibility_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<Message>, QueueError>> {
        Box::pin(async move {
            Ok(SqlQueues::get(self, account, queue, count, visibility_ms, now_ms).await?)
        })
    }

    fn update<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<String, QueueError>> {
        Box::pin(async move {
            let u = SqlQueues::update(
                self,
                account,
                queue,
                id,
                pop_receipt,
                None,
                visibility_ms,
                now_ms,
            )
            .await?;
            Ok(u.pop_receipt)
        })
    }

    fn delete<'a>(
        &'a self,
        account: &'a str,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            match SqlQueues::delete(self, account, queue, id, pop_receipt).await? {
                DeleteMessage::Deleted | DeleteMessage::NotFound => Ok(()),
                DeleteMessage::PopReceiptMismatch => Err(QueueError::Other(format!(
                    "message {id} was received again by someone else (pop receipt mismatch)"
                ))),
            }
        })
    }
}
