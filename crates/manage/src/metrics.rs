//! Counters of the management role, served at `/metrics` in Prometheus' text format:
//! scheduling (rounds, leadership, placements made and removed) and the front door (requests,
//! retries on another replica, answers it gave itself).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// This process's counters (each management process reports its own).
#[derive(Debug, Default)]
pub struct Metrics {
    pub scheduler_rounds: AtomicU64,
    pub scheduler_failures: AtomicU64,
    /// 1 while this process leads scheduling.
    pub scheduler_leader: AtomicU64,
    pub placements_added: AtomicU64,
    pub placements_removed: AtomicU64,
    pub front_requests: AtomicU64,
    /// Attempts sent to another replica after one failed.
    pub front_retries: AtomicU64,
    /// Answered 503: no replica ready or reachable.
    pub front_unavailable: AtomicU64,
    /// Answered 502: a replica broke a request that could not be sent again.
    pub front_bad_gateway: AtomicU64,
    /// Answered 404: no such app.
    pub front_not_found: AtomicU64,
    /// Answered 400: a request the front door could not forward.
    pub front_requests_bad: AtomicU64,
}

/// Adds one.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What the store says when scraped: workers by state, apps and replicas.
#[derive(Debug, Default)]
pub struct Gauges {
    pub workers_alive: u64,
    pub workers_lost: u64,
    pub workers_draining: u64,
    pub apps: u64,
    pub placements: u64,
    pub placements_ready: u64,
}

impl Metrics {
    /// The text exposition.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        one(
            "stratus_scheduler_rounds_total",
            "counter",
            "Scheduling rounds this process ran as leader.",
            get(&self.scheduler_rounds),
        );
        one(
            "stratus_scheduler_failures_total",
            "counter",
            "Scheduling rounds that failed.",
            get(&self.scheduler_failures),
        );
        one(
            "stratus_scheduler_leader",
            "gauge",
            "1 while this process leads scheduling.",
            get(&self.scheduler_leader),
        );
        one(
            "stratus_placements_added_total",
            "counter",
            "Replicas this process placed.",
            get(&self.placements_added),
        );
        one(
            "stratus_placements_removed_total",
            "counter",
            "Replicas this process removed or moved.",
            get(&self.placements_removed),
        );
        one(
            "stratus_front_door_requests_total",
            "counter",
            "Requests the front door received.",
            get(&self.front_requests),
        );
        one(
            "stratus_front_door_retries_total",
            "counter",
            "Attempts sent to another replica after one failed.",
            get(&self.front_retries),
        );
        one(
            "stratus_front_door_unavailable_total",
            "counter",
            "Requests answered 503 (no replica ready or reachable).",
            get(&self.front_unavailable),
        );
        one(
            "stratus_front_door_bad_gateway_total",
            "counter",
            "Requests answered 502 (a replica broke one that could not be sent again).",
            get(&self.front_bad_gateway),
        );
        one(
            "stratus_front_door_not_found_total",
            "counter",
            "Requests for no known app.",
            get(&self.front_not_found),
        );
        one(
            "stratus_front_door_bad_requests_total",
            "counter",
            "Requests the front door could not forward.",
            get(&self.front_requests_bad),
        );
        let _ = writeln!(
            out,
            "# HELP stratus_workers Workers by state.\n# TYPE stratus_workers gauge"
        );
        for (state, n) in [
            ("alive", g.workers_alive),
            ("lost", g.workers_lost),
            ("draining", g.workers_draining),
        ] {
            let _ = writeln!(out, "stratus_workers{{state=\"{state}\"}} {n}");
        }
        let mut one = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        one("stratus_apps", "Managed apps.", g.apps);
        one("stratus_replicas", "Replicas placed.", g.placements);
        one(
            "stratus_replicas_ready",
            "Replicas placed whose host is ready.",
            g.placements_ready,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        inc(&m.front_requests);
        inc(&m.front_requests);
        let text = m.render(&Gauges {
            workers_alive: 3,
            ..Gauges::default()
        });
        assert!(text.contains("# TYPE stratus_front_door_requests_total counter\nstratus_front_door_requests_total 2\n"));
        assert!(text.contains("stratus_workers{state=\"alive\"} 3\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(!name.is_empty() && value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
