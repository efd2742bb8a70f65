//! The sandbox's cost: the native hello app behind `stratus start` with its handler isolated
//! (namespaces, the app's own user, read-only code, a private /tmp, a control group with
//! limits) against the same app and host without isolation, in the same run: HTTP
//! throughput and latency, then the cold start (spawn to first 200). Needs root.

use std::path::{Path, PathBuf};

use stratus_sandbox::cgroup::Limits;
use stratus_sandbox::isolation::{Isolation, app_uid};

use crate::{bin_dir, cold, free_port, local_targets, repo, run_profile, spawn, stratus_cmd};

/// A copy of the native app with its handler binary inside it, somewhere every user can
/// read (the isolated handler runs as the app's user).
fn app_copy(data: &Path) -> PathBuf {
    let dir = data.join("sandbox-app");
    std::fs::create_dir_all(dir.join("hello")).unwrap();
    let src = repo().join("bench/apps/native");
    std::fs::copy(src.join("host.json"), dir.join("host.json")).unwrap();
    std::fs::copy(
        src.join("hello/function.json"),
        dir.join("hello/function.json"),
    )
    .unwrap();
    std::fs::copy(bin_dir().join("bench-hello"), dir.join("bench-hello")).unwrap();
    dir
}

fn isolated(app: &Path, data: &Path, port: u16, host_data: &Path) -> std::process::Command {
    let mut c = stratus_cmd(app, port, false, host_data);
    c.env("BENCH_HELLO_PATH", app.join("bench-hello"));
    let isolation = Isolation {
        app: "bench-sandbox".into(),
        root: Some(app.to_path_buf()),
        hide: vec![data.join("hidden")],
        uid: Some(app_uid("bench-sandbox")),
        limits: Limits {
            memory_bytes: Some(1536 << 20),
            cpu_millis: None,
            pids: Some(512),
        },
        tmp_mb: 256,
        user_namespace: false,
    };
    c.envs(isolation.to_env());
    c
}

fn plain(app: &Path, port: u16, host_data: &Path) -> std::process::Command {
    let mut c = stratus_cmd(app, port, false, host_data);
    c.env("BENCH_HELLO_PATH", app.join("bench-hello"));
    c
}

pub fn run(a: &crate::Args, data: &Path) -> serde_json::Value {
    let layers = stratus_sandbox::isolation::probe();
    if !layers.complete() {
        eprintln!(
            "sandbox: skipped, this machine lacks {:?}",
            layers.missing()
        );
        return serde_json::Value::Null;
    }
    let app = app_copy(data);
    std::fs::create_dir_all(data.join("hidden")).unwrap();
    let (p_plain, p_iso) = (free_port(), free_port());
    let procs = [
        spawn("sandbox-plain", plain(&app, p_plain, &data.join("sp"))),
        spawn(
            "sandbox-isolated",
            isolated(&app, data, p_iso, &data.join("si")),
        ),
    ];
    let targets = local_targets(
        &[
            ("native via stratus, not isolated", p_plain, "/api/hello"),
            ("native via stratus, isolated", p_iso, "/api/hello"),
        ],
        std::time::Duration::from_secs(60),
    );
    let throughput = run_profile(&targets, "sandbox throughput", 2, 32, a);
    let latency = run_profile(&targets, "sandbox latency", 1, 4, a);
    drop(procs);
    println!("\n## sandbox cold start: spawn to first 200 (median of 10)\n");
    let without = cold("sandbox-plain", 10, |p| {
        (plain(&app, p, &data.join("cp")), "/api/hello")
    });
    let with = cold("sandbox-isolated", 10, |p| {
        (isolated(&app, data, p, &data.join("ci")), "/api/hello")
    });
    println!(
        "| not isolated | isolated | added |\n|---|---|---|\n| {without:.1} ms | {with:.1} ms | {:.1} ms |",
        with - without
    );
    serde_json::json!({
        "throughput": throughput,
        "latency": latency,
        "cold_start": {"plain_ms": without, "isolated_ms": with},
    })
}
