//! What triggers keep between runs and share between processes: timer schedule status and
//! leases. The host reaches them through these traits; `stratus start` backs them with the
//! store, a worker will back them with the management role.

use std::collections::HashMap;

use parking_lot::Mutex;
use stratus_store::{SqlLeases, SqlTimers, TimerStatus};

use crate::executor::BoxFuture;

/// Schedule status of timers (`useMonitor`).
pub trait TimerStatusStore: Send + Sync + std::fmt::Debug {
    fn get<'a>(
        &'a self,
        app: &'a str,
        timer: &'a str,
    ) -> BoxFuture<'a, Result<Option<TimerStatus>, String>>;
    fn put<'a>(
        &'a self,
        app: &'a str,
        timer: &'a str,
        status: TimerStatus,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Named leases shared by the processes that host one app.
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// Takes or renews `name` for `holder` until `now_ms + ttl_ms`; whether `holder` holds it.
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> BoxFuture<'a, Result<bool, String>>;
    fn release<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

impl TimerStatusStore for SqlTimers {
    fn get<'a>(
        &'a self,
        app: &'a str,
        timer: &'a str,
    ) -> BoxFuture<'a, Result<Option<TimerStatus>, String>> {
        Box::pin(async move {
            SqlTimers::get(self, app, timer)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn put<'a>(
        &'a self,
        app: &'a str,
        timer: &'a str,
        status: TimerStatus,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            SqlTimers::put(self, app, timer, status)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl LeaseStore for SqlLeases {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            SqlLeases::acquire(self, name, holder, now_ms, ttl_ms)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn release<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            SqlLeases::release(self, name, holder)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// In-memory state, for one process with nowhere to persist (and for tests).
#[derive(Debug, Default)]
pub struct MemoryState {
    timers: Mutex<HashMap<(String, String), TimerStatus>>,
    leases: Mutex<HashMap<String, (String, i64)>>,
}

impl TimerStatusStore for MemoryState {
    fn get<'a>(
        &'a self,
        app: &'a str,
        timer: &'a str,
    ) -> BoxFuture<'a, Result<Option<TimerStatus>, String>> {
        let found = self
            .timers
            .lock()
            .get(&(app.to_string(), timer.to_string()))
            .copied();
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(
        &'a self,
        app: &'a str,
        timer: &'a str,
        status: TimerStatus,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.timers
            .lock()
            .insert((app.to_string(), timer.to_string()), status);
        Box::pin(async { Ok(()) })
    }
}

impl LeaseStore for MemoryState {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let mut leases = self.leases.lock();
        let free = match leases.get(name) {
            None => true,
            Some((h, expires)) => h == holder || *expires <= now_ms,
        };
        if free {
            leases.insert(
                name.to_string(),
                (holder.to_string(), now_ms.saturating_add(ttl_ms)),
            );
        }
        Box::pin(async move { Ok(free) })
    }

    fn release<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), String>> {
        let mut leases = self.leases.lock();
        if leases.get(name).is_some_and(|(h, _)| h == holder) {
            leases.remove(name);
        }
        Box::pin(async { Ok(()) })
    }
}
