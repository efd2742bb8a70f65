//! Protocol conformance: the real `stratus` binary against `stratus-test-worker`, a worker that
//! follows the reference's message sequence with the capabilities of today's Node and Python
//! workers (worker indexing, load collections, nullable maps, HTTP streaming via `HttpUri`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::{HOST_KEY, Options, Stratus, test_app};

/// The Node worker's capabilities (azure-functions-nodejs-worker with the v4 library).
const NODE_CAPABILITIES: &str = "RawHttpBodyBytes,RpcHttpTriggerMetadataRemoved,RpcHttpBodyOnly,\
IgnoreEmptyValuedRpcHttpHeaders,UseNullableValueDictionaryForHttp,WorkerStatus,TypedDataCollection,\
HandlesWorkerTerminateMessage,HandlesInvocationCancelMessage,SupportsLoadResponseCollection";

fn test_worker() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_stratus"))
        .parent()
        .unwrap()
        .join("stratus-test-worker");
    assert!(
        exe.is_file(),
        "{} is missing: build it with `cargo build -p stratus-test-worker` (`cargo test --workspace` does)",
        exe.display()
    );
    exe
}

/// A workers directory holding `test/worker.config.json`.
fn workers_dir(indexing: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("test")).unwrap();
    let config = serde_json::json!({
        "description": {
            "language": "test",
            "extensions": [".js"],
            "defaultExecutablePath": test_worker(),
            "workerIndexing": if indexing { "true" } else { "false" },
        }
    });
    std::fs::write(
        dir.path().join("test/worker.config.json"),
        config.to_string(),
    )
    .unwrap();
    dir
}

fn start(
    app: &str,
    indexing: bool,
    capabilities: &str,
    extra: &[(&str, &str)],
) -> (Stratus, tempfile::TempDir) {
    let workers = workers_dir(indexing);
    let mut opts = Options::default()
        .arg("--workers-dir")
        .arg(workers.path().to_str().unwrap())
        .env("FUNCTIONS_WORKER_RUNTIME", "test")
        .env("TEST_WORKER_CAPABILITIES", capabilities);
    for (k, v) in extra {
        opts = opts.env(k, v);
    }
    (Stratus::start(&test_app(app), opts), workers)
}

fn echo(s: &Stratus, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let r = s.request(method, path, headers, body);
    assert_eq!(r.status, 200, "{method} {path}: {}\n{}", r.text(), s.logs());
    r.json()
}

#[test]
fn worker_indexed_apps_serve_the_functions_the_worker_reports() {
    let (s, _w) = start("worker-indexed", true, NODE_CAPABILITIES, &[]);
    // The routes come from the worker's raw bindings.
    s.wait_log("hello: [GET,POST] http://localhost:");
    s.wait_log("/api/hello/{name}");
    s.wait_log("The 'broken' function is in error");

    let e = echo(&s, "GET", "/api/hello/Ann?x=1&e=", &[("X-Empty", "")], b"");
    assert_eq!(e["function"], "hello");
    assert_eq!(e["inputs"], serde_json::json!(["request"]));
    assert_eq!(e["params"]["name"], "Ann");
    assert_eq!(e["query"]["x"], "1");
    assert_eq!(e["query"]["e"], "", "nullable maps keep empty values");
    assert_eq!(e["nullableMaps"], true);
    assert_eq!(e["body"]["kind"], "none");
    let keys: Vec<&str> = e["triggerMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for k in ["Headers", "Query", "name", "x"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert!(
        !keys.contains(&"request") && !keys.contains(&"$request"),
        "{keys:?}"
    );
    assert_eq!(e["identities"][0]["authenticationType"], Value::Null);

    let e = echo(
        &s,
        "POST",
        "/api/hello/Bo",
        &[("Content-Type", "application/json")],
        b"{\"a\":1}",
    );
    assert_eq!(e["body"]["kind"], "bytes", "RawHttpBodyBytes: bytes");
    assert_eq!(e["rawBody"]["kind"], "none", "RpcHttpBodyOnly: no rawBody");

    assert_eq!(s.get("/api/secret").status, 401);
    let e = echo(
        &s,
        "GET",
        "/api/secret",
        &[("x-functions-key", HOST_KEY)],
        b"",
    );
    assert_eq!(e["identities"][0]["authenticationType"], "WebJobsAuthLevel");
    let claims = e["identities"][0]["claims"].to_string();
    assert!(
        claims.contains("keyid") && claims.contains("default"),
        "{claims}"
    );

    let e = echo(&s, "GET", "/api/named", &[], b"");
    assert_eq!(
        e["function"], "named",
        "a named http output is read from output_data"
    );

    let r = s.get("/api/fails");
    assert_eq!(r.status, 500);
    s.wait_log("boom from the test worker");

    let r = s.get("/api/logs");
    assert_eq!((r.status, r.text().as_str()), (200, "logged"));
    s.wait_log("hello from the test worker");
    s.wait_log("careful");

    let r = s.get("/api/cookie");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("set-cookie"),
        Some("session=a%20b; max-age=60; path=/api; samesite=lax; httponly")
    );
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    let r = s.get("/api/teapot");
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-test"), Some("1"));
    assert_eq!(r.body, b"\x00\x01");
    assert_eq!(
        r.header("content-type"),
        None,
        "bytes get no default content type"
    );
}

#[test]
fn legacy_capabilities_get_parsed_bodies_and_the_request_in_metadata() {
    let (s, _w) = start("worker-hosted", false, "", &[]);
    let e = echo(
        &s,
        "POST",
        "/api/echo/7?q=a&q=b",
        &[("Content-Type", "application/json")],
        b"{\"n\":5}",
    );
    assert_eq!(e["nullableMaps"], false);
    assert_eq!(e["body"]["kind"], "json");
    assert_eq!(e["rawBody"]["kind"], "string");
    assert_eq!(e["query"]["q"], "a,b");
    assert_eq!(e["params"]["id"], "7");
    let keys = e["triggerMetadata"].to_string();
    assert!(
        keys.contains("\"req\"") && keys.contains("\"$request\""),
        "{keys}"
    );
    assert!(
        keys.contains("\"n\""),
        "JSON body properties are binding data: {keys}"
    );
}

#[test]
fn timer_invocations_reach_the_worker() {
    let (s, _w) = start("worker-hosted", false, NODE_CAPABILITIES, &[]);
    s.wait_log("hello from the test worker function=timer");
    s.wait_log("Executed 'Functions.timer' (Succeeded");
}

#[test]
fn worker_indexing_falls_back_to_function_json() {
    let (s, _w) = start("worker-hosted", true, NODE_CAPABILITIES, &[]);
    let e = echo(&s, "GET", "/api/echo", &[], b"");
    assert_eq!(e["function"], "echo");
    assert!(
        e["params"].as_object().unwrap().is_empty(),
        "absent optional values are left out"
    );
}

#[test]
fn a_function_the_worker_cannot_load_fails_alone() {
    let (s, _w) = start("worker-hosted", false, NODE_CAPABILITIES, &[]);
    assert_eq!(s.get("/api/unloadable").status, 500);
    s.wait_log("Worker failed to load function: 'unloadable'");
    assert_eq!(s.get("/api/echo").status, 200);
}

#[test]
fn workers_that_serve_http_get_the_request_streamed() {
    let (s, _w) = start(
        "worker-hosted",
        false,
        NODE_CAPABILITIES,
        &[("TEST_WORKER_HTTP_URI", "true")],
    );
    let r = s.request(
        "POST",
        "/api/stream/x?y=1",
        &[("Content-Type", "text/plain")],
        b"abc",
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.logs());
    let text = r.text();
    assert!(text.starts_with("streamed "), "{text}");
    assert!(
        text.ends_with(&format!(
            "host=localhost:{} proto=http POST /api/stream/x?y=1 abc",
            s.port
        )),
        "{text}"
    );
    // The invocation id the worker got over HTTP is the one of the invocation.
    let id = text.split(' ').nth(1).unwrap();
    s.wait_log(&format!("Executed 'Functions.stream' (Succeeded, Id={id}"));
    // A line the function logs after its response went out is still the function's.
    s.wait_log(&format!(
        "streamed and logged function=stream invocation_id={id}"
    ));
}

#[test]
fn an_app_the_worker_cannot_index_runs_with_no_functions() {
    let started = std::time::Instant::now();
    let (s, _w) = start("worker-bad-index", true, NODE_CAPABILITIES, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "start-up waited for indexing"
    );
    s.wait_log("Worker failed to index functions");
    assert_eq!(s.get("/api/anything").status, 404);
}

#[test]
fn timeouts_cancel_the_invocation_and_replace_the_worker() {
    let (s, _w) = start("worker-hosted", false, NODE_CAPABILITIES, &[]);
    let started = std::time::Instant::now();
    assert_eq!(s.get("/api/slow").status, 500);
    assert!(started.elapsed() < Duration::from_secs(10));
    s.wait_log("Timeout value of 00:00:02 exceeded by function 'Functions.slow'");
    s.wait_log("A function timeout has occurred");
    let r = crate::support::eventually(Duration::from_secs(20), || {
        let r = s.get("/api/echo");
        (r.status == 200).then_some(r)
    });
    assert_eq!(r.json()["function"], "echo");
}

#[test]
fn several_worker_processes_share_the_invocations() {
    let (s, _w) = start(
        "worker-hosted",
        false,
        NODE_CAPABILITIES,
        &[("FUNCTIONS_WORKER_PROCESS_COUNT", "2")],
    );
    s.wait_log("test worker (2 processes)");
    // Both processes must be up before invocations can alternate between them.
    crate::support::eventually(Duration::from_secs(20), || {
        s.logs()
            .matches("test worker connected")
            .count()
            .eq(&2)
            .then_some(())
    });
    let mut pids = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let e = echo(&s, "GET", "/api/echo", &[], b"");
        pids.insert(e["pid"].as_u64().unwrap());
        ids.insert(e["functionId"].as_str().unwrap().to_string());
    }
    assert_eq!(pids.len(), 2, "invocations go to both processes in turn");
    assert_eq!(
        ids.len(),
        1,
        "both processes load the function under the host's one id"
    );
}

#[test]
fn a_timeout_replaces_only_the_process_that_ran_the_invocation() {
    let (s, _w) = start(
        "worker-hosted",
        false,
        NODE_CAPABILITIES,
        &[("FUNCTIONS_WORKER_PROCESS_COUNT", "2")],
    );
    crate::support::eventually(Duration::from_secs(20), || {
        s.logs()
            .matches("test worker connected")
            .count()
            .eq(&2)
            .then_some(())
    });
    let pids = |n: usize| {
        (0..n)
            .map(|_| {
                echo(&s, "GET", "/api/echo", &[], b"")["pid"]
                    .as_u64()
                    .unwrap()
            })
            .collect::<std::collections::BTreeSet<u64>>()
    };
    let before = pids(4);
    assert_eq!(before.len(), 2);
    assert_eq!(s.get("/api/slow").status, 500);
    s.wait_log("A function timeout has occurred");
    let after = crate::support::eventually(Duration::from_secs(20), || {
        let p = pids(4);
        (p.len() == 2).then_some(p)
    });
    assert_eq!(
        before.intersection(&after).count(),
        1,
        "one process kept serving: {before:?} then {after:?}"
    );
}
