//! The timer and queue functions of the sample apps, end to end: an HTTP function writes to a
//! queue through an output binding, the nightly timer fans jobs out to the queue, the queue
//! worker writes results, a bad job ends in the poison queue; seen with `stratus queue`.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Options, Stratus, eventually, free_port, run_stratus, stratus_command};

/// Options that open the queue service on a free port; the port goes with them.
pub fn with_queue_service(opts: Options) -> (Options, u16) {
    let port = free_port();
    (
        opts.env("STRATUS_QUEUE_LISTEN", &format!("127.0.0.1:{port}")),
        port,
    )
}

/// `stratus queue ARGS` against the queue service on `port`.
pub fn queue_cli(port: u16, args: &[&str]) -> Result<String, String> {
    run_stratus(
        stratus_command()
            .arg("queue")
            .args(args)
            .env("STRATUS_QUEUE_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("STRATUS_QUEUE_CONNECTION"),
    )
}

fn peek(port: u16, queue: &str) -> Vec<Value> {
    match queue_cli(port, &["peek", queue, "--json"]) {
        Ok(out) => serde_json::from_str::<Vec<Value>>(&out).unwrap(),
        Err(e) if e.contains("QueueNotFound") => Vec::new(),
        Err(e) => panic!("stratus queue peek {queue}: {e}"),
    }
}

/// The jobs in `results`, as the worker wrote them.
fn results(port: u16) -> Vec<Value> {
    peek(port, "results")
        .iter()
        .map(|m| serde_json::from_str(m["text"].as_str().unwrap()).unwrap())
        .collect()
}

/// Runs the queue pipeline of a sample app started with [`with_queue_service`] on `port`;
/// `by` is what the app's worker writes as its name.
pub fn check_pipeline(s: &Stratus, port: u16, by: &str) {
    let limit = Duration::from_secs(30);
    let r = s.request(
        "POST",
        "/api/enqueue",
        &[("Content-Type", "application/json")],
        br#"{"job": 42}"#,
    );
    assert_eq!(r.status, 202, "{}", s.logs());
    assert_eq!(r.text(), "queued");
    s.wait_log_within("finished job 42", limit);
    let done = eventually(limit, || {
        let found = results(port);
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(done[0]["job"], 42, "{done:?}");
    assert_eq!(done[0]["done"], true);
    assert_eq!(done[0]["by"], by);

    // The nightly batch, run now through the admin API, fans three jobs out.
    let r = s.request(
        "POST",
        "/admin/functions/nightly",
        &[
            ("x-functions-key", &s.master_key()),
            ("Content-Type", "application/json"),
        ],
        b"{}",
    );
    assert_eq!(r.status, 202, "{}", s.logs());
    s.wait_log_within("fanned out 3 jobs", limit);
    let all = eventually(limit, || {
        let found = results(port);
        (found.len() == 4).then_some(found)
    });
    let mut jobs: Vec<i64> = all.iter().map(|j| j["job"].as_i64().unwrap()).collect();
    jobs.sort();
    assert_eq!(jobs, vec![1, 2, 3, 42], "{all:?}");

    // A job the worker refuses is tried maxDequeueCount (2) times, then poisoned; nothing
    // of it reaches the results.
    queue_cli(port, &["put", "jobs", r#"{"job": 9, "poison": true}"#]).unwrap();
    let poisoned = eventually(limit, || {
        let found = peek(port, "jobs-poison");
        (!found.is_empty()).then_some(found)
    });
    let text: Value = serde_json::from_str(poisoned[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["job"], 9);
    s.wait_log("Message has reached MaxDequeueCount of 2. Moving message to queue 'jobs-poison'.");
    assert_eq!(results(port).len(), 4);
    assert!(peek(port, "jobs").is_empty());

    // The command line lists the queues and clears one.
    let listed = queue_cli(port, &["list"]).unwrap();
    for q in ["jobs", "jobs-poison", "results"] {
        assert!(listed.lines().any(|l| l == q), "{listed}");
    }
    queue_cli(port, &["clear", "results"]).unwrap();
    assert!(results(port).is_empty());
}

#[test]
fn python_handler_queue_pipeline() {
    let (opts, port) = with_queue_service(Options::default());
    let s = Stratus::start(&crate::support::sample("python-handler"), opts);
    check_pipeline(&s, port, "python-handler");
}

#[test]
fn node_handler_queue_pipeline() {
    let (opts, port) = with_queue_service(Options::default());
    let s = Stratus::start(&crate::support::sample("node-handler"), opts);
    check_pipeline(&s, port, "node-handler");
}

#[test]
fn the_queue_command_explains_a_service_that_is_not_there() {
    let port = free_port();
    let e = queue_cli(port, &["list"]).unwrap_err();
    assert!(e.contains("cannot reach the queue service"), "{e}");
    let e = queue_cli(port, &["peek", "Bad_Name"]).unwrap_err();
    assert!(e.contains("cannot reach"), "{e}");
}

#[test]
fn retry_policies_rerun_an_invocation_with_its_retry_context() {
    let (opts, port) = with_queue_service(Options::default());
    let s = Stratus::start(&crate::support::test_app("retries"), opts);
    let limit = Duration::from_secs(20);
    // Fails twice, succeeds on the second retry (function.json's fixedDelay of 200 ms wins
    // over host.json's one-minute exponential back-off), without giving the message back.
    queue_cli(port, &["put", "tries", "retry:2"]).unwrap();
    s.wait_log_within("queue work got retry:2 dequeue=", limit);
    let logs = s.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("queue work got retry:2"))
        .unwrap();
    assert!(line.contains("retry=2/2"), "{line}");
    assert!(
        line.contains("previous=the handler answered 500"),
        "the previous attempt's error is passed on: {line}"
    );
    assert!(
        line.contains("dequeue=\"1\""),
        "retries stay in memory: {line}"
    );
    // Never succeeds: three attempts per dequeue, then the queue's own retries, then poison.
    queue_cli(port, &["put", "tries", "retry:9"]).unwrap();
    let poisoned = eventually(limit, || {
        let found = peek(port, "tries-poison");
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(poisoned[0]["text"], "retry:9");
    // (Logs reach the console in batches: wait for the last lines.)
    s.wait_log("Moving message to queue 'tries-poison'.");
    let logs = eventually(limit, || {
        let logs = s.logs();
        (logs
            .matches("Function execution failed after '2' retries.")
            .count()
            == 2)
            .then_some(logs)
    });
    assert_eq!(
        logs.matches("Executing 'Functions.work'").count(),
        3 + 3 + 3,
        "{logs}"
    );
}
