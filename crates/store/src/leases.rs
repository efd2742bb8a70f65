//! Leases: a named right held by one process until it expires, renewed by its holder and
//! taken over by anyone once it has expired (timer singletons, scheduler leadership).
//!
//! Times are milliseconds since the Unix epoch, given by the caller (whose clock can be
//! injected); the database only compares them.

use crate::db::{Backend, on_pool};
use crate::error::Result;

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub expires_at_ms: i64,
}

/// The leases of the store.
#[derive(Debug, Clone)]
pub struct SqlLeases {
    pub(crate) backend: Backend,
}

impl SqlLeases {
    /// Takes `name` for `holder` until `now_ms + ttl_ms`: succeeds when the lease is free,
    /// expired, or already held by `holder` (a renewal). Returns whether `holder` holds it now.
    pub async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool> {
        let expires = now_ms.saturating_add(ttl_ms);
        // One statement, so two contenders can never both win.
        let taken = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
            )
            .bind(name)
            .bind(holder)
            .bind(expires)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(taken == 1)
    }

    /// Gives `name` up, if `holder` holds it; returns whether it did.
    pub async fn release(&self, name: &str, holder: &str) -> Result<bool> {
        let n = on_pool!(&self.backend, |pool| {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Who holds `name`, and until when (expired leases included).
    pub async fn get(&self, name: &str) -> Result<Option<Lease>> {
        let row: Option<(String, i64)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as("SELECT holder, expires_at FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(holder, expires_at_ms)| Lease {
            holder,
            expires_at_ms,
        }))
    }
}
