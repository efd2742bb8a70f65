//! The built-in queue service as the official Azure Storage queue SDK for Python sees it:
//! queues, metadata, send, peek, receive, update, delete, clear, errors and Shared Key.

use crate::support::{Options, Stratus, free_port, repo, sample};

#[test]
fn the_python_queue_sdk_works_against_the_queue_service() {
    #[allow(clippy::disallowed_methods, reason = "tests prepare their tools")]
    let env = std::process::Command::new(repo().join("tests/workers/storage-sdk-env"))
        .output()
        .expect("cannot run tests/workers/storage-sdk-env");
    assert!(
        env.status.success(),
        "{}",
        String::from_utf8_lossy(&env.stderr)
    );
    let python = String::from_utf8(env.stdout).unwrap().trim().to_string();

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
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.logs()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}
