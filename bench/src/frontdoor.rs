//! The front door: HTTP through `stratus manage`'s front door to a worker's host, against
//! calling that host directly and against a minimal connection-affine proxy hop to it, in the
//! same run; then the time from losing the worker to its replica serving again elsewhere.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{bin_dir, free_port, local_targets, proxy_cmd, repo, run_profile, spawn, wait_200};

pub(crate) const ADMIN: &str = "bench-admin-token";

pub(crate) fn stratus(data: &Path) -> Command {
    let mut c = Command::new(bin_dir().join("stratus"));
    c.env("STRATUS_DATA_DIR", data)
        .env("STRATUS_ADMIN_TOKEN", ADMIN)
        .env("STRATUS_QUEUE_LISTEN", "off")
        .env_remove("RUST_LOG");
    c
}

/// Runs a management CLI command; its standard output.
pub(crate) fn cli(data: &Path, api: u16, args: &[&str]) -> String {
    let out = stratus(data)
        .args(args)
        .arg("--url")
        .arg(format!("http://127.0.0.1:{api}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stratus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The port of `app`'s ready replica on the worker named `worker`.
fn ready_port(data: &Path, api: u16, app: &str, worker: &str, limit: Duration) -> Option<u16> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let out = stratus(data)
            .args(["workers", "list", "--json", "--url"])
            .arg(format!("http://127.0.0.1:{api}"))
            .output()
            .unwrap();
        let list: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        let found = list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["name"] == worker)
            .flat_map(|w| w["apps"].as_array().cloned().unwrap_or_default())
            .find(|a| a["app"] == app && a["ready"] == true)
            .and_then(|a| a["url"].as_str()?.rsplit(':').next()?.parse().ok());
        if found.is_some() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Waits for the management API on `api` to answer; a new join token.
pub(crate) fn join_token(m: &Path, api: u16) -> String {
    let start = Instant::now();
    while Command::new(bin_dir().join("stratus"))
        .args(["apps", "list", "--url", &format!("http://127.0.0.1:{api}")])
        .env("STRATUS_ADMIN_TOKEN", ADMIN)
        .output()
        .map_or(true, |o| !o.status.success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "manage did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let token: serde_json::Value =
        serde_json::from_str(&cli(m, api, &["tokens", "create", "bench"])).unwrap();
    token["token"].as_str().unwrap().to_string()
}

pub(crate) fn worker_cmd(data: &Path, api: u16, token: &str, name: &str) -> Command {
    let mut c = stratus(data);
    c.args(["worker", "--join", &format!("http://127.0.0.1:{api}")])
        .args(["--name", name, "--heartbeat-seconds", "1"])
        // The front door and deployments are measured here (the sandbox in `sandbox`); the
        // hello handler is a build output no app user may run.
        .args(["--isolation", "off"])
        .env("STRATUS_JOIN_TOKEN", token);
    c
}

pub fn run(a: &crate::Args, data: &Path) -> serde_json::Value {
    let (api, front, proxy) = (free_port(), free_port(), free_port());
    let m = data.join("manage");
    let _manage = spawn("frontdoor-manage", {
        let mut c = stratus(&m);
        c.args([
            "manage",
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--scm-listen",
            "off",
        ])
        .args(["--front-listen", &format!("127.0.0.1:{front}")])
        .args(["--worker-timeout-seconds", "2"]);
        c
    });
    let token = join_token(&m, api);
    let w1 = spawn(
        "frontdoor-worker-1",
        worker_cmd(&data.join("w1"), api, &token, "w1"),
    );
    cli(&m, api, &["apps", "create", "bench"]);
    let hello = bin_dir().join("bench-hello");
    cli(
        &m,
        api,
        &[
            "apps",
            "set",
            "bench",
            "BENCH_HELLO_PATH",
            hello.to_str().unwrap(),
        ],
    );
    let app = repo().join("bench/apps/native");
    cli(&m, api, &["apps", "deploy", "bench", app.to_str().unwrap()]);
    let host = ready_port(&m, api, "bench", "w1", Duration::from_secs(60))
        .expect("the worker did not report its host ready");
    let _proxy = spawn("frontdoor-proxy", proxy_cmd(proxy, host));
    let targets = local_targets(
        &[
            ("worker's host direct", host, "/api/hello"),
            (
                "minimal affine hop to the worker's host",
                proxy,
                "/api/hello",
            ),
            (
                "front door to the worker's host",
                front,
                "/apps/bench/api/hello",
            ),
        ],
        Duration::from_secs(30),
    );
    let throughput = run_profile(&targets, "front door, throughput", 2, 32, a);
    let latency = run_profile(&targets, "front door, latency", 1, 4, a);
    // A second worker joins; the first is lost: time until the front door serves again.
    let _w2 = spawn(
        "frontdoor-worker-2",
        worker_cmd(&data.join("w2"), api, &token, "w2"),
    );
    std::thread::sleep(Duration::from_secs(2));
    let lost = Instant::now();
    // Killed without a word, as a machine that goes away (its hosts die with it).
    let mut w1 = w1;
    let _ = w1.0.kill();
    let _ = w1.0.wait();
    ready_port(&m, api, "bench", "w2", Duration::from_secs(60)).expect("not re-placed");
    wait_200(front, "/apps/bench/api/hello", Duration::from_secs(60)).expect("not serving");
    let recovery = lost.elapsed();
    println!(
        "\nworker lost -> its replica re-placed and serving through the front door: {:.2} s (worker timeout 2 s, heartbeats every 1 s)",
        recovery.as_secs_f64()
    );
    // Queues on a worker: the app's account at the management role, reached by the worker's
    // hosts (and here by the producers) over the Queue REST API with the join token.
    cli(&m, api, &["apps", "create", "bq"]);
    cli(
        &m,
        api,
        &[
            "apps",
            "set",
            "bq",
            "BENCH_HELLO_PATH",
            hello.to_str().unwrap(),
        ],
    );
    let queue_app = repo().join("bench/apps/queue");
    cli(
        &m,
        api,
        &["apps", "deploy", "bq", queue_app.to_str().unwrap()],
    );
    ready_port(&m, api, "bq", "w2", Duration::from_secs(60)).expect("the queue app did not start");
    let total = (2_000 * a.duration as usize).max(5_000);
    let endpoint = crate::queues::Endpoint {
        port: api,
        prefix: "/queues/bq".into(),
        bearer: Some(token.clone()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (enqueue, end_to_end) =
        runtime.block_on(crate::queues::measure(&endpoint, total, a.rounds));
    println!(
        "\n## queue trigger on a worker, queues at the management role (SQLite): {total} messages\n\n| enqueue only (baseline) | end to end | ratio |\n|---|---|---|\n| {enqueue:.0} msg/s | {end_to_end:.0} msg/s | {:.2}× |",
        end_to_end / enqueue
    );
    serde_json::json!({
        "throughput": throughput,
        "latency": latency,
        "managed_queue": {"messages": total, "enqueue_per_s": enqueue, "end_to_end_per_s": end_to_end},
        "recovery_seconds": recovery.as_secs_f64(),
    })
}
