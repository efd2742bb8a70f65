//! Test support: start the real `stratus` binary on an app, and talk raw HTTP/1.1 to it.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const MASTER: &str = "testMasterKey";
pub const HOST_KEY: &str = "testFunctionKey";
pub const SYSTEM_KEY: &str = "testSystemKey";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn sample(name: &str) -> PathBuf {
    repo().join("samples").join(name)
}

pub fn test_app(name: &str) -> PathBuf {
    repo().join("tests/apps").join(name)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `std::process::Command` for the binary under test.
#[allow(clippy::disallowed_methods, reason = "tests start the real binary")]
pub fn stratus_command() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"));
    // Workers read these to decide they run on Azure's own machines.
    c.env_remove("RUST_LOG")
        .env_remove("CONTAINER_NAME")
        // Tests that want the queue service give it a port of its own.
        .env("STRATUS_QUEUE_LISTEN", "off")
        .env_remove("WEBSITE_INSTANCE_ID")
        .env("STRATUS_ALLOW_WORLD_READABLE_SECRETS", "1");
    c
}

/// Runs `stratus` to completion: its standard output when it succeeds, else its standard
/// error.
pub fn run_stratus(cmd: &mut std::process::Command) -> Result<String, String> {
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// How to start an app.
pub struct Options {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    /// Seed Azure secrets files with the well-known test keys (as Azure's own harnesses do).
    pub file_secrets: bool,
    pub wait_running: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            env: Vec::new(),
            args: Vec::new(),
            file_secrets: true,
            wait_running: true,
        }
    }
}

impl Options {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn store_keys(mut self) -> Self {
        self.file_secrets = false;
        self
    }

    /// Runs the app with the JSON invocation protocol for every function.
    pub fn json_protocol(self) -> Self {
        self.env(
            "AzureFunctionsJobHost__customHandler__enableForwardingHttpRequest",
            "false",
        )
    }
}

/// A running `stratus start`.
pub struct Stratus {
    pub port: u16,
    pub child: Child,
    pub data: tempfile::TempDir,
    pub app: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Stratus {
    pub fn start(app: &Path, opts: Options) -> Stratus {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let stdout = data.path().join("stdout.log");
        let stderr = data.path().join("stderr.log");
        let mut cmd = stratus_command();
        cmd.arg("start")
            .arg(app)
            .arg("--port")
            .arg(port.to_string())
            .arg("--address")
            .arg("127.0.0.1");
        cmd.args(&opts.args);
        cmd.env("STRATUS_DATA_DIR", data.path());
        if opts.file_secrets {
            let secrets = data.path().join("secrets");
            std::fs::create_dir_all(&secrets).unwrap();
            std::fs::write(
                secrets.join("host.json"),
                format!(
                    r#"{{"masterKey":{{"name":"master","value":"{MASTER}","encrypted":false}},"functionKeys":[{{"name":"default","value":"{HOST_KEY}","encrypted":false}}],"systemKeys":[{{"name":"eventgridextensionconfig_extension","value":"{SYSTEM_KEY}","encrypted":false}}]}}"#
                ),
            )
            .unwrap();
            cmd.env("AzureWebJobsSecretStorageType", "files")
                .env("FUNCTIONS_SECRETS_PATH", &secrets);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().unwrap();
        let mut s = Stratus {
            port,
            child,
            data,
            app: app.to_path_buf(),
            stdout,
            stderr,
        };
        s.wait_up(opts.wait_running);
        s
    }

    fn wait_up(&mut self, running: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("stratus exited early ({status}):\n{}", self.logs());
            }
            if let Ok(r) = self.try_request("GET", "/admin/host/ping", &[], b"")
                && r.status == 200
            {
                if !running {
                    return;
                }
                let key = self.master_key();
                if let Ok(s) = self.try_request(
                    "GET",
                    "/admin/host/status",
                    &[("x-functions-key", &key)],
                    b"",
                ) && s.text().contains("\"Running\"")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "stratus did not become ready:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The master key (the seeded one, or the store's via `stratus keys get`).
    pub fn master_key(&self) -> String {
        if self.data.path().join("secrets/host.json").exists() {
            return MASTER.to_string();
        }
        self.keys(&["get", "_master"]).trim().to_string()
    }

    /// Runs `stratus keys ARGS --app APP` against this instance's data directory.
    pub fn keys(&self, args: &[&str]) -> String {
        let out = stratus_command()
            .arg("keys")
            .args(args)
            .arg("--app")
            .arg(&self.app)
            .env("STRATUS_DATA_DIR", self.data.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stratus keys {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Waits until the console output contains `needle` (logs are written in batches).
    pub fn wait_log(&self, needle: &str) {
        self.wait_log_within(needle, Duration::from_secs(5));
    }

    /// Like [`Stratus::wait_log`], for up to `limit`.
    pub fn wait_log_within(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.logs().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the logs never showed {needle:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        request(self.port, method, path, headers, body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.logs()))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn get_with_key(&self, path: &str, key: &str) -> Response {
        self.request("GET", path, &[("x-functions-key", key)], b"")
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "INT");
        wait_exit(&mut self.child, Duration::from_secs(20))
    }
}

impl Drop for Stratus {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "INT");
            if wait_exit_opt(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

#[allow(clippy::disallowed_methods, reason = "tests send signals with kill(1)")]
pub fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn wait_exit_opt(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    wait_exit_opt(child, limit).expect("process did not exit in time")
}

/// The standard output of a tool a test ran, which must have succeeded; a failure shows what
/// it printed and what the server (`log`) said.
pub fn succeeded(out: &std::process::Output, log: impl FnOnce() -> String) -> String {
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns Some, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: localhost:{port}\r\n"));
    }
    let mut has_length = false;
    for (k, v) in headers {
        has_length |=
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length && (!body.is_empty() || method == "POST" || method == "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// One HTTPS request to `127.0.0.1:port` for host `name`, trusting only `ca_pem`.
pub fn request_tls(
    port: u16,
    name: &str,
    ca_pem: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    use rustls::pki_types::pem::PemObject as _;
    let other = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| other(&e))?)
            .map_err(|e| other(&e))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| other(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server =
        rustls::pki_types::ServerName::try_from(name.to_string()).map_err(|e| other(&e))?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), server)
        .map_err(|e| other(&e))?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nHost: {name}:{port}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer closing without close_notify after a complete response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers
                .entry(k.trim().to_ascii_lowercase())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    let rest = &raw[end + 4..];
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.iter().any(|t| t.eq_ignore_ascii_case("chunked")));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A database of its own on the machine's PostgreSQL, dropped at the end.
pub struct Database {
    admin: String,
    name: String,
}

impl Database {
    pub fn create(purpose: &str) -> Database {
        let admin = std::env::var("STRATUS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let name = format!("stratus_{purpose}_{}", std::process::id());
        let db = Database { admin, name };
        db.psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name));
        db.psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    pub fn psql(&self, sql: &str) {
        #[allow(clippy::disallowed_methods, reason = "the test prepares its database")]
        let out = std::process::Command::new("psql")
            .arg(&self.admin)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .expect("psql (PostgreSQL's client) is needed");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map_or(self.admin.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Steady GET load on a port from `threads` clients until stopped; every answer but a 200
/// is a failure.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    pub fn start(port: u16, path: &str, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, ok, path) = (stop.clone(), ok.clone(), path.to_string());
                std::thread::spawn(move || {
                    let mut errors = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match request(port, "GET", &path, &[], b"") {
                            Ok(r) if r.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                errors.push(match other {
                                    Ok(r) => format!("{} {}", r.status, r.text()),
                                    Err(e) => e.to_string(),
                                });
                            }
                        }
                    }
                    errors
                })
            })
            .collect();
        Load { stop, ok, threads }
    }

    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the clients: (successes, failures with their answers).
    pub fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        (self.ok.load(Ordering::Relaxed), errors)
    }
}
