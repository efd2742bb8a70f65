//! The built-in queue service as the official Azure Storage queue SDK for Python sees it:
//! queues, metadata, send, peek, receive, update, delete, clear, errors and Shared Key.

use crate::support::{Options, Stratus, free_port, repo, sample};

#[test]
fn the_python_queue_sdk_works_against_the_queue_service() {
    let python = sdk_python();
    let port = free_port();
    let s = Stratus::start(
        &sample("python-handler"),
        Options::default().env("STRATUS_QUEUE_LISTEN", &format!("127.0.0.1:{port}")),
    );
    s.wait_log(&format!("Queue service (Azure Storage Queue API, development storage account) on http://127.0.0.1:{port}/devstoreaccount1"));
    #[allow(clippy::disallowed_methods, reason = "the test runs the SDK client")]
    let out = std::process::Command::new(&python)
        .arg(repo().join("tests/sdk/queue_client.py"))
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(crate::support::succeeded(&out, || s.logs()).contains("all checks passed"));
}

/// The interpreter of the SDK's environment, made once per run (tests running at the same
/// time would otherwise make it at once, each removing the other's).
fn sdk_python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            #[allow(clippy::disallowed_methods, reason = "tests prepare their tools")]
            let env = std::process::Command::new(repo().join("tests/workers/storage-sdk-env"))
                .output()
                .expect("cannot run tests/workers/storage-sdk-env");
            assert!(
                env.status.success(),
                "{}",
                String::from_utf8_lossy(&env.stderr)
            );
            String::from_utf8(env.stdout).unwrap().trim().to_string()
        })
        .clone()
}

fn tool(python: &str, args: &[&str]) -> String {
    #[allow(clippy::disallowed_methods, reason = "the test runs the SDK client")]
    let out = std::process::Command::new(python)
        .arg(repo().join("tests/sdk/queue_tool.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn queue_triggers_process_messages_sent_with_the_sdk_and_poison_failures() {
    let python = sdk_python();
    let port = free_port();
    let p = port.to_string();
    let s = Stratus::start(
        &crate::support::test_app("queues"),
        Options::default().env("STRATUS_QUEUE_LISTEN", &format!("127.0.0.1:{port}")),
    );
    // base64, the extension's default encoding, as the SDK's own policy writes it.
    tool(&python, &["send", &p, "jobs", "hello queue", "base64"]);
    s.wait_log("queue work got hello queue dequeue=");
    s.wait_log("Executing 'Functions.work' (Reason='New queue message detected on 'jobs'.'");
    // A failing function: retried, then moved to the poison queue after maxDequeueCount (2).
    tool(&python, &["send", &p, "jobs", "fail", "base64"]);
    // Plain text where base64 is expected: explained, and poisoned the same way.
    tool(&python, &["send", &p, "jobs", "not base64!"]);
    s.wait_log("set extensions.queues.messageEncoding to \"none\"");
    let poisoned = crate::support::eventually(std::time::Duration::from_secs(20), || {
        let list: Vec<String> =
            serde_json::from_str(&tool(&python, &["peek", &p, "jobs-poison"])).unwrap();
        (list.len() == 2).then_some(list)
    });
    assert!(
        poisoned.contains(&"not base64!".to_string()),
        "{poisoned:?}"
    );
    s.wait_log("Message has reached MaxDequeueCount of 2. Moving message to queue 'jobs-poison'.");
    let left: Vec<String> = serde_json::from_str(&tool(&python, &["peek", &p, "jobs"])).unwrap();
    assert!(
        left.is_empty(),
        "processed and poisoned messages left the queue: {left:?}"
    );
}

#[test]
fn messages_being_processed_when_the_process_dies_are_processed_after_restart() {
    let python = sdk_python();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = port.to_string();
    let opts = || {
        Options::default()
            .env("STRATUS_QUEUE_LISTEN", &format!("127.0.0.1:{port}"))
            .env("STRATUS_DATA_DIR", data.path().to_str().unwrap())
            .env("STRATUS_QUEUE_MESSAGE_LEASE_SECONDS", "2")
    };
    let app = crate::support::test_app("queues");
    let mut first = Stratus::start(&app, opts());
    for i in 0..3 {
        tool(
            &python,
            &["send", &p, "jobs", &format!("sleep:{}", 8000 + i), "base64"],
        );
    }
    // All three are in flight (the function sleeps eight seconds); then the process dies.
    crate::support::eventually(std::time::Duration::from_secs(10), || {
        (first.logs().matches("Executing 'Functions.work'").count() >= 3).then_some(())
    });
    crate::support::signal(first.child.id(), "KILL");
    let _ = first.child.wait();
    assert!(
        !first.logs().contains("queue work got sleep:"),
        "nothing finished before the kill:\n{}",
        first.logs()
    );

    // A new process on the same store gets them back once their lease (2 s) runs out.
    let second = Stratus::start(&app, opts());
    for i in 0..3 {
        second.wait_log_within(
            &format!("queue work got sleep:{} dequeue=", 8000 + i),
            std::time::Duration::from_secs(30),
        );
    }
    let poisoned: Vec<String> =
        serde_json::from_str(&tool(&python, &["peek", &p, "jobs-poison"])).unwrap();
    assert!(
        poisoned.is_empty(),
        "a crash is not a failure: {poisoned:?}"
    );
}

#[test]
fn output_bindings_bind_expressions_from_routes_queries_and_payloads() {
    use crate::sample_queues::{queue_cli, with_queue_service};
    let (opts, port) = with_queue_service(Options::default());
    let s = Stratus::start(&crate::support::test_app("queues"), opts);
    let peek = |q: &str| -> Vec<String> {
        let out = queue_cli(port, &["peek", q]).unwrap_or_default();
        out.lines().map(str::to_string).collect()
    };
    // An HTTP function: "%OUT_PREFIX%-{target}-{region}" from a setting, a route value and a
    // query parameter; an array output is one message per element.
    let r = s.request("POST", "/api/fanout/Orders?region=eu", &[], b"hello");
    assert_eq!(
        (r.status, r.text()),
        (201, "sent".to_string()),
        "{}",
        s.logs()
    );
    assert_eq!(peek("out-orders-eu"), vec!["hello", "hello"]);
    // An expression naming nothing the request has fails the invocation, and writes nothing.
    let r = s.request("POST", "/api/fanout/orders", &[], b"x");
    assert_eq!(r.status, 500);
    s.wait_log("output binding 'out': queueName: No value for named parameter 'region'.");
    let r = s.request("POST", "/api/fanout/a_b?region=eu", &[], b"x");
    assert_eq!(r.status, 500);
    s.wait_log("\"out-a_b-eu\" is not a valid queue name");
    // A queue function: "{dest}-{DequeueCount}" from the message's JSON and its metadata.
    queue_cli(port, &["put", "jobs", r#"{"dest": "copies", "n": 1}"#]).unwrap();
    let copied = crate::support::eventually(std::time::Duration::from_secs(10), || {
        let found = peek("copies-1");
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(copied, vec![r#"{"dest": "copies", "n": 1}"#]);
}
