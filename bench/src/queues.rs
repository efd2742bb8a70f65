//! Queue trigger throughput end to end: messages put through the Azure Storage Queue REST
//! API (Shared Key signed, keep-alive connections), run by a queue-triggered native custom
//! handler, deleted once it succeeded; against putting the same messages into a queue nobody
//! reads (the enqueue path alone), in the same run, on SQLite and on PostgreSQL.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{HeaderMap, Request};
use hyper_util::rt::TokioIo;
use stratus_storage::shared_key::{Layout, Signed, sign, string_to_sign};
use stratus_storage::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};

/// Producer connections.
const CONNECTIONS: usize = 32;

/// Where the queue service is: its port, the account's path prefix (`/devstoreaccount1`, or
/// `/queues/{app}` at the management role) and a bearer token when not Shared Key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub port: u16,
    pub prefix: String,
    pub bearer: Option<String>,
}

impl Endpoint {
    /// The development account of a `stratus start` queue service.
    fn development(port: u16) -> Endpoint {
        Endpoint {
            port,
            prefix: format!("/{DEV_ACCOUNT}"),
            bearer: None,
        }
    }

    /// Headers of a request to `path` (under the prefix).
    fn headers(&self, method: &str, path: &str, query: Option<&str>, body_len: usize) -> HeaderMap {
        match &self.bearer {
            None => signed(method, path, query, body_len),
            Some(token) => {
                let mut h = HeaderMap::new();
                h.insert("x-ms-version", "2021-12-02".parse().unwrap());
                h.insert("content-length", body_len.to_string().parse().unwrap());
                h.insert("authorization", format!("Bearer {token}").parse().unwrap());
                h
            }
        }
    }
}

/// Signed headers of a request to the development account (valid for the whole run: the
/// service accepts a date within 15 minutes).
fn signed(method: &str, path: &str, query: Option<&str>, body_len: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    let now = chrono_like_now();
    h.insert("x-ms-date", now.parse().unwrap());
    h.insert("x-ms-version", "2021-12-02".parse().unwrap());
    h.insert("content-length", body_len.to_string().parse().unwrap());
    let s = Signed {
        method,
        path,
        query,
        headers: &h,
    };
    let text = string_to_sign(DEV_ACCOUNT, &s, Layout::Standard);
    let sig = sign(DEV_ACCOUNT_KEY, &text).unwrap();
    h.insert(
        "authorization",
        format!("SharedKey {DEV_ACCOUNT}:{sig}").parse().unwrap(),
    );
    h
}

/// The current time as RFC 1123 (what `x-ms-date` holds).
fn chrono_like_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn connect(port: u16) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn call(ep: &Endpoint, method: &str, path: &str, query: Option<&str>) -> (u16, HeaderMap) {
    let mut sender = connect(ep.port).await;
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::new()))
        .unwrap();
    *req.headers_mut() = ep.headers(method, path, query, 0);
    let r = sender.send_request(req).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let _ = r.into_body().collect().await;
    (status, headers)
}

/// Creates a queue (no error if it exists).
async fn create(ep: &Endpoint, queue: &str) {
    let (status, _) = call(ep, "PUT", &format!("{}/{queue}", ep.prefix), None).await;
    assert!(status == 201 || status == 204, "create {queue}: {status}");
}

/// The queue's approximate message count (visible or not).
async fn count(ep: &Endpoint, queue: &str) -> u64 {
    let (status, h) = call(
        ep,
        "GET",
        &format!("{}/{queue}", ep.prefix),
        Some("comp=metadata"),
    )
    .await;
    assert_eq!(status, 200, "metadata of {queue}");
    h["x-ms-approximate-messages-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Puts `total` messages into `queue` over [`CONNECTIONS`] keep-alive connections.
async fn produce(ep: &Endpoint, queue: &str, total: usize) -> Duration {
    let path = format!("{}/{queue}/messages", ep.prefix);
    let port = ep.port;
    let body = Bytes::from_static(
        b"<QueueMessage><MessageText>{\"job\":1,\"payload\":\"0123456789abcdef\"}</MessageText></QueueMessage>",
    );
    let headers = ep.headers("POST", &path, None, body.len());
    let left = Arc::new(AtomicUsize::new(total));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (left, path, body, headers) =
            (left.clone(), path.clone(), body.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(port).await;
            while left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                let mut req = Request::post(path.as_str())
                    .body(Full::new(body.clone()))
                    .unwrap();
                *req.headers_mut() = headers.clone();
                sender.ready().await.unwrap();
                let r = sender.send_request(req).await.unwrap();
                assert_eq!(r.status().as_u16(), 201, "put");
                let _ = r.into_body().collect().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// One backend's figures: (enqueue only msg/s, end to end msg/s).
pub async fn measure(ep: &Endpoint, total: usize, rounds: usize) -> (f64, f64) {
    create(ep, "idle").await;
    create(ep, "work").await;
    // Warm up: connections, the handler, the database's caches.
    produce(ep, "work", total / 10).await;
    while count(ep, "work").await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut enqueue = Vec::new();
    let mut end_to_end = Vec::new();
    for _ in 0..rounds {
        let took = produce(ep, "idle", total).await;
        enqueue.push(total as f64 / took.as_secs_f64());
        // Left behind, they would only grow the table the next rounds work on.
        let (status, _) = call(ep, "DELETE", &format!("{}/idle/messages", ep.prefix), None).await;
        assert_eq!(status, 204, "clear idle");
        let started = Instant::now();
        produce(ep, "work", total).await;
        // Counting is work for the database too: rarely while many are left.
        loop {
            let left = count(ep, "work").await;
            if left == 0 {
                break;
            }
            let pause = if left > 2_000 { 100 } else { 5 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        end_to_end.push(total as f64 / started.elapsed().as_secs_f64());
        eprintln!(
            "  round: enqueue {:.0}/s, end to end {:.0}/s",
            enqueue.last().unwrap(),
            end_to_end.last().unwrap()
        );
    }
    (crate::median(enqueue), crate::median(end_to_end))
}

/// Runs the queue benchmark on SQLite and on PostgreSQL (`STRATUS_BENCH_POSTGRES_URL`, a
/// server where a scratch database may be created; default the local `postgres` user).
pub fn run(duration: u64, rounds: usize, data: &Path) -> serde_json::Value {
    let total = (2_000 * duration as usize).max(5_000);
    println!(
        "\n## queue trigger: {total} messages put over REST ({CONNECTIONS} connections) → native handler → deleted\n"
    );
    println!("| store | enqueue only (baseline) | end to end | ratio |\n|---|---|---|---|");
    let admin = std::env::var("STRATUS_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("stratus_bench_{}", std::process::id());
    let pg_ok = std::process::Command::new("psql")
        .arg(&admin)
        .args(["-q", "-c", &format!("CREATE DATABASE {db}")])
        .status()
        .is_ok_and(|s| s.success());
    let pg_url = admin
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{db}"))
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (name, url) in [
        ("SQLite", None),
        ("PostgreSQL", pg_ok.then_some(pg_url.clone())),
    ] {
        // `STRATUS_BENCH_QUEUE_STORES=PostgreSQL` measures one store only.
        if std::env::var("STRATUS_BENCH_QUEUE_STORES")
            .is_ok_and(|only| !only.split(',').any(|o| o.eq_ignore_ascii_case(name)))
        {
            continue;
        }
        if name == "PostgreSQL" && url.is_none() {
            println!("| PostgreSQL | not measured: cannot create a database at {admin} | | |");
            continue;
        }
        let http = crate::free_port();
        let queue_port = crate::free_port();
        let mut cmd = crate::stratus_cmd(
            &crate::repo().join("bench/apps/queue"),
            http,
            false,
            &data.join(format!("queue-{name}")),
        );
        cmd.env("STRATUS_QUEUE_LISTEN", format!("127.0.0.1:{queue_port}"));
        if let Some(u) = &url {
            cmd.env("STRATUS_DATABASE_URL", u);
        }
        let p = crate::spawn(&format!("queue-{name}"), cmd);
        let up = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", queue_port)).is_err() {
            assert!(
                up.elapsed() < Duration::from_secs(30),
                "the queue service did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (enqueue, e2e) =
            runtime.block_on(measure(&Endpoint::development(queue_port), total, rounds));
        drop(p);
        println!(
            "| {name} | {enqueue:.0} msg/s | {e2e:.0} msg/s | {:.2}× |",
            e2e / enqueue
        );
        out.insert(
            name.into(),
            serde_json::json!({"messages": total, "enqueue_per_s": enqueue, "end_to_end_per_s": e2e}),
        );
    }
    if pg_ok {
        let _ = std::process::Command::new("psql")
            .arg(&admin)
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {db}")])
            .status();
    }
    if let Some(pg) = out.get("PostgreSQL") {
        let rate = pg["end_to_end_per_s"].as_f64().unwrap_or(0.0);
        println!(
            "\nTarget: ≥ 5,000 messages/s end to end on PostgreSQL: {}",
            if rate >= 5_000.0 { "met" } else { "NOT met" }
        );
    }
    serde_json::Value::Object(out)
}
