//! Apps on a real language worker: Microsoft's Python worker from PyPI, started by the real
//! `stratus` binary over the FunctionRpc protocol.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::sample_queues::{check_pipeline, with_queue_service};
use crate::samples::run_cases;
use crate::support::{Options, Stratus, eventually, repo, sample, stratus_command, test_app};

/// The interpreter of an environment holding `azure-functions-worker` (made once by
/// `tests/workers/python-env`).
pub(crate) fn python_worker() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        #[allow(clippy::disallowed_methods, reason = "tests prepare their tools")]
        let out = std::process::Command::new(repo().join("tests/workers/python-env"))
            .output()
            .expect("cannot run tests/workers/python-env");
        assert!(
            out.status.success(),
            "tests/workers/python-env failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn with_python() -> Options {
    Options::default().env(
        "languageWorkers__python__defaultExecutablePath",
        python_worker().to_str().unwrap(),
    )
}

#[test]
fn python_v1_sample_on_the_real_worker() {
    let (opts, queue_port) = with_queue_service(with_python());
    let s = Stratus::start(&sample("python-v1"), opts);
    let failures = run_cases(&s, "python-v1.json", "python-v1");
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        s.logs()
    );
    // The worker's logs of an invocation reach the function's log stream, with their levels.
    s.wait_log("logs: information from logs");
    s.wait_log("logs: a warning from logs");
    s.wait_log("python worker (1 process)");
    // Timer, queue trigger (the worker's QueueMessage) and queue outputs on the worker.
    check_pipeline(&s, queue_port, "python-v1");
}

#[test]
fn a_crashed_worker_fails_its_invocation_and_is_replaced() {
    let s = Stratus::start(&test_app("python-worker"), with_python());
    let first = s.get("/api/hello");
    assert_eq!(first.status, 200, "{}", s.logs());
    let crashed = s.get("/api/crash");
    assert_eq!(crashed.status, 500, "{}", s.logs());
    let again = eventually(Duration::from_secs(20), || {
        let r = s.get("/api/hello");
        (r.status == 200).then_some(r)
    });
    assert_ne!(again.text(), first.text(), "a new worker process serves");
    s.wait_log("the language worker exited");
}

#[test]
fn timer_functions_run_on_the_python_worker() {
    let s = Stratus::start(&test_app("python-worker"), with_python());
    // runOnStartup: the worker decodes the TimerInfo the host sends as JSON.
    s.wait_log("nightly ran, past_due=False");
    s.wait_log("Executing 'Functions.nightly' (Reason='Timer fired at ");
}

#[test]
fn a_timeout_fails_the_invocation_and_restarts_the_worker() {
    let s = Stratus::start(&test_app("python-worker"), with_python());
    let first = s.get("/api/hello");
    assert_eq!(first.status, 200, "{}", s.logs());
    let started = std::time::Instant::now();
    let slow = s.get("/api/slow");
    assert_eq!(slow.status, 500, "{}", s.logs());
    assert!(started.elapsed() < Duration::from_secs(10));
    s.wait_log("Timeout value of 00:00:02 exceeded by function 'Functions.slow'");
    let again = eventually(Duration::from_secs(20), || {
        let r = s.get("/api/hello");
        (r.status == 200 && r.text() != first.text()).then_some(r)
    });
    assert!(again.text().starts_with("pid "));
}

#[test]
fn a_function_the_worker_cannot_load_fails_alone() {
    let s = Stratus::start(&test_app("broken-python"), with_python());
    assert_eq!(s.get("/api/good").status, 200, "{}", s.logs());
    assert_eq!(s.get("/api/broken").status, 500);
    s.wait_log("Worker failed to load function: 'broken'");
    s.wait_log("not_a_module_anywhere");
}

#[test]
fn an_app_without_a_worker_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("host.json"), r#"{"version":"2.0"}"#).unwrap();
    let out = stratus_command()
        .arg("start")
        .arg(dir.path())
        .arg("--workers-dir")
        .arg(dir.path().join("workers"))
        .env("FUNCTIONS_WORKER_RUNTIME", "node")
        .env("STRATUS_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no language worker found for FUNCTIONS_WORKER_RUNTIME=node")
            && err.contains("node/worker.config.json"),
        "{err}"
    );
}

/// Microsoft's current workers ship with Core Tools, not on a package registry: these run the
/// v2/v4 samples on them when `STRATUS_CURRENT_WORKERS_DIR` names a workers directory laid out
/// as Core Tools ships it (`python/worker.config.json`, `node/worker.config.json`).
fn current_workers() -> PathBuf {
    PathBuf::from(
        std::env::var("STRATUS_CURRENT_WORKERS_DIR")
            .expect("STRATUS_CURRENT_WORKERS_DIR must name a workers directory"),
    )
}

#[test]
#[ignore = "needs Microsoft's current Python worker: set STRATUS_CURRENT_WORKERS_DIR"]
fn python_v2_sample_on_the_current_worker() {
    let workers = current_workers();
    let (opts, queue_port) = with_queue_service(
        Options::default()
            .arg("--workers-dir")
            .arg(workers.to_str().unwrap()),
    );
    let s = Stratus::start(&sample("python-v2"), opts);
    let failures = run_cases(&s, "python-v2.json", "python-v2");
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), s.logs());
    s.wait_log("logs: information from logs");
    check_pipeline(&s, queue_port, "python-v2");
}

#[test]
#[ignore = "needs Microsoft's current Node worker: set STRATUS_CURRENT_WORKERS_DIR"]
fn node_v4_sample_on_the_current_worker() {
    let workers = current_workers();
    // The app's dependencies (@azure/functions from npm) go into a copy of the sample.
    let app = tempfile::tempdir().unwrap();
    let src = sample("node-v4");
    for rel in [
        "host.json",
        "local.settings.json",
        "package.json",
        "package-lock.json",
    ] {
        std::fs::copy(src.join(rel), app.path().join(rel)).unwrap();
    }
    std::fs::create_dir_all(app.path().join("src/functions")).unwrap();
    for entry in std::fs::read_dir(src.join("src/functions")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            app.path().join("src/functions").join(entry.file_name()),
        )
        .unwrap();
    }
    #[allow(clippy::disallowed_methods, reason = "tests prepare their apps")]
    let installed = std::process::Command::new("npm")
        .args(["ci", "--silent", "--no-audit", "--no-fund"])
        .current_dir(app.path())
        .status()
        .expect("npm is needed");
    assert!(installed.success());
    let (opts, queue_port) = with_queue_service(
        Options::default()
            .arg("--workers-dir")
            .arg(workers.to_str().unwrap()),
    );
    let s = Stratus::start(app.path(), opts);
    let failures = run_cases(&s, "node-v4.json", "node-v4");
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), s.logs());
    check_pipeline(&s, queue_port, "node-v4");
}
