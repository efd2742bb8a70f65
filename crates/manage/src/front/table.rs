//! The front door's routing table: each app's replicas that are ready to serve, read from
//! the placements and the hosts workers report, and the choice of a replica for a request
//! (fewest requests outstanding, replicas that just failed set aside).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use serde_json::Value;
use stratus_store::{SqlApps, SqlWorkers, WorkerRecord};

/// How long a replica that refused a connection is set aside.
const SET_ASIDE_MS: i64 = 2_000;

/// One replica as placements and its worker's last heartbeat describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub app: String,
    pub worker_id: String,
    pub worker_name: Option<String>,
    pub since_ms: i64,
    /// The version its host runs, the address it serves on and whether it accepted a
    /// connection at the worker's last look; absent until the worker reports the host.
    pub version: Option<i64>,
    pub url: Option<String>,
    pub ready: bool,
}

/// Every placed replica, with what its worker reported of it.
pub async fn replicas(workers: &SqlWorkers) -> Result<Vec<ReplicaView>, stratus_store::Error> {
    let by_id: HashMap<String, WorkerRecord> = workers
        .list()
        .await?
        .into_iter()
        .map(|w| (w.id.clone(), w))
        .collect();
    let mut statuses: HashMap<&str, Value> = HashMap::new();
    for (id, w) in &by_id {
        statuses.insert(id, serde_json::from_str(&w.status).unwrap_or(Value::Null));
    }
    let mut views = Vec::new();
    for (app, worker, since) in workers.placements().await? {
        // A worker runs a host per version of the app it was given (the live one and one
        // being deployed): one view each.
        let hosts: Vec<Value> = statuses
            .get(worker.as_str())
            .and_then(|s| s["hosts"].as_array())
            .map(|hosts| {
                hosts
                    .iter()
                    .filter(|h| h["app"] == app.as_str())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let hosts = if hosts.is_empty() {
            vec![Value::Null]
        } else {
            hosts
        };
        for host in hosts {
            views.push(ReplicaView {
                worker_name: by_id.get(&worker).map(|w| w.spec.name.clone()),
                worker_id: worker.clone(),
                since_ms: since,
                version: host["version"].as_i64(),
                url: host["url"].as_str().map(str::to_string),
                ready: host["ready"].as_bool().unwrap_or(false),
                app: app.clone(),
            });
        }
    }
    Ok(views)
}

/// A replica the front door forwards to.
#[derive(Debug)]
pub struct Replica {
    /// Unique in this process: a connection's upstream connections are kept by it.
    pub id: u64,
    pub app: String,
    pub worker_id: String,
    /// `host:port`.
    pub authority: String,
    outstanding: AtomicUsize,
    set_aside_until_ms: AtomicI64,
}

impl Replica {
    /// Requests sent to it whose response head has not arrived yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Counts a request as outstanding until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Sets the replica aside for a while (it refused a connection or broke one).
    pub fn set_aside(&self, now_ms: i64) {
        self.set_aside_until_ms
            .store(now_ms + SET_ASIDE_MS, Ordering::Relaxed);
    }

    fn usable(&self, now_ms: i64) -> bool {
        self.set_aside_until_ms.load(Ordering::Relaxed) <= now_ms
    }
}

/// An outstanding request on a replica.
pub struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the front door knows of an app.
#[derive(Debug, Default)]
pub struct Route {
    /// Ready replicas, on the active version when any is.
    pub replicas: Vec<Arc<Replica>>,
}

/// Apps by name (lower case), with their ready replicas.
#[derive(Debug, Default)]
pub struct Table {
    pub apps: HashMap<String, Route>,
    turn: AtomicUsize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// `host:port` of an `http://host:port` URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let a = &rest[..end];
    (!a.is_empty()).then_some(a)
}

impl Table {
    /// The table for `apps` (name, active version) and their `replicas`, keeping the
    /// replicas `previous` already had (their counters and set-aside state).
    pub fn build(
        apps: &[(String, Option<i64>)],
        replicas: &[ReplicaView],
        previous: &Table,
    ) -> Table {
        let mut table = Table::default();
        for (name, active) in apps {
            // Only the live version serves: a version being deployed runs beside it, unseen,
            // until the deployment makes it live everywhere at once.
            let chosen: Vec<&ReplicaView> = replicas
                .iter()
                .filter(|r| {
                    r.app == *name
                        && r.ready
                        && active.is_some()
                        && r.version == *active
                        && r.url.as_deref().and_then(authority).is_some()
                })
                .collect();
            let old = previous.apps.get(name);
            let replicas = chosen
                .into_iter()
                .map(|r| {
                    let authority = r.url.as_deref().and_then(authority).unwrap_or_default();
                    old.and_then(|o| {
                        o.replicas
                            .iter()
                            .find(|x| x.authority == authority && x.worker_id == r.worker_id)
                    })
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(Replica {
                            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                            app: name.clone(),
                            worker_id: r.worker_id.clone(),
                            authority: authority.to_string(),
                            outstanding: AtomicUsize::new(0),
                            set_aside_until_ms: AtomicI64::new(0),
                        })
                    })
                })
                .collect();
            table
                .apps
                .insert(name.to_ascii_lowercase(), Route { replicas });
        }
        table
    }

    /// Reads the table from the store.
    pub async fn load(
        apps: &SqlApps,
        workers: &SqlWorkers,
        previous: &Table,
    ) -> Result<Table, stratus_store::Error> {
        let names: Vec<(String, Option<i64>)> = apps
            .list()
            .await?
            .into_iter()
            .map(|a| (a.name, a.active_version))
            .collect();
        let views = replicas(workers).await?;
        Ok(Table::build(&names, &views, previous))
    }

    /// The replica of `route` to send a request to: the fewest outstanding requests among
    /// those not tried yet and not set aside (ties taken in turn); a set-aside one when
    /// nothing else is left.
    pub fn pick(&self, route: &Route, tried: &[u64], now_ms: i64) -> Option<Arc<Replica>> {
        let n = route.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        let candidates = (0..n)
            .map(|i| &route.replicas[(start + i) % n])
            .filter(|r| !tried.contains(&r.id));
        let mut best: Option<&Arc<Replica>> = None;
        let mut fallback: Option<&Arc<Replica>> = None;
        for r in candidates {
            if !r.usable(now_ms) {
                fallback = fallback.or(Some(r));
                continue;
            }
            if best.is_none_or(|b| r.outstanding() < b.outstanding()) {
                best = Some(r);
            }
        }
        best.or(fallback).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(app: &str, worker: &str, port: u16, version: i64, ready: bool) -> ReplicaView {
        ReplicaView {
            app: app.into(),
            worker_id: worker.into(),
            worker_name: None,
            since_ms: 0,
            version: Some(version),
            url: Some(format!("http://127.0.0.1:{port}")),
            ready,
        }
    }

    #[test]
    fn only_ready_replicas_of_the_live_version_serve() {
        let apps = vec![("shop".to_string(), Some(2)), ("idle".to_string(), Some(1))];
        let views = vec![
            view("shop", "w1", 1001, 1, true),
            view("shop", "w2", 1002, 2, true),
            view("shop", "w3", 1003, 2, false),
        ];
        let t = Table::build(&apps, &views, &Table::default());
        let shop = &t.apps["shop"];
        assert_eq!(shop.replicas.len(), 1);
        assert_eq!(shop.replicas[0].authority, "127.0.0.1:1002");
        assert!(t.apps["idle"].replicas.is_empty());
        // Version 3 is being deployed beside the live 2 on the same worker: unseen.
        let views = vec![
            view("shop", "w2", 1002, 2, true),
            view("shop", "w2", 1004, 3, true),
        ];
        let t = Table::build(&apps, &views, &t);
        let shop = &t.apps["shop"];
        assert_eq!(shop.replicas.len(), 1);
        assert_eq!(shop.replicas[0].authority, "127.0.0.1:1002");
        // Nothing of the live version ready: nothing serves (never another version).
        let views = vec![view("shop", "w1", 1001, 1, true)];
        let t = Table::build(&apps, &views, &t);
        assert!(t.apps["shop"].replicas.is_empty());
    }

    #[test]
    fn replicas_keep_their_identity_across_refreshes() {
        let apps = vec![("shop".to_string(), Some(1))];
        let views = vec![view("shop", "w1", 1001, 1, true)];
        let a = Table::build(&apps, &views, &Table::default());
        let b = Table::build(&apps, &views, &a);
        assert_eq!(a.apps["shop"].replicas[0].id, b.apps["shop"].replicas[0].id);
    }

    #[test]
    fn fewest_outstanding_then_in_turn_and_set_aside_last() {
        let apps = vec![("shop".to_string(), Some(1))];
        let views = vec![
            view("shop", "w1", 1001, 1, true),
            view("shop", "w2", 1002, 1, true),
        ];
        let t = Table::build(&apps, &views, &Table::default());
        let route = &t.apps["shop"];
        let (a, b) = (route.replicas[0].clone(), route.replicas[1].clone());
        // Ties alternate.
        let first = t.pick(route, &[], 0).unwrap().id;
        let second = t.pick(route, &[], 0).unwrap().id;
        assert_ne!(first, second);
        // A busy replica is avoided.
        let _busy = a.begin();
        for _ in 0..4 {
            assert_eq!(t.pick(route, &[], 0).unwrap().id, b.id);
        }
        // Tried ones are skipped; a set-aside one is used only when nothing else is left.
        assert_eq!(t.pick(route, &[b.id], 0).unwrap().id, a.id);
        b.set_aside(0);
        assert_eq!(t.pick(route, &[], 1).unwrap().id, a.id);
        assert_eq!(t.pick(route, &[a.id], 1).unwrap().id, b.id);
        assert!(t.pick(route, &[a.id, b.id], 1).is_none());
        // Set aside for a while only.
        assert_eq!(t.pick(route, &[a.id], SET_ASIDE_MS + 1).unwrap().id, b.id);
        drop(_busy);
        assert_eq!(a.outstanding(), 0);
    }

    #[test]
    fn authorities() {
        assert_eq!(authority("http://10.0.0.5:7100"), Some("10.0.0.5:7100"));
        assert_eq!(authority("http://h:1/x"), Some("h:1"));
        assert_eq!(authority("https://h:1"), None);
        assert_eq!(authority("http://"), None);
    }
}
