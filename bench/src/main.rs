//! `stratus-bench`: measures Stratus against baselines in one run, with wrk, and prints
//! throughput, p50/p99 and ratios (medians over rounds).
//!
//! Targets: a bare hyper server (the machine's limit, also used as a trivial native custom
//! handler), a minimal connection-affine proxy hop in front of it (the limit of one hop),
//! the Python and Node sample handlers called directly, behind the same minimal hop, and
//! behind `stratus start`, forwarded and with the JSON invocation protocol; the Python v1 sample on
//! Microsoft's Python language worker behind `stratus start`, against the same function code
//! behind a bare Python HTTP server. Also cold start: from starting a process to its first 200;
//! timer lateness; queue trigger throughput end to end (`queues`).

#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark starts the processes it measures"
)]

mod frontdoor;
mod publish;
mod queues;
mod sandbox;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    duration: u64,
    rounds: usize,
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        duration: 10,
        rounds: 3,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--duration" => {
                a.duration = it
                    .next()
                    .and_then(|v| v.trim_end_matches('s').parse().ok())
                    .unwrap_or(10)
            }
            "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--only" => a.only = it.next(),
            "-h" | "--help" => {
                println!(
                    "stratus-bench [--duration SECONDS] [--rounds N] [--only throughput|latency|cold|timers|queues|frontdoor|publish|sandbox]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

pub(crate) fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `GET path` on `port` every 2 ms until a 200; returns how long that took.
fn wait_200(port: u16, path: &str, limit: Duration) -> Option<Duration> {
    use std::io::{Read as _, Write as _};
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_nodelay(true);
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200" {
                    return Some(start.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_file(name: &str) -> std::fs::File {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join(format!("{name}.log"))).unwrap()
}

fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo().join("target"), PathBuf::from)
        .join("bench")
}

/// A process that serves HTTP for the benchmark.
pub(crate) fn spawn(name: &str, mut cmd: Command) -> Proc {
    cmd.stdout(Stdio::null())
        .stderr(log_file(name))
        .stdin(Stdio::null());
    Proc(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}")),
    )
}

fn hello_cmd(port: u16) -> Command {
    let mut c = Command::new(bin_dir().join("bench-hello"));
    c.arg(port.to_string());
    c
}

fn proxy_cmd(port: u16, upstream: u16) -> Command {
    let mut c = Command::new(bin_dir().join("bench-proxy"));
    c.arg(port.to_string()).arg(upstream.to_string());
    c
}

fn python_cmd(port: u16) -> Command {
    let mut c = Command::new("python3");
    c.arg("-S")
        .arg(repo().join("samples/python-handler/handler.py"))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string());
    c
}

fn node_cmd(port: u16) -> Command {
    let mut c = Command::new("node");
    c.arg(repo().join("samples/node-handler/handler.js"))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string());
    c
}

/// The interpreter of the environment holding Microsoft's Python worker (made once).
fn worker_python() -> PathBuf {
    let out = Command::new(repo().join("tests/workers/python-env"))
        .output()
        .expect("cannot run tests/workers/python-env");
    assert!(out.status.success(), "tests/workers/python-env failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The Python v1 sample's `hello` behind a bare Python HTTP server.
fn python_bare_cmd(python: &Path, port: u16) -> Command {
    let mut c = Command::new(python);
    c.arg(repo().join("bench/apps/python-bare/server.py"))
        .arg(port.to_string());
    c
}

/// The Python v1 sample on the Python worker, behind `stratus start`.
fn python_worker_cmd(python: &Path, port: u16, data: &Path) -> Command {
    let mut c = stratus_cmd(&repo().join("samples/python-v1"), port, false, data);
    c.env("languageWorkers__python__defaultExecutablePath", python);
    c
}

pub(crate) fn stratus_cmd(app: &Path, port: u16, json: bool, data: &Path) -> Command {
    let mut c = Command::new(bin_dir().join("stratus"));
    c.arg("start")
        .arg(app)
        .arg("--port")
        .arg(port.to_string())
        .arg("--address")
        .arg("127.0.0.1");
    c.env("STRATUS_DATA_DIR", data)
        .env("BENCH_HELLO_PATH", bin_dir().join("bench-hello"))
        .env_remove("RUST_LOG");
    if json {
        c.env(
            "AzureFunctionsJobHost__customHandler__enableForwardingHttpRequest",
            "false",
        );
    }
    c
}

/// One wrk measurement.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

fn parse_latency(v: &str) -> f64 {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * mult
}

fn wrk(url: &str, threads: u32, conns: u32, secs: u64) -> Sample {
    let out = Command::new("wrk")
        .args([
            "--latency",
            "-t",
            &threads.to_string(),
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{secs}s"),
            url,
        ])
        .output()
        .expect("wrk must be installed (bench/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut s = Sample {
        rps: 0.0,
        p50_us: f64::NAN,
        p99_us: f64::NAN,
    };
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            s.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            s.p50_us = parse_latency(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            s.p99_us = parse_latency(v);
        }
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        for line in text
            .lines()
            .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        {
            eprintln!("  wrk: {url}: {}", line.trim());
        }
    }
    s
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

struct Target {
    name: &'static str,
    url: String,
}

/// Waits until each `(name, port, path)` on 127.0.0.1 answers 200 (at most `limit` each), and
/// names it as a target.
fn local_targets(list: &[(&'static str, u16, &str)], limit: Duration) -> Vec<Target> {
    list.iter()
        .map(|&(name, port, path)| {
            wait_200(port, path, limit)
                .unwrap_or_else(|| panic!("{name} did not start; see {}", out_dir().display()));
            Target {
                name,
                url: format!("http://127.0.0.1:{port}{path}"),
            }
        })
        .collect()
}

/// (target, baseline) pairs whose ratio is reported, with the target figure if any.
const RATIOS: &[(&str, &str, Option<f64>)] = &[
    (
        "native via stratus (forwarded)",
        "bare hyper hello",
        Some(0.38),
    ),
    (
        "native via stratus (JSON protocol)",
        "bare hyper hello",
        None,
    ),
    ("minimal affine proxy hop", "bare hyper hello", None),
    (
        "native via stratus (forwarded)",
        "minimal affine proxy hop",
        None,
    ),
    ("python via stratus (forwarded)", "python direct", Some(0.9)),
    ("minimal affine hop to python", "python direct", None),
    (
        "python via stratus (forwarded)",
        "minimal affine hop to python",
        None,
    ),
    ("python via stratus (JSON protocol)", "python direct", None),
    ("node via stratus (forwarded)", "node direct", Some(0.65)),
    ("minimal affine hop to node", "node direct", None),
    (
        "node via stratus (forwarded)",
        "minimal affine hop to node",
        None,
    ),
    ("node via stratus (JSON protocol)", "node direct", None),
    (
        "python worker via stratus",
        "python function, bare server",
        None,
    ),
    (
        "front door to the worker's host",
        "minimal affine hop to the worker's host",
        Some(0.8),
    ),
    (
        "front door to the worker's host",
        "worker's host direct",
        None,
    ),
    (
        "native via stratus, isolated",
        "native via stratus, not isolated",
        None,
    ),
];

fn run_profile(
    targets: &[Target],
    label: &str,
    threads: u32,
    conns: u32,
    a: &Args,
) -> serde_json::Value {
    println!(
        "\n## {label}: wrk -t{threads} -c{conns} -d{}s, {} round(s)\n",
        a.duration, a.rounds
    );
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for round in 0..a.rounds {
        for t in targets {
            let s = wrk(&t.url, threads, conns, a.duration);
            eprintln!(
                "  round {} {:<36} {:>9.0} req/s  p50 {:>9}  p99 {:>9}",
                round + 1,
                t.name,
                s.rps,
                fmt_us(s.p50_us),
                fmt_us(s.p99_us)
            );
            samples.entry(t.name).or_default().push(s);
        }
    }
    println!("| target | req/s | p50 | p99 |\n|---|---|---|---|");
    let mut json_targets = serde_json::Map::new();
    for t in targets {
        let s = &samples[t.name];
        let (rps, p50, p99) = (
            median(s.iter().map(|x| x.rps).collect()),
            median(s.iter().map(|x| x.p50_us).collect()),
            median(s.iter().map(|x| x.p99_us).collect()),
        );
        println!(
            "| {} | {rps:.0} | {} | {} |",
            t.name,
            fmt_us(p50),
            fmt_us(p99)
        );
        json_targets.insert(
            t.name.into(),
            serde_json::json!({"rps": rps, "p50_us": p50, "p99_us": p99}),
        );
    }
    println!(
        "\n| ratio (median of per-round ratios) | throughput | added p50 | target |\n|---|---|---|---|"
    );
    let mut json_ratios = serde_json::Map::new();
    for (target, base, goal) in RATIOS {
        let (Some(ts), Some(bs)) = (samples.get(target), samples.get(base)) else {
            continue;
        };
        let ratio = median(ts.iter().zip(bs).map(|(t, b)| t.rps / b.rps).collect());
        let added = median(
            ts.iter()
                .zip(bs)
                .map(|(t, b)| t.p50_us - b.p50_us)
                .collect(),
        );
        let goal_text = goal.map_or(String::new(), |g| {
            format!("≥ {g}× {}", if ratio >= g { "met" } else { "NOT met" })
        });
        println!(
            "| {target} / {base} | {ratio:.3}× | {} | {goal_text} |",
            fmt_us(added)
        );
        json_ratios.insert(
            format!("{target} / {base}"),
            serde_json::json!({"throughput": ratio, "added_p50_us": added}),
        );
    }
    serde_json::json!({"profile": label, "targets": json_targets, "ratios": json_ratios})
}

/// Cold start: from spawning to the first 200, `n` times; returns the median in ms.
pub(crate) fn cold(
    name: &str,
    n: usize,
    mut make: impl FnMut(u16) -> (Command, &'static str),
) -> f64 {
    let mut times = Vec::new();
    for i in 0..n {
        let port = free_port();
        let (cmd, path) = make(port);
        let started = Instant::now();
        let p = spawn(&format!("cold-{name}-{i}"), cmd);
        let took = wait_200(port, path, Duration::from_secs(30)).map(|_| started.elapsed());
        drop(p);
        match took {
            Some(d) => times.push(d.as_secs_f64() * 1000.0),
            None => eprintln!("  {name}: no 200 within 30 s"),
        }
    }
    median(times)
}

/// Percentile (0..=100) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// How late a thread of this process wakes for whole seconds: the machine's own timer
/// lateness, the baseline of the timer trigger's.
fn wakeup_lateness(seconds: u64) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..seconds {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let next = Duration::from_secs(now.as_secs() + 1);
        std::thread::sleep(next - now);
        let woke = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        out.push((woke - next).as_secs_f64() * 1000.0);
    }
    out
}

/// Timer firing accuracy: a timer every second behind `stratus start`; each invocation's
/// arrival at the handler against its scheduled second.
fn timers(a: &Args, data: &Path) -> serde_json::Value {
    let seconds = (a.duration * 3).max(20);
    println!("\n## timer lateness: a timer every second for {seconds} s\n");
    let log = data.join("timer.log");
    let port = free_port();
    let mut cmd = stratus_cmd(
        &repo().join("bench/apps/timer"),
        port,
        false,
        &data.join("t"),
    );
    cmd.env("TIMER_LOG", &log);
    let p = spawn("timer", cmd);
    std::thread::sleep(Duration::from_secs(seconds));
    drop(p);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut late: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(|t| (t - t.floor()) * 1000.0)
        .collect();
    late.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let mut base = wakeup_lateness(seconds.min(10));
    base.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!("| what | firings | p50 | p99 | max |\n|---|---|---|---|---|");
    for (name, v) in [
        ("timer trigger (to handler)", &late),
        ("thread wake-up (baseline)", &base),
    ] {
        println!(
            "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            v.len(),
            percentile(v, 50.0),
            percentile(v, 99.0),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    let p99 = percentile(&late, 99.0);
    println!(
        "\nTarget: lateness p99 under 20 ms: {}",
        if p99 < 20.0 { "met" } else { "NOT met" }
    );
    serde_json::json!({
        "firings": late.len(),
        "seconds": seconds,
        "p50_ms": percentile(&late, 50.0),
        "p99_ms": p99,
        "baseline_p50_ms": percentile(&base, 50.0),
        "baseline_p99_ms": percentile(&base, 99.0),
    })
}

fn main() {
    let a = args();
    let data = std::env::temp_dir().join(format!("stratus-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    let mut results = serde_json::Map::new();
    println!("# Stratus benchmark ({})", std::env::consts::ARCH);

    if a.only.as_deref() == Some("timers") {
        results.insert("timers".into(), timers(&a, &data));
    }
    if a.only.as_deref() == Some("frontdoor") {
        results.insert("frontdoor".into(), frontdoor::run(&a, &data));
    }
    if a.only.as_deref() == Some("publish") {
        results.insert("publish".into(), publish::run(&a, &data));
        results.insert("sandbox".into(), sandbox::run(&a, &data));
    }
    if a.only.as_deref() == Some("sandbox") {
        results.insert("sandbox".into(), sandbox::run(&a, &data));
    }
    if a.only.as_deref() == Some("queues") {
        results.insert("queues".into(), queues::run(a.duration, a.rounds, &data));
    }

    if a.only.as_deref().is_none_or(|o| {
        o != "cold"
            && o != "timers"
            && o != "queues"
            && o != "frontdoor"
            && o != "publish"
            && o != "sandbox"
    }) {
        let ports: Vec<u16> = (0..14).map(|_| free_port()).collect();
        let python = worker_python();
        let native = repo().join("bench/apps/native");
        let py = repo().join("samples/python-handler");
        let node = repo().join("samples/node-handler");
        let procs = vec![
            spawn("bare", hello_cmd(ports[0])),
            spawn(
                "native-forward",
                stratus_cmd(&native, ports[1], false, &data.join("a")),
            ),
            spawn(
                "native-json",
                stratus_cmd(&native, ports[2], true, &data.join("b")),
            ),
            spawn("python-direct", python_cmd(ports[3])),
            spawn(
                "python-forward",
                stratus_cmd(&py, ports[4], false, &data.join("c")),
            ),
            spawn(
                "python-json",
                stratus_cmd(&py, ports[5], true, &data.join("d")),
            ),
            spawn("node-direct", node_cmd(ports[6])),
            spawn(
                "node-forward",
                stratus_cmd(&node, ports[7], false, &data.join("e")),
            ),
            spawn(
                "node-json",
                stratus_cmd(&node, ports[8], true, &data.join("f")),
            ),
            spawn("proxy", proxy_cmd(ports[9], ports[0])),
            spawn("python-bare", python_bare_cmd(&python, ports[10])),
            spawn(
                "python-worker",
                python_worker_cmd(&python, ports[11], &data.join("w")),
            ),
            spawn("proxy-python", proxy_cmd(ports[12], ports[3])),
            spawn("proxy-node", proxy_cmd(ports[13], ports[6])),
        ];
        let names = [
            "bare hyper hello",
            "native via stratus (forwarded)",
            "native via stratus (JSON protocol)",
            "python direct",
            "python via stratus (forwarded)",
            "python via stratus (JSON protocol)",
            "node direct",
            "node via stratus (forwarded)",
            "node via stratus (JSON protocol)",
            "minimal affine proxy hop",
            "python function, bare server",
            "python worker via stratus",
            "minimal affine hop to python",
            "minimal affine hop to node",
        ];
        let list: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let path = if i < 3 || i == 9 {
                    "/api/hello"
                } else {
                    "/api/hello?name=bench"
                };
                (name, ports[i], path)
            })
            .collect();
        let targets = local_targets(&list, Duration::from_secs(60));
        if a.only.as_deref().is_none_or(|o| o == "throughput") {
            results.insert(
                "throughput".into(),
                run_profile(&targets, "throughput", 2, 32, &a),
            );
        }
        if a.only.as_deref().is_none_or(|o| o == "latency") {
            results.insert("latency".into(), run_profile(&targets, "latency", 1, 4, &a));
        }
        drop(procs);
    }

    if a.only.as_deref().is_none() {
        results.insert("timers".into(), timers(&a, &data));
        results.insert("queues".into(), queues::run(a.duration, a.rounds, &data));
        results.insert("frontdoor".into(), frontdoor::run(&a, &data));
        results.insert("publish".into(), publish::run(&a, &data));
    }

    if a.only.as_deref().is_none_or(|o| o == "cold") {
        println!("\n## cold start: spawn to first 200 (median of 10)\n");
        println!("| app | direct | via stratus start | added |\n|---|---|---|---|");
        let native_app = repo().join("bench/apps/native");
        let py_app = repo().join("samples/python-handler");
        let node_app = repo().join("samples/node-handler");
        let python = worker_python();
        let mut cold_json = serde_json::Map::new();
        for (name, direct, via) in [
            (
                "native",
                cold("native-direct", 10, |p| (hello_cmd(p), "/api/hello")),
                cold("native-stratus", 10, |p| {
                    (
                        stratus_cmd(&native_app, p, false, &data.join("g")),
                        "/api/hello",
                    )
                }),
            ),
            (
                "python",
                cold("python-direct", 10, |p| (python_cmd(p), "/api/hello")),
                cold("python-stratus", 10, |p| {
                    (
                        stratus_cmd(&py_app, p, false, &data.join("h")),
                        "/api/hello",
                    )
                }),
            ),
            (
                "node",
                cold("node-direct", 10, |p| (node_cmd(p), "/api/hello")),
                cold("node-stratus", 10, |p| {
                    (
                        stratus_cmd(&node_app, p, false, &data.join("i")),
                        "/api/hello",
                    )
                }),
            ),
            (
                "python worker (v1 sample)",
                cold("python-bare", 10, |p| {
                    (python_bare_cmd(&python, p), "/api/hello")
                }),
                cold("python-worker", 10, |p| {
                    (python_worker_cmd(&python, p, &data.join("j")), "/api/hello")
                }),
            ),
        ] {
            println!(
                "| {name} | {direct:.1} ms | {via:.1} ms | {:.1} ms |",
                via - direct
            );
            cold_json.insert(
                name.into(),
                serde_json::json!({"direct_ms": direct, "stratus_ms": via}),
            );
        }
        results.insert("cold_start".into(), serde_json::Value::Object(cold_json));
    }

    let out = out_dir().join("results.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&serde_json::Value::Object(results)).unwrap(),
    )
    .unwrap();
    println!("\nFigures written to {}", out.display());
    let _ = std::fs::remove_dir_all(&data);
}
