//! The hosts a worker runs: one `stratus start` process per assigned app and version
//! (the live one, and the one being deployed), unpacked read-only from the verified package
//! cache, with the app's settings as its environment; a version let go keeps serving until
//! the front doors have moved, an app that goes elsewhere stops.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stratus_sandbox::{Process, ProcessSpec, Stream};

/// What the management role assigned to this worker, with the package cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub app: String,
    pub version: i64,
    pub sha256: String,
    pub settings: Vec<(String, String)>,
    /// Being deployed: serves HTTP (unseen by the front doors) but takes no timer or queue
    /// work until it is live.
    pub staged: bool,
}

struct Running {
    version: i64,
    sha256: String,
    /// The app's settings it was started with (a change starts a new host).
    settings: Vec<(String, String)>,
    port: u16,
    process: Process,
    started: std::time::Instant,
    /// The last lines the host wrote to stderr (why it exited, when it does).
    last_errors: Arc<parking_lot::Mutex<std::collections::VecDeque<String>>>,
    /// Since when its functions have been down, as its pings say.
    down_since: parking_lot::Mutex<Option<std::time::Instant>>,
}

/// A host that exited on its own: when to start it again, and the wait after that.
struct Backoff {
    next: std::time::Instant,
    delay: Duration,
}

const FIRST_RESTART: Duration = Duration::from_secs(1);
const LAST_RESTART: Duration = Duration::from_secs(60);
/// How many of a host's last stderr lines explain its exit.
const KEPT_ERROR_LINES: usize = 5;

/// A host's identity here: its app and version.
type Slot = (String, i64);

/// The hosts running on this worker: one per assigned app and version (an app being
/// deployed runs its new version beside the live one until the management role switches).
pub struct Hosts {
    /// The worker's data directory (`packages/`, `apps/`, `hosts/` under it).
    pub data_dir: PathBuf,
    /// The address hosts listen on.
    listen: String,
    /// The name in the URLs the front door uses.
    advertise: String,
    /// The management API, this worker's join token and id: hosts read their app's keys
    /// through it.
    link: Option<(String, String, String)>,
    restarts: BTreeMap<Slot, Backoff>,
    /// Why a host could not start or exited, and how many times in a row, until it serves.
    failures: BTreeMap<Slot, (u32, String)>,
    /// What was last applied.
    wanted: Vec<Assignment>,
    /// Hosts no longer assigned whose app still runs here, serving until a host of the app
    /// has been ready for `handover` since they were let go (so a heartbeat has told the
    /// front doors where to go), and since when that is so.
    retiring: Vec<(Slot, Running, Option<std::time::Instant>)>,
    handover: Duration,
    running: BTreeMap<Slot, Running>,
    /// Running hosts seen serving (a host that starts serving is reported at once).
    seen_ready: std::collections::BTreeSet<Slot>,
    /// How function processes are isolated, and which layers this machine allows.
    isolation: (
        crate::worker::IsolationMode,
        Option<stratus_sandbox::isolation::Layers>,
    ),
}

/// Unpacks a zip into `dir` (a fresh directory), refusing entries that would land outside it.
fn unpack(zip: &Path, dir: &Path) -> Result<(), String> {
    let file = std::fs::File::open(zip).map_err(|e| format!("{}: {e}", zip.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("{}: not a zip archive: {e}", zip.display()))?;
    let tmp = dir.with_extension("part");
    remove_read_only(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(format!(
                "{}: entry \"{}\" would land outside the app's directory",
                zip.display(),
                entry.name()
            ));
        };
        let target = tmp.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut out = std::fs::File::create(&target).map_err(|e| e.to_string())?;
        // No more than the entry says it holds (the management role checked those sizes).
        let declared = entry.size();
        let copied = std::io::copy(&mut (&mut entry).take(declared.saturating_add(1)), &mut out)
            .map_err(|e| e.to_string())?;
        if copied > declared {
            return Err(format!(
                "{}: entry \"{}\" holds more than the {declared} bytes it declares",
                zip.display(),
                entry.name()
            ));
        }
    }
    // Run from package: the app's files are read-only to it.
    read_only(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    remove_read_only(dir);
    std::fs::rename(&tmp, dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Removes a directory `unpack` made read-only (giving write permission back first).
fn remove_read_only(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    fn writable(dir: &Path) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                writable(&e.path());
            }
        }
    }
    if dir.is_dir() {
        writable(dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Takes write permission away from everything under `dir`, deepest first.
fn read_only(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            read_only(&entry.path())?;
        } else if kind.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o444))?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
}

/// Stops a host on a task of its own.
fn stop(app: String, mut r: Running) {
    tokio::spawn(async move {
        r.process.terminate(Duration::from_secs(10)).await;
        println!("stopped {app} version {}", r.version);
    });
}

impl Running {
    fn process_alive(&mut self) -> bool {
        self.process.try_wait().is_none()
    }
}

/// What a host's ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// It serves its functions.
    Ready,
    /// It answers, its functions are not running yet.
    Starting,
    /// It answers, but its functions cannot run (handler or language worker down).
    Down,
    /// No answer (yet).
    Silent,
}

/// Asks the host on `port` `GET /admin/host/ping` (its listener is open before it serves,
/// so a connection alone says nothing), within 500 ms.
async fn probe(address: &str, port: u16) -> Probe {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect((address, port)).await.ok()?;
        s.write_all(
            b"GET /admin/host/ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await
        .ok()?;
        let mut head = Vec::with_capacity(512);
        (&mut s).take(4096).read_to_end(&mut head).await.ok()?;
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if text.get(9..12) != Some("200") {
            return Some(Probe::Silent);
        }
        let header = format!("\r\n{}:", stratus_host::admin::EXECUTOR_STATE_HEADER);
        let state = text.find(&header).map(|i| {
            text[i + header.len()..]
                .split("\r\n")
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
        Some(match state.as_deref() {
            Some("starting") => Probe::Starting,
            Some("down") => Probe::Down,
            _ => Probe::Ready,
        })
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(Probe::Silent)
}

/// Whether the host on `port` serves its functions.
async fn pings(address: &str, port: u16) -> bool {
    probe(address, port).await == Probe::Ready
}

/// How long a host's functions may be down before it is reported as failing.
const DOWN_FOR: Duration = Duration::from_secs(3);

/// The machine's load as `/proc` tells it: the 1-minute load average and the memory
/// available, in MiB (absent where `/proc` does not say).
fn machine_load() -> serde_json::Value {
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok());
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        let line = t.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kib| kib / 1024)
    });
    serde_json::json!({ "loadAverage1m": loadavg, "memoryAvailableMib": available })
}

fn free_port() -> Option<u16> {
    Some(
        std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port(),
    )
}

impl Hosts {
    /// Hosts under `data_dir`, listening on `listen`, reached as `advertise`; an old version
    /// serves for `handover` after its replacement is ready.
    pub fn new(data_dir: PathBuf, listen: String, advertise: String, handover: Duration) -> Hosts {
        Hosts {
            data_dir,
            listen,
            advertise,
            link: None,
            restarts: BTreeMap::new(),
            failures: BTreeMap::new(),
            seen_ready: std::collections::BTreeSet::new(),
            isolation: (crate::worker::IsolationMode::Off, None),
            wanted: Vec::new(),
            retiring: Vec::new(),
            handover,
            running: BTreeMap::new(),
        }
    }

    /// Hosts started from now on reach the management role at `url` as worker `id`.
    pub fn link(&mut self, url: &str, token: &str, id: &str) {
        self.link = Some((url.to_string(), token.to_string(), id.to_string()));
    }

    /// Whether a running host has not been seen serving yet.
    pub fn starting(&self) -> bool {
        self.running.keys().any(|k| !self.seen_ready.contains(k))
    }

    /// Looks at the hosts not seen serving yet: whether one of them serves now.
    pub async fn newly_ready(&mut self) -> bool {
        let probe = self.probe().to_string();
        let mut any = false;
        for (k, r) in &self.running {
            if !self.seen_ready.contains(k) && pings(&probe, r.port).await {
                self.seen_ready.insert(k.clone());
                any = true;
            }
        }
        any
    }

    /// Starts again the hosts that exited, once their back-off is over.
    pub async fn restart_exited(&mut self) {
        let wanted = self.wanted.clone();
        self.apply(&wanted).await;
    }

    /// Makes the running hosts match `wanted`.
    pub async fn apply(&mut self, wanted: &[Assignment]) {
        self.wanted = wanted.to_vec();
        let slot = |a: &Assignment| (a.app.clone(), a.version);
        // Hosts that exited on their own start again, waiting longer each time they fail
        // soon after starting.
        let exited: Vec<Slot> = self
            .running
            .iter_mut()
            .filter_map(|(k, r)| r.process.try_wait().map(|_| k.clone()))
            .collect();
        for k in exited {
            let Some(mut r) = self.running.remove(&k) else {
                continue;
            };
            self.seen_ready.remove(&k);
            let status = r
                .process
                .try_wait()
                .map_or("unknown status".into(), |s| s.to_string());
            let delay = match self.restarts.get(&k) {
                Some(b) if r.started.elapsed() < LAST_RESTART => (b.delay * 2).min(LAST_RESTART),
                _ => FIRST_RESTART,
            };
            let said: Vec<String> = r.last_errors.lock().iter().cloned().collect();
            let why = if said.is_empty() {
                format!("the app's host exited ({status})")
            } else {
                format!("the app's host exited ({status}): {}", said.join(" | "))
            };
            tracing::error!(
                app = %k.0,
                version = k.1,
                "{why}; starting it again in {} s",
                delay.as_secs()
            );
            let times = self.failures.get(&k).map_or(0, |f| f.0) + 1;
            self.failures.insert(k.clone(), (times, why));
            self.restarts.insert(
                k,
                Backoff {
                    next: std::time::Instant::now() + delay,
                    delay,
                },
            );
        }
        self.restarts
            .retain(|k, _| wanted.iter().any(|a| slot(a) == *k));
        self.failures
            .retain(|k, _| wanted.iter().any(|a| slot(a) == *k));
        let stale: Vec<Slot> = self
            .running
            .iter()
            .filter(|(k, r)| {
                !wanted
                    .iter()
                    .any(|a| slot(a) == **k && a.sha256 == r.sha256 && a.settings == r.settings)
            })
            .map(|(k, _)| k.clone())
            .collect();
        // A host of an app that stays here (another version, other settings) keeps serving
        // until another host of the app has been ready long enough; one of an app that goes
        // stops. Stopped on their own tasks: a host finishing its requests does not hold up
        // the heartbeats.
        for k in stale {
            self.seen_ready.remove(&k);
            if let Some(mut r) = self.running.remove(&k) {
                if wanted.iter().any(|a| a.app == k.0) && r.process_alive() {
                    self.retiring.push((k, r, None));
                } else {
                    stop(k.0, r);
                }
            }
        }
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retiring)
            .into_iter()
            .partition(|(k, _, _)| !wanted.iter().any(|a| a.app == k.0));
        self.retiring = kept;
        for (k, r, _) in gone {
            stop(k.0, r);
        }
        // A host let go and wanted again as it is (a rollback during the hand-over) serves on.
        for a in wanted {
            let k = slot(a);
            if self.running.contains_key(&k) {
                continue;
            }
            if let Some(i) = self
                .retiring
                .iter()
                .position(|(rk, r, _)| *rk == k && r.sha256 == a.sha256 && r.settings == a.settings)
            {
                let (k, r, _) = self.retiring.remove(i);
                println!("{} version {} serves on", a.app, a.version);
                self.running.insert(k, r);
            }
        }
        // Versions being deployed keep their timers and queue triggers back until live.
        for a in wanted {
            let gate = self.gate(a);
            if a.staged {
                if !gate.exists() {
                    let _ = gate.parent().map(std::fs::create_dir_all);
                    if let Err(e) = std::fs::write(&gate, b"") {
                        tracing::error!(app = %a.app, "cannot write {}: {e}", gate.display());
                    }
                }
            } else if gate.exists() {
                let _ = std::fs::remove_file(&gate);
                println!("{} version {} is live", a.app, a.version);
            }
        }
        for a in wanted {
            let k = slot(a);
            if self.running.contains_key(&k)
                || self
                    .restarts
                    .get(&k)
                    .is_some_and(|b| b.next > std::time::Instant::now())
            {
                continue;
            }
            match self.start(a) {
                Ok(r) => {
                    println!(
                        "serving {} version {} on {}",
                        a.app,
                        a.version,
                        self.url(r.port)
                    );
                    self.running.insert(k, r);
                }
                Err(e) => {
                    tracing::error!(app = %a.app, version = a.version, "cannot start the app's host: {e}");
                    self.failures
                        .insert(k.clone(), (u32::MAX, format!("the host cannot start: {e}")));
                    let delay = self
                        .restarts
                        .get(&k)
                        .map_or(FIRST_RESTART, |b| (b.delay * 2).min(LAST_RESTART));
                    self.restarts.insert(
                        k,
                        Backoff {
                            next: std::time::Instant::now() + delay,
                            delay,
                        },
                    );
                }
            }
        }
        let running = &self.running;
        self.seen_ready.retain(|k| running.contains_key(k));
        // Hosts let go whose app has had a ready host here long enough: they go.
        let probe = self.probe().to_string();
        let mut ready_apps = std::collections::BTreeSet::new();
        for ((app, version), r) in &self.running {
            if pings(&probe, r.port).await {
                ready_apps.insert(app.clone());
                self.failures.remove(&(app.clone(), *version));
            }
        }
        let mut kept = Vec::new();
        for (k, r, mut since) in std::mem::take(&mut self.retiring) {
            match (ready_apps.contains(&k.0), since) {
                (true, None) => since = Some(std::time::Instant::now()),
                (true, Some(t)) if t.elapsed() >= self.handover => {
                    stop(k.0, r);
                    continue;
                }
                (false, _) => since = None,
                _ => {}
            }
            kept.push((k, r, since));
        }
        self.retiring = kept;
    }

    /// A host's own data directory: one per version.
    fn host_dir(&self, a: &Assignment) -> PathBuf {
        self.data_dir
            .join("hosts")
            .join(&a.app)
            .join(format!("v{}", a.version))
    }

    /// The file that holds a version's triggers back while it is being deployed.
    fn gate(&self, a: &Assignment) -> PathBuf {
        self.host_dir(a).join("not-live")
    }

    fn start(&self, a: &Assignment) -> Result<Running, String> {
        let package = self
            .data_dir
            .join("packages")
            .join(format!("{}.zip", a.sha256));
        // By content: an app deleted and created again never runs the old one's files.
        let dir = self.data_dir.join("apps").join(&a.app).join(&a.sha256);
        if !dir.join("host.json").is_file() {
            tokio::task::block_in_place(|| unpack(&package, &dir))?;
        }
        if !dir.join("host.json").is_file() {
            return Err(format!(
                "version {} of {} has no host.json at the root of its package",
                a.version, a.app
            ));
        }
        let port = free_port().ok_or("no free port")?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut env: Vec<(OsString, OsString)> = ["PATH", "HOME", "LANG", "TZ"]
            .iter()
            .filter_map(|k| Some((OsString::from(k), std::env::var_os(k)?)))
            .collect();
        // Where this machine keeps language workers is the machine's business, not the app's.
        env.extend(std::env::vars_os().filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| k.starts_with("languageWorkers__") || k == "STRATUS_WORKERS_DIR")
        }));
        env.extend(
            self.isolation_env(a, &dir)
                .into_iter()
                .map(|(k, v)| (k.into(), v.into())),
        );
        env.push(("STRATUS_DATA_DIR".into(), self.host_dir(a).into()));
        env.push((crate::managed::ENV_TRIGGER_GATE.into(), self.gate(a).into()));
        env.push(("STRATUS_QUEUE_LISTEN".into(), "off".into()));
        // Every replica of the app is one host to Azure's code (timer locks are named by it);
        // the app's settings may still say otherwise.
        env.push((
            "AzureFunctionsWebHost__hostid".into(),
            a.app.chars().take(32).collect::<String>().into(),
        ));
        if let Some((url, token, id)) = &self.link {
            use crate::managed::{ENV_APP, ENV_TOKEN, ENV_URL};
            env.push((ENV_URL.into(), url.into()));
            env.push((ENV_TOKEN.into(), token.into()));
            env.push((
                ENV_APP.into(),
                format!(
                    "/api/workers/{id}/apps/{}",
                    crate::api_client::encode(&a.app)
                )
                .into(),
            ));
            env.push((
                crate::managed::ENV_VERSION.into(),
                a.version.to_string().into(),
            ));
        }
        for (k, v) in &a.settings {
            env.push((k.into(), v.into()));
        }
        let spec = ProcessSpec {
            program: exe,
            args: vec![
                "start".into(),
                dir.clone().into(),
                "--port".into(),
                port.to_string().into(),
                "--address".into(),
                self.listen.clone().into(),
            ],
            cwd: dir,
            env,
        };
        let app = a.app.clone();
        let last_errors = Arc::new(parking_lot::Mutex::new(std::collections::VecDeque::new()));
        let kept = last_errors.clone();
        let sink = Arc::new(move |stream: Stream, line: &str| match stream {
            Stream::Stdout => println!("[{app}] {line}"),
            Stream::Stderr => {
                eprintln!("[{app}] {line}");
                let mut kept = kept.lock();
                if kept.len() == KEPT_ERROR_LINES {
                    kept.pop_front();
                }
                kept.push_back(line.to_string());
            }
        });
        let process = Process::spawn(&spec, sink).map_err(|e| e.to_string())?;
        Ok(Running {
            version: a.version,
            sha256: a.sha256.clone(),
            settings: a.settings.clone(),
            port,
            process,
            started: std::time::Instant::now(),
            last_errors,
            down_since: parking_lot::Mutex::new(None),
        })
    }

    /// Where the front door reaches a host on `port`.
    fn url(&self, port: u16) -> String {
        if self.advertise.contains(':') && !self.advertise.starts_with('[') {
            format!("http://[{}]:{port}", self.advertise)
        } else {
            format!("http://{}:{port}", self.advertise)
        }
    }

    /// What runs here, for the heartbeat: each host's app, version, URL, whether it
    /// accepts connections, and why it failed when it did.
    pub async fn status(&self) -> serde_json::Value {
        let mut hosts = Vec::new();
        let probe_at = self.probe();
        let running = self.running.iter().map(|(k, r)| (k, r, false));
        let retiring = self.retiring.iter().map(|(k, r, _)| (k, r, true));
        for ((app, version), r, retiring) in running.chain(retiring) {
            let state = probe(probe_at, r.port).await;
            let mut host = serde_json::json!({
                "app": app,
                "version": version,
                "url": self.url(r.port),
                "ready": state == Probe::Ready,
                "retiring": retiring,
            });
            // What the app's function processes use, when they run in a group of their own.
            if self.isolation.1.is_some()
                && let Some(g) = stratus_sandbox::cgroup::Group::existing(app)
            {
                host["usage"] = serde_json::json!({
                    "memoryBytes": g.memory_used(),
                    "memoryLimitBytes": g.memory_limit(),
                    "cpuSeconds": g.cpu_used_us().map(|us| us as f64 / 1e6),
                    "oomKills": g.oom_kills(),
                });
            }
            let mut since = r.down_since.lock();
            if state == Probe::Down {
                let at = *since.get_or_insert_with(std::time::Instant::now);
                if at.elapsed() >= DOWN_FOR {
                    let said: Vec<String> = r.last_errors.lock().iter().cloned().collect();
                    host["error"] = serde_json::Value::String(format!(
                        "the app's functions cannot run (its handler or language worker is down): {}",
                        said.join(" | ")
                    ));
                }
            } else {
                *since = None;
            }
            hosts.push(host);
        }
        // A host that failed more than once (or cannot start at all) says why: a deployment
        // waiting for it fails rather than time out.
        for ((app, version), (times, why)) in &self.failures {
            if *times < 2 {
                continue;
            }
            if !self.running.contains_key(&(app.clone(), *version)) {
                hosts.push(serde_json::json!({
                    "app": app,
                    "version": version,
                    "ready": false,
                    "error": why,
                }));
            } else if let Some(h) = hosts.iter_mut().find(|h| {
                h["app"] == app.as_str() && h["version"] == *version && h["ready"] == false
            }) {
                h["error"] = serde_json::Value::String(why.clone());
            }
        }
        serde_json::json!({
            "hosts": hosts,
            "load": machine_load(),
            "isolation": crate::worker::isolation_json(self.isolation.0, self.isolation.1.as_ref()),
        })
    }

    /// Isolates the function processes of the hosts started from now on.
    pub fn isolate(
        &mut self,
        mode: crate::worker::IsolationMode,
        layers: Option<stratus_sandbox::isolation::Layers>,
    ) {
        self.isolation = (mode, layers);
    }

    /// The environment that has a host isolate its app's function processes (nothing when
    /// this worker cannot make namespaces): the app's version directory read-only, the rest
    /// of the worker's data directory hidden, the app's own user, and the limits of its
    /// settings (`STRATUS_MEMORY_LIMIT_MB`, 1536 by default; `STRATUS_CPU_LIMIT_MILLICORES`,
    /// none; `STRATUS_PROCESS_LIMIT`, 512).
    fn isolation_env(&self, a: &Assignment, dir: &std::path::Path) -> Vec<(String, String)> {
        let Some(layers) = &self.isolation.1 else {
            return Vec::new();
        };
        if layers.namespaces.is_err() {
            return Vec::new();
        }
        let setting = |name: &str| {
            a.settings
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        };
        let isolation = stratus_sandbox::isolation::Isolation {
            app: a.app.clone(),
            root: Some(dir.to_path_buf()),
            hide: vec![self.data_dir.clone()],
            uid: layers
                .app_users
                .is_ok()
                .then(|| stratus_sandbox::isolation::app_uid(&a.app)),
            limits: stratus_sandbox::cgroup::Limits {
                memory_bytes: Some(setting("STRATUS_MEMORY_LIMIT_MB").unwrap_or(1536) << 20),
                cpu_millis: setting("STRATUS_CPU_LIMIT_MILLICORES"),
                pids: Some(setting("STRATUS_PROCESS_LIMIT").unwrap_or(512)),
            },
            tmp_mb: 256,
            user_namespace: layers.user_namespace,
        };
        isolation.to_env()
    }

    /// Where hosts are reached from here (a wildcard listener on loopback).
    fn probe(&self) -> &str {
        match self.listen.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) if ip.is_unspecified() => "::1",
            Ok(ip) if ip.is_unspecified() => "127.0.0.1",
            _ => self.listen.as_str(),
        }
    }

    /// Stops every host.
    pub async fn stop_all(&mut self) {
        let retiring = std::mem::take(&mut self.retiring)
            .into_iter()
            .map(|(k, r, _)| (k, r));
        for ((app, _), mut r) in std::mem::take(&mut self.running)
            .into_iter()
            .chain(retiring)
        {
            r.process.terminate(Duration::from_secs(10)).await;
            println!("stopped {app} version {}", r.version);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn an_unpacked_app_is_read_only_and_can_still_be_removed() {
        let d = tempfile::tempdir().unwrap();
        let zip_path = d.path().join("app.zip");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        z.start_file("host.json", opts).unwrap();
        std::io::Write::write_all(&mut z, br#"{"version": "2.0"}"#).unwrap();
        z.start_file("hello/function.json", opts).unwrap();
        std::io::Write::write_all(&mut z, b"{}").unwrap();
        z.finish().unwrap();
        let dir = d.path().join("apps/shop/abc");
        unpack(&zip_path, &dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("host.json")), 0o444);
        assert_eq!(mode(&dir.join("hello")), 0o555);
        assert_eq!(mode(&dir), 0o555);
        // Unpacked again over itself (a broken earlier attempt), then removed.
        unpack(&zip_path, &dir).unwrap();
        remove_read_only(&dir);
        assert!(!dir.exists());
    }
}
