//! `stratus publish [DIR] --app NAME`: zips the app's files (minus `.funcignore`) while
//! uploading them to the app's publishing endpoint as Kudu's asynchronous zip deploy, follows
//! the deployment to its end and prints the function URLs. Endpoint and credential come from
//! the management API, or from a publish profile.

mod files;
mod scm_client;
mod stream_zip;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde_json::Value;

use crate::ExitError;
use crate::api_client::{ApiFlags, Client, encode};
use crate::config::ConfigFlags;
use scm_client::Endpoint;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The app's directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The app to publish (taken from the profile when --profile is given).
    #[arg(long)]
    pub app: Option<String>,
    /// The app's publishing endpoint (`https://{app}.scm.{domain}:PORT` or
    /// `https://host:PORT/scm/{app}`); by default as the management API or profile gives it.
    #[arg(long)]
    pub url: Option<String>,
    /// A publish profile (`.PublishSettings`) to take the endpoint and credential from.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The authority to trust for HTTPS (PEM); by default the management API's.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The management API.
    #[arg(
        long,
        env = "STRATUS_MANAGE_URL",
        default_value = "http://127.0.0.1:7080"
    )]
    pub api: String,
    #[command(flatten)]
    pub config: ConfigFlags,
}

/// What a publish profile says.
struct Profile {
    app: String,
    url: String,
    user: String,
    password: String,
    app_url: String,
}

/// The value of attribute `name` in `element`.
fn attribute(element: &str, name: &str) -> Option<String> {
    let at = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let value = &element[at..at + element[at..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The Zip Deploy profile of a `.PublishSettings` document (else its Web Deploy one).
fn parse_profile(xml: &str) -> Result<Profile, String> {
    let profiles: Vec<&str> = xml
        .split("<publishProfile")
        .skip(1)
        .map(|p| &p[..p.find('>').unwrap_or(p.len())])
        .collect();
    let pick = |method: &str| {
        profiles
            .iter()
            .find(|p| attribute(p, "publishMethod").as_deref() == Some(method))
    };
    let p = pick("ZipDeploy")
        .or_else(|| pick("MSDeploy"))
        .ok_or("the profile has no Zip Deploy or Web Deploy entry")?;
    let get = |k: &str| attribute(p, k).ok_or(format!("the profile's entry has no {k}"));
    let url = get("publishUrl")?;
    let user = get("userName")?;
    let app = user
        .rsplit_once('\\')
        .map_or(user.as_str(), |(_, u)| u)
        .trim_start_matches('$')
        .to_string();
    let url = if url.contains("://") {
        url
    } else {
        format!("https://{url}")
    };
    Ok(Profile {
        app,
        url,
        user,
        password: get("userPWD")?,
        app_url: attribute(p, "destinationAppUrl").unwrap_or_default(),
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The function URLs of the app in `dir` under `app_url`, as its function.json files say.
fn function_urls(dir: &std::path::Path, app_url: &str) -> Vec<(String, String)> {
    let prefix = std::fs::read_to_string(dir.join("host.json"))
        .ok()
        .and_then(|t| stratus_model::json::parse_document("host.json", &t).ok())
        .and_then(|d| stratus_model::HostConfig::parse(d).ok())
        .map_or_else(|| "api".to_string(), |h| h.http.route_prefix);
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    dirs.sort_by_key(|e| e.file_name());
    for e in dirs {
        let name = e.file_name().to_string_lossy().to_string();
        let file = format!("{name}/function.json");
        let Some(config) = std::fs::read_to_string(e.path().join("function.json"))
            .ok()
            .and_then(|t| stratus_model::json::parse_document(&file, &t).ok())
            .and_then(|d| stratus_model::FunctionConfig::parse(&name, &file, d).ok())
        else {
            continue;
        };
        if let Some(http) = config.http() {
            let route = http.route.clone().unwrap_or_else(|| name.clone());
            let path = [prefix.as_str(), route.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches('/'))
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, format!("{}/{path}", app_url.trim_end_matches('/'))));
        }
    }
    out
}

pub async fn run(args: PublishArgs) -> Result<(), ExitError> {
    let dir = args.dir.clone();
    if !dir.join("host.json").is_file() {
        return Err(ExitError::Config(anyhow::anyhow!(
            "{} has no host.json: publish the app's root directory",
            dir.display()
        )));
    }
    let files = files::app_files(&dir).map_err(|e| ExitError::Config(anyhow::anyhow!(e)))?;
    let api = || {
        Client::connect(&ApiFlags {
            url: args.api.clone(),
            config: args.config.clone(),
        })
    };
    // Where to publish, as whom.
    let (app, mut url, user, password, app_url) = match &args.profile {
        Some(path) => {
            let xml = std::fs::read_to_string(path)
                .map_err(|e| ExitError::NotFound(anyhow::anyhow!("{}: {e}", path.display())))?;
            let p = parse_profile(&xml)
                .map_err(|e| ExitError::Config(anyhow::anyhow!("{}: {e}", path.display())))?;
            (p.app, p.url, p.user, p.password, p.app_url)
        }
        None => {
            let app = args.app.clone().ok_or_else(|| {
                ExitError::Usage(anyhow::anyhow!(
                    "name the app: --app NAME (or give --profile)"
                ))
            })?;
            let c = api()?;
            let v = c
                .send(
                    "GET",
                    &format!("/api/apps/{}/publishing", encode(&app)),
                    Vec::new(),
                    "application/json",
                )
                .await?;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (app, s("scmUrl"), s("userName"), s("password"), s("appUrl"))
        }
    };
    if let Some(u) = &args.url {
        url = u.clone();
    }
    let ca = match &args.ca {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| ExitError::NotFound(anyhow::anyhow!("{}: {e}", path.display())))?,
        ),
        None if url.starts_with("https://") => {
            let c = api()?;
            let pem = c
                .send_raw("GET", "/api/scm/ca.pem", Vec::new(), "application/json")
                .await?;
            Some(String::from_utf8_lossy(&pem).to_string())
        }
        None => None,
    };
    let endpoint = Endpoint::new(&url, &user, &password, ca.as_deref())?;
    println!(
        "publishing {} ({} files) to {app} at {}",
        dir.display(),
        files.len(),
        endpoint.url()
    );

    // The package is made while it is sent.
    let sent = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let zipping = {
        let files = files.clone();
        let tx = tx.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let writer = ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            let mut zip = stream_zip::StreamZip::new(writer);
            for f in &files {
                let mut file = std::fs::File::open(&f.path)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", f.path.display())))?;
                zip.add(&f.name, f.mode, &mut file)?;
            }
            let (mut writer, total) = zip.finish()?;
            writer.send_rest()?;
            Ok(total)
        })
    };
    drop(tx);
    let counter = sent.clone();
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let counter = counter.clone();
        async move {
            let item = rx.recv().await?;
            if let Ok(b) = &item {
                counter.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            Some((item.map(hyper::body::Frame::data), rx))
        }
    });
    let body = http_body_util::StreamBody::new(stream).boxed();
    let started = std::time::Instant::now();
    let progress = {
        let sent = sent.clone();
        let show = std::io::stderr().is_terminal();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                if show {
                    let n = sent.load(Ordering::Relaxed);
                    let rate = mib(n) / started.elapsed().as_secs_f64().max(0.001);
                    eprint!("\ruploading {:.1} MiB ({rate:.1} MiB/s)   ", mib(n));
                }
            }
        })
    };
    let user_name = std::env::var("USER").unwrap_or_else(|_| user.clone());
    let path = format!(
        "{}/api/zipdeploy?isAsync=true&deployer=stratus_publish&author={}",
        endpoint.prefix,
        encode(&user_name)
    );
    let answer = endpoint
        .send("POST", &path, &[("Content-Type", "application/zip")], body)
        .await;
    progress.abort();
    let zipped = zipping.await.map_err(|e| ExitError::Other(e.into()))?;
    let total = sent.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let (status, headers, text) = answer?;
    if let Err(e) = zipped {
        return Err(ExitError::Config(anyhow::anyhow!(
            "cannot package {}: {e}",
            dir.display()
        )));
    }
    println!(
        "uploaded {:.1} MiB in {seconds:.2} s ({:.1} MiB/s)",
        mib(total),
        mib(total) / seconds.max(0.001)
    );
    let message = || {
        serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| v["Message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&text).to_string())
    };
    match status.as_u16() {
        200 | 202 => {}
        401 | 403 => {
            return Err(ExitError::Config(anyhow::anyhow!(
                "the publishing endpoint refused the credential ({status}): {}",
                message()
            )));
        }
        409 => return Err(ExitError::Unavailable(anyhow::anyhow!("{}", message()))),
        400 | 413 => {
            return Err(ExitError::Config(anyhow::anyhow!(
                "the package was refused: {}",
                message()
            )));
        }
        _ => return Err(ExitError::Other(anyhow::anyhow!("{status}: {}", message()))),
    }
    // Follow the deployment to its end, printing its log as it grows.
    let id = headers
        .get("scm-deployment-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let location = headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| endpoint.path_of(l));
    let mut result: Value = serde_json::from_slice(&text).unwrap_or_default();
    let mut shown = 0;
    loop {
        let id = id
            .clone()
            .or_else(|| result["id"].as_str().map(str::to_string));
        if let Some(id) = &id {
            let log_path = format!("{}/api/deployments/{}/log", endpoint.prefix, encode(id));
            if let Ok((s, _, log)) = endpoint
                .send("GET", &log_path, &[], scm_client::empty())
                .await
                && s.is_success()
            {
                let entries: Vec<Value> = serde_json::from_slice(&log).unwrap_or_default();
                for e in entries.iter().skip(shown) {
                    println!("  {}", e["message"].as_str().unwrap_or_default());
                }
                shown = shown.max(entries.len());
            }
        }
        match result["status"].as_i64() {
            Some(4) => break,
            Some(3) => {
                return Err(ExitError::Other(anyhow::anyhow!(
                    "deployment {} failed: {}",
                    result["id"].as_str().unwrap_or_default(),
                    result["status_text"].as_str().unwrap_or_default()
                )));
            }
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let look = match (&id, &location) {
            (Some(id), _) => format!("{}/api/deployments/{}", endpoint.prefix, encode(id)),
            (None, Some(l)) => l.clone(),
            (None, None) => format!("{}/api/deployments/latest", endpoint.prefix),
        };
        let (s, _, body) = endpoint
            .send("GET", &look, &[], scm_client::empty())
            .await?;
        if !(s == http::StatusCode::OK || s == http::StatusCode::ACCEPTED) {
            return Err(ExitError::Other(anyhow::anyhow!(
                "following the deployment: {s}"
            )));
        }
        result = serde_json::from_slice(&body).unwrap_or_default();
    }
    println!(
        "deployment {} is live: version {} of {app}",
        result["id"].as_str().unwrap_or_default(),
        result["version"]
    );
    let urls = function_urls(&dir, &app_url);
    if urls.is_empty() {
        println!("functions are indexed by the language worker; the app is at {app_url}");
    } else {
        println!("functions:");
        for (name, url) in urls {
            println!("  {name}: {url}");
        }
    }
    Ok(())
}

/// Size of the pieces the package is sent in.
const CHUNK: usize = 256 << 10;

/// Hands what the zip writer writes to the upload, a piece at a time.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_rest(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(piece)))
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_rest()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_gives_the_zip_deploy_endpoint() {
        let xml = r#"<publishData>
  <publishProfile profileName="shop - Web Deploy" publishMethod="MSDeploy" publishUrl="shop.scm.x.test:443" msdeploySite="shop" userName="$shop" userPWD="a&amp;b" destinationAppUrl="https://shop.x.test"><databases /></publishProfile>
  <publishProfile profileName="shop - Zip Deploy" publishMethod="ZipDeploy" publishUrl="shop.scm.x.test:7443" userName="$shop" userPWD="a&amp;b" destinationAppUrl="https://shop.x.test"><databases /></publishProfile>
</publishData>"#;
        let p = parse_profile(xml).unwrap();
        assert_eq!(p.app, "shop");
        assert_eq!(p.url, "https://shop.scm.x.test:7443");
        assert_eq!(p.password, "a&b");
        assert_eq!(p.app_url, "https://shop.x.test");
        assert!(parse_profile("<publishData/>").is_err());
    }
}
