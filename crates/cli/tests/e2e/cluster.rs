//! A cluster on PostgreSQL: two management processes and three workers (plus one outside its
//! availability window) on loopback, each with its own data directory. An app with two
//! replicas serves through both front doors; under steady load a worker is killed (its
//! replica moves, no idempotent request fails), then the scheduler leader (the other
//! process takes over).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::manage::{
    Manage, WorkerProc, manage_env, shared_data, workers_and_a_night_one, zip_dir,
};
use crate::support::{Database, Load, eventually, request};

/// The ready replicas of `app`: (worker name, url).
fn ready(m: &Manage, app: &str) -> Vec<(String, String)> {
    m.placements()
        .into_iter()
        .filter(|p| p["app"] == app && p["ready"] == true)
        .map(|p| {
            (
                p["workerName"].as_str().unwrap_or("?").to_string(),
                p["url"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Puts job `n` on the app's `jobs` queue through the `enqueue` function.
fn enqueue(m: &Manage, n: u32) {
    let body = format!("{{\"job\": {n}}}");
    let r = request(
        m.front,
        "POST",
        "/apps/greeter/api/enqueue",
        &[],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Jobs in `log`'s "finished job N" lines.
fn jobs_in(log: &str) -> Vec<u32> {
    log.lines()
        .filter_map(|l| l.split("finished job ").nth(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The jobs each live worker finished, by data directory.
fn finished(workers: &[Option<WorkerProc>]) -> std::collections::BTreeMap<String, Vec<u32>> {
    workers
        .iter()
        .flatten()
        .map(|w| (w.data.path().display().to_string(), jobs_in(&w.log())))
        .collect()
}

/// Takes the messages of the app's `results` queue at the management role (with a worker's
/// token, through the Queue REST API): the jobs they name.
fn take_results(m: &Manage, token: &str) -> Vec<u32> {
    use base64::Engine as _;
    let mut jobs = Vec::new();
    loop {
        let r = request(
            m.port,
            "GET",
            "/queues/greeter/results/messages?numofmessages=32&visibilitytimeout=600",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("x-ms-version", "2021-12-02"),
            ],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        let texts: Vec<&str> = text
            .split("<MessageText>")
            .skip(1)
            .filter_map(|t| t.split("</MessageText>").next())
            .collect();
        if texts.is_empty() {
            return jobs;
        }
        for t in texts {
            let raw = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
            let v: Value = serde_json::from_slice(&raw).unwrap();
            jobs.push(v["job"].as_u64().unwrap() as u32);
        }
    }
}

#[test]
fn a_cluster_on_postgres_keeps_serving_through_a_lost_worker_and_a_lost_leader() {
    let db = Database::create("cluster");
    let url = db.url();
    let env = [("STRATUS_DATABASE_URL", url.as_str())];
    let opts = [
        "--worker-timeout-seconds",
        "2",
        "--scheduler-lease-seconds",
        "2",
    ];
    let a = manage_env(tempfile::tempdir().unwrap(), &opts, &env);
    let b = manage_env(shared_data(&a), &opts, &env);
    let token = b.join_token();
    let names = ["w1", "w2", "w3"];
    let (started, _night) = workers_and_a_night_one(&b, &token, &names);
    let mut workers: Vec<Option<WorkerProc>> = started.into_iter().map(Some).collect();
    // Deploy through one management process; both see it.
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("app.zip");
    zip_dir(&crate::support::sample("python-handler"), &zip);
    a.apps(&["create", "greeter", "--min", "2", "--max", "2"])
        .unwrap();
    a.apps(&["set", "greeter", "GREETING", "Hello"]).unwrap();
    // Messages taken by a lost worker come back after this long (10 minutes by default).
    a.apps(&["set", "greeter", "STRATUS_QUEUE_MESSAGE_LEASE_SECONDS", "4"])
        .unwrap();
    a.apps(&["deploy", "greeter", zip.to_str().unwrap()])
        .unwrap();
    let first = eventually(Duration::from_secs(60), || {
        let r = ready(&b, "greeter");
        (r.len() == 2).then_some(r)
    });
    assert_ne!(first[0].0, first[1].0, "two replicas never share a worker");
    assert!(
        first.iter().all(|(w, _)| w != "night"),
        "outside its window: {first:?}"
    );
    for m in [&a, &b] {
        let r = eventually(Duration::from_secs(10), || {
            request(m.front, "GET", "/apps/greeter/api/hello?name=Ann", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
        });
        assert_eq!(r.text(), "Hello, Ann!");
    }
    // One set of keys for the app: a key works on every replica.
    let keys = a.json(&["keys", "greeter"]);
    let key = keys["functionKeys"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..10 {
        let r = request(
            b.front,
            "GET",
            "/apps/greeter/api/products/books/1",
            &[("x-functions-key", &key)],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The replicas share the app's queues: jobs enqueued through either are worked on by
    // both, each once.
    for job in 0..40 {
        enqueue(&b, job);
    }
    let done = eventually(Duration::from_secs(30), || {
        let done = finished(&workers);
        (done.values().map(Vec::len).sum::<usize>() >= 40).then_some(done)
    });
    for job in 0..40 {
        let by: Vec<&String> = done
            .iter()
            .filter(|(_, jobs)| jobs.contains(&job))
            .map(|(w, _)| w)
            .collect();
        assert_eq!(by.len(), 1, "job {job} finished by {by:?}");
        assert_eq!(
            done[by[0]].iter().filter(|j| **j == job).count(),
            1,
            "job {job} twice"
        );
    }
    // (Which replica takes which message is a race: either may take them all.)
    eprintln!(
        "40 jobs, run by: {:?}",
        done.values().map(Vec::len).collect::<Vec<_>>()
    );
    // Steady load through a front door; a worker holding a replica dies without a word.
    // What the counters said before.
    let metric = |m: &Manage, name: &str| -> u64 {
        let text = request(m.port, "GET", "/metrics", &[], b"").unwrap().text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let unavailable = metric(&b, "stratus_front_door_unavailable_total");
    let bad_gateway = metric(&b, "stratus_front_door_bad_gateway_total");
    let load = Load::start(b.front, "/apps/greeter/api/hello?name=Load", 4);
    eventually(Duration::from_secs(10), || (load.ok() > 50).then_some(()));
    let victim = first[0].0.clone();
    let index = names.iter().position(|n| *n == victim).unwrap();
    // Jobs in flight when it dies are worked on all the same.
    for job in 100..130 {
        enqueue(&b, job);
    }
    let killed_at = Instant::now();
    drop(workers[index].take());
    let replaced = eventually(Duration::from_secs(60), || {
        let r = ready(&b, "greeter");
        (r.len() == 2 && r.iter().all(|(w, _)| *w != victim)).then_some(r)
    });
    let recovery = killed_at.elapsed();
    // The new replica takes its share of the load.
    let new_url = replaced
        .iter()
        .find(|(w, _)| !first.iter().any(|(f, _)| f == w))
        .map(|(_, u)| u.clone())
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, errors) = load.finish();
    eprintln!(
        "worker killed under load: {ok} requests answered, {} failed; replicas re-placed and ready after {recovery:?} (new replica {new_url})",
        errors.len()
    );
    assert!(errors.is_empty(), "idempotent requests failed: {errors:?}");
    // Every job's result is in the app's `results` queue (written before its message is
    // deleted), whoever ran it, even if the lost worker ran it and could not say so.
    let mut results = std::collections::BTreeSet::new();
    eventually(Duration::from_secs(30), || {
        results.extend(take_results(&b, &token));
        (100..130).all(|j| results.contains(&j)).then_some(())
    });
    assert!(
        recovery < Duration::from_secs(20),
        "recovery took {recovery:?}"
    );
    assert!(metric(&b, "stratus_front_door_requests_total") as usize >= ok);
    // Its counters say the same.
    assert_eq!(
        metric(&b, "stratus_front_door_unavailable_total"),
        unavailable
    );
    assert_eq!(
        metric(&b, "stratus_front_door_bad_gateway_total"),
        bad_gateway
    );
    assert!(
        metric(&b, "stratus_front_door_retries_total") > 0,
        "requests to the lost worker went elsewhere"
    );
    assert_eq!(
        metric(&a, "stratus_scheduler_leader") + metric(&b, "stratus_scheduler_leader"),
        1
    );
    // The scheduler leader dies: the other process takes over and moves the replica of the
    // next lost worker.
    let (mut leader, follower) = if a.log().contains("this process now leads scheduling") {
        (a, b)
    } else {
        (b, a)
    };
    assert!(leader.log().contains("this process now leads scheduling"));
    leader.kill();
    let victim = replaced[0].0.clone();
    let index = names.iter().position(|n| *n == victim).unwrap();
    drop(workers[index].take());
    let survivor = names
        .iter()
        .zip(&workers)
        .find_map(|(n, w)| w.as_ref().map(|_| n.to_string()))
        .unwrap();
    let last = eventually(Duration::from_secs(30), || {
        let r = ready(&follower, "greeter");
        // Only the survivor is left (the night worker is outside its window).
        (r.len() == 1 && r[0].0 == survivor).then_some(r)
    });
    assert!(last.iter().all(|(w, _)| *w != "night"));
    // (It says so once its first round is over, just after it wrote the placements.)
    eventually(Duration::from_secs(5), || {
        follower
            .log()
            .contains("this process now leads scheduling")
            .then_some(())
    });
    let r = eventually(Duration::from_secs(10), || {
        request(
            follower.front,
            "GET",
            "/apps/greeter/api/hello?name=End",
            &[],
            b"",
        )
        .ok()
        .filter(|r| r.status == 200)
    });
    assert_eq!(r.text(), "Hello, End!");
    assert_eq!(metric(&follower, "stratus_scheduler_leader"), 1);
    assert!(
        metric(&follower, "stratus_placements_removed_total") >= 1,
        "it moved the lost replica"
    );
}
