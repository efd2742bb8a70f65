//! A hostile app on an isolating worker (`--isolation required`), beside a well-behaved one:
//! it cannot read the other app's files, `/etc/shadow` or the worker's data, see other
//! processes, write its own code or see the worker's secrets; its fork bomb meets its process
//! limit, its allocation its memory limit (the reason in the logs), its sleep the function
//! timeout, and the child it tried to leave behind dies with it. The other app serves
//! throughout, without an error. Needs root; says so and passes otherwise, except on CI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::manage::{Manage, manage_with, spawn_worker_env, walk};
use crate::support::{eventually, request, test_app};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Processes on the machine whose command line holds `marker`.
fn alive_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(marker)
                })
                .unwrap_or(false)
        })
        .count()
}

/// Whether the test can run: isolation (and switching users) needs root; CI runs as root.
fn as_root(why: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI runs as root");
    eprintln!("skipped: {why}");
    false
}

/// A management role with two apps: `good` (the Python handler sample) and `bad` (the hostile
/// app, with `settings`).
fn good_and_bad(settings: &[(&str, &str)]) -> Manage {
    let m = manage_with(&[]);
    m.apps(&["create", "good"]).unwrap();
    let sample = crate::support::sample("python-handler");
    m.apps(&["deploy", "good", sample.to_str().unwrap()])
        .unwrap();
    m.apps(&["create", "bad"]).unwrap();
    for (k, v) in settings {
        m.apps(&["set", "bad", k, v]).unwrap();
    }
    m.apps(&["deploy", "bad", test_app("hostile").to_str().unwrap()])
        .unwrap();
    m
}

/// Calls the hostile app's functions through the front door.
struct Hostile<'a, L: Fn() -> String> {
    m: &'a Manage,
    /// What the worker logged, for failures.
    log: L,
}

impl<L: Fn() -> String> Hostile<'_, L> {
    fn call(&self, f: &str, query: &str) -> crate::support::Response {
        request(
            self.m.front,
            "GET",
            &format!("/apps/bad/api/{f}?{query}"),
            &[],
            b"",
        )
        .unwrap()
    }

    /// A function's JSON answer.
    fn json(&self, f: &str, query: &str) -> Value {
        let r = self.call(f, query);
        serde_json::from_slice(&r.body).unwrap_or_else(|e| {
            panic!(
                "{f}: {} {e}: {}\n{}\n{}",
                r.status,
                r.text(),
                (self.log)(),
                self.m.log()
            )
        })
    }

    /// Waits until the app serves, then says who it runs as.
    fn whoami(&self) -> Value {
        eventually(Duration::from_secs(30), || {
            (self.call("whoami", "").status == 200).then_some(())
        });
        self.json("whoami", "")
    }
}

#[test]
fn a_hostile_app_is_contained_while_its_neighbour_keeps_serving() {
    if !as_root("isolation needs root") {
        return;
    }
    let m = good_and_bad(&[
        ("STRATUS_MEMORY_LIMIT_MB", "128"),
        ("STRATUS_PROCESS_LIMIT", "48"),
        ("SECRET_OF_BAD", "its own"),
    ]);
    let token = m.join_token();
    // Runtimes every user can run (the app's user is not root).
    let w = spawn_worker_env(
        &m,
        &token,
        "w1",
        &["--isolation", "required"],
        &[("PATH", "/usr/local/bin:/usr/bin:/bin")],
    );
    m.wait_serving("good");
    let h = Hostile {
        m: &m,
        log: || w.log(),
    };
    let bad = |f: &str, query: &str| h.call(f, query);
    let json = |f: &str, query: &str| h.json(f, query);
    let who = h.whoami();

    // The neighbour is called all along; every answer must be right, and quick.
    let stop = Arc::new(AtomicBool::new(false));
    let front = m.front;
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            let mut calls = 0;
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                let r = request(front, "GET", "/apps/good/api/hello?name=n", &[], b"").unwrap();
                assert_eq!((r.status, r.text()), (200, "Hello, n!".to_string()));
                slowest = slowest.max(at.elapsed());
                calls += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (calls, slowest)
        })
    };

    // Its own user, its code read-only, only its own settings.
    assert!(who["uid"].as_u64().unwrap() >= 200_000, "{who}");
    assert_eq!(who["codeWritable"], false, "{who}");
    let env = who["env"].to_string();
    assert!(env.contains("SECRET_OF_BAD"), "{env}");
    assert!(!env.contains("STRATUS_") && !env.contains("JOIN"), "{env}");

    // Other files: the neighbour's code, the worker's data and log, /etc/shadow.
    let good_code = walk(&w.data.path().join("apps/good"))
        .into_iter()
        .find(|p| p.ends_with("handler.py"))
        .expect("the neighbour is unpacked on the worker");
    for path in [
        good_code.clone(),
        w.data.path().join("worker.log"),
        "/etc/shadow".into(),
    ] {
        let r = json("peek", &format!("path={}", path.display()));
        assert!(r["refused"].is_string(), "{} was read: {r}", path.display());
    }
    // Other processes.
    let procs = json("procs", "");
    assert!(procs["processes"].as_u64().unwrap() <= 4, "{procs}");

    // A child meant to outlive the handler; then the handler sleeps past the timeout and is
    // replaced: the child goes with it.
    let r = json("escape", "");
    assert!(r["child"].is_u64(), "{r}");
    assert_eq!(alive_with("sleep 617"), 1);
    assert_eq!(bad("sleep", "").status, 500);
    eventually(Duration::from_secs(10), || {
        (alive_with("sleep 617") == 0).then_some(())
    });

    // A fork bomb meets the process limit.
    let r = json("bomb", "");
    assert!(r["stopped"].is_string(), "{r}");
    assert!(r["children"].as_u64().unwrap() < 48, "{r}");

    // Memory: the handler is killed at its limit, and the logs say why; it comes back.
    let r = bad("hog", "");
    assert_ne!(r.status, 200, "{}", r.text());
    // The reason is in the failed invocation's own line as well as the handler's exit.
    let said =
        |l: &str| l.contains("Functions.hog' (Failed") && l.contains("memory limit of 128 MiB");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w.log().lines().any(said) {
        assert!(
            Instant::now() < deadline,
            "the failure does not say why; the worker logged:\n{}",
            w.log()
                .lines()
                .filter(|l| l.contains("hog") || l.contains("handler"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eventually(Duration::from_secs(30), || {
        (bad("whoami", "").status == 200).then_some(())
    });

    stop.store(true, Ordering::Relaxed);
    let (calls, slowest) = watcher
        .join()
        .expect("the neighbour answered every call right");
    assert!(calls > 20, "{calls} calls");
    assert!(
        slowest < Duration::from_secs(2),
        "the neighbour took {slowest:?}"
    );
    // The worker says what it isolates, and what each app uses.
    let workers: Value = serde_json::from_str(&m.admin_get("/api/workers")).unwrap();
    let w1 = &workers[0];
    assert_eq!(w1["isolation"]["mode"], "required", "{w1}");
    assert_eq!(w1["isolation"]["namespaces"], "on", "{w1}");
    let usage = eventually(Duration::from_secs(10), || {
        let workers: Value = serde_json::from_str(&m.admin_get("/api/workers")).ok()?;
        let apps = workers[0]["apps"].as_array()?.clone();
        let bad = apps.iter().find(|a| a["app"] == "bad")?["usage"].clone();
        (bad["oomKills"].as_u64()? >= 1).then_some(bad)
    });
    assert_eq!(usage["memoryLimitBytes"], 128 << 20, "{usage}");
    assert!(usage["memoryBytes"].as_u64().is_some(), "{usage}");
}

/// A worker that is not root: its apps get namespaces inside user namespaces of their own
/// (no per-app users, no limits, as it says), and still cannot read another app's files or
/// /etc/shadow, see other processes, write their code, or take the covering mounts away.
#[test]
fn a_worker_that_is_not_root_isolates_its_apps_in_user_namespaces() {
    if !as_root("the test switches to another user, which needs root") {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let m = good_and_bad(&[]);
    let token = m.join_token();
    // The binary where user nobody can run it, and a data directory of nobody's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("stratus");
    std::fs::copy(env!("CARGO_BIN_EXE_stratus"), &exe).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let log = dir.path().join("worker.log");
    let out = std::fs::File::create(&log).unwrap();
    #[allow(
        clippy::disallowed_methods,
        reason = "the test starts a worker as another user"
    )]
    let child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["worker", "--join", &format!("http://127.0.0.1:{}", m.port)])
        .args(["--name", "nobody", "--heartbeat-seconds", "1"])
        .env("STRATUS_JOIN_TOKEN", &token)
        .env("STRATUS_DATA_DIR", &data)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir.path())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let _worker = crate::manage::Killed(child);
    let worker_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let h = Hostile {
        m: &m,
        log: worker_log,
    };
    let json = |f: &str, query: &str| h.json(f, query);
    m.wait_serving("good");
    let who = h.whoami();
    // Root of its own user namespace (the worker's user outside), code read-only.
    assert_eq!(who["uid"], 0, "{who}");
    assert_eq!(who["codeWritable"], false, "{who}");
    let good_code = walk(&data.join("apps/good"))
        .into_iter()
        .find(|p| p.ends_with("handler.py"))
        .expect("the neighbour is unpacked on the worker");
    for path in [good_code.clone(), "/etc/shadow".into()] {
        let r = json("peek", &format!("path={}", path.display()));
        assert!(r["refused"].is_string(), "{} was read: {r}", path.display());
    }
    assert!(json("procs", "")["processes"].as_u64().unwrap() <= 4);
    // The covering mount stays: no capability to take it away, set-user-ID ignored.
    let r = json("unhide", &format!("path={}", data.display()));
    assert_ne!(r["rc"], 0, "{r}");
    let r = json("peek", &format!("path={}", good_code.display()));
    assert!(r["refused"].is_string(), "uncovered: {r}");
    // The neighbour served all along; the worker says what it could not do.
    assert_eq!(m.hello("good").status, 200);
    let workers: Value = serde_json::from_str(&m.admin_get("/api/workers")).unwrap();
    let iso = &workers[0]["isolation"];
    assert_eq!(iso["namespaces"], "on (in a user namespace)", "{iso}");
    assert!(
        iso["appUsers"].as_str().unwrap().starts_with("off"),
        "{iso}"
    );
    assert!(
        worker_log().contains("per-app users off"),
        "{}",
        worker_log()
    );
}
