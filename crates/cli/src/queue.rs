//! `stratus queue`: put, peek, list and clear messages on a running queue service (Stratus's
//! own, or any that speaks the Azure Storage Queue API) from the command line.

use base64::Engine as _;
use stratus_storage::ConnectionString;
use stratus_storage::client::{ClientError, QueueClient};

use crate::ExitError;
use crate::config::{Config, ConfigFlags};

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub command: QueueCommand,
    /// A storage connection string (e.g. `UseDevelopmentStorage=true`); by default the queue
    /// service of a Stratus on this machine (STRATUS_QUEUE_LISTEN), development account.
    #[arg(long, global = true, env = "STRATUS_QUEUE_CONNECTION")]
    pub connection_string: Option<String>,
    /// How messages are encoded in the queue: `base64` (what queue triggers expect by
    /// default) or `none` (host.json `extensions.queues.messageEncoding`).
    #[arg(long, global = true, default_value = "base64", value_parser = ["base64", "none"])]
    pub encoding: String,
    #[command(flatten)]
    pub config: ConfigFlags,
}

#[derive(Debug, clap::Subcommand)]
pub enum QueueCommand {
    /// List the queues.
    List,
    /// Put messages into a queue (created if needed), one per argument.
    Put {
        queue: String,
        #[arg(required = true)]
        messages: Vec<String>,
    },
    /// Show messages at the front of a queue without taking them.
    Peek {
        queue: String,
        /// How many (1 to 32).
        #[arg(short = 'n', long, default_value_t = 32)]
        count: usize,
        /// Print a JSON array with ids, dequeue counts and insertion times.
        #[arg(long)]
        json: bool,
    },
    /// Delete every message of a queue.
    Clear { queue: String },
}

fn failed(e: ClientError) -> ExitError {
    match e {
        ClientError::Connect { .. } => ExitError::Unavailable(e.into()),
        ClientError::Service { status, .. } if status == http::StatusCode::NOT_FOUND => {
            ExitError::NotFound(e.into())
        }
        ClientError::Endpoint(_) | ClientError::NoKey => ExitError::Usage(e.into()),
        other => ExitError::Other(other.into()),
    }
}

pub async fn run(args: QueueArgs) -> Result<(), ExitError> {
    let conn = match &args.connection_string {
        Some(c) => ConnectionString::parse(c)
            .map_err(|e| ExitError::Usage(anyhow::anyhow!("--connection-string: {e}")))?,
        None => {
            let config = Config::resolve(&args.config, &crate::config::ProcessEnv)
                .map_err(|e| ExitError::Config(e.into()))?;
            let listen = config.queue_listen.ok_or_else(|| {
                ExitError::Usage(anyhow::anyhow!(
                    "the queue service is off (STRATUS_QUEUE_LISTEN=off): pass --connection-string"
                ))
            })?;
            let listen = listen.replace("0.0.0.0", "127.0.0.1");
            ConnectionString {
                account: stratus_storage::DEV_ACCOUNT.into(),
                key: Some(stratus_storage::DEV_ACCOUNT_KEY.into()),
                queue_endpoint: format!("http://{listen}/{}", stratus_storage::DEV_ACCOUNT),
                development: true,
            }
        }
    };
    let client = QueueClient::new(&conn).map_err(failed)?;
    let base64 = args.encoding == "base64";
    match args.command {
        QueueCommand::List => {
            for name in client.list().await.map_err(failed)? {
                println!("{name}");
            }
        }
        QueueCommand::Put { queue, messages } => {
            client.create(&queue).await.map_err(failed)?;
            for m in &messages {
                let text = if base64 {
                    base64::engine::general_purpose::STANDARD.encode(m)
                } else {
                    m.clone()
                };
                client.put(&queue, &text).await.map_err(failed)?;
            }
            eprintln!("put {} message(s) into '{queue}'", messages.len());
        }
        QueueCommand::Peek { queue, count, json } => {
            let peeked = client.peek(&queue, count).await.map_err(failed)?;
            let decode = |t: &str| -> String {
                if !base64 {
                    return t.to_string();
                }
                base64::engine::general_purpose::STANDARD
                    .decode(t.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_else(|| t.to_string())
            };
            if json {
                let list: Vec<serde_json::Value> = peeked
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "id": m.id,
                            "text": decode(&m.text),
                            "dequeueCount": m.dequeue_count,
                            "insertionTime": m.insertion_time,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for m in &peeked {
                    println!("{}", decode(&m.text));
                }
            }
        }
        QueueCommand::Clear { queue } => {
            client.clear(&queue).await.map_err(failed)?;
            eprintln!("cleared '{queue}'");
        }
    }
    Ok(())
}
