//! The management role: `stratus manage` serves the management API over the store, and
//! `stratus apps` drives it; the admin token guards it.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    Load, Response, eventually, free_port, request, run_stratus, stratus_command,
};

/// A child process killed when the test ends, however it ends.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) struct Manage {
    child: Child,
    pub(crate) port: u16,
    /// The front door's port.
    pub(crate) front: u16,
    /// The publishing endpoint's port.
    pub(crate) scm: u16,
    pub(crate) data: tempfile::TempDir,
}

impl Drop for Manage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manage() -> Manage {
    manage_with(&[])
}

pub(crate) fn manage_with(args: &[&str]) -> Manage {
    manage_in(tempfile::tempdir().unwrap(), args)
}

/// A management process over the store in `data` (several may share one).
pub(crate) fn manage_in(data: tempfile::TempDir, args: &[&str]) -> Manage {
    manage_env(data, args, &[])
}

/// A management process with `env` set.
pub(crate) fn manage_env(data: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Manage {
    // A port picked free may be taken by another test before the process binds it: then the
    // process stops at once, and it starts again on other ports.
    for _ in 0..5 {
        let port = free_port();
        let front = free_port();
        let scm = free_port();
        let log = data.path().join(format!("manage-{port}.log"));
        let mut child = stratus_command()
            .arg("manage")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--front-listen")
            .arg(format!("127.0.0.1:{front}"))
            .arg("--scm-listen")
            .arg(format!("127.0.0.1:{scm}"))
            .args(args)
            .env("STRATUS_DATA_DIR", data.path())
            .env_remove("STRATUS_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        let up = eventually(Duration::from_secs(30), || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(false);
            }
            request(port, "GET", "/api/openapi.json", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| true)
        });
        if up {
            return Manage {
                child,
                port,
                front,
                scm,
                data,
            };
        }
        eprintln!(
            "stratus manage stopped at start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    panic!("stratus manage did not start");
}

impl Manage {
    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join(format!("manage-{}.log", self.port)))
            .unwrap_or_default()
    }

    /// Kills the process (its data directory stays).
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn apps(&self, args: &[&str]) -> Result<String, String> {
        self.cli("apps", args)
    }

    /// `stratus COMMAND ARGS` against this management role.
    pub(crate) fn cli(&self, command: &str, args: &[&str]) -> Result<String, String> {
        run_stratus(
            stratus_command()
                .arg(command)
                .args(args)
                .arg("--url")
                .arg(format!("http://127.0.0.1:{}", self.port))
                .env("STRATUS_DATA_DIR", self.data.path())
                .env_remove("STRATUS_ADMIN_TOKEN"),
        )
    }

    /// `Bearer <admin token>`.
    pub(crate) fn admin_bearer(&self) -> String {
        let token = std::fs::read_to_string(self.data.path().join("admin-token")).unwrap();
        format!("Bearer {token}")
    }

    /// The placements, as `GET /api/placements` lists them.
    pub(crate) fn placements(&self) -> Vec<Value> {
        let bearer = self.admin_bearer();
        let r = request(
            self.port,
            "GET",
            "/api/placements",
            &[("Authorization", &bearer)],
            b"",
        )
        .unwrap();
        serde_json::from_str::<Value>(&r.text())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// `GET /apps/{app}/api/hello?name=x` through the front door (the samples' greeting).
    pub(crate) fn hello(&self, app: &str) -> Response {
        request(
            self.front,
            "GET",
            &format!("/apps/{app}/api/hello?name=x"),
            &[],
            b"",
        )
        .unwrap()
    }

    /// Waits until the front door's greeting of `app` says `text`.
    pub(crate) fn wait_hello(&self, app: &str, text: &str) {
        let path = format!("/apps/{app}/api/hello?name=x");
        eventually(Duration::from_secs(30), || {
            request(self.front, "GET", &path, &[], b"")
                .ok()
                .filter(|r| r.text() == text)
        });
    }

    /// Creates `app`, deploys the Python sample to it and waits until it answers.
    pub(crate) fn deploy_sample(&self, app: &str) {
        let sample = crate::support::sample("python-handler");
        self.apps(&["create", app]).unwrap();
        if let Err(e) = self.apps(&["deploy", app, sample.to_str().unwrap()]) {
            panic!("deploying {app}: {e}\n{}", self.log());
        }
        self.wait_serving(app);
    }

    /// Waits until the front door's greeting of `app` answers 200.
    pub(crate) fn wait_serving(&self, app: &str) {
        let path = format!("/apps/{app}/api/hello?name=x");
        eventually(Duration::from_secs(30), || {
            request(self.front, "GET", &path, &[], b"")
                .ok()
                .filter(|r| r.status == 200)
        });
    }

    /// The body of an admin `GET` of `path` (200 expected).
    pub(crate) fn admin_get(&self, path: &str) -> String {
        let bearer = self.admin_bearer();
        let r = request(self.port, "GET", path, &[("Authorization", &bearer)], b"").unwrap();
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.text()
    }

    /// A new join token's value.
    pub(crate) fn join_token(&self) -> String {
        let created: Value =
            serde_json::from_str(&self.cli("tokens", &["create", "ci"]).unwrap()).unwrap();
        created["token"].as_str().unwrap().to_string()
    }

    /// Creates `app` with `replicas` and deploys a package to it; the package's cache name.
    fn deploy(&self, app: &str, replicas: &str, zip: &std::path::Path) -> String {
        self.apps(&["create", app, "--min", replicas, "--max", replicas])
            .unwrap();
        minimal_app(zip, &[]);
        let deployed = self.json(&["deploy", app, zip.to_str().unwrap()]);
        format!("{}.zip", deployed["sha256"].as_str().unwrap())
    }

    /// The names of the workers replicas are placed on.
    fn placed(&self) -> Vec<String> {
        self.placements()
            .iter()
            .map(|p| p["workerName"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.apps(args).unwrap()).unwrap()
    }
}

#[test]
fn apps_settings_and_versions_through_the_management_api() {
    let m = manage();
    // The token is generated into the data directory, readable by its owner only.
    let token_file = m.data.path().join("admin-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let r = request(m.port, "GET", "/api/apps", &[], b"").unwrap();
    assert_eq!(r.status, 401, "no token");
    let r = request(
        m.port,
        "GET",
        "/api/apps",
        &[("Authorization", "Bearer wrong")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401, "a wrong token");
    let bearer = format!("Bearer {token}");
    let r = request(
        m.port,
        "GET",
        "/api/apps",
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!((r.status, r.text()), (200, "[]".to_string()));

    let created = m.json(&[
        "create", "Orders", "--min", "2", "--max", "3", "--label", "zone=b",
    ]);
    assert_eq!(created["name"], "orders");
    assert_eq!(created["labels"]["zone"], "b");
    let e = m.apps(&["create", "bad_name"]).unwrap_err();
    assert!(e.contains("letters, digits and hyphens"), "{e}");
    let e = m
        .apps(&["create", "x1", "--min", "3", "--max", "1"])
        .unwrap_err();
    assert!(e.contains("above maxReplicas"), "{e}");

    m.apps(&["set", "orders", "DB_PASSWORD", "s3cret"]).unwrap();
    assert_eq!(m.json(&["settings", "orders"])["DB_PASSWORD"], "s3cret");
    m.apps(&["unset", "orders", "db_password"]).unwrap();
    assert_eq!(m.json(&["settings", "orders"]), serde_json::json!({}));

    // Versions: zip packages by SHA-256; the newest is active unless told otherwise.
    let dir = tempfile::tempdir().unwrap();
    let zip_a = dir.path().join("a.zip");
    let zip_b = dir.path().join("b.zip");
    minimal_app(&zip_a, &[]);
    minimal_app(&zip_b, &[("README", b"another package")]);
    let v1 = m.json(&[
        "deploy",
        "orders",
        zip_a.to_str().unwrap(),
        "-m",
        "first cut",
    ]);
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["sha256"].as_str().unwrap().len(), 64);
    let v2 = m.json(&["deploy", "orders", zip_b.to_str().unwrap(), "--no-activate"]);
    assert_eq!(
        (v2["number"].as_i64(), v2["active"].as_bool()),
        (Some(2), Some(false))
    );
    let not_zip = dir.path().join("c.txt");
    std::fs::write(&not_zip, b"hello").unwrap();
    let e = m
        .apps(&["deploy", "orders", not_zip.to_str().unwrap()])
        .unwrap_err();
    assert!(e.contains("not a zip archive"), "{e}");
    // Packages that would break out of the app's folder, or have no valid host.json, are
    // refused with the reason; the live version stays.
    let hostile = dir.path().join("d.zip");
    minimal_app(&hostile, &[("../escape.sh", b"rm -rf /")]);
    let e = m
        .apps(&["deploy", "orders", hostile.to_str().unwrap()])
        .unwrap_err();
    assert!(e.contains("outside the app's directory"), "{e}");
    let no_host = dir.path().join("e");
    std::fs::create_dir_all(&no_host).unwrap();
    std::fs::write(no_host.join("host.json"), br#"{"version": "1.0"}"#).unwrap();
    let e = m
        .apps(&["deploy", "orders", no_host.to_str().unwrap()])
        .unwrap_err();
    assert!(e.contains("host.json"), "{e}");
    assert_eq!(m.json(&["versions", "orders"]).as_array().unwrap().len(), 2);
    assert_eq!(m.json(&["show", "orders"])["activeVersion"], 1);
    m.apps(&["activate", "orders", "2"]).unwrap();
    assert_eq!(m.json(&["show", "orders"])["activeVersion"], 2);
    let e = m.apps(&["activate", "orders", "9"]).unwrap_err();
    assert!(e.contains("no version 9"), "{e}");
    let versions = m.json(&["versions", "orders"]);
    assert_eq!(versions[1]["message"], "first cut");
    // Packages are served by hash (for workers), byte for byte.
    let sha = v2["sha256"].as_str().unwrap();
    let r = request(
        m.port,
        "GET",
        &format!("/api/packages/{sha}"),
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.body, std::fs::read(&zip_b).unwrap());

    let listed = m.apps(&["list"]).unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("orders") && l.contains("2..3") && l.contains("zone=b")),
        "{listed}"
    );
    m.apps(&["delete", "orders"]).unwrap();
    let e = m.apps(&["show", "orders"]).unwrap_err();
    assert!(e.contains("404"), "{e}");
}

#[test]
fn workers_join_with_a_token_and_are_listed_drained_and_removed() {
    let m = manage();
    let created: Value =
        serde_json::from_str(&m.cli("tokens", &["create", "night shift"]).unwrap()).unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let token_id = created["id"].as_str().unwrap().to_string();
    let listed = m.cli("tokens", &["list"]).unwrap();
    assert!(
        listed.contains("night shift") && !listed.contains(&token),
        "values are never listed: {listed}"
    );

    let join = |bearer: &str, body: &str| {
        request(
            m.port,
            "POST",
            "/api/workers/join",
            &[
                ("Authorization", &format!("Bearer {bearer}")),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .unwrap()
    };
    let version = env!("CARGO_PKG_VERSION");
    let spec = format!(
        r#"{{"name": "box-1", "version": "{version}", "cpuMillis": 2000, "memoryMib": 4096, "maxApps": 4, "labels": {{"zone": "a"}}, "window": "22:00-06:00"}}"#
    );
    assert_eq!(join("sjt_wrong", &spec).status, 401, "an unknown token");
    let admin = std::fs::read_to_string(m.data.path().join("admin-token")).unwrap();
    assert_eq!(
        join(&admin, &spec).status,
        401,
        "the admin token is not a join token"
    );
    let old = join(&token, r#"{"name": "box-0", "version": "99.1.0"}"#);
    assert_eq!(old.status, 409, "{}", old.text());
    assert!(old.text().contains("major and minor versions must match"));
    let bad = join(
        &token,
        &format!(r#"{{"name": "box-0", "version": "{version}", "window": "nights"}}"#),
    );
    assert_eq!(bad.status, 400);
    let joined = join(&token, &spec);
    assert_eq!(joined.status, 201, "{}", joined.text());
    let id = serde_json::from_str::<Value>(&joined.text()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let beat = |bearer: &str| {
        request(
            m.port,
            "POST",
            &format!("/api/workers/{id}/heartbeat"),
            &[("Authorization", &format!("Bearer {bearer}"))],
            b"",
        )
        .unwrap()
        .status
    };
    assert_eq!(beat(&token), 204);
    // A worker reads its own assignments (none yet) and only its apps' packages.
    let get = |path: &str, bearer: &str| {
        request(
            m.port,
            "GET",
            path,
            &[("Authorization", &format!("Bearer {bearer}"))],
            b"",
        )
        .unwrap()
    };
    let own = get(&format!("/api/workers/{id}/assignments"), &token);
    assert_eq!((own.status, own.text()), (200, "[]".to_string()));
    assert_eq!(
        get(&format!("/api/workers/{id}/assignments"), &admin).status,
        401
    );
    let other = get(
        &format!("/api/workers/{id}/packages/{}", "a".repeat(64)),
        &token,
    );
    assert_eq!(other.status, 404);
    let workers: Value =
        serde_json::from_str(&m.cli("workers", &["list", "--json"]).unwrap()).unwrap();
    assert_eq!(workers[0]["name"], "box-1");
    assert_eq!(workers[0]["window"], "22:00-06:00");
    assert_eq!(workers[0]["labels"]["zone"], "a");
    assert_eq!(workers[0]["draining"], false);
    m.cli("workers", &["drain", &id]).unwrap();
    let table = m.cli("workers", &["list"]).unwrap();
    assert!(
        table.contains("draining") && table.contains("zone=a"),
        "{table}"
    );

    // Revoking the token shuts its workers out.
    m.cli("tokens", &["revoke", &token_id]).unwrap();
    assert_eq!(beat(&token), 401);
    assert_eq!(join(&token, &spec).status, 401);
    m.cli("workers", &["remove", &id]).unwrap();
    let e = m.cli("workers", &["remove", &id]).unwrap_err();
    assert!(e.contains("404"), "{e}");
}

#[test]
fn a_worker_process_joins_sends_heartbeats_rejoins_and_stops_when_its_token_is_revoked() {
    let m = manage();
    let created: Value =
        serde_json::from_str(&m.cli("tokens", &["create", "ci"]).unwrap()).unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let worker = stratus_command()
        .args([
            "worker",
            "--join",
            &format!("http://127.0.0.1:{}", m.port),
            "--name",
            "w1",
        ])
        .args([
            "--label",
            "zone=a",
            "--window",
            "22:00-06:00",
            "--heartbeat-seconds",
            "1",
        ])
        .env("STRATUS_JOIN_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut worker = Killed(worker);
    let list = || -> Vec<Value> {
        serde_json::from_str::<Value>(&m.cli("workers", &["list", "--json"]).unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let first = eventually(Duration::from_secs(20), || {
        list().into_iter().find(|w| w["name"] == "w1")
    });
    assert_eq!(first["labels"]["zone"], "a");
    assert_eq!(first["window"], "22:00-06:00");
    assert!(first["cpuMillis"].as_i64().unwrap() >= 1000);
    // Heartbeats keep it fresh.
    let id = first["id"].as_str().unwrap().to_string();
    let joined = first["joinedAt"].as_i64().unwrap();
    eventually(Duration::from_secs(10), || {
        list()
            .into_iter()
            .find(|w| w["id"] == id.as_str() && w["heartbeatAt"].as_i64().unwrap() > joined)
    });
    // Forgotten by the management role, it joins again (a new id).
    m.cli("workers", &["remove", &id]).unwrap();
    let again = eventually(Duration::from_secs(10), || {
        list()
            .into_iter()
            .find(|w| w["name"] == "w1" && w["id"] != id.as_str())
    });
    assert_ne!(again["id"], first["id"]);
    // Its token revoked, it stops with a configuration error that says why.
    m.cli("tokens", &["revoke", created["id"].as_str().unwrap()])
        .unwrap();
    let status = eventually(Duration::from_secs(10), || worker.0.try_wait().unwrap());
    assert_eq!(status.code(), Some(78));
    let mut err = String::new();
    std::io::Read::read_to_string(worker.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("revoked"), "{err}");
}

/// A worker process with its own data directory.
pub(crate) struct WorkerProc {
    pub(crate) _child: Killed,
    pub(crate) data: tempfile::TempDir,
}

impl WorkerProc {
    /// What it printed so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("worker.log")).unwrap_or_default()
    }

    /// The packages in its cache.
    fn cached(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data.path().join("packages"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

pub(crate) fn spawn_worker(m: &Manage, token: &str, name: &str, extra: &[&str]) -> WorkerProc {
    spawn_worker_env(m, token, name, extra, &[])
}

/// `spawn_worker` with `env` set as well.
pub(crate) fn spawn_worker_env(
    m: &Manage,
    token: &str,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> WorkerProc {
    let data = tempfile::tempdir().unwrap();
    let out = std::fs::File::create(data.path().join("worker.log")).unwrap();
    let child = stratus_command()
        .args([
            "worker",
            "--join",
            &format!("http://127.0.0.1:{}", m.port),
            "--name",
            name,
        ])
        .args(if extra.contains(&"--heartbeat-seconds") {
            &[][..]
        } else {
            &["--heartbeat-seconds", "1"][..]
        })
        .args(extra)
        .env("STRATUS_JOIN_TOKEN", token)
        .env("STRATUS_DATA_DIR", data.path())
        // The apps run isolated, as their own users: runtimes every user can run (not a
        // Python under /root).
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    WorkerProc {
        _child: Killed(child),
        data,
    }
}

#[test]
fn replicas_are_placed_apart_and_moved_off_a_lost_worker() {
    let m = manage_with(&["--worker-timeout-seconds", "2"]);
    let token = m.join_token();
    // A worker whose window excludes now never gets placements.
    let (mut workers, night) = workers_and_a_night_one(&m, &token, &["w1", "w2", "w3"]);
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("app.zip");
    let package = m.deploy("orders", "2", &zip);
    let placed = || m.placed();
    let first = eventually(Duration::from_secs(20), || {
        let p = placed();
        (p.len() == 2).then_some(p)
    });
    assert_ne!(first[0], first[1], "two replicas never share a worker");
    assert!(
        !first.contains(&"night".to_string()),
        "outside its window: {first:?}"
    );
    // The placed workers fetch the package into their cache; the others do not.
    for (name, w) in ["w1", "w2", "w3"].iter().zip(&workers) {
        if first.contains(&name.to_string()) {
            eventually(Duration::from_secs(10), || {
                (w.cached() == vec![package.clone()]).then_some(())
            });
            let cached = std::fs::read(w.data.path().join("packages").join(&package)).unwrap();
            assert_eq!(cached, std::fs::read(&zip).unwrap());
        } else {
            assert!(w.cached().is_empty(), "{name} is not placed");
        }
    }
    assert!(night.cached().is_empty());
    // Kill a placed worker without a word: its replica moves to the one left.
    let victim = first[0].clone();
    let index = ["w1", "w2", "w3"]
        .iter()
        .position(|n| *n == victim)
        .unwrap();
    let killed_at = std::time::Instant::now();
    drop(workers.remove(index));
    let moved = eventually(Duration::from_secs(20), || {
        let p = placed();
        (p.len() == 2 && !p.contains(&victim)).then_some(p)
    });
    let took = killed_at.elapsed();
    assert!(!moved.contains(&"night".to_string()));
    assert!(took < Duration::from_secs(10), "re-placed after {took:?}");
    eprintln!("worker lost -> replica re-placed in {took:?}");
}

#[test]
fn another_management_process_takes_scheduling_over_when_the_leader_dies() {
    let shared = tempfile::tempdir().unwrap();
    let path = shared.path().to_path_buf();
    let opts = [
        "--worker-timeout-seconds",
        "2",
        "--scheduler-lease-seconds",
        "2",
    ];
    // Both processes share one store (and so one admin token); the first one leads.
    let mut leader = manage_in(tempfile::TempDir::new_in(&path).unwrap(), &opts);
    let follower = manage_in(shared_data(&leader), &opts);
    let token = follower.join_token();
    let mut workers: Vec<WorkerProc> = ["w1", "w2"]
        .iter()
        .map(|n| spawn_worker(&follower, &token, n, &[]))
        .collect();
    follower.deploy("orders", "1", &path.join("app.zip"));
    let placed = || follower.placed();
    let first = eventually(Duration::from_secs(20), || {
        let p = placed();
        (p.len() == 1).then_some(p)
    });
    // The leader dies; then the worker holding the replica dies: only a new leader can move it.
    leader.kill();
    let victim = first[0].clone();
    let index = ["w1", "w2"].iter().position(|n| *n == victim).unwrap();
    drop(workers.remove(index));
    let moved = eventually(Duration::from_secs(20), || {
        let p = placed();
        (p.len() == 1 && p[0] != victim).then_some(p)
    });
    assert_ne!(moved[0], victim);
}

/// Workers `names`, and `night`, whose availability window excludes now; once all have joined.
pub(crate) fn workers_and_a_night_one(
    m: &Manage,
    token: &str,
    names: &[&str],
) -> (Vec<WorkerProc>, WorkerProc) {
    let now_min = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60)
        % (24 * 60);
    let hhmm = |m: u64| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    let window = format!("{}-{}", hhmm(now_min + 120), hhmm(now_min + 180));
    let workers: Vec<WorkerProc> = names
        .iter()
        .map(|n| spawn_worker(m, token, n, &[]))
        .collect();
    let night = spawn_worker(m, token, "night", &["--window", &window]);
    eventually(Duration::from_secs(20), || {
        let list: Value =
            serde_json::from_str(&m.cli("workers", &["list", "--json"]).unwrap()).unwrap();
        (list.as_array().unwrap().len() == names.len() + 1).then_some(())
    });
    (workers, night)
}

/// Writes a zip of an app with only a host.json, and `extra` files.
pub(crate) fn minimal_app(to: &std::path::Path, extra: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("host.json", opts).unwrap();
    std::io::Write::write_all(&mut zip, br#"{"version": "2.0"}"#).unwrap();
    for (name, content) in extra {
        zip.start_file(*name, opts).unwrap();
        std::io::Write::write_all(&mut zip, content).unwrap();
    }
    zip.finish().unwrap();
}

/// A data directory that is `m`'s (a link to it): the same admin token and encryption key.
pub(crate) fn shared_data(m: &Manage) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::remove_dir(dir.path()).unwrap();
    std::os::unix::fs::symlink(m.data.path(), dir.path()).unwrap();
    dir
}

/// A zip of the directory `dir` (its files at the root of the archive).
pub(crate) fn zip_dir(dir: &std::path::Path, to: &std::path::Path) {
    fn add(zip: &mut zip::ZipWriter<std::fs::File>, root: &std::path::Path, dir: &std::path::Path) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                add(zip, root, &path);
            } else {
                zip.start_file(name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(zip, &std::fs::read(&path).unwrap()).unwrap();
            }
        }
    }
    let mut zip = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    add(&mut zip, dir, dir);
    zip.finish().unwrap();
}

/// The port a worker serves `app` on, from its log line `serving APP version N on URL`.
fn serving(w: &WorkerProc, app: &str, version: i64) -> u16 {
    eventually(Duration::from_secs(30), || {
        let log = w.log();
        let prefix = format!("serving {app} version {version} on http://127.0.0.1:");
        log.lines()
            .find_map(|l| l.strip_prefix(&prefix).and_then(|p| p.trim().parse().ok()))
    })
}

#[test]
fn a_worker_runs_the_deployed_version_of_its_apps_with_their_settings() {
    let m = manage_with(&["--domain", "apps.test"]);
    let token = m.join_token();
    let w = spawn_worker(&m, &token, "w1", &[]);
    m.apps(&["create", "greeter"]).unwrap();
    m.apps(&["set", "greeter", "GREETING", "Howdy"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("app.zip");
    zip_dir(&crate::support::sample("python-handler"), &zip);
    m.apps(&["deploy", "greeter", zip.to_str().unwrap()])
        .unwrap();
    let port = serving(&w, "greeter", 1);
    let hello = eventually(Duration::from_secs(30), || {
        request(port, "GET", "/api/hello?name=Ann", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert_eq!(hello.text(), "Howdy, Ann!", "{}", w.log());
    // The worker reports where the replica serves, and that it is ready.
    let placement = eventually(Duration::from_secs(10), || {
        m.placements().into_iter().find(|p| p["ready"] == true)
    });
    assert_eq!(placement["url"], format!("http://127.0.0.1:{port}"));
    assert_eq!(
        (placement["app"].as_str(), placement["version"].as_i64()),
        (Some("greeter"), Some(1))
    );
    // The front door routes the path form and the host form to the replica; keys are the
    // host's business.
    let front = eventually(Duration::from_secs(10), || {
        request(m.front, "GET", "/apps/Greeter/api/hello?name=Cy", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert_eq!(front.text(), "Howdy, Cy!");
    let by_host = request(
        m.front,
        "GET",
        "/api/hello?name=Di",
        &[("Host", "greeter.apps.test:80")],
        b"",
    )
    .unwrap();
    assert_eq!(
        (by_host.status, by_host.text().as_str()),
        (200, "Howdy, Di!")
    );
    let keyed = request(
        m.front,
        "GET",
        "/apps/greeter/api/products/books/1",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(keyed.status, 401, "the host asks for a key");
    // The app's keys are the management role's: the host reads them from there.
    let keys = m.json(&["keys", "greeter"]);
    let host_key = keys["functionKeys"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let own_key = keys["functions"]["products"][0]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("the host made the function's default key: {keys}"))
        .to_string();
    let with = |key: &str| {
        request(
            m.front,
            "GET",
            "/apps/greeter/api/products/books/1",
            &[("x-functions-key", key)],
            b"",
        )
        .unwrap()
        .status
    };
    assert_eq!(with(&host_key), 200);
    assert_eq!(with(&own_key), 200);
    // Renewed through the management API: the old value stops working, the new one works.
    let renewed = m.json(&["key", "greeter", "host", "default"]);
    let new_key = renewed["value"].as_str().unwrap().to_string();
    assert_ne!(new_key, host_key);
    eventually(Duration::from_secs(10), || {
        (with(&new_key) == 200).then_some(())
    });
    eventually(Duration::from_secs(10), || {
        (with(&host_key) == 401).then_some(())
    });
    let master = keys["master"].as_str().unwrap();
    let status = request(
        m.front,
        "GET",
        "/apps/greeter/admin/host/status",
        &[("x-functions-key", master)],
        b"",
    )
    .unwrap();
    assert_eq!(status.status, 200, "{}", status.text());
    // The worker's hosts keep no database: keys, leases and queues are the management role's.
    let hosts = w.data.path().join("hosts");
    let databases: Vec<_> = walk(&hosts)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .collect();
    assert!(databases.is_empty(), "{databases:?}");
    let unknown = request(m.front, "GET", "/apps/nobody/api/hello", &[], b"").unwrap();
    assert_eq!(unknown.status, 404);
    let unaddressed = request(m.front, "GET", "/api/hello", &[], b"").unwrap();
    assert_eq!(unaddressed.status, 404);
    m.apps(&["create", "idle"]).unwrap();
    let idle = eventually(Duration::from_secs(5), || {
        request(m.front, "GET", "/apps/idle/api/hello", &[], b"")
            .ok()
            .filter(|r| r.status == 503)
    });
    assert_eq!(idle.header("retry-after"), Some("2"));
    // A new version replaces the host; an app that goes away stops it.
    m.apps(&["set", "greeter", "GREETING", "Hi"]).unwrap();
    let zip2 = dir.path().join("app2.zip");
    zip_dir(&crate::support::sample("python-handler"), &zip2);
    {
        // A different package: the same files plus one.
        let mut z = zip::ZipWriter::new_append(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&zip2)
                .unwrap(),
        )
        .unwrap();
        z.start_file("VERSION", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, b"2").unwrap();
        z.finish().unwrap();
    }
    m.apps(&["deploy", "greeter", zip2.to_str().unwrap()])
        .unwrap();
    let port2 = serving(&w, "greeter", 2);
    let hello = eventually(Duration::from_secs(30), || {
        request(port2, "GET", "/api/hello?name=Bo", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert_eq!(hello.text(), "Hi, Bo!");
    eventually(Duration::from_secs(15), || {
        w.log().contains("stopped greeter version 1").then_some(())
    });
    // A job through the app's queues, then the app goes: its queues go with it.
    let queued = request(
        m.front,
        "POST",
        "/apps/greeter/api/enqueue",
        &[],
        b"{\"job\": 1}",
    )
    .unwrap();
    assert_eq!(queued.status, 202, "{}", queued.text());
    let queue_exists = |name: &str| {
        let r = request(
            m.port,
            "GET",
            &format!("/queues/greeter/{name}?comp=metadata"),
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("x-ms-version", "2021-12-02"),
            ],
            b"",
        )
        .unwrap();
        assert!(
            r.status == 200 || r.status == 404,
            "{} {}",
            r.status,
            r.text()
        );
        r.status == 200
    };
    eventually(Duration::from_secs(10), || {
        queue_exists("results").then_some(())
    });
    m.apps(&["delete", "greeter"]).unwrap();
    eventually(Duration::from_secs(20), || {
        w.log().contains("stopped greeter version 2").then_some(())
    });
    assert!(
        request(port2, "GET", "/api/hello", &[], b"").is_err(),
        "the host is gone"
    );
    // An app of the same name starts afresh.
    m.apps(&["create", "greeter"]).unwrap();
    m.apps(&["deploy", "greeter", zip.to_str().unwrap()])
        .unwrap();
    eventually(Duration::from_secs(30), || {
        request(m.front, "GET", "/apps/greeter/api/hello?name=New", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(!queue_exists("jobs") && !queue_exists("results"));
}

#[test]
fn a_host_that_exits_is_started_again_with_back_off() {
    let m = manage();
    let token = m.join_token();
    let w = spawn_worker(&m, &token, "w1", &[]);
    // An app for a language worker this machine does not have: its host stops at once,
    // every time.
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("host.json"), br#"{"version": "2.0"}"#).unwrap();
    m.apps(&["create", "broken"]).unwrap();
    m.apps(&["set", "broken", "FUNCTIONS_WORKER_RUNTIME", "cobol"])
        .unwrap();
    m.apps(&["deploy", "broken", app.to_str().unwrap()])
        .unwrap();
    let log = eventually(Duration::from_secs(30), || {
        let log = w.log();
        (log.matches("the app's host exited").count() >= 2).then_some(log)
    });
    assert!(log.contains("starting it again in 1 s"), "{log}");
    assert!(log.contains("starting it again in 2 s"), "{log}");
    assert!(
        log.contains("FUNCTIONS_WORKER_RUNTIME"),
        "the host says why: {log}"
    );
}

#[test]
fn timers_of_an_app_fire_once_among_its_replicas() {
    let m = manage();
    let token = m.join_token();
    let a = spawn_worker(&m, &token, "w1", &[]);
    let b = spawn_worker(&m, &token, "w2", &[]);
    // The timer app, with its handler inside the package.
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("tick")).unwrap();
    let src = crate::support::test_app("timer-cluster");
    std::fs::copy(
        src.join("tick/function.json"),
        app.join("tick/function.json"),
    )
    .unwrap();
    std::fs::copy(
        crate::support::test_app("common").join("handler.py"),
        app.join("handler.py"),
    )
    .unwrap();
    let host = std::fs::read_to_string(src.join("host.json"))
        .unwrap()
        .replace("../common/handler.py", "handler.py");
    std::fs::write(app.join("host.json"), host).unwrap();
    m.apps(&["create", "ticker", "--min", "2", "--max", "2"])
        .unwrap();
    m.apps(&["deploy", "ticker", app.to_str().unwrap()])
        .unwrap();
    eventually(Duration::from_secs(30), || {
        let ready = m.placements().iter().filter(|p| p["ready"] == true).count();
        (ready == 2).then_some(())
    });
    let ticks = |w: &WorkerProc| w.log().matches("timer tick IsPastDue=False").count();
    let (a0, b0) = (ticks(&a), ticks(&b));
    let started = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    let (ta, tb) = (ticks(&a) - a0, ticks(&b) - b0);
    let expected = (started.elapsed().as_secs_f64() / 2.0).floor() as usize;
    assert!(
        (expected.saturating_sub(1)..=expected + 1).contains(&(ta + tb)),
        "{ta} + {tb} firings, {expected} expected\n{}\n{}",
        a.log(),
        b.log()
    );
    assert!(ta == 0 || tb == 0, "both replicas fired: {ta} and {tb}");
}

/// Every file under `dir`.
pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_worker_stopped_with_sigterm_hands_its_apps_over_without_failing_a_request() {
    let m = manage();
    let token = m.join_token();
    let w1 = spawn_worker(&m, &token, "w1", &[]);
    m.deploy_sample("greeter");
    let w2 = spawn_worker(&m, &token, "w2", &[]);
    eventually(Duration::from_secs(10), || {
        let list: Value =
            serde_json::from_str(&m.cli("workers", &["list", "--json"]).unwrap()).unwrap();
        (list.as_array().unwrap().len() == 2).then_some(())
    });
    // Requests keep going while w1 leaves.
    let load = Load::start(m.front, "/apps/greeter/api/hello?name=Ed", 1);
    std::thread::sleep(Duration::from_millis(300));
    crate::support::signal(w1._child.0.id(), "TERM");
    // It leaves once its app is ready elsewhere, and stops the host.
    let log = eventually(Duration::from_secs(30), || {
        let log = w1.log();
        (log.contains("left: nothing is placed here any more") && log.contains("stopped greeter"))
            .then_some(log)
    });
    assert!(log.contains("leaving: the apps move"), "{log}");
    let (ok, failed) = load.finish();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    assert!(ok > 0);
    assert_eq!(m.placed(), vec!["w2".to_string()]);
    let list: Value =
        serde_json::from_str(&m.cli("workers", &["list", "--json"]).unwrap()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "w1 is forgotten: {list}");
    drop(w2);
}

#[test]
fn replicas_move_to_a_worker_that_joins_without_failing_a_request() {
    let m = manage();
    let token = m.join_token();
    let _w1 = spawn_worker(&m, &token, "w1", &[]);
    for app in ["one", "two"] {
        m.deploy_sample(app);
    }
    let loads: Vec<Load> = ["one", "two"]
        .iter()
        .map(|app| Load::start(m.front, &format!("/apps/{app}/api/hello"), 1))
        .collect();
    // A second worker joins: one of the two apps moves over, the other stays.
    let _w2 = spawn_worker(&m, &token, "w2", &[]);
    let placed = eventually(Duration::from_secs(30), || {
        let p = m.placements();
        let ready_on = |w: &str| {
            p.iter()
                .filter(|x| x["workerName"] == w && x["ready"] == true)
                .count()
        };
        (p.len() == 2 && ready_on("w1") == 1 && ready_on("w2") == 1).then_some(p)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let failed: Vec<String> = loads.into_iter().flat_map(|l| l.finish().1).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {failed:?}\n{placed:?}",
        failed.len()
    );
}

#[test]
fn assignments_reach_a_worker_as_they_change_not_at_its_next_heartbeat() {
    let m = manage();
    let token = m.join_token();
    let w = spawn_worker(&m, &token, "w1", &["--heartbeat-seconds", "30"]);
    eventually(Duration::from_secs(10), || {
        w.log().contains("joined").then_some(())
    });
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("app.zip");
    zip_dir(&crate::support::sample("python-handler"), &zip);
    m.apps(&["create", "greeter"]).unwrap();
    let deployed = std::time::Instant::now();
    m.apps(&["deploy", "greeter", zip.to_str().unwrap()])
        .unwrap();
    serving(&w, "greeter", 1);
    let took = deployed.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the host started {took:?} after the deployment (heartbeats every 30 s)"
    );
    eprintln!("deployed -> host started on the worker in {took:?}");
}

#[test]
fn a_new_version_takes_over_without_failing_a_request() {
    let m = manage();
    let token = m.join_token();
    let w = spawn_worker(&m, &token, "w1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.zip");
    zip_dir(&crate::support::sample("python-handler"), &v1);
    m.apps(&["create", "greeter"]).unwrap();
    m.apps(&["set", "greeter", "GREETING", "One"]).unwrap();
    m.apps(&["deploy", "greeter", v1.to_str().unwrap()])
        .unwrap();
    m.wait_serving("greeter");
    let load = Load::start(m.front, "/apps/greeter/api/hello?name=x", 1);
    // Version 2: the same app with a different greeting in its settings and one more file.
    m.apps(&["set", "greeter", "GREETING", "Two"]).unwrap();
    let v2 = dir.path().join("v2");
    std::fs::create_dir_all(&v2).unwrap();
    for e in std::fs::read_dir(crate::support::sample("python-handler"))
        .unwrap()
        .flatten()
    {
        let to = v2.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(e.path()).unwrap().flatten() {
                std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    std::fs::write(v2.join("VERSION"), b"2").unwrap();
    m.apps(&["deploy", "greeter", v2.to_str().unwrap()])
        .unwrap();
    m.wait_hello("greeter", "Two, x!");
    eventually(Duration::from_secs(15), || {
        w.log().contains("stopped greeter version 1").then_some(())
    });
    let (ok, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
}

#[test]
fn a_changed_setting_reaches_the_running_app_without_failing_a_request() {
    let m = manage();
    let token = m.join_token();
    let _w = spawn_worker(&m, &token, "w1", &[]);
    m.apps(&["create", "greeter"]).unwrap();
    m.apps(&["set", "greeter", "GREETING", "Hello"]).unwrap();
    let sample = crate::support::sample("python-handler");
    m.apps(&["deploy", "greeter", sample.to_str().unwrap()])
        .unwrap();
    m.wait_hello("greeter", "Hello, x!");
    let load = Load::start(m.front, "/apps/greeter/api/hello?name=x", 1);
    m.apps(&["set", "greeter", "GREETING", "Hola"]).unwrap();
    m.wait_hello("greeter", "Hola, x!");
    let (ok, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
}
