//! The scheduler loop: one management process at a time (a lease in the store, renewed,
//! taken over when its holder stops renewing) turns apps, workers and heartbeats into
//! placements.

use std::time::Duration;

use stratus_store::{SqlApps, SqlLeases, SqlWorkers};

use crate::scheduler::{AppView, Placements, WorkerView, in_window, plan};

use std::sync::atomic::Ordering;

/// The lease the scheduler leader holds.
pub const LEASE: &str = "stratus/scheduler";

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// This process, as a lease holder.
    pub instance: String,
    /// Time between rounds.
    pub interval: Duration,
    /// A worker without a heartbeat for this long is lost.
    pub worker_timeout: Duration,
    /// How long the leader's lease lasts without renewal.
    pub lease_ttl: Duration,
    /// Where rounds are counted.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// The apps a worker's status reports ready (`{"hosts": [{"app", "ready"}]}`).
fn ready_apps(status: &str) -> std::collections::BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_str(status).unwrap_or_default();
    v["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["ready"] == true)
        .filter_map(|h| h["app"].as_str().map(str::to_string))
        .collect()
}

/// One round, if this process leads: the placements changed (added, removed).
pub async fn round(
    apps: &SqlApps,
    workers: &SqlWorkers,
    leases: &SqlLeases,
    options: &SchedulerOptions,
    now: i64,
) -> Result<Option<(usize, usize)>, stratus_store::Error> {
    let ttl = i64::try_from(options.lease_ttl.as_millis()).unwrap_or(i64::MAX);
    if !leases.acquire(LEASE, &options.instance, now, ttl).await? {
        return Ok(None);
    }
    let timeout = i64::try_from(options.worker_timeout.as_millis()).unwrap_or(i64::MAX);
    let minutes = u32::try_from((now / 60_000).rem_euclid(24 * 60)).unwrap_or(0);
    let worker_views: Vec<WorkerView> = workers
        .list()
        .await?
        .into_iter()
        .map(|w| WorkerView {
            alive: now - w.heartbeat_ms <= timeout,
            in_window: in_window(w.spec.window.as_deref(), minutes),
            id: w.id,
            name: w.spec.name,
            labels: w.spec.labels,
            max_apps: w.spec.max_apps,
            draining: w.draining,
            ready: ready_apps(&w.status),
        })
        .collect();
    let app_views: Vec<AppView> = apps
        .list()
        .await?
        .into_iter()
        .map(|a| AppView {
            deployed: a.active_version.is_some(),
            replicas: a
                .min_replicas
                .max(if a.active_version.is_some() { 1 } else { 0 }),
            name: a.name,
            labels: a.labels,
        })
        .collect();
    let current: Placements = workers
        .placements()
        .await?
        .into_iter()
        .map(|(a, w, _)| (a, w))
        .collect();
    let wanted = plan(&app_views, &worker_views, &current);
    let changed = workers.set_placements(&wanted, now).await?;
    if changed != (0, 0) {
        tracing::info!(
            added = changed.0,
            removed = changed.1,
            "placements changed ({} in all)",
            wanted.len()
        );
    }
    Ok(Some(changed))
}

/// Runs rounds until `stop` completes; gives the lease up on the way out.
pub async fn run(
    apps: SqlApps,
    workers: SqlWorkers,
    leases: SqlLeases,
    options: SchedulerOptions,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut leading = false;
    loop {
        let outcome = round(&apps, &workers, &leases, &options, crate::now_ms()).await;
        let m = &options.metrics;
        match &outcome {
            Ok(Some((added, removed))) => {
                crate::metrics::inc(&m.scheduler_rounds);
                m.placements_added
                    .fetch_add(*added as u64, Ordering::Relaxed);
                m.placements_removed
                    .fetch_add(*removed as u64, Ordering::Relaxed);
                m.scheduler_leader.store(1, Ordering::Relaxed);
            }
            Ok(None) => m.scheduler_leader.store(0, Ordering::Relaxed),
            Err(_) => crate::metrics::inc(&m.scheduler_failures),
        }
        match outcome {
            Ok(Some(_)) if !leading => {
                leading = true;
                tracing::info!(instance = %options.instance, "this process now leads scheduling");
            }
            Ok(None) if leading => {
                leading = false;
                tracing::warn!(instance = %options.instance, "another process leads scheduling now");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("scheduling round failed: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(options.interval) => {}
            () = &mut stop => break,
        }
    }
    if leading {
        let _ = leases.release(LEASE, &options.instance).await;
    }
}
