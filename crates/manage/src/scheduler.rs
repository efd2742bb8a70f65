//! Placement of app replicas on workers, as a pure function of the apps, the workers and the
//! placements already made: replicas stay where they are while their worker is eligible;
//! missing ones go to the eligible worker with the fewest replicas; never two replicas of one
//! app on one worker. A replica on a worker that is leaving in good order (draining, or out
//! of its window, but alive) stays until the app has its replicas ready elsewhere; when a
//! worker carries two replicas more than another (one joined), replicas move over the same
//! way, the old one kept until the new one is ready.

use std::collections::{BTreeMap, BTreeSet};

/// A worker as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerView {
    pub id: String,
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub max_apps: i64,
    /// Heartbeats arrive.
    pub alive: bool,
    pub draining: bool,
    /// Inside its availability window now.
    pub in_window: bool,
    /// Apps whose replica here reported itself ready.
    pub ready: BTreeSet<String>,
}

impl WorkerView {
    /// Whether it may keep or take replicas at all.
    fn eligible(&self) -> bool {
        self.alive && !self.draining && self.in_window
    }

    fn carries(&self, labels: &[(String, String)]) -> bool {
        labels.iter().all(|l| self.labels.contains(l))
    }
}

/// An app as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    pub name: String,
    pub replicas: i64,
    /// Labels a worker must carry.
    pub labels: Vec<(String, String)>,
    /// Only apps with an active version are placed.
    pub deployed: bool,
}

/// `(app, worker id)` pairs.
pub type Placements = BTreeSet<(String, String)>;

/// Whether `minutes` (since midnight) falls in `window` (`HH:MM-HH:MM`, wrapping past
/// midnight when the end is earlier); no window means always.
pub fn in_window(window: Option<&str>, minutes: u32) -> bool {
    let Some(w) = window else { return true };
    let parse = |t: &str| -> Option<u32> {
        let (h, m) = t.split_once(':')?;
        Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
    };
    let Some((start, end)) = w
        .split_once('-')
        .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
    else {
        return true;
    };
    if start <= end {
        (start..end).contains(&minutes)
    } else {
        minutes >= start || minutes < end
    }
}

/// The placements wanted now.
pub fn plan(apps: &[AppView], workers: &[WorkerView], current: &Placements) -> Placements {
    let by_id: BTreeMap<&str, &WorkerView> = workers.iter().map(|w| (w.id.as_str(), w)).collect();
    let mut next = Placements::new();
    let mut load: BTreeMap<&str, i64> = workers.iter().map(|w| (w.id.as_str(), 0)).collect();
    // How many replicas each worker has now.
    let mut now_load: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, w) in current {
        *now_load.entry(w.as_str()).or_default() += 1;
    }
    // Keep what still fits, within each app's replica count: ready replicas first, then those
    // on the least loaded workers (so a replica being moved goes once its new one is ready).
    for app in apps.iter().filter(|a| a.deployed && a.replicas > 0) {
        let mut candidates: Vec<&WorkerView> = current
            .iter()
            .filter(|(a, _)| *a == app.name)
            .filter_map(|(_, w)| by_id.get(w.as_str()).copied())
            .filter(|w| w.eligible() && w.carries(&app.labels))
            .collect();
        candidates.sort_by_key(|w| {
            (
                !w.ready.contains(&app.name),
                now_load.get(w.id.as_str()).copied().unwrap_or(0),
                w.name.as_str(),
            )
        });
        for w in candidates.into_iter().take(app.replicas as usize) {
            next.insert((app.name.clone(), w.id.clone()));
            *load.entry(w.id.as_str()).or_default() += 1;
        }
    }
    // Place what is missing, on the least loaded eligible workers.
    for app in apps.iter().filter(|a| a.deployed && a.replicas > 0) {
        let mut have = next.iter().filter(|(a, _)| *a == app.name).count() as i64;
        while have < app.replicas {
            let candidate = workers
                .iter()
                .filter(|w| w.eligible() && w.carries(&app.labels))
                .filter(|w| !next.contains(&(app.name.clone(), w.id.clone())))
                .filter(|w| load[w.id.as_str()] < w.max_apps)
                .min_by_key(|w| (load[w.id.as_str()], w.name.as_str()));
            let Some(w) = candidate else {
                break;
            };
            next.insert((app.name.clone(), w.id.clone()));
            *load.entry(w.id.as_str()).or_default() += 1;
            have += 1;
        }
    }
    // Rebalance (after workers join): a replica moves from a worker with at least two more
    // than another eligible one; the old one stays until the new one is ready (the keep pass
    // above then prefers the new one, on the less loaded worker). One move per app a round.
    for app in apps.iter().filter(|a| a.deployed && a.replicas > 0) {
        let holders: Vec<&WorkerView> = next
            .iter()
            .filter(|(a, _)| *a == app.name)
            .filter_map(|(_, w)| by_id.get(w.as_str()).copied())
            .collect();
        let Some(hi) = holders.iter().max_by_key(|w| load[w.id.as_str()]).copied() else {
            continue;
        };
        let target = workers
            .iter()
            .filter(|w| w.eligible() && w.carries(&app.labels))
            .filter(|w| !holders.iter().any(|h| h.id == w.id))
            .filter(|w| load[w.id.as_str()] < w.max_apps)
            .filter(|w| load[hi.id.as_str()] - load[w.id.as_str()] >= 2)
            .min_by_key(|w| (load[w.id.as_str()], w.name.as_str()));
        if let Some(lo) = target {
            next.insert((app.name.clone(), lo.id.clone()));
            *load.entry(lo.id.as_str()).or_default() += 1;
            *load.entry(hi.id.as_str()).or_default() -= 1;
        }
    }
    // Make before break: a leaving worker keeps serving an app until enough of the app's
    // new replicas are ready.
    for app in apps.iter().filter(|a| a.deployed && a.replicas > 0) {
        let ready = next
            .iter()
            .filter(|(a, w)| {
                *a == app.name
                    && by_id
                        .get(w.as_str())
                        .is_some_and(|w| w.ready.contains(&app.name))
            })
            .count() as i64;
        if ready >= app.replicas {
            continue;
        }
        for (_, worker) in current.iter().filter(|(a, _)| *a == app.name) {
            if let Some(w) = by_id.get(worker.as_str())
                && w.alive
                && !w.eligible()
                && w.ready.contains(&app.name)
            {
                next.insert((app.name.clone(), worker.clone()));
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, max_apps: i64) -> WorkerView {
        WorkerView {
            id: id.into(),
            name: id.into(),
            labels: Vec::new(),
            max_apps,
            alive: true,
            draining: false,
            in_window: true,
            ready: BTreeSet::new(),
        }
    }

    fn app(name: &str, replicas: i64) -> AppView {
        AppView {
            name: name.into(),
            replicas,
            labels: Vec::new(),
            deployed: true,
        }
    }

    fn on(p: &Placements, app: &str) -> Vec<String> {
        p.iter()
            .filter(|(a, _)| a == app)
            .map(|(_, w)| w.clone())
            .collect()
    }

    #[test]
    fn replicas_spread_and_never_share_a_worker() {
        let workers = vec![worker("w1", 8), worker("w2", 8), worker("w3", 8)];
        let p = plan(&[app("a", 2), app("b", 2)], &workers, &Placements::new());
        assert_eq!(on(&p, "a"), vec!["w1", "w2"]);
        assert_eq!(on(&p, "b"), vec!["w1", "w3"], "the least loaded first");
        // More replicas than workers: as many as there are workers.
        let p = plan(&[app("c", 5)], &workers, &Placements::new());
        assert_eq!(on(&p, "c").len(), 3);
        // Undeployed apps are not placed.
        let mut undeployed = app("d", 1);
        undeployed.deployed = false;
        assert!(plan(&[undeployed], &workers, &Placements::new()).is_empty());
    }

    #[test]
    fn replicas_stay_put_and_move_off_lost_workers() {
        let mut workers = vec![worker("w1", 8), worker("w2", 8), worker("w3", 8)];
        let first = plan(&[app("a", 2)], &workers, &Placements::new());
        assert_eq!(plan(&[app("a", 2)], &workers, &first), first, "stable");
        workers[0].alive = false;
        let moved = plan(&[app("a", 2)], &workers, &first);
        assert_eq!(on(&moved, "a"), vec!["w2", "w3"]);
        workers[1].draining = true;
        workers[2].in_window = false;
        assert!(
            plan(&[app("a", 2)], &workers, &moved).is_empty(),
            "nowhere eligible"
        );
    }

    #[test]
    fn a_leaving_worker_serves_until_the_new_replica_is_ready() {
        let mut workers = vec![worker("w1", 8), worker("w2", 8)];
        workers[0].ready.insert("a".into());
        let first = plan(&[app("a", 1)], &workers, &Placements::new());
        assert_eq!(on(&first, "a"), vec!["w1"]);
        // w1 drains: a replica goes to w2 and w1 keeps its own while w2's is not ready.
        workers[0].draining = true;
        let both = plan(&[app("a", 1)], &workers, &first);
        assert_eq!(on(&both, "a"), vec!["w1", "w2"]);
        assert_eq!(
            plan(&[app("a", 1)], &workers, &both),
            both,
            "stable meanwhile"
        );
        // w2's replica is ready: w1's goes.
        workers[1].ready.insert("a".into());
        assert_eq!(on(&plan(&[app("a", 1)], &workers, &both), "a"), vec!["w2"]);
        // A lost worker is not waited for.
        workers[1].ready.clear();
        workers[0].alive = false;
        assert_eq!(on(&plan(&[app("a", 1)], &workers, &both), "a"), vec!["w2"]);
    }

    #[test]
    fn replicas_move_to_a_worker_that_joins_once_ready() {
        let mut workers = vec![worker("w1", 8)];
        let apps: Vec<AppView> = ["a", "b", "c", "d"].iter().map(|n| app(n, 1)).collect();
        let mut p = plan(&apps, &workers, &Placements::new());
        assert_eq!(p.len(), 4);
        workers[0].ready = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        workers.push(worker("w2", 8));
        // Rounds until nothing changes, w2 reporting ready what it was given each time.
        for _ in 0..6 {
            let next = plan(&apps, &workers, &p);
            let on_w2: BTreeSet<String> = next
                .iter()
                .filter(|(_, w)| w == "w2")
                .map(|(a, _)| a.clone())
                .collect();
            // Nothing leaves w1 before w2 serves it.
            for (a, _) in p.iter().filter(|(_, w)| w == "w1") {
                assert!(
                    next.contains(&(a.clone(), "w1".into())) || workers[1].ready.contains(a),
                    "{a} left w1 before w2 was ready"
                );
            }
            workers[1].ready = on_w2;
            p = next;
        }
        let count = |w: &str| p.iter().filter(|(_, x)| x == w).count();
        assert_eq!((count("w1"), count("w2")), (2, 2), "{p:?}");
        assert_eq!(plan(&apps, &workers, &p), p, "settled");
    }

    #[test]
    fn labels_and_capacity_limit_placement() {
        let mut w1 = worker("w1", 1);
        w1.labels = vec![("zone".into(), "a".into())];
        let w2 = worker("w2", 8);
        let mut zoned = app("z", 2);
        zoned.labels = vec![("zone".into(), "a".into())];
        let p = plan(
            &[zoned.clone(), app("other", 1)],
            &[w1.clone(), w2.clone()],
            &Placements::new(),
        );
        assert_eq!(on(&p, "z"), vec!["w1"], "only w1 carries zone=a");
        assert_eq!(on(&p, "other"), vec!["w2"], "w1 is full (max 1 app)");
        // Fewer replicas wanted: the extra ones go.
        let p = plan(&[app("other", 0)], &[w1, w2], &p);
        assert!(p.is_empty());
    }

    #[test]
    fn windows() {
        assert!(in_window(None, 0));
        let nights = Some("22:00-06:00");
        assert!(in_window(nights, 23 * 60));
        assert!(in_window(nights, 5 * 60 + 59));
        assert!(!in_window(nights, 6 * 60));
        assert!(!in_window(nights, 12 * 60));
        let days = Some("09:00-17:30");
        assert!(in_window(days, 9 * 60));
        assert!(!in_window(days, 17 * 60 + 30));
    }
}
