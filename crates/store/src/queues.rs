//! The built-in queue service's storage, with Azure Storage Queue semantics: queues named per
//! storage account, with metadata; messages with a visibility timeout, a time to live, a
//! dequeue count and a pop receipt that changes on every receive or update.
//!
//! Times are milliseconds since the Unix epoch, given by the caller; the database only
//! compares them. Each operation is one statement (one round trip) on its success path; a
//! second query runs only to tell apart the reasons of a failure (missing queue, missing
//! message, stale pop receipt) or of an empty receive (missing queue).
//!
//! Receives are safe between competing consumers: on PostgreSQL the batch is chosen with
//! `FOR UPDATE SKIP LOCKED`, so consumers neither wait for each other nor get the same
//! message; on SQLite the choice and the update are one statement, which holds the write lock.
//!
//! Messages come out in the order they became visible, then in insertion order: a message
//! that was never received comes out in insertion order; one whose visibility timeout ran out
//! lines up behind the messages that became visible before it. Azure promises no order.

use crate::db::{Backend, on_pool};
use crate::error::{Error, Result};

/// The largest message text, in bytes (Azure: 64 KiB, after any base64 encoding).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The most messages one receive or peek returns.
pub const MAX_BATCH: usize = 32;

/// The time to live of a message sent without one: 7 days.
pub const DEFAULT_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The expiration time of a message that never expires.
pub const NEVER_EXPIRES: i64 = i64::MAX;

/// Metadata of a queue: name/value pairs, names kept as given.
pub type Metadata = Vec<(String, String)>;

/// What creating a queue did (Azure answers 201, 204 and 409 `QueueAlreadyExists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateQueue {
    Created,
    /// The queue existed; `same_metadata` tells whether its metadata equals the one given
    /// (names compared case-insensitively, values exactly, in any order).
    Exists {
        same_metadata: bool,
    },
}

/// A queue as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub name: String,
    pub metadata: Metadata,
}

/// The properties of a queue (Get Queue Metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueProperties {
    pub metadata: Metadata,
    /// Messages not yet expired, visible or not.
    pub approximate_message_count: u64,
}

/// A message as sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// A GUID, lower-case with hyphens.
    pub id: String,
    /// Opaque; new on each receive and update. Deleting or updating the message needs the
    /// latest one.
    pub pop_receipt: String,
    pub text: String,
    pub insertion_ms: i64,
    /// [`NEVER_EXPIRES`] for a message that never expires.
    pub expiration_ms: i64,
    pub next_visible_ms: i64,
    /// How many times the message was received (0 when sent).
    pub dequeue_count: i64,
}

/// A message as peeked: no pop receipt, visibility unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedMessage {
    pub id: String,
    pub text: String,
    pub insertion_ms: i64,
    pub expiration_ms: i64,
    pub dequeue_count: i64,
}

/// What deleting a message did (Azure: 204, 404 `MessageNotFound`, 400 `PopReceiptMismatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMessage {
    Deleted,
    NotFound,
    PopReceiptMismatch,
}

/// The outcome of a message update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub pop_receipt: String,
    pub next_visible_ms: i64,
}

/// The queues of the store.
#[derive(Debug, Clone)]
pub struct SqlQueues {
    pub(crate) backend: Backend,
    /// Single puts and deletes go through it (one commit per group of them).
    pub(crate) group: crate::queue_group::GroupCommit,
}

/// The queue's id, by account and name, inside a statement.
macro_rules! queue_id {
    () => {
        "(SELECT queue_id FROM queues WHERE account = $1 AND name = $2)"
    };
}

/// A received message: sequence, id, receipt, text, inserted, expires, visible, dequeue count.
type MessageRow = (i64, String, String, String, i64, i64, i64, i64);

/// Receive on SQLite: choosing and updating the batch is one statement, under the write lock.
const GET_SQLITE: &str = concat!(
    "UPDATE queue_messages SET visible_at = $5, dequeue_count = dequeue_count + 1, pop_receipt = $6 || seq ",
    "WHERE seq IN (SELECT seq FROM queue_messages WHERE queue_id = ",
    queue_id!(),
    " AND visible_at <= $3 AND expires_at > $3 ORDER BY visible_at, seq LIMIT $4) ",
    "RETURNING seq, message_id, pop_receipt, body, inserted_at, expires_at, visible_at, dequeue_count"
);

/// Receive on PostgreSQL: rows another consumer is taking are skipped, not waited for; a row
/// another consumer took meanwhile is re-checked against the (then future) visible time.
const GET_POSTGRES: &str = concat!(
    "WITH picked AS MATERIALIZED (SELECT message_id FROM queue_messages WHERE queue_id = ",
    queue_id!(),
    " AND visible_at <= $3 AND expires_at > $3 ORDER BY visible_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED) ",
    "UPDATE queue_messages AS m SET visible_at = $5, dequeue_count = m.dequeue_count + 1, pop_receipt = $6 || m.seq ",
    "FROM picked WHERE m.message_id = picked.message_id ",
    "RETURNING m.seq, m.message_id, m.pop_receipt, m.body, m.inserted_at, m.expires_at, m.visible_at, m.dequeue_count"
);

const PEEK: &str = concat!(
    "SELECT message_id, body, inserted_at, expires_at, dequeue_count FROM queue_messages WHERE queue_id = ",
    queue_id!(),
    " AND visible_at <= $3 AND expires_at > $3 ORDER BY visible_at, seq LIMIT $4"
);

const UPDATE: &str = concat!(
    "UPDATE queue_messages SET pop_receipt = $5, visible_at = $6, body = COALESCE($7, body) ",
    "WHERE message_id = $3 AND pop_receipt = $4 AND expires_at > $8 AND queue_id = ",
    queue_id!()
);

/// Sending a batch on SQLite: `$3` is a JSON array of `[id, receipt, text]`.
const PUT_MANY_SQLITE: &str = concat!(
    "INSERT INTO queue_messages (queue_id, message_id, pop_receipt, body, inserted_at, expires_at, visible_at, dequeue_count) ",
    "SELECT q.queue_id, t.value ->> 0, t.value ->> 1, t.value ->> 2, $4, $5, $6, 0 ",
    "FROM queues q, json_each($3) t WHERE q.account = $1 AND q.name = $2 ORDER BY t.key"
);

/// Sending a batch on PostgreSQL: ids, receipts and texts as three arrays.
const PUT_MANY_POSTGRES: &str = concat!(
    "INSERT INTO queue_messages (queue_id, message_id, pop_receipt, body, inserted_at, expires_at, visible_at, dequeue_count) ",
    "SELECT q.queue_id, t.id, t.receipt, t.body, $6, $7, $8, 0 ",
    "FROM queues q, unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(id, receipt, body, n) ",
    "WHERE q.account = $1 AND q.name = $2 ORDER BY t.n"
);

/// Deleting a batch on SQLite: `$3` is a JSON array of `[id, receipt]`. (`+queue_id` keeps
/// SQLite from scanning the whole queue through the ready index instead of looking up ids.)
const DELETE_MANY_SQLITE: &str = concat!(
    "DELETE FROM queue_messages WHERE message_id IN (SELECT value ->> 0 FROM json_each($3)) ",
    "AND (message_id, pop_receipt) IN (SELECT value ->> 0, value ->> 1 FROM json_each($3)) ",
    "AND +queue_id = ",
    queue_id!(),
    " RETURNING message_id"
);

/// Deleting a batch on PostgreSQL: ids and receipts as two arrays.
const DELETE_MANY_POSTGRES: &str = concat!(
    "DELETE FROM queue_messages AS m USING unnest($3::text[], $4::text[]) AS t(id, receipt) ",
    "WHERE m.message_id = t.id AND m.pop_receipt = t.receipt AND m.queue_id = ",
    queue_id!(),
    " RETURNING m.message_id"
);

/// Why a delete or update touched nothing: the queue's id (None: no queue) and the message's
/// current receipt (None: no such message, or expired before `$4`).
const DIAGNOSE: &str = concat!(
    "SELECT q.queue_id, (SELECT m.pop_receipt FROM queue_messages m ",
    "WHERE m.queue_id = q.queue_id AND m.message_id = $3 AND m.expires_at > $4) ",
    "FROM queues q WHERE q.account = $1 AND q.name = $2"
);

impl SqlQueues {
    /// Creates queue `name` in `account`, or reports that it exists.
    pub async fn create_queue(
        &self,
        account: &str,
        name: &str,
        metadata: &[(String, String)],
    ) -> Result<CreateQueue> {
        let json = metadata_to_json(metadata);
        // A queue deleted between the insert and the read is created on the next round.
        for _ in 0..3 {
            let created = on_pool!(&self.backend, |pool| {
                sqlx::query(
                    "INSERT INTO queues (account, name, metadata) VALUES ($1, $2, $3)
                     ON CONFLICT (account, name) DO NOTHING",
                )
                .bind(account)
                .bind(name)
                .bind(&json)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if created == 1 {
                return Ok(CreateQueue::Created);
            }
            if let Some(existing) = self.metadata_of(account, name).await? {
                return Ok(CreateQueue::Exists {
                    same_metadata: same_metadata(&existing, metadata),
                });
            }
        }
        Err(Error::Database(sqlx::Error::Protocol(format!(
            "queue \"{name}\" keeps being deleted while it is created"
        ))))
    }

    /// Deletes a queue and its messages; returns whether it existed.
    pub async fn delete_queue(&self, account: &str, name: &str) -> Result<bool> {
        on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "DELETE FROM queues WHERE account = $1 AND name = $2 RETURNING queue_id",
            )
            .bind(account)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                return Ok(false);
            };
            sqlx::query("DELETE FROM queue_messages WHERE queue_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Lists the queues of `account` whose names start with `prefix`, in name (byte) order,
    /// from `marker` (a `next_marker` from the previous page) on, at most `max` (at least 1).
    /// Returns the page and the marker of the next one, if there is more.
    pub async fn list_queues(
        &self,
        account: &str,
        prefix: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<QueueInfo>, Option<String>)> {
        let max = max.max(1);
        let from = match marker {
            Some(m) if m > prefix => m,
            _ => prefix,
        };
        let limit = i64::try_from(max).unwrap_or(i64::MAX - 1) + 1;
        let rows: Vec<(String, String)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT name, metadata FROM queues
                 WHERE account = $1 AND name >= $2 AND substr(name, 1, length($3)) = $3
                 ORDER BY name LIMIT $4",
            )
            .bind(account)
            .bind(from)
            .bind(prefix)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let mut queues = rows
            .into_iter()
            .map(|(name, json)| {
                Ok(QueueInfo {
                    name,
                    metadata: metadata_from_json(&json)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next = if queues.len() > max {
            queues.pop().map(|q| q.name)
        } else {
            None
        };
        Ok((queues, next))
    }

    /// The metadata of a queue and its approximate message count (messages not expired at
    /// `now_ms`); None when the queue does not exist.
    pub async fn get_metadata(
        &self,
        account: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Option<QueueProperties>> {
        let row: Option<(String, i64)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT q.metadata, (SELECT COUNT(*) FROM queue_messages m
                     WHERE m.queue_id = q.queue_id AND m.expires_at > $3)
                 FROM queues q WHERE q.account = $1 AND q.name = $2",
            )
            .bind(account)
            .bind(name)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        row.map(|(json, count)| {
            Ok(QueueProperties {
                metadata: metadata_from_json(&json)?,
                approximate_message_count: u64::try_from(count).unwrap_or(0),
            })
        })
        .transpose()
    }

    /// Replaces the metadata of a queue.
    pub async fn set_metadata(
        &self,
        account: &str,
        name: &str,
        metadata: &[(String, String)],
    ) -> Result<()> {
        let json = metadata_to_json(metadata);
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query("UPDATE queues SET metadata = $3 WHERE account = $1 AND name = $2")
                .bind(account)
                .bind(name)
                .bind(&json)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(queue_not_found(account, name));
        }
        Ok(())
    }

    /// Sends a message: visible from `now_ms + visibility_timeout_ms`, expiring after `ttl_ms`
    /// (None: 7 days; negative, as Azure's -1: never).
    pub async fn put(
        &self,
        account: &str,
        queue: &str,
        text: &str,
        visibility_timeout_ms: i64,
        ttl_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Message> {
        let message = new_message(text, visibility_timeout_ms, ttl_ms, now_ms)?;
        if !self.group.put(account, queue, message.clone()).await? {
            return Err(queue_not_found(account, queue));
        }
        Ok(message)
    }

    /// Receives up to `count` (at most [`MAX_BATCH`]) of the first visible, unexpired
    /// messages, making each invisible until `now_ms + visibility_timeout_ms`, counting the
    /// dequeue and giving it a new pop receipt. Returned in insertion order.
    pub async fn get(
        &self,
        account: &str,
        queue: &str,
        count: usize,
        visibility_timeout_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Message>> {
        let count = count.min(MAX_BATCH) as i64;
        if count == 0 {
            return Ok(Vec::new());
        }
        let visible = now_ms.saturating_add(visibility_timeout_ms);
        let nonce = random_hex(8)?;
        let sql = match &self.backend {
            Backend::Sqlite(_) => GET_SQLITE,
            Backend::Postgres(_) => GET_POSTGRES,
        };
        let mut rows: Vec<MessageRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(sql)
                .bind(account)
                .bind(queue)
                .bind(now_ms)
                .bind(count)
                .bind(visible)
                .bind(&nonce)
                .fetch_all(pool)
                .await?
        });
        if rows.is_empty() {
            self.require_queue(account, queue).await?;
            return Ok(Vec::new());
        }
        self.group.changed(rows.len());
        rows.sort_unstable_by_key(|r| r.0);
        Ok(rows
            .into_iter()
            .map(
                |(
                    _,
                    id,
                    pop_receipt,
                    text,
                    insertion_ms,
                    expiration_ms,
                    next_visible_ms,
                    dequeue_count,
                )| {
                    Message {
                        id,
                        pop_receipt,
                        text,
                        insertion_ms,
                        expiration_ms,
                        next_visible_ms,
                        dequeue_count,
                    }
                },
            )
            .collect())
    }

    /// Up to `count` (at most [`MAX_BATCH`]) of the first visible, unexpired messages, changing
    /// nothing.
    pub async fn peek(
        &self,
        account: &str,
        queue: &str,
        count: usize,
        now_ms: i64,
    ) -> Result<Vec<PeekedMessage>> {
        let count = count.min(MAX_BATCH) as i64;
        if count == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String, i64, i64, i64)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(PEEK)
                .bind(account)
                .bind(queue)
                .bind(now_ms)
                .bind(count)
                .fetch_all(pool)
                .await?
        });
        if rows.is_empty() {
            self.require_queue(account, queue).await?;
        }
        Ok(rows
            .into_iter()
            .map(
                |(id, text, insertion_ms, expiration_ms, dequeue_count)| PeekedMessage {
                    id,
                    text,
                    insertion_ms,
                    expiration_ms,
                    dequeue_count,
                },
            )
            .collect())
    }

    /// Deletes message `id` if `pop_receipt` is its latest one. A message that expired but is
    /// not purged yet can still be deleted.
    pub async fn delete(
        &self,
        account: &str,
        queue: &str,
        id: &str,
        pop_receipt: &str,
    ) -> Result<DeleteMessage> {
        if self.group.delete(account, queue, id, pop_receipt).await? {
            return Ok(DeleteMessage::Deleted);
        }
        Ok(match self.diagnose(account, queue, id, i64::MIN).await? {
            Miss::NoMessage => DeleteMessage::NotFound,
            Miss::Receipt => DeleteMessage::PopReceiptMismatch,
        })
    }

    /// Updates message `id` (its latest receipt is `pop_receipt`): it becomes visible at
    /// `now_ms + visibility_timeout_ms`, takes `new_text` if given, and gets a new receipt.
    /// Errors: [`Error::MessageNotFound`] (also when expired), [`Error::PopReceiptMismatch`],
    /// [`Error::QueueNotFound`], [`Error::MessageTooLarge`].
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors Update Message: queue, message, receipt, text, timeout, and the time"
    )]
    pub async fn update(
        &self,
        account: &str,
        queue: &str,
        id: &str,
        pop_receipt: &str,
        new_text: Option<&str>,
        visibility_timeout_ms: i64,
        now_ms: i64,
    ) -> Result<Updated> {
        if let Some(text) = new_text {
            check_size(text)?;
        }
        let updated = Updated {
            pop_receipt: random_hex(12)?,
            next_visible_ms: now_ms.saturating_add(visibility_timeout_ms),
        };
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(UPDATE)
                .bind(account)
                .bind(queue)
                .bind(id)
                .bind(pop_receipt)
                .bind(&updated.pop_receipt)
                .bind(updated.next_visible_ms)
                .bind(new_text)
                .bind(now_ms)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n > 0 {
            return Ok(updated);
        }
        Err(match self.diagnose(account, queue, id, now_ms).await? {
            Miss::NoMessage => Error::MessageNotFound {
                queue: queue.to_string(),
                id: id.to_string(),
            },
            Miss::Receipt => Error::PopReceiptMismatch {
                queue: queue.to_string(),
                id: id.to_string(),
            },
        })
    }

    /// Sends several messages in one statement, as [`put`](Self::put) sends one; they
    /// line up in the order given. Nothing is sent when one of them is too large.
    pub async fn put_many(
        &self,
        account: &str,
        queue: &str,
        texts: &[&str],
        visibility_timeout_ms: i64,
        ttl_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Vec<Message>> {
        let messages = texts
            .iter()
            .map(|text| new_message(text, visibility_timeout_ms, ttl_ms, now_ms))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = messages.first() else {
            self.require_queue(account, queue).await?;
            return Ok(messages);
        };
        let (expiration_ms, next_visible_ms) = (first.expiration_ms, first.next_visible_ms);
        let n = match &self.backend {
            Backend::Sqlite(pool) => {
                let rows: Vec<_> = messages
                    .iter()
                    .map(|m| (&m.id, &m.pop_receipt, &m.text))
                    .collect();
                sqlx::query(PUT_MANY_SQLITE)
                    .bind(account)
                    .bind(queue)
                    .bind(to_json(&rows)?)
                    .bind(now_ms)
                    .bind(expiration_ms)
                    .bind(next_visible_ms)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Backend::Postgres(pool) => {
                let column = |f: fn(&Message) -> &str| messages.iter().map(f).collect::<Vec<_>>();
                sqlx::query(PUT_MANY_POSTGRES)
                    .bind(account)
                    .bind(queue)
                    .bind(column(|m| &m.id))
                    .bind(column(|m| &m.pop_receipt))
                    .bind(column(|m| &m.text))
                    .bind(now_ms)
                    .bind(expiration_ms)
                    .bind(next_visible_ms)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        if n == 0 {
            return Err(queue_not_found(account, queue));
        }
        Ok(messages)
    }

    /// Deletes several messages, each given as (id, latest pop receipt), in one statement;
    /// returns, for each, whether it was deleted (false: not found, or a stale receipt). For
    /// acknowledging a batch of processed messages at once.
    pub async fn delete_many(
        &self,
        account: &str,
        queue: &str,
        messages: &[(&str, &str)],
    ) -> Result<Vec<bool>> {
        if messages.is_empty() {
            self.require_queue(account, queue).await?;
            return Ok(Vec::new());
        }
        let deleted: Vec<String> = match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query_scalar(DELETE_MANY_SQLITE)
                    .bind(account)
                    .bind(queue)
                    .bind(to_json(messages)?)
                    .fetch_all(pool)
                    .await?
            }
            Backend::Postgres(pool) => {
                let ids: Vec<&str> = messages.iter().map(|m| m.0).collect();
                let receipts: Vec<&str> = messages.iter().map(|m| m.1).collect();
                sqlx::query_scalar(DELETE_MANY_POSTGRES)
                    .bind(account)
                    .bind(queue)
                    .bind(ids)
                    .bind(receipts)
                    .fetch_all(pool)
                    .await?
            }
        };
        if deleted.is_empty() {
            self.require_queue(account, queue).await?;
        }
        Ok(messages
            .iter()
            .map(|(id, _)| deleted.iter().any(|d| d == id))
            .collect())
    }

    /// Deletes every message of a queue; returns how many there were (expired ones included).
    pub async fn clear(&self, account: &str, queue: &str) -> Result<u64> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query(concat!(
                "DELETE FROM queue_messages WHERE queue_id = ",
                queue_id!()
            ))
            .bind(account)
            .bind(queue)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            self.require_queue(account, queue).await?;
        }
        Ok(n)
    }

    /// Deletes the messages of every queue that expired at or before `now_ms`; returns how
    /// many. Expired messages are never returned, so this only reclaims space.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<u64> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query("DELETE FROM queue_messages WHERE expires_at <= $1")
                .bind(now_ms)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    async fn metadata_of(&self, account: &str, name: &str) -> Result<Option<Metadata>> {
        let json: Option<String> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT metadata FROM queues WHERE account = $1 AND name = $2")
                .bind(account)
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        json.map(|j| metadata_from_json(&j)).transpose()
    }

    /// Fails with [`Error::QueueNotFound`] unless the queue exists.
    async fn require_queue(&self, account: &str, queue: &str) -> Result<()> {
        let found: Option<i64> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT queue_id FROM queues WHERE account = $1 AND name = $2")
                .bind(account)
                .bind(queue)
                .fetch_optional(pool)
                .await?
        });
        match found {
            Some(_) => Ok(()),
            None => Err(queue_not_found(account, queue)),
        }
    }

    /// Why a delete or update by id and receipt matched no row; messages that expired at or
    /// before `now_ms` count as missing.
    async fn diagnose(&self, account: &str, queue: &str, id: &str, now_ms: i64) -> Result<Miss> {
        let row: Option<(i64, Option<String>)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(DIAGNOSE)
                .bind(account)
                .bind(queue)
                .bind(id)
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
        });
        match row {
            None => Err(queue_not_found(account, queue)),
            Some((_, None)) => Ok(Miss::NoMessage),
            Some((_, Some(_))) => Ok(Miss::Receipt),
        }
    }
}

/// Why a message operation matched no row, the queue existing.
enum Miss {
    NoMessage,
    Receipt,
}

fn queue_not_found(account: &str, queue: &str) -> Error {
    Error::QueueNotFound {
        account: account.to_string(),
        queue: queue.to_string(),
    }
}

/// A new message as `put` stores it.
fn new_message(
    text: &str,
    visibility_timeout_ms: i64,
    ttl_ms: Option<i64>,
    now_ms: i64,
) -> Result<Message> {
    check_size(text)?;
    let expiration_ms = match ttl_ms {
        None => now_ms.saturating_add(DEFAULT_TTL_MS),
        Some(ttl) if ttl < 0 => NEVER_EXPIRES,
        Some(ttl) => now_ms.saturating_add(ttl),
    };
    Ok(Message {
        id: new_guid()?,
        pop_receipt: random_hex(12)?,
        text: text.to_string(),
        insertion_ms: now_ms,
        expiration_ms,
        next_visible_ms: now_ms.saturating_add(visibility_timeout_ms),
        dequeue_count: 0,
    })
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(format!("cannot encode JSON: {e}")))
}

fn check_size(text: &str) -> Result<()> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(Error::MessageTooLarge {
            size: text.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}

fn metadata_to_json(metadata: &[(String, String)]) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "[]".to_string())
}

fn metadata_from_json(json: &str) -> Result<Metadata> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("queue metadata: {e}")))
}

/// Metadata equality as Azure's Create Queue judges it: names case-insensitive, any order.
fn same_metadata(a: &[(String, String)], b: &[(String, String)]) -> bool {
    fn normal(m: &[(String, String)]) -> Vec<(String, &str)> {
        let mut v: Vec<_> = m
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        v.sort_unstable();
        v
    }
    normal(a) == normal(b)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    Ok(bytes)
}

fn random_hex(len_bytes: usize) -> Result<String> {
    let bytes = random_bytes::<16>()?;
    Ok(hex(&bytes[..len_bytes.min(16)]))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A random (version 4) GUID, as `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
pub(crate) fn new_guid() -> Result<String> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex(&b[0..4]),
        hex(&b[4..6]),
        hex(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..16])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_have_the_v4_shape() {
        let g = new_guid().unwrap();
        assert_eq!(g.len(), 36);
        let parts: Vec<_> = g.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&g[14..15], "4");
        assert!(matches!(&g[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(g, new_guid().unwrap());
    }

    #[test]
    fn metadata_compares_names_without_case_and_in_any_order() {
        let m = |pairs: &[(&str, &str)]| -> Metadata {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(same_metadata(
            &m(&[("a", "1"), ("B", "2")]),
            &m(&[("b", "2"), ("A", "1")])
        ));
        assert!(!same_metadata(&m(&[("a", "1")]), &m(&[("a", "X")])));
        assert!(!same_metadata(&m(&[("a", "1")]), &m(&[])));
    }
}
