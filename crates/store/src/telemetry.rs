//! What managed apps' hosts report about their functions: invocation records, function log
//! lines and per-minute latency statistics, written in batches and pruned by age and count.
//! Times are given by the caller.

use crate::db::Backend;
use crate::db::on_pool;
use crate::error::Result;

/// One invocation as a host recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRecord {
    pub id: String,
    pub function: String,
    pub trigger: String,
    pub started_ms: i64,
    pub duration_us: i64,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
    pub worker: String,
    pub version: i64,
}

/// One line a function (or the host about it) logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its place in the app's stream (given by the store; 0 before it is written).
    pub seq: i64,
    pub function: String,
    /// Empty when the line belongs to no invocation (a handler's own output).
    pub invocation_id: String,
    pub time_ms: i64,
    pub level: String,
    pub message: String,
    pub worker: String,
}

/// Invocation counts of one function in one minute in one host process (its totals so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    pub function: String,
    /// The minute's start (ms since the epoch, a multiple of 60,000).
    pub minute_ms: i64,
    pub worker: String,
    /// The host process (a new one for each start).
    pub host: String,
    pub count: i64,
    pub errors: i64,
    /// Latency bucket counts, comma-separated (see `stratus_model::latency`).
    pub histogram: String,
}

/// Which invocations to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct InvocationFilter {
    pub function: Option<String>,
    pub failed: Option<bool>,
    pub trigger: Option<String>,
    /// Only those that started before this time (or at it, with an id before `before_id`).
    pub before_ms: Option<i64>,
    pub before_id: Option<String>,
    pub limit: i64,
}

/// How much is kept per app.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age_ms: i64,
    pub max_invocations: i64,
    pub max_logs: i64,
}

/// The store's telemetry tables.
#[derive(Debug, Clone)]
pub struct SqlTelemetry {
    pub(crate) backend: Backend,
}

type InvocationRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    String,
    i64,
);
type LogRow = (i64, String, String, i64, String, String, String);

fn invocation(r: InvocationRow) -> InvocationRecord {
    InvocationRecord {
        id: r.0,
        function: r.1,
        trigger: r.2,
        started_ms: r.3,
        duration_us: r.4,
        error: r.5,
        worker: r.6,
        version: r.7,
    }
}

fn log_line(r: LogRow) -> LogLine {
    LogLine {
        seq: r.0,
        function: r.1,
        invocation_id: r.2,
        time_ms: r.3,
        level: r.4,
        message: r.5,
        worker: r.6,
    }
}

/// The columns an `InvocationRow` reads.
macro_rules! invocation_columns {
    () => {
        "SELECT id, function, trigger_type, started_at, duration_us, error, worker, version FROM invocations "
    };
}

/// The columns a `LogRow` reads.
macro_rules! log_columns {
    () => {
        "SELECT seq, function, invocation_id, logged_at, level, message, worker FROM function_logs "
    };
}

impl SqlTelemetry {
    /// Writes one host's batch for `app` in one transaction; an invocation already recorded
    /// (a batch sent again) is kept as it was.
    pub async fn record(
        &self,
        app: &str,
        invocations: &[InvocationRecord],
        logs: &[LogLine],
        stats: &[StatRow],
    ) -> Result<()> {
        let postgres = matches!(self.backend, Backend::Postgres(_));
        on_pool!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            if postgres {
                // Log lines commit in the order of their sequence numbers, so a reader that
                // has seen line n never misses a line before it (SQLite has one writer).
                sqlx::query("SELECT pg_advisory_xact_lock(7355609)")
                    .execute(&mut *tx)
                    .await?;
            }
            for i in invocations {
                sqlx::query(
                    "INSERT INTO invocations (app, id, function, trigger_type, started_at, duration_us, failed, error, worker, version)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (app, id) DO NOTHING",
                )
                .bind(app)
                .bind(&i.id)
                .bind(&i.function)
                .bind(&i.trigger)
                .bind(i.started_ms)
                .bind(i.duration_us)
                .bind(i64::from(i.error.is_some()))
                .bind(&i.error)
                .bind(&i.worker)
                .bind(i.version)
                .execute(&mut *tx)
                .await?;
            }
            for l in logs {
                sqlx::query(
                    "INSERT INTO function_logs (app, function, invocation_id, logged_at, level, message, worker)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(app)
                .bind(&l.function)
                .bind(&l.invocation_id)
                .bind(l.time_ms)
                .bind(&l.level)
                .bind(&l.message)
                .bind(&l.worker)
                .execute(&mut *tx)
                .await?;
            }
            for s in stats {
                sqlx::query(
                    "INSERT INTO invocation_stats (app, function, minute, worker, host, count, errors, histogram)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (app, minute, function, worker, host) DO UPDATE
                     SET count = excluded.count, errors = excluded.errors, histogram = excluded.histogram",
                )
                .bind(app)
                .bind(&s.function)
                .bind(s.minute_ms)
                .bind(&s.worker)
                .bind(&s.host)
                .bind(s.count)
                .bind(s.errors)
                .bind(&s.histogram)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The app's invocations that pass `filter`, newest first.
    pub async fn invocations(
        &self,
        app: &str,
        filter: &InvocationFilter,
    ) -> Result<Vec<InvocationRecord>> {
        let failed = filter.failed.map(i64::from);
        let sql = concat!(
            invocation_columns!(),
            "WHERE app = $1 AND ($2 IS NULL OR function = $2) AND ($3 IS NULL OR failed = $3)
               AND ($4 IS NULL OR trigger_type = $4)
               AND (started_at < $5 OR (started_at = $5 AND id < $7))
             ORDER BY started_at DESC, id DESC LIMIT $6"
        );
        let rows: Vec<InvocationRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(sql)
                .bind(app)
                .bind(&filter.function)
                .bind(failed)
                .bind(&filter.trigger)
                .bind(filter.before_ms.unwrap_or(i64::MAX))
                .bind(filter.limit.clamp(1, 1000))
                .bind(filter.before_id.as_deref().unwrap_or(""))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(invocation).collect())
    }

    /// How many invocations of `app` (of `function`, when given) were recorded from
    /// `from_ms` on.
    pub async fn recorded_since(
        &self,
        app: &str,
        function: Option<&str>,
        from_ms: i64,
    ) -> Result<i64> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM invocations WHERE app = $1 AND ($2 IS NULL OR function = $2) AND started_at >= $3",
            )
            .bind(app)
            .bind(function)
            .bind(from_ms)
            .fetch_one(pool)
            .await?
        }))
    }

    /// The highest log line number of `app` (0 when it has none).
    pub async fn last_seq(&self, app: &str) -> Result<i64> {
        let seq: Option<i64> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT MAX(seq) FROM function_logs WHERE app = $1")
                .bind(app)
                .fetch_one(pool)
                .await?
        });
        Ok(seq.unwrap_or(0))
    }

    /// Invocation `id` of `app`.
    pub async fn invocation(&self, app: &str, id: &str) -> Result<Option<InvocationRecord>> {
        let sql = concat!(invocation_columns!(), "WHERE app = $1 AND id = $2");
        let row: Option<InvocationRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(sql)
                .bind(app)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(invocation))
    }

    /// The lines invocation `id` of `app` logged, in order.
    pub async fn logs_of(&self, app: &str, id: &str) -> Result<Vec<LogLine>> {
        let sql = concat!(
            log_columns!(),
            "WHERE app = $1 AND invocation_id = $2 ORDER BY seq"
        );
        let rows: Vec<LogRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(sql)
                .bind(app)
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(log_line).collect())
    }

    /// The app's lines after `after_seq` (of `function` only, when given), oldest first, at
    /// most `limit`.
    pub async fn logs_after(
        &self,
        app: &str,
        function: Option<&str>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>> {
        let sql = concat!(
            log_columns!(),
            "WHERE app = $1 AND seq > $2 AND ($3 IS NULL OR function = $3) ORDER BY seq LIMIT $4"
        );
        let rows: Vec<LogRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(sql)
                .bind(app)
                .bind(after_seq)
                .bind(function)
                .bind(limit.clamp(1, 10_000))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(log_line).collect())
    }

    /// The app's last `n` lines (of `function` only, when given), oldest first.
    pub async fn last_logs(
        &self,
        app: &str,
        function: Option<&str>,
        n: i64,
    ) -> Result<Vec<LogLine>> {
        let sql = concat!(
            log_columns!(),
            "WHERE app = $1 AND ($2 IS NULL OR function = $2) ORDER BY seq DESC LIMIT $3"
        );
        let mut rows: Vec<LogRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(sql)
                .bind(app)
                .bind(function)
                .bind(n.clamp(1, 10_000))
                .fetch_all(pool)
                .await?
        });
        rows.reverse();
        Ok(rows.into_iter().map(log_line).collect())
    }

    /// The app's statistics rows from `from_ms` on (of `function` only, when given).
    pub async fn stats(
        &self,
        app: &str,
        function: Option<&str>,
        from_ms: i64,
    ) -> Result<Vec<StatRow>> {
        let rows: Vec<(String, i64, String, String, i64, i64, String)> = on_pool!(
            &self.backend,
            |pool| {
                sqlx::query_as(
                "SELECT function, minute, worker, host, count, errors, histogram FROM invocation_stats
                 WHERE app = $1 AND minute >= $2 AND ($3 IS NULL OR function = $3) ORDER BY minute",
            )
            .bind(app)
            .bind(from_ms)
            .bind(function)
            .fetch_all(pool)
            .await?
            }
        );
        Ok(rows
            .into_iter()
            .map(|r| StatRow {
                function: r.0,
                minute_ms: r.1,
                worker: r.2,
                host: r.3,
                count: r.4,
                errors: r.5,
                histogram: r.6,
            })
            .collect())
    }

    /// Drops what is older than the retention allows, and each app's oldest invocations and
    /// lines beyond its counts (apps as the store knows them: a deleted app's are forgotten
    /// when it is deleted); how many rows went. Every delete walks an index that starts with
    /// the app.
    pub async fn prune(&self, retention: Retention, now_ms: i64) -> Result<u64> {
        let before = now_ms - retention.max_age_ms;
        let n = on_pool!(&self.backend, |pool| {
            let mut n = 0;
            let apps: Vec<String> = sqlx::query_scalar("SELECT name FROM apps")
                .fetch_all(pool)
                .await?;
            for app in apps {
                for sql in [
                    "DELETE FROM invocations WHERE app = $1 AND started_at < $2",
                    "DELETE FROM function_logs WHERE app = $1 AND logged_at < $2",
                    "DELETE FROM invocation_stats WHERE app = $1 AND minute < $2",
                ] {
                    n += sqlx::query(sql)
                        .bind(&app)
                        .bind(before)
                        .execute(pool)
                        .await?
                        .rows_affected();
                }
                n += sqlx::query(
                    "DELETE FROM invocations WHERE app = $1 AND started_at <= (
                        SELECT started_at FROM invocations WHERE app = $1
                        ORDER BY started_at DESC LIMIT 1 OFFSET $2)",
                )
                .bind(&app)
                .bind(retention.max_invocations)
                .execute(pool)
                .await?
                .rows_affected();
                n += sqlx::query(
                    "DELETE FROM function_logs WHERE app = $1 AND seq <= (
                        SELECT seq FROM function_logs WHERE app = $1
                        ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                )
                .bind(&app)
                .bind(retention.max_logs)
                .execute(pool)
                .await?
                .rows_affected();
            }
            n
        });
        Ok(n)
    }

    /// Forgets everything about `app` (it was deleted).
    pub async fn forget(&self, app: &str) -> Result<()> {
        on_pool!(&self.backend, |pool| {
            for sql in [
                "DELETE FROM invocations WHERE app = $1",
                "DELETE FROM function_logs WHERE app = $1",
                "DELETE FROM invocation_stats WHERE app = $1",
            ] {
                sqlx::query(sql).bind(app).execute(pool).await?;
            }
        });
        Ok(())
    }
}
