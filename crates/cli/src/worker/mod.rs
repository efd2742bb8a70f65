//! `stratus worker --join URL --token TOKEN`: the worker role. It joins the management role
//! with its capacity, labels and availability window, then sends heartbeats; it joins again
//! when the management role forgot it, and stops when its token is revoked. With each
//! heartbeat it reads its assignments, keeps their packages in a local cache (verified by
//! SHA-256) and runs a host per assigned app (`hosts`).

use std::time::Duration;

use serde_json::{Value, json};

mod hosts;

use self::hosts::{Assignment, Hosts};
use crate::ExitError;
use crate::api_client::Client;
use crate::config::{Config, ConfigFlags};

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The management API to join (`http://host:port`).
    #[arg(long = "join", env = "STRATUS_JOIN_URL")]
    pub join: String,
    /// A join token (`stratus tokens create`).
    #[arg(long, env = "STRATUS_JOIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// This worker's name (default: the machine's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Placement labels (`key=value`, repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// When it takes placements, e.g. `22:00-06:00` (default: always).
    #[arg(long)]
    pub window: Option<String>,
    /// CPU it offers, in thousandths of a core (default: all cores).
    #[arg(long)]
    pub cpu_millis: Option<u64>,
    /// Memory it offers, in MiB (default: the machine's).
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// Most apps it runs.
    #[arg(long, default_value_t = 8)]
    pub max_apps: u64,
    /// The address the apps' hosts listen on; `0.0.0.0` lets other machines (the front door)
    /// reach them.
    #[arg(long, env = "STRATUS_WORKER_HOST_ADDRESS", default_value = "127.0.0.1")]
    pub host_address: String,
    /// The name or address the front door reaches this worker's hosts by (default: the
    /// listen address, or the machine's name when that is a wildcard).
    #[arg(long, env = "STRATUS_WORKER_ADVERTISE")]
    pub advertise: Option<String>,
    /// On SIGTERM or Ctrl-C, how long to keep serving while the apps move elsewhere.
    #[arg(long, default_value_t = 60)]
    pub drain_seconds: u64,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 2)]
    pub heartbeat_seconds: u64,
    /// How the apps' function processes are isolated from each other and from the worker:
    /// `best-effort` (namespaces, a read-only app directory, a private /tmp, the app's own
    /// user and cgroup limits, each as far as this machine allows, saying which are off);
    /// `required` (refuses to start without all of them); `off`. The apps' runtimes must be
    /// where any user can run them.
    #[arg(long, env = "STRATUS_ISOLATION", value_enum, default_value_t = IsolationMode::BestEffort)]
    pub isolation: IsolationMode,
    #[command(flatten)]
    pub config: ConfigFlags,
}

/// How a worker isolates its apps' function processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsolationMode {
    Off,
    BestEffort,
    Required,
}

/// The layers this worker applies (none when isolation is off), after saying which are off;
/// refuses to go on when all are required and some are missing.
fn isolation_layers(
    mode: IsolationMode,
) -> Result<Option<stratus_sandbox::isolation::Layers>, ExitError> {
    if mode == IsolationMode::Off {
        tracing::warn!(
            "function processes are not isolated (--isolation off): apps on this worker can see each other's files and processes"
        );
        return Ok(None);
    }
    let layers = stratus_sandbox::isolation::probe();
    let missing = layers.missing();
    if missing.is_empty() {
        tracing::info!(
            "function processes are isolated: namespaces, the app's own user, cgroup v{} limits",
            layers.cgroups.as_ref().copied().unwrap_or(0)
        );
    }
    for m in &missing {
        tracing::warn!("isolation: {m}");
    }
    if mode == IsolationMode::Required && !missing.is_empty() {
        return Err(ExitError::Config(anyhow::anyhow!(
            "isolation is required (--isolation required) but this machine does not allow all of it: {}",
            missing.join("; ")
        )));
    }
    Ok(Some(layers))
}

/// The isolation as the worker reports it in its heartbeats.
pub(crate) fn isolation_json(
    mode: IsolationMode,
    layers: Option<&stratus_sandbox::isolation::Layers>,
) -> serde_json::Value {
    let layer = |r: Result<String, &String>| match r {
        Ok(on) => serde_json::Value::String(on),
        Err(why) => serde_json::Value::String(format!("off: {why}")),
    };
    let mode = match mode {
        IsolationMode::Off => "off",
        IsolationMode::BestEffort => "best-effort",
        IsolationMode::Required => "required",
    };
    match layers {
        None => {
            serde_json::json!({"mode": mode, "namespaces": "off", "appUsers": "off", "limits": "off"})
        }
        Some(l) => serde_json::json!({
            "mode": mode,
            "namespaces": layer(l.namespaces.as_ref().map(|()| {
                if l.user_namespace { "on (in a user namespace)" } else { "on" }.to_string()
            })),
            "appUsers": layer(l.app_users.as_ref().map(|()| "on".to_string())),
            "limits": layer(l.cgroups.as_ref().map(|v| format!("cgroup v{v}"))),
        }),
    }
}

/// Lower-case hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The packages of this worker's assignments, kept by hash in `<data dir>/packages`.
struct Cache {
    dir: std::path::PathBuf,
    /// (app, version) pairs assigned, as last seen.
    assigned: std::collections::BTreeSet<(String, i64)>,
}

impl Cache {
    /// Fetches the packages of `list` (the assignments as the API gives them) not cached yet
    /// (verified before use); the assignments whose package is cached, and whether that is all
    /// of them (a package that could not be had is tried again later).
    async fn refresh(
        &mut self,
        client: &Client,
        id: &str,
        list: &Value,
    ) -> (Vec<Assignment>, bool) {
        let mut now = std::collections::BTreeSet::new();
        let mut ready = Vec::new();
        let mut complete = true;
        for a in list.as_array().into_iter().flatten() {
            let (Some(app), Some(version), Some(sha)) = (
                a["app"].as_str(),
                a["version"].as_i64(),
                a["sha256"].as_str(),
            ) else {
                continue;
            };
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                tracing::warn!(app, "the assignment names no valid package hash: {sha}");
                continue;
            }
            let path = self.dir.join(format!("{sha}.zip"));
            if !path.is_file() {
                let fetched = client
                    .send_raw(
                        "GET",
                        &format!("/api/workers/{id}/packages/{sha}"),
                        Vec::new(),
                        "application/zip",
                    )
                    .await;
                let bytes = match fetched {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(app, "cannot fetch package {sha}: {:#}", e.error());
                        complete = false;
                        continue;
                    }
                };
                let got = sha256_hex(&bytes);
                if got != sha {
                    tracing::error!(app, "package {sha} arrived with hash {got}: discarded");
                    complete = false;
                    continue;
                }
                let written = std::fs::create_dir_all(&self.dir).and_then(|()| {
                    let tmp = self.dir.join(format!(".{sha}.part"));
                    std::fs::write(&tmp, &bytes)?;
                    std::fs::rename(&tmp, &path)
                });
                if let Err(e) = written {
                    tracing::error!(app, "cannot write {}: {e}", path.display());
                    complete = false;
                    continue;
                }
            }
            now.insert((app.to_string(), version));
            ready.push(Assignment {
                app: app.to_string(),
                version,
                sha256: sha.to_string(),
                settings: a["settings"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
                staged: a["staged"] == true,
            });
            if !self.assigned.contains(&(app.to_string(), version)) {
                println!("assigned {app} version {version} (package {sha}, cached)");
            }
        }
        for (app, version) in self.assigned.difference(&now) {
            if !now.iter().any(|(a, _)| a == app) {
                println!("unassigned {app} (was version {version})");
            }
        }
        self.assigned = now;
        (ready, complete)
    }
}

/// How long the management role may hold an assignments request open.
const ASSIGNMENTS_WAIT_S: u64 = 20;

/// Waits for this worker's assignments to differ from `known` (their digest): the new list
/// and its digest, or None when they did not change within the wait.
async fn assignments(
    client: &Client,
    id: String,
    known: Option<String>,
) -> Result<Option<(Value, String)>, ExitError> {
    let mut path = format!("/api/workers/{id}/assignments?wait={ASSIGNMENTS_WAIT_S}");
    if let Some(k) = &known {
        path.push_str(&format!("&known={k}"));
    }
    let list = client
        .send("GET", &path, Vec::new(), "application/json")
        .await?;
    if list.is_null() {
        return Ok(None);
    }
    let digest = sha256_hex(list.to_string().as_bytes());
    Ok(Some((list, digest)))
}

/// The machine's memory in MiB, from /proc/meminfo.
fn memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn spec(args: &WorkerArgs) -> Result<Value, ExitError> {
    let mut labels = serde_json::Map::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').ok_or_else(|| {
            ExitError::Usage(anyhow::anyhow!("--label: expected key=value, found {l}"))
        })?;
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    Ok(json!({
        "name": args.name.clone().unwrap_or_else(crate::app::machine_name),
        "version": env!("CARGO_PKG_VERSION"),
        "cpuMillis": args.cpu_millis.unwrap_or(cores * 1000),
        "memoryMib": args.memory_mib.or_else(memory_mib).unwrap_or(1024),
        "maxApps": args.max_apps,
        "labels": labels,
        "window": args.window,
    }))
}

/// Joins, retrying while the management role cannot be reached; the worker's id.
async fn join(client: &Client, body: &[u8]) -> Result<String, ExitError> {
    let mut wait = Duration::from_millis(200);
    loop {
        match client
            .send(
                "POST",
                "/api/workers/join",
                body.to_vec(),
                "application/json",
            )
            .await
        {
            Ok(v) => {
                return v["id"].as_str().map(str::to_string).ok_or_else(|| {
                    ExitError::Other(anyhow::anyhow!("the join answer has no id: {v}"))
                });
            }
            Err(ExitError::Unavailable(e)) => {
                tracing::warn!("{e:#}; trying again in {} ms", wait.as_millis());
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

pub async fn run(args: WorkerArgs) -> Result<(), ExitError> {
    let config = Config::resolve(&args.config, &crate::config::ProcessEnv)
        .map_err(|e| ExitError::Config(e.into()))?;
    let mut cache = Cache {
        dir: config.data_dir.join("packages"),
        assigned: std::collections::BTreeSet::new(),
    };
    let client = Client::with_token(&args.join, &args.token)?;
    let body = spec(&args)?.to_string().into_bytes();
    let every = Duration::from_secs(args.heartbeat_seconds.max(1));
    let advertise = args.advertise.clone().unwrap_or_else(|| {
        match args.host_address.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => crate::app::machine_name(),
            _ => args.host_address.clone(),
        }
    });
    // A front door on another machine cannot reach hosts advertised on loopback.
    let loopback = |h: &str| {
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let manage_host = args
        .join
        .trim_start_matches("http://")
        .rsplit_once(':')
        .map_or(args.join.as_str(), |(h, _)| h)
        .trim_matches(['[', ']']);
    if loopback(&advertise) && !loopback(manage_host) {
        tracing::warn!(
            "the apps' hosts are advertised on {advertise}, which the management role at {} cannot reach: set --host-address 0.0.0.0 (and --advertise NAME)",
            args.join
        );
    }
    // An old version keeps serving until a heartbeat has reported its replacement and the
    // front doors have read it.
    let layers = isolation_layers(args.isolation)?;
    let mut hosts = Hosts::new(
        config.data_dir.clone(),
        args.host_address.clone(),
        advertise,
        every + Duration::from_secs(2),
    );
    hosts.isolate(args.isolation, layers);
    let shutdown = crate::start::shutdown_signal();
    tokio::pin!(shutdown);
    let result = async {
        let mut id = tokio::select! {
            r = join(&client, &body) => r?,
            () = &mut shutdown => return Ok(()),
        };
        println!("joined {} as worker {id}", args.join);
        hosts.link(&args.join, &args.token, &id);
        let mut leaving: Option<tokio::time::Instant> = None;
        // Assignments come down as they change (a long poll); heartbeats go up on their own.
        let mut known: Option<String> = None;
        let mut watch = Box::pin(assignments(&client, id.clone(), None));
        let mut next_beat = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_beat) => {
                    next_beat = tokio::time::Instant::now() + every;
                }
                r = &mut watch => {
                    let changed = match r {
                        Ok(Some((list, digest))) => {
                            // What can run runs; what could not be had is asked for again
                            // after a pause.
                            let (a, complete) = cache.refresh(&client, &id, &list).await;
                            hosts.apply(&a).await;
                            if complete {
                                known = Some(digest);
                            } else {
                                tokio::time::sleep(every).await;
                            }
                            true
                        }
                        Ok(None) => false,
                        // The heartbeat says what to do about the management role's answers.
                        Err(e) => {
                            tracing::debug!("assignments: {:#}", e.error());
                            tokio::time::sleep(every).await;
                            false
                        }
                    };
                    if changed {
                        // Hosts started or stopped: say so now.
                        next_beat = tokio::time::Instant::now();
                    }
                    watch = Box::pin(assignments(&client, id.clone(), known.clone()));
                    continue;
                }
                // A host that starts serving is reported at once: a deployment waits for it.
                () = tokio::time::sleep(Duration::from_millis(100)), if hosts.starting() => {
                    if !hosts.newly_ready().await {
                        continue;
                    }
                }
                () = &mut shutdown, if leaving.is_none() => {
                    if args.drain_seconds == 0 {
                        return Ok(());
                    }
                    println!("leaving: the apps move to other workers first (up to {} s)", args.drain_seconds);
                    leaving = Some(tokio::time::Instant::now() + Duration::from_secs(args.drain_seconds));
                }
            }
            if let Some(deadline) = leaving {
                let left = client
                    .send("POST", &format!("/api/workers/{id}/leave"), Vec::new(), "application/json")
                    .await;
                match left {
                    Ok(v) if v["removed"] == true => {
                        println!("left: nothing is placed here any more");
                        return Ok(());
                    }
                    Ok(_) if tokio::time::Instant::now() < deadline => {}
                    Ok(v) => {
                        tracing::warn!("leaving with {} replicas still placed here", v["placed"]);
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::warn!("cannot leave in good order: {:#}", e.error());
                        return Ok(());
                    }
                }
            }
            let path = format!("/api/workers/{id}/heartbeat");
            // Hosts that exited start again (with back-off) at the beat.
            hosts.restart_exited().await;
            let status = hosts.status().await.to_string().into_bytes();
            let beat = client.send("POST", &path, status, "application/json").await;
            match beat {
                Ok(_) => {}
                Err(ExitError::Gone(_)) => {
                    tracing::warn!("the management role forgot this worker: joining again");
                    hosts.apply(&[]).await;
                    id = join(&client, &body).await?;
                    println!("joined {} as worker {id}", args.join);
                    hosts.link(&args.join, &args.token, &id);
                    known = None;
                    watch = Box::pin(assignments(&client, id.clone(), None));
                }
                // Refused: the token was revoked (or is wrong); nothing to retry.
                Err(e @ ExitError::Config(_)) => return Err::<(), ExitError>(e),
                Err(e) => {
                    tracing::warn!("heartbeat: {:#}", e.error());
                }
            }
        }
    }
    .await;
    hosts.stop_all().await;
    result
}
