//! Timer schedule status (`useMonitor`): when each timer function last fired and is next
//! due, per app (host id), as the Azure host keeps it in its status blobs.

use crate::db::{Backend, on_pool};
use crate::error::Result;

/// The schedule status of one timer. Times are milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerStatus {
    /// When it last fired; None before its first run.
    pub last_ms: Option<i64>,
    pub next_ms: i64,
    pub last_updated_ms: i64,
}

/// The timer status records of the store.
#[derive(Debug, Clone)]
pub struct SqlTimers {
    pub(crate) backend: Backend,
}

impl SqlTimers {
    /// The status of timer `timer` of app `app`, if one was recorded.
    pub async fn get(&self, app: &str, timer: &str) -> Result<Option<TimerStatus>> {
        let row: Option<(Option<i64>, i64, i64)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT last_at, next_at, last_updated_at FROM timer_status WHERE app = $1 AND timer = $2",
            )
            .bind(app)
            .bind(timer)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(last_ms, next_ms, last_updated_ms)| TimerStatus {
            last_ms,
            next_ms,
            last_updated_ms,
        }))
    }

    /// Records the status of a timer, replacing the previous one.
    pub async fn put(&self, app: &str, timer: &str, status: TimerStatus) -> Result<()> {
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO timer_status (app, timer, last_at, next_at, last_updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (app, timer) DO UPDATE SET last_at = excluded.last_at,
                    next_at = excluded.next_at, last_updated_at = excluded.last_updated_at",
            )
            .bind(app)
            .bind(timer)
            .bind(status.last_ms)
            .bind(status.next_ms)
            .bind(status.last_updated_ms)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
