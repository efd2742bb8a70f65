//! `stratus tokens` and `stratus workers`: the join tokens workers use and the workers that
//! joined, through the management API.

use serde_json::Value;

use crate::ExitError;
use crate::api_client::{ApiFlags, Client, encode, print};

#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    pub command: TokensCommand,
    #[command(flatten)]
    pub api: ApiFlags,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Create a join token; its value is printed once and stored only as a hash.
    Create { name: String },
    /// List the tokens (never their values).
    List,
    /// Revoke a token: workers that joined with it are refused from now on.
    Revoke { id: String },
}

#[derive(Debug, clap::Args)]
pub struct WorkersArgs {
    #[command(subcommand)]
    pub command: WorkersCommand,
    #[command(flatten)]
    pub api: ApiFlags,
}

#[derive(Debug, clap::Subcommand)]
pub enum WorkersCommand {
    /// List the workers with capacity, labels, window and heartbeat age.
    List {
        /// Print the JSON the API answered.
        #[arg(long)]
        json: bool,
    },
    /// Give no new placements to a worker.
    Drain { id: String },
    /// Forget a worker.
    Remove { id: String },
}

pub async fn tokens(args: TokensArgs) -> Result<(), ExitError> {
    let c = Client::connect(&args.api)?;
    match args.command {
        TokensCommand::Create { name } => {
            let body = serde_json::json!({ "name": name }).to_string().into_bytes();
            let created = c
                .send("POST", "/api/tokens", body, "application/json")
                .await?;
            print(&created);
            eprintln!("keep the token: it is not shown again (workers join with `--token`)");
        }
        TokensCommand::List => {
            let list = c
                .send("GET", "/api/tokens", Vec::new(), "application/json")
                .await?;
            println!("{:<38} {:<24} REVOKED", "ID", "NAME");
            for t in list.as_array().into_iter().flatten() {
                println!(
                    "{:<38} {:<24} {}",
                    t["id"].as_str().unwrap_or(""),
                    t["name"].as_str().unwrap_or(""),
                    if t["revokedAt"].is_null() {
                        "no"
                    } else {
                        "yes"
                    }
                );
            }
        }
        TokensCommand::Revoke { id } => {
            let path = format!("/api/tokens/{}", encode(&id));
            c.send("DELETE", &path, Vec::new(), "application/json")
                .await?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

fn labels(w: &Value) -> String {
    w["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

/// A worker's placed apps: `app@version` (`*` when its host is not ready).
fn placed(w: &Value) -> String {
    let list: Vec<String> = w["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let version = a["version"].as_i64().map_or("-".into(), |v| v.to_string());
            let star = if a["ready"] == true { "" } else { "*" };
            format!("{}@{version}{star}", a["app"].as_str().unwrap_or("?"))
        })
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

pub async fn workers(args: WorkersArgs) -> Result<(), ExitError> {
    let c = Client::connect(&args.api)?;
    match args.command {
        WorkersCommand::List { json } => {
            let list = c
                .send("GET", "/api/workers", Vec::new(), "application/json")
                .await?;
            if json {
                print(&list);
                return Ok(());
            }
            println!(
                "{:<38} {:<16} {:>6} {:>8} {:>5} {:>9} {:>5} {:>8} {:<12} {:<9} {:<16} PLACED",
                "ID",
                "NAME",
                "CPU",
                "MEMORY",
                "MAX",
                "HEARTBEAT",
                "LOAD",
                "FREE",
                "WINDOW",
                "STATE",
                "LABELS"
            );
            for w in list.as_array().into_iter().flatten() {
                println!(
                    "{:<38} {:<16} {:>6} {:>8} {:>5} {:>8}s {:>5} {:>8} {:<12} {:<9} {:<16} {}",
                    w["id"].as_str().unwrap_or(""),
                    w["name"].as_str().unwrap_or(""),
                    format!("{}m", w["cpuMillis"]),
                    format!("{}Mi", w["memoryMib"]),
                    w["maxApps"],
                    w["heartbeatAgeMs"].as_i64().unwrap_or(0) / 1000,
                    w["load"]["loadAverage1m"]
                        .as_f64()
                        .map_or("-".into(), |l| format!("{l:.2}")),
                    w["load"]["memoryAvailableMib"]
                        .as_u64()
                        .map_or("-".into(), |m| format!("{m}Mi")),
                    w["window"].as_str().unwrap_or("always"),
                    if w["draining"] == true {
                        "draining"
                    } else {
                        "active"
                    },
                    labels(w),
                    placed(w)
                );
            }
        }
        WorkersCommand::Drain { id } => {
            let path = format!("/api/workers/{}/drain", encode(&id));
            c.send("POST", &path, Vec::new(), "application/json")
                .await?;
            eprintln!("draining {id}");
        }
        WorkersCommand::Remove { id } => {
            let path = format!("/api/workers/{}", encode(&id));
            c.send("DELETE", &path, Vec::new(), "application/json")
                .await?;
            eprintln!("removed {id}");
        }
    }
    Ok(())
}
