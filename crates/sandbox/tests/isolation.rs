//! Hostile function processes in an isolated app: they cannot read another app's files or
//! `/etc/shadow`, see other processes, write their own code, outgrow their memory or process
//! limits, or outlive their parent. Needs root (the isolation does); says so and passes
//! otherwise, except on CI.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratus_sandbox::cgroup::Limits;
use stratus_sandbox::isolation::{Isolation, app_uid};
use stratus_sandbox::{LineSink, Process, ProcessSpec};

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

struct Run {
    code: Option<i32>,
    out: String,
    memory: Option<String>,
}

async fn run(root: &Path, script: &str, within: Duration) -> Run {
    let lines = Arc::new(Mutex::new(String::new()));
    let l2 = lines.clone();
    let sink: LineSink = Arc::new(move |_, line| {
        let mut l = l2.lock().unwrap();
        l.push_str(line);
        l.push('\n');
    });
    let spec = ProcessSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: root.to_path_buf(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
    };
    let mut p = Process::spawn(&spec, sink).expect("the isolated process starts");
    let code = match tokio::time::timeout(within, p.wait()).await {
        Ok(status) => status.ok().and_then(|s| s.code()),
        Err(_) => {
            p.terminate(Duration::from_millis(200)).await;
            None
        }
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = lines.lock().unwrap().clone();
    Run {
        code,
        out,
        memory: p.killed_for_memory(),
    }
}

/// Processes whose command line holds `marker`, anywhere on the machine.
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

#[tokio::test(flavor = "multi_thread")]
async fn hostile_processes_are_contained() {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("skipped: isolation needs root");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("apps/mine/v1");
    let other = data.path().join("apps/theirs/v1");
    for (dir, text) in [(&root, "mine"), (&other, "their secret")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("file.txt"), text).unwrap();
    }
    // Readable by the app's user, as a worker's unpacked apps are.
    for d in [
        data.path().to_path_buf(),
        data.path().join("apps"),
        data.path().join("apps/mine"),
        root.clone(),
    ] {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let iso = Isolation {
        app: "mine".into(),
        root: Some(root.clone()),
        hide: vec![data.path().to_path_buf()],
        uid: Some(app_uid("mine")),
        limits: Limits {
            memory_bytes: Some(64 << 20),
            cpu_millis: Some(1000),
            pids: Some(32),
        },
        tmp_mb: 16,
        user_namespace: false,
    };
    for (k, v) in iso.to_env() {
        #[allow(
            unsafe_code,
            clippy::disallowed_methods,
            reason = "the isolation is read from the environment, set before any other thread runs"
        )]
        // SAFETY: set before any thread of this test reads the environment.
        unsafe {
            std::env::set_var(k, v)
        };
    }

    // Its own files, read-only; nothing of the other app; no /etc/shadow; no other process.
    let other_file = other.join("file.txt");
    let r = run(
        &root,
        &format!(
            "cat file.txt; echo; id -u; hostname; echo pid=$$; \
             cat {} 2>&1 || echo other-refused; \
             cat /etc/shadow >/dev/null 2>&1 || echo shadow-refused; \
             touch file.txt 2>/dev/null || echo code-read-only; \
             touch /tmp/scratch && echo tmp-writable; \
             echo procs=$(ls /proc | grep -c '^[0-9]'); \
             test -d /proc/{}/ && echo sees-the-test || echo test-hidden",
            other_file.display(),
            std::process::id()
        ),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.out);
    for want in [
        "mine\n",
        &format!("{}\n", app_uid("mine")),
        "pid=2\n",
        "other-refused",
        "shadow-refused",
        "code-read-only",
        "tmp-writable",
        "test-hidden",
    ] {
        assert!(r.out.contains(want), "{want:?} missing:\n{}", r.out);
    }
    assert!(!r.out.contains("their secret"), "{}", r.out);
    let procs: usize = r
        .out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    // Its init, the shell, and the pipeline counting them.
    assert!(procs <= 6, "it sees {procs} processes:\n{}", r.out);
    assert_eq!(
        r.out.lines().filter(|l| *l == "mine").count(),
        2,
        "file and hostname: {}",
        r.out
    );

    // A child that leaves its group and outlives its parent goes with it.
    let r = run(
        &root,
        "setsid sleep 313 >/dev/null 2>&1 & sleep 0.2; echo started",
        Duration::from_secs(10),
    )
    .await;
    assert!(r.out.contains("started"), "{}", r.out);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alive_with("sleep 313"), 0, "the child survived");

    // A fork bomb meets the process limit; the machine goes on.
    let r = run(
        &root,
        "bomb() { bomb | bomb & }; bomb; sleep 2; echo still",
        Duration::from_secs(5),
    )
    .await;
    let _ = r;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        alive_with("bomb"),
        0,
        "the bomb's processes are still there"
    );

    // Allocating past the memory limit: killed, and the reason is known.
    let r = run(
        &root,
        "head -c 300000000 /dev/zero | tail -n 1 >/dev/null; echo survived",
        Duration::from_secs(20),
    )
    .await;
    assert!(
        !r.out.contains("survived") || r.memory.is_some(),
        "{}",
        r.out
    );
    let reason = r.memory.expect("an OOM kill is reported");
    assert!(reason.contains("64 MiB"), "{reason}");
}
