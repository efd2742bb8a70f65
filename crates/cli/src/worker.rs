//! `stratus worker --join URL --token TOKEN`: the worker role. It joins the management role
//! with its capacity, labels and availability window, then sends heartbeats; it joins again
//! when the management role forgot it, and stops when its token is revoked. (Running the
//! apps placed on it comes with the scheduler.)

use std::time::Duration;

use serde_json::{Value, json};

use crate::ExitError;
use crate::api_client::Client;

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
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 2)]
    pub heartbeat_seconds: u64,
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
    let client = Client::with_token(&args.join, &args.token)?;
    let body = spec(&args)?.to_string().into_bytes();
    let every = Duration::from_secs(args.heartbeat_seconds.max(1));
    let work = async {
        let mut id = join(&client, &body).await?;
        println!("joined {} as worker {id}", args.join);
        loop {
            tokio::time::sleep(every).await;
            let path = format!("/api/workers/{id}/heartbeat");
            match client
                .send("POST", &path, Vec::new(), "application/json")
                .await
            {
                Ok(_) => {}
                Err(ExitError::Gone(_)) => {
                    tracing::warn!("the management role forgot this worker: joining again");
                    id = join(&client, &body).await?;
                    println!("joined {} as worker {id}", args.join);
                }
                Err(ExitError::Unavailable(e)) => {
                    tracing::warn!("heartbeat: {e:#}");
                }
                Err(e) => return Err::<(), ExitError>(e),
            }
        }
    };
    tokio::select! {
        r = work => r,
        () = crate::start::shutdown_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}
