//! `stratus apps`: managed apps from the command line, through the management API (the same
//! API the portal uses).

use std::path::PathBuf;

use serde_json::Value;

use crate::ExitError;
use crate::api_client::{ApiFlags, Client, encode, print};

#[derive(Debug, clap::Args)]
pub struct AppsArgs {
    #[command(subcommand)]
    pub command: AppsCommand,
    #[command(flatten)]
    pub api: ApiFlags,
}

#[derive(Debug, clap::Subcommand)]
pub enum AppsCommand {
    /// List the apps.
    List,
    /// Create an app (or change its scale).
    Create {
        name: String,
        /// Replicas to keep running.
        #[arg(long)]
        min: Option<u32>,
        /// Most replicas.
        #[arg(long)]
        max: Option<u32>,
        /// Placement labels a worker must carry (`key=value`, repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Show an app.
    Show { name: String },
    /// Delete an app with its settings and versions.
    Delete { name: String },
    /// Upload a zip of the app's files as a new version (active unless --no-activate).
    Deploy {
        name: String,
        /// A zip of the app, or its directory.
        zip: PathBuf,
        #[arg(long, short)]
        message: Option<String>,
        #[arg(long)]
        no_activate: bool,
    },
    /// List an app's versions.
    Versions { name: String },
    /// Make a version the active one (a rollback when it is older).
    Activate { name: String, version: i64 },
    /// Deploy again the version live before the current one (or --to VERSION).
    Rollback {
        name: String,
        #[arg(long)]
        to: Option<i64>,
    },
    /// List an app's deployments, or show one with its log.
    Deployments { name: String, id: Option<String> },
    /// Print an app's publish profile (`.PublishSettings`) for deployment tools to import.
    PublishProfile { name: String },
    /// Print an app's publishing credential and endpoint; --rotate makes a new password.
    Publishing {
        name: String,
        #[arg(long)]
        rotate: bool,
    },
    /// Print an app's settings.
    Settings { name: String },
    /// Set an app setting.
    Set {
        name: String,
        setting: String,
        value: String,
    },
    /// Delete an app setting.
    Unset { name: String, setting: String },
    /// List an app's function keys (shared by all its replicas).
    Keys { name: String },
    /// Create or renew a key (a new value unless --value is given), or delete it.
    Key {
        name: String,
        /// `master`, `host`, `system` or `function:NAME`.
        scope: String,
        /// The key's name.
        #[arg(default_value = "default")]
        key: String,
        #[arg(long)]
        value: Option<String>,
        #[arg(long)]
        delete: bool,
    },
}

/// The API path of a key: `master`, `host/{key}`, `system/{key}`, `functions/{fn}/{key}`.
fn key_path(scope: &str, key: &str) -> Result<String, ExitError> {
    let key = encode(key);
    Ok(match scope {
        "master" => "master".into(),
        "host" => format!("host/{key}"),
        "system" => format!("system/{key}"),
        other => match other.strip_prefix("function:") {
            Some(f) if !f.is_empty() => format!("functions/{}/{key}", encode(f)),
            _ => {
                return Err(ExitError::Usage(anyhow::anyhow!(
                    "expected a scope of master, host, system or function:NAME, found {other}"
                )));
            }
        },
    })
}

pub async fn run(args: AppsArgs) -> Result<(), ExitError> {
    let c = Client::connect(&args.api)?;
    let app = |n: &str| format!("/api/apps/{}", encode(n));
    match args.command {
        AppsCommand::List => {
            let apps = c
                .send("GET", "/api/apps", Vec::new(), "application/json")
                .await?;
            println!("{:<30} {:>8} {:>9}  LABELS", "NAME", "ACTIVE", "REPLICAS");
            for a in apps.as_array().into_iter().flatten() {
                let labels: Vec<String> = a["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                println!(
                    "{:<30} {:>8} {:>9}  {}",
                    a["name"].as_str().unwrap_or(""),
                    a["activeVersion"]
                        .as_i64()
                        .map_or("-".into(), |v| v.to_string()),
                    format!("{}..{}", a["minReplicas"], a["maxReplicas"]),
                    labels.join(",")
                );
            }
        }
        AppsCommand::Create {
            name,
            min,
            max,
            labels,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(m) = min {
                body.insert("minReplicas".into(), m.into());
            }
            if let Some(m) = max {
                body.insert("maxReplicas".into(), m.into());
            }
            if !labels.is_empty() {
                let mut map = serde_json::Map::new();
                for l in &labels {
                    let (k, v) = l.split_once('=').ok_or_else(|| {
                        ExitError::Usage(anyhow::anyhow!("--label: expected key=value, found {l}"))
                    })?;
                    map.insert(k.to_string(), Value::String(v.to_string()));
                }
                body.insert("labels".into(), Value::Object(map));
            }
            let body = Value::Object(body).to_string().into_bytes();
            print(&c.send("PUT", &app(&name), body, "application/json").await?);
        }
        AppsCommand::Show { name } => {
            print(
                &c.send("GET", &app(&name), Vec::new(), "application/json")
                    .await?,
            );
        }
        AppsCommand::Delete { name } => {
            c.send("DELETE", &app(&name), Vec::new(), "application/json")
                .await?;
            eprintln!("deleted {name}");
        }
        AppsCommand::Deploy {
            name,
            zip,
            message,
            no_activate,
        } => {
            // A directory is zipped here (the same files make the same package).
            let content = if zip.is_dir() {
                crate::package::zip_dir(&zip)
            } else {
                std::fs::read(&zip)
            }
            .map_err(|e| {
                ExitError::NotFound(anyhow::anyhow!("cannot read {}: {e}", zip.display()))
            })?;
            let mut path = format!(
                "{}/versions?activate={}",
                app(&name),
                if no_activate { "false" } else { "true" }
            );
            if let Some(m) = message {
                path.push_str(&format!("&message={}", encode(&m)));
            }
            if let Ok(user) = std::env::var("USER") {
                path.push_str(&format!("&author={}", encode(&user)));
            }
            let uploaded = c.send("POST", &path, content, "application/zip").await?;
            print(&uploaded);
            wait_deployment(&c, &name, &uploaded).await?;
        }
        AppsCommand::Keys { name } => {
            let path = format!("{}/keys", app(&name));
            print(&c.send("GET", &path, Vec::new(), "application/json").await?);
        }
        AppsCommand::Key {
            name,
            scope,
            key,
            value,
            delete,
        } => {
            let path = format!("{}/keys/{}", app(&name), key_path(&scope, &key)?);
            if delete {
                c.send("DELETE", &path, Vec::new(), "application/json")
                    .await?;
                eprintln!("deleted {scope} key {key} of {name}");
            } else {
                let body = serde_json::json!({ "value": value })
                    .to_string()
                    .into_bytes();
                print(&c.send("PUT", &path, body, "application/json").await?);
            }
        }
        AppsCommand::Versions { name } => {
            let path = format!("{}/versions", app(&name));
            print(&c.send("GET", &path, Vec::new(), "application/json").await?);
        }
        AppsCommand::Rollback { name, to } => {
            let body = match to {
                Some(v) => serde_json::json!({ "version": v }).to_string().into_bytes(),
                None => Vec::new(),
            };
            let path = format!("{}/rollback", app(&name));
            let d = c.send("POST", &path, body, "application/json").await?;
            print(&d);
            wait_deployment(&c, &name, &d).await?;
        }
        AppsCommand::Deployments { name, id } => {
            let path = match id {
                Some(id) => format!("{}/deployments/{}", app(&name), encode(&id)),
                None => format!("{}/deployments", app(&name)),
            };
            print(&c.send("GET", &path, Vec::new(), "application/json").await?);
        }
        AppsCommand::PublishProfile { name } => {
            let path = format!("{}/publishprofile", app(&name));
            let xml = c
                .send_raw("GET", &path, Vec::new(), "application/json")
                .await?;
            std::io::Write::write_all(&mut std::io::stdout(), &xml)
                .map_err(|e| ExitError::Other(e.into()))?;
        }
        AppsCommand::Publishing { name, rotate } => {
            let (method, path) = if rotate {
                ("POST", format!("{}/publishing/rotate", app(&name)))
            } else {
                ("GET", format!("{}/publishing", app(&name)))
            };
            print(
                &c.send(method, &path, Vec::new(), "application/json")
                    .await?,
            );
        }
        AppsCommand::Activate { name, version } => {
            let path = format!("{}/versions/{version}/activate", app(&name));
            let d = c
                .send("POST", &path, Vec::new(), "application/json")
                .await?;
            wait_deployment(&c, &name, &d).await?;
        }
        AppsCommand::Settings { name } => {
            let path = format!("{}/settings", app(&name));
            print(&c.send("GET", &path, Vec::new(), "application/json").await?);
        }
        AppsCommand::Set {
            name,
            setting,
            value,
        } => {
            let path = format!("{}/settings/{}", app(&name), encode(&setting));
            c.send("PUT", &path, value.into_bytes(), "text/plain")
                .await?;
        }
        AppsCommand::Unset { name, setting } => {
            let path = format!("{}/settings/{}", app(&name), encode(&setting));
            c.send("DELETE", &path, Vec::new(), "text/plain").await?;
        }
    }
    Ok(())
}

/// Follows the deployment an answer names (`deployment` or `id`) until it is live or failed:
/// an error when it failed, with its log.
async fn wait_deployment(
    c: &Client,
    name: &str,
    answer: &serde_json::Value,
) -> Result<(), ExitError> {
    let Some(id) = answer["deployment"].as_str().or(answer["id"].as_str()) else {
        return Ok(());
    };
    let path = format!("/api/apps/{}/deployments/{}", encode(name), encode(id));
    loop {
        let d = c.send("GET", &path, Vec::new(), "application/json").await?;
        match d["status"].as_i64() {
            Some(4) => {
                eprintln!("{name}: deployment {id} is live (version {})", d["version"]);
                return Ok(());
            }
            Some(3) => {
                let log: Vec<String> = d["log"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect();
                return Err(ExitError::Other(anyhow::anyhow!(
                    "deployment {id} of {name} failed:\n  {}",
                    log.join("\n  ")
                )));
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}
