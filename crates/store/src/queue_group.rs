//! Group commit of single queue writes: puts and deletes that arrive together (one per REST
//! request, one per processed message) are written by one task in one transaction, a
//! statement for the puts and one for the deletes, so a busy queue costs one commit per
//! group rather than one per message. Each caller still learns its own outcome.

use tokio::sync::{mpsc, oneshot};

use crate::db::Backend;
use crate::error::{Error, Result};
use crate::queues::Message;

/// Most writes in one group.
const MAX_GROUP: usize = 512;

enum Op {
    Put {
        account: String,
        queue: String,
        message: Message,
        /// false: the queue does not exist.
        reply: oneshot::Sender<Result<bool>>,
    },
    Delete {
        account: String,
        queue: String,
        id: String,
        receipt: String,
        /// Whether a message was deleted.
        reply: oneshot::Sender<Result<bool>>,
    },
}

/// Puts, on SQLite: `$1` is a JSON array of `[account, queue, id, receipt, body, inserted,
/// expires, visible]`.
const PUT_SQLITE: &str = "INSERT INTO queue_messages (queue_id, message_id, pop_receipt, body, inserted_at, expires_at, visible_at, dequeue_count) \
     SELECT q.queue_id, t.value ->> 2, t.value ->> 3, t.value ->> 4, t.value ->> 5, t.value ->> 6, t.value ->> 7, 0 \
     FROM json_each($1) t JOIN queues q ON q.account = t.value ->> 0 AND q.name = t.value ->> 1 \
     ORDER BY t.key RETURNING message_id";

/// Puts, on PostgreSQL: one array per column.
const PUT_POSTGRES: &str = "INSERT INTO queue_messages (queue_id, message_id, pop_receipt, body, inserted_at, expires_at, visible_at, dequeue_count) \
     SELECT q.queue_id, t.id, t.receipt, t.body, t.inserted, t.expires, t.visible, 0 \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[]) \
     WITH ORDINALITY AS t(account, queue, id, receipt, body, inserted, expires, visible, n) \
     JOIN queues q ON q.account = t.account AND q.name = t.queue ORDER BY t.n RETURNING message_id";

/// Deletes, on SQLite: `$1` is a JSON array of `[account, queue, id, receipt]`.
const DELETE_SQLITE: &str = "DELETE FROM queue_messages WHERE message_id IN (SELECT value ->> 2 FROM json_each($1)) \
     AND (queue_id, message_id, pop_receipt) IN (SELECT q.queue_id, t.value ->> 2, t.value ->> 3 \
     FROM json_each($1) t JOIN queues q ON q.account = t.value ->> 0 AND q.name = t.value ->> 1) \
     RETURNING message_id";

/// Deletes, on PostgreSQL: one array per column.
const DELETE_POSTGRES: &str = "DELETE FROM queue_messages AS m \
     USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(account, queue, id, receipt), queues q \
     WHERE q.account = t.account AND q.name = t.queue AND m.queue_id = q.queue_id \
     AND m.message_id = t.id AND m.pop_receipt = t.receipt RETURNING m.message_id";

/// Changes to queue messages after which PostgreSQL's table is vacuumed.
const VACUUM_AFTER: u64 = 20_000;

/// The writer of grouped queue writes.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    tx: mpsc::UnboundedSender<Op>,
    vacuum: std::sync::Arc<Vacuum>,
}

/// Keeps PostgreSQL's message table free of dead rows. Every message is inserted, updated
/// when received and deleted, and each receive scans the ready index from its front, where
/// the dead versions are: left to autovacuum (which visits a database once a minute) a busy
/// queue's receives slow down by the second.
#[derive(Debug)]
struct Vacuum {
    backend: Backend,
    changes: std::sync::atomic::AtomicU64,
    running: std::sync::atomic::AtomicBool,
}

impl Vacuum {
    fn note(self: &std::sync::Arc<Self>, changed: u64) {
        use std::sync::atomic::Ordering;
        let Backend::Postgres(pool) = &self.backend else {
            return;
        };
        let total = self.changes.fetch_add(changed, Ordering::Relaxed) + changed;
        if total < VACUUM_AFTER || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.changes.store(0, Ordering::Relaxed);
        let (pool, this) = (pool.clone(), self.clone());
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("VACUUM (ANALYZE) queue_messages")
                .execute(&pool)
                .await
            {
                tracing::debug!("cannot vacuum the queue messages: {e}");
            }
            this.running.store(false, Ordering::Release);
        });
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("queue write")
    }
}

impl GroupCommit {
    /// Starts the writer on the current runtime; it ends when every handle is gone.
    pub(crate) fn start(backend: Backend) -> GroupCommit {
        let (tx, rx) = mpsc::unbounded_channel();
        let vacuum = std::sync::Arc::new(Vacuum {
            backend: backend.clone(),
            changes: std::sync::atomic::AtomicU64::new(0),
            running: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(writer(backend, rx, vacuum.clone()));
        GroupCommit { tx, vacuum }
    }

    /// `n` messages were changed (received, updated) outside the group.
    pub(crate) fn changed(&self, n: usize) {
        self.vacuum.note(n as u64);
    }

    /// Inserts `message`; false when the queue does not exist.
    pub(crate) async fn put(&self, account: &str, queue: &str, message: Message) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Op::Put {
                account: account.to_string(),
                queue: queue.to_string(),
                message,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Deletes message `id` if `receipt` is its latest; whether it did.
    pub(crate) async fn delete(
        &self,
        account: &str,
        queue: &str,
        id: &str,
        receipt: &str,
    ) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Op::Delete {
                account: account.to_string(),
                queue: queue.to_string(),
                id: id.to_string(),
                receipt: receipt.to_string(),
                reply,
            })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

async fn writer(
    backend: Backend,
    mut rx: mpsc::UnboundedReceiver<Op>,
    vacuum: std::sync::Arc<Vacuum>,
) {
    // One group at a time: while it commits, the next one gathers. (Committing groups side
    // by side made them smaller and the machine busier, for less throughput.)
    while let Some(first) = rx.recv().await {
        let mut group = Vec::with_capacity(MAX_GROUP);
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        vacuum.note(group.len() as u64);
        commit(&backend, group).await;
    }
}

/// Writes one group and tells each caller its outcome: the puts in one transaction, the
/// deletes in another.
async fn commit(backend: &Backend, group: Vec<Op>) {
    let (puts, deletes): (Vec<Op>, Vec<Op>) = group
        .into_iter()
        .partition(|op| matches!(op, Op::Put { .. }));
    if !puts.is_empty() {
        let rows: Vec<(&str, &str, &Message)> = puts
            .iter()
            .filter_map(|op| match op {
                Op::Put {
                    account,
                    queue,
                    message,
                    ..
                } => Some((account.as_str(), queue.as_str(), message)),
                Op::Delete { .. } => None,
            })
            .collect();
        let done = write_puts(backend, &rows).await;
        answer(puts, &done);
    }
    if !deletes.is_empty() {
        let rows: Vec<[&str; 4]> = deletes
            .iter()
            .filter_map(|op| match op {
                Op::Delete {
                    account,
                    queue,
                    id,
                    receipt,
                    ..
                } => Some([
                    account.as_str(),
                    queue.as_str(),
                    id.as_str(),
                    receipt.as_str(),
                ]),
                Op::Put { .. } => None,
            })
            .collect();
        let done = write_deletes(backend, &rows).await;
        answer(deletes, &done);
    }
}

type Ids = std::collections::HashSet<String>;

/// Tells each caller whether its message was written (or the group's error).
fn answer(ops: Vec<Op>, done: &Result<Ids>) {
    for op in ops {
        let (id, reply) = match op {
            Op::Put { message, reply, .. } => (message.id, reply),
            Op::Delete { id, reply, .. } => (id, reply),
        };
        let _ = reply.send(match done {
            Ok(ids) => Ok(ids.contains(&id)),
            Err(e) => Err(Error::Grouped(e.to_string())),
        });
    }
}

/// Inserts the messages of a group; the ids inserted (the others' queues do not exist).
async fn write_puts(backend: &Backend, puts: &[(&str, &str, &Message)]) -> Result<Ids> {
    let ids: Vec<String> = match backend {
        Backend::Sqlite(pool) => {
            let rows: Vec<serde_json::Value> = puts
                .iter()
                .map(|(a, q, m)| {
                    serde_json::json!([
                        a,
                        q,
                        m.id,
                        m.pop_receipt,
                        m.text,
                        m.insertion_ms,
                        m.expiration_ms,
                        m.next_visible_ms
                    ])
                })
                .collect();
            sqlx::query_scalar(PUT_SQLITE)
                .bind(serde_json::Value::Array(rows).to_string())
                .fetch_all(pool)
                .await?
        }
        Backend::Postgres(pool) => {
            let scope = |i: usize| -> Vec<&str> {
                puts.iter()
                    .map(|(a, q, _)| if i == 0 { *a } else { *q })
                    .collect()
            };
            let text = |f: fn(&Message) -> &str| -> Vec<&str> {
                puts.iter().map(|(_, _, m)| f(m)).collect()
            };
            let num = |f: fn(&Message) -> i64| -> Vec<i64> {
                puts.iter().map(|(_, _, m)| f(m)).collect()
            };
            sqlx::query_scalar(PUT_POSTGRES)
                .bind(scope(0))
                .bind(scope(1))
                .bind(text(|m| &m.id))
                .bind(text(|m| &m.pop_receipt))
                .bind(text(|m| &m.text))
                .bind(num(|m| m.insertion_ms))
                .bind(num(|m| m.expiration_ms))
                .bind(num(|m| m.next_visible_ms))
                .fetch_all(pool)
                .await?
        }
    };
    Ok(ids.into_iter().collect())
}

/// Deletes the messages of a group given as `[account, queue, id, receipt]`; the ids deleted.
async fn write_deletes(backend: &Backend, deletes: &[[&str; 4]]) -> Result<Ids> {
    let ids: Vec<String> = match backend {
        Backend::Sqlite(pool) => {
            sqlx::query_scalar(DELETE_SQLITE)
                .bind(serde_json::to_string(deletes).map_err(|e| Error::Corrupt(e.to_string()))?)
                .fetch_all(pool)
                .await?
        }
        Backend::Postgres(pool) => {
            // A delete lost in a crash only means the message is delivered again, which
            // at-least-once allows: deletes do not wait for the WAL to reach the disk.
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL synchronous_commit TO OFF")
                .execute(&mut *tx)
                .await?;
            let col = |i: usize| -> Vec<&str> { deletes.iter().map(|d| d[i]).collect() };
            let ids = sqlx::query_scalar(DELETE_POSTGRES)
                .bind(col(0))
                .bind(col(1))
                .bind(col(2))
                .bind(col(3))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            ids
        }
    };
    Ok(ids.into_iter().collect())
}
