//! The publishing endpoint as Azure's deployment tools use it: a publish profile, HTTPS with
//! the cluster's certificate authority, Kudu's settings and zip deploy sequences, deployment
//! status and logs; new versions going live on every replica at once; hostile packages
//! refused with the live version untouched.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::manage::{Manage, manage_with, spawn_worker, zip_dir};
use crate::support::{Response, eventually, request, request_tls};

/// A publish profile's attribute of the profile with `method`.
fn attribute(xml: &str, method: &str, name: &str) -> String {
    let start = xml
        .find(&format!("publishMethod=\"{method}\""))
        .expect("the profile");
    let profile = &xml[xml[..start].rfind("<publishProfile").unwrap()..];
    let profile = &profile[..profile.find('>').unwrap()];
    let at = profile.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    profile[at..at + profile[at..].find('"').unwrap()]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// A client of one app's publishing endpoint, as a publish profile describes it.
struct Kudu {
    port: u16,
    host: String,
    ca: String,
    authorization: String,
}

impl Kudu {
    fn from_profile(m: &Manage, app: &str) -> Kudu {
        let ca = request(m.port, "GET", "/api/scm/ca.pem", &[], b"").unwrap();
        assert_eq!(ca.status, 200, "{}", ca.text());
        let xml = m.admin_get(&format!("/api/apps/{app}/publishprofile"));
        assert!(xml.starts_with("<publishData>"), "{xml}");
        let url = attribute(&xml, "ZipDeploy", "publishUrl");
        let (host, port) = url.rsplit_once(':').unwrap();
        assert!(host.contains(".scm."), "{url}");
        assert_eq!(
            port,
            m.scm.to_string(),
            "the profile names the endpoint's port"
        );
        assert_eq!(attribute(&xml, "MSDeploy", "publishUrl"), url);
        let user = attribute(&xml, "ZipDeploy", "userName");
        assert_eq!(user, format!("${app}"));
        let password = attribute(&xml, "ZipDeploy", "userPWD");
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Kudu {
            port: port.parse().unwrap(),
            host: host.to_string(),
            ca: ca.text(),
            authorization: format!("Basic {basic}"),
        }
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut all = vec![("Authorization", self.authorization.as_str())];
        all.extend_from_slice(headers);
        request_tls(self.port, &self.host, &self.ca, method, path, &all, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The path of an absolute URL this endpoint gave out (checking it names this endpoint).
    fn path_of(&self, url: &str) -> String {
        let prefix = format!("https://{}:{}", self.host, self.port);
        url.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{url} is not under {prefix}"))
            .to_string()
    }

    /// Follows a deployment's `Location` as the tools do until it is finished.
    fn follow(&self, location: &str) -> Value {
        let path = self.path_of(location);
        eventually(Duration::from_secs(60), || {
            let r = self.send("GET", &path, &[], b"");
            assert!(
                r.status == 200 || r.status == 202,
                "{} {}",
                r.status,
                r.text()
            );
            let v = r.json();
            let status = v["status"].as_i64().expect("an integer status");
            if status == 3 || status == 4 {
                Some(v)
            } else {
                std::thread::sleep(Duration::from_millis(200));
                None
            }
        })
    }
}

/// The greeter sample with `greeting` as its built-in greeting, zipped.
fn greeter(dir: &std::path::Path, greeting: &str) -> Vec<u8> {
    let app = dir.join(format!("app-{greeting}"));
    copy_dir(&crate::support::sample("python-handler"), &app);
    let handler = std::fs::read_to_string(app.join("handler.py")).unwrap();
    let handler = handler.replace(
        "os.environ.get(\"GREETING\", \"Hello\")",
        &format!("\"{greeting}\""),
    );
    assert!(handler.contains(&format!("GREETING = \"{greeting}\"")));
    std::fs::write(app.join("handler.py"), handler).unwrap();
    let zip = dir.join(format!("{greeting}.zip"));
    zip_dir(&app, &zip);
    std::fs::read(zip).unwrap()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Answers of the app's hello function through the front door, in order, until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Sampler {
    fn start(front: u16) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                seen.push(
                    match request(front, "GET", "/apps/shop/api/hello?name=x", &[], b"") {
                        Ok(r) if r.status == 200 => r.text(),
                        Ok(r) => format!("{} {}", r.status, r.text()),
                        Err(e) => e.to_string(),
                    },
                );
            }
            seen
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn hostile_zip(entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, content) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(content).unwrap();
    }
    if let Some((name, target)) = link {
        z.add_symlink(name, target, opts).unwrap();
    }
    z.finish().unwrap().into_inner()
}

#[test]
fn deployment_tools_publish_over_https_and_versions_go_live_everywhere_at_once() {
    let m = manage_with(&["--deploy-timeout-seconds", "30"]);
    let token = m.join_token();
    let _a = spawn_worker(&m, &token, "w1", &[]);
    let _b = spawn_worker(&m, &token, "w2", &[]);
    m.apps(&["create", "shop", "--min", "2", "--max", "2"])
        .unwrap();
    let kudu = Kudu::from_profile(&m, "shop");
    let dir = tempfile::tempdir().unwrap();

    // A wrong password, and no password, are refused.
    let r = request_tls(
        kudu.port,
        &kudu.host,
        &kudu.ca,
        "GET",
        "/api/settings",
        &[("Authorization", "Basic JHNob3A6bm9wZQ==")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));

    // GitHub's functions action: read the settings, set a build setting and see it, deploy
    // asynchronously, follow the Location to the end, look the deployment up, its log, the
    // manifest (absent), and put the setting back.
    let settings = kudu.send("GET", "/api/settings", &[], b"");
    assert_eq!(settings.status, 200, "{}", settings.text());
    let settings = settings.json();
    assert!(
        settings["AzureWebJobsStorage"]
            .as_str()
            .unwrap()
            .contains("/queues/shop"),
        "{settings}"
    );
    assert_eq!(settings["WEBSITE_RUN_FROM_PACKAGE"], "1");
    let json_type = [("Content-Type", "application/json; charset=utf-8")];
    let r = kudu.send(
        "POST",
        "/api/settings",
        &json_type,
        br#"{"SCM_DO_BUILD_DURING_DEPLOYMENT": "false"}"#,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = kudu.send(
        "GET",
        "/api/settings/SCM_DO_BUILD_DURING_DEPLOYMENT",
        &[],
        b"",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "\"false\""));
    let v1 = greeter(dir.path(), "Hello");
    let r = kudu.send(
        "POST",
        "/api/zipdeploy?isAsync=true&deployer=GITHUB_ZIP_DEPLOY_FUNCTIONS_V1&message=%7B%22type%22%3A%22deployment%22%7D",
        &[("Content-Type", "application/octet-stream")],
        &v1,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let location = r.header("location").expect("a Location").to_string();
    assert!(
        location.contains("/api/deployments/latest?deployer=GITHUB_ZIP_DEPLOY_FUNCTIONS_V1&time="),
        "{location}"
    );
    assert!(r.header("retry-after").is_some());
    let done = kudu.follow(&location);
    assert_eq!(done["status"], 4, "{done}");
    let id = done["id"].as_str().unwrap().to_string();
    let d = kudu.send("GET", &format!("/api/deployments/{id}"), &[], b"");
    assert_eq!(d.status, 200);
    let d = d.json();
    assert_eq!(
        (d["complete"].clone(), d["active"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    assert_eq!(d["deployer"], "GITHUB_ZIP_DEPLOY_FUNCTIONS_V1");
    assert_eq!(d["provisioningState"], "Succeeded");
    let log = kudu.send(
        "GET",
        &kudu.path_of(d["log_url"].as_str().unwrap()),
        &[],
        b"",
    );
    assert_eq!(log.status, 200);
    let log = log.text();
    assert!(log.contains("Function hello (httpTrigger)"), "{log}");
    let manifest = kudu.send(
        "GET",
        &format!("/api/vfs/site/deployments/{id}/manifest"),
        &[],
        b"",
    );
    assert_eq!(manifest.status, 404);
    let r = kudu.send(
        "DELETE",
        "/api/settings/SCM_DO_BUILD_DURING_DEPLOYMENT",
        &[],
        b"",
    );
    assert_eq!(r.status, 204);
    let r = kudu.send(
        "GET",
        "/api/settings/SCM_DO_BUILD_DURING_DEPLOYMENT",
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    m.wait_hello("shop", "Hello, x!");

    // The app's files, read from the live version.
    let listing = kudu.send("GET", "/api/vfs/site/wwwroot/", &[], b"");
    assert_eq!(listing.status, 200);
    let names: Vec<String> = listing
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"host.json".to_string()) && names.contains(&"hello".to_string()),
        "{names:?}"
    );
    let file = kudu.send("GET", "/api/vfs/site/wwwroot/hello/function.json", &[], b"");
    assert_eq!(file.status, 200);
    assert!(file.text().contains("httpTrigger"));

    // MSBuild's zip deploy task: version 2 goes live on both replicas at once while
    // requests flow; no request fails, and once one answer is new no answer is old.
    let sampler = Sampler::start(m.front);
    std::thread::sleep(Duration::from_millis(300));
    let v2 = greeter(dir.path(), "Howdy");
    let r = kudu.send(
        "POST",
        "/api/zipdeploy?isAsync=true",
        &[
            ("Content-Type", "application/zip; charset=utf-8"),
            ("Content-Encoding", "utf-8"),
            ("User-Agent", "functions-core-tools/4.0"),
        ],
        &v2,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let location = r.header("location").unwrap().to_string();
    // Another deployment meanwhile: refused.
    let busy = kudu.send("POST", "/api/zipdeploy", &[], &v2);
    assert_eq!(busy.status, 409, "{}", busy.text());
    let done = kudu.follow(&location);
    assert_eq!(done["status"], 4, "{done}");
    std::thread::sleep(Duration::from_secs(1));
    let seen = sampler.finish();
    let failed: Vec<&String> = seen
        .iter()
        .filter(|s| *s != "Hello, x!" && *s != "Howdy, x!")
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    let first_new = seen
        .iter()
        .position(|s| s == "Howdy, x!")
        .unwrap_or_else(|| {
            let log = kudu.send(
                "GET",
                &kudu.path_of(done["log_url"].as_str().unwrap()),
                &[],
                b"",
            );
            panic!(
                "the new version never answered ({} answers, last {:?})\n{done}\n{}\n{}",
                seen.len(),
                seen.last(),
                log.text(),
                m.admin_get("/api/placements")
            )
        });
    assert!(
        seen[first_new..].iter().all(|s| s == "Howdy, x!"),
        "an old answer after a new one: {:?}",
        &seen[first_new..]
    );

    // Hostile packages: refused with the reason, the live version untouched, each
    // deployment failed in the history.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not a zip at all".to_vec(), "not a zip"),
        (
            hostile_zip(
                &[
                    ("host.json", br#"{"version": "2.0"}"#),
                    ("../escape.txt", b"x"),
                ],
                None,
            ),
            "outside",
        ),
        (
            hostile_zip(
                &[("host.json", br#"{"version": "2.0"}"#)],
                Some(("link", "/etc/shadow")),
            ),
            "symbolic link",
        ),
        (
            hostile_zip(&[("host.json", br#"{"version": "1.0"}"#)], None),
            "host.json",
        ),
        (
            hostile_zip(&[("hello/function.json", b"{}")], None),
            "no host.json",
        ),
        (
            hostile_zip(
                &[
                    ("host.json", br#"{"version": "2.0"}"#),
                    ("big.bin", &vec![0u8; 8 << 20]),
                ],
                None,
            ),
            "decompression bomb",
        ),
    ];
    for (zip, reason) in &cases {
        let r = kudu.send(
            "POST",
            "/api/zipdeploy",
            &[("Content-Type", "application/zip")],
            zip,
        );
        assert_eq!(r.status, 400, "{reason}: {}", r.text());
        assert!(r.text().contains(reason), "{reason}: {}", r.text());
    }
    let history = kudu.send("GET", "/api/deployments", &[], b"").json();
    let statuses: Vec<i64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_i64().unwrap())
        .collect();
    assert_eq!(
        statuses[..cases.len()],
        vec![3; cases.len()][..],
        "{history}"
    );
    assert_eq!(statuses[cases.len()..], [4, 4]);
    let r = m.hello("shop");
    assert_eq!(r.text(), "Howdy, x!");

    // A version whose handler cannot start: the deployment fails with the reason (a
    // synchronous zip deploy answers 500 with the result), version 2 stays live, and its
    // stalled hosts go away.
    let broken = dir.path().join("broken");
    copy_dir(&crate::support::sample("python-handler"), &broken);
    let host = std::fs::read_to_string(broken.join("host.json"))
        .unwrap()
        .replace("\"python3\"", "\"/nonexistent/python\"");
    std::fs::write(broken.join("host.json"), host).unwrap();
    let zip = dir.path().join("broken.zip");
    zip_dir(&broken, &zip);
    let r = kudu.send("POST", "/api/zipdeploy", &[], &std::fs::read(&zip).unwrap());
    assert_eq!(r.status, 500, "{}", r.text());
    let failed = r.json();
    assert_eq!(failed["status"], 3, "{failed}");
    let log = kudu.send(
        "GET",
        &kudu.path_of(failed["log_url"].as_str().unwrap()),
        &[],
        b"",
    );
    assert!(log.text().contains("cannot run"), "{}", log.text());
    assert!(
        log.text().contains("version 2 stays live"),
        "{}",
        log.text()
    );
    let r = m.hello("shop");
    assert_eq!(r.text(), "Howdy, x!");

    // Rollback: the previous version goes live again, atomically as well.
    let rolled = m.apps(&["rollback", "shop"]).unwrap();
    assert!(rolled.contains("version 1"), "{rolled}");
    m.wait_hello("shop", "Hello, x!");
}

/// `stratus publish` as the management role's user, then with a publish profile.
fn publish(m: &Manage, args: &[&str]) -> Result<String, String> {
    crate::support::run_stratus(
        crate::support::stratus_command()
            .arg("publish")
            .args(args)
            .arg("--api")
            .arg(format!("http://127.0.0.1:{}", m.port))
            .env("STRATUS_DATA_DIR", m.data.path())
            .env_remove("STRATUS_ADMIN_TOKEN"),
    )
}

#[test]
fn stratus_publish_leaves_out_what_funcignore_says_and_prints_the_function_urls() {
    let m = manage_with(&[]);
    let token = m.join_token();
    let _w = spawn_worker(&m, &token, "w1", &[]);
    m.apps(&["create", "shop"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("shop");
    copy_dir(&crate::support::sample("python-handler"), &app);
    std::fs::create_dir_all(app.join("notes")).unwrap();
    std::fs::write(app.join("notes/secret.txt"), b"not for the server").unwrap();
    std::fs::write(app.join(".funcignore"), b"notes/\n*.log\n").unwrap();
    std::fs::write(app.join("debug.log"), b"noise").unwrap();

    let out = publish(&m, &[app.to_str().unwrap(), "--app", "shop"]).unwrap();
    assert!(out.contains("uploaded "), "{out}");
    assert!(
        out.contains("Function hello (httpTrigger)"),
        "the log as it grows: {out}"
    );
    assert!(out.contains("is live: version 1 of shop"), "{out}");
    let hello = format!("http://127.0.0.1:{}/apps/shop/api/hello", m.front);
    assert!(out.contains(&format!("hello: {hello}")), "{out}");
    m.wait_serving("shop");
    let kudu = Kudu::from_profile(&m, "shop");
    for gone in ["notes/secret.txt", "debug.log", "local.settings.json"] {
        let r = kudu.send("GET", &format!("/api/vfs/site/wwwroot/{gone}"), &[], b"");
        assert_eq!(r.status, 404, "{gone} was published");
    }
    let r = kudu.send("GET", "/api/vfs/site/wwwroot/.funcignore", &[], b"");
    assert_eq!(r.status, 200);

    // With an imported profile and the authority exported to a file; the endpoint by path.
    let profile = dir.path().join("shop.PublishSettings");
    std::fs::write(&profile, m.apps(&["publish-profile", "shop"]).unwrap()).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &kudu.ca).unwrap();
    let handler = std::fs::read_to_string(app.join("handler.py")).unwrap();
    std::fs::write(
        app.join("handler.py"),
        handler.replace("os.environ.get(\"GREETING\", \"Hello\")", "\"Hi\""),
    )
    .unwrap();
    let by_path = format!("https://localhost:{}/scm/shop", m.scm);
    let out = publish(
        &m,
        &[
            app.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--url",
            &by_path,
        ],
    )
    .unwrap();
    assert!(out.contains("is live: version 2 of shop"), "{out}");
    m.wait_hello("shop", "Hi, x!");

    // A broken package: refused, exit code non-zero, the live version stays.
    std::fs::write(app.join("host.json"), br#"{"version": "3.0"}"#).unwrap();
    let err = publish(&m, &[app.to_str().unwrap(), "--app", "shop"]).unwrap_err();
    assert!(err.contains("host.json"), "{err}");
    let r = m.hello("shop");
    assert_eq!(r.text(), "Hi, x!");
}

#[test]
fn one_deploy_legacy_paths_recorded_deployments_and_file_writes() {
    let m = manage_with(&[]);
    let token = m.join_token();
    let _w = spawn_worker(&m, &token, "w1", &[]);
    m.apps(&["create", "shop"]).unwrap();
    m.apps(&["create", "other"]).unwrap();
    let kudu = Kudu::from_profile(&m, "shop");
    let dir = tempfile::tempdir().unwrap();
    let v1 = greeter(dir.path(), "Hello");

    // Another app's credential opens nothing here.
    let other = Kudu::from_profile(&m, "other");
    let r = request_tls(
        kudu.port,
        &kudu.host,
        &kudu.ca,
        "GET",
        "/api/settings",
        &[("Authorization", &other.authorization)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401);

    // A rotated credential: the old password stops working at once, the new one works.
    let rotated: Value =
        serde_json::from_str(&m.apps(&["publishing", "shop", "--rotate"]).unwrap()).unwrap();
    assert_eq!(kudu.send("GET", "/api/settings", &[], b"").status, 401);
    let kudu = Kudu::from_profile(&m, "shop");
    assert!(kudu.authorization.len() > 10);
    assert_eq!(kudu.send("GET", "/api/settings", &[], b"").status, 200);
    assert!(
        rotated["scmUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://shop.scm.")
    );

    // OneDeploy: a type is required, only zip is taken, `async` (not isAsync).
    let r = kudu.send("POST", "/api/publish", &[], &v1);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = kudu.send("POST", "/api/publish?type=war", &[], &v1);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = kudu.send("POST", "/api/publish?type=zip&async=true", &[], &v1);
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.header("location").unwrap().contains("deployer=OneDeploy"));
    let done = kudu.follow(r.header("location").unwrap());
    assert_eq!(
        (done["status"].as_i64(), done["deployer"].as_str()),
        (Some(4), Some("OneDeploy"))
    );

    // The legacy paths, without /api: a synchronous zip deploy answers 200 with the result.
    let r = kudu.send("POST", "/zipdeploy", &[], &v1);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], 4);
    let listed = kudu.send("GET", "/deployments", &[], b"").json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["active"], true);
    assert_eq!(listed[1]["active"], false);

    // A deployment made elsewhere, recorded once.
    let record = br#"{"status": 4, "message": "built by CI", "deployer": "ci", "author": "bot"}"#;
    let r = kudu.send("PUT", "/api/deployments/ci-build-7", &[], record);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["id"].as_str(), r.json()["deployer"].as_str()),
        (Some("ci-build-7"), Some("ci"))
    );
    assert_eq!(
        kudu.send("PUT", "/api/deployments/ci-build-7", &[], record)
            .status,
        409
    );
    assert_eq!(
        kudu.send("GET", "/api/deployments/nope", &[], b"").status,
        404
    );

    // Writing a file is a deployment of the live package with that change; If-Match guards
    // existing files.
    let r = kudu.send("PUT", "/api/vfs/site/wwwroot/notes.txt", &[], b"first");
    assert_eq!(r.status, 201, "{}", r.text());
    let tag = r.header("etag").unwrap().to_string();
    let r = kudu.send("GET", "/api/vfs/site/wwwroot/notes.txt", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "first"));
    assert_eq!(r.header("etag"), Some(tag.as_str()));
    let r = kudu.send("PUT", "/api/vfs/site/wwwroot/notes.txt", &[], b"second");
    assert_eq!(r.status, 412, "{}", r.text());
    let r = kudu.send(
        "PUT",
        "/api/vfs/site/wwwroot/notes.txt",
        &[("If-Match", &tag)],
        b"second",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = kudu.send("GET", "/api/vfs/site/wwwroot/notes.txt", &[], b"");
    assert_eq!(r.text(), "second");
    let r = kudu.send("DELETE", "/api/vfs/site/wwwroot/notes.txt", &[], b"");
    assert_eq!(r.status, 412);
    let r = kudu.send(
        "DELETE",
        "/api/vfs/site/wwwroot/notes.txt",
        &[("If-Match", "*")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        kudu.send("GET", "/api/vfs/site/wwwroot/notes.txt", &[], b"")
            .status,
        404
    );
    let r = kudu.send("PUT", "/api/vfs/site/wwwroot/../escape.txt", &[], b"x");
    assert!(
        r.status == 400 || r.status == 404,
        "{} {}",
        r.status,
        r.text()
    );
    let history = kudu.send("GET", "/api/deployments", &[], b"").json();
    let vfs = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["deployer"] == "VFS" && d["status"] == 4)
        .count();
    assert_eq!(vfs, 3, "{history}");
    // Still the same app, serving.
    m.wait_hello("shop", "Hello, x!");
}

/// Sends a zip deploy's head and the first half of its body, and leaves it there.
fn half_upload(kudu: &Kudu, zip: &[u8]) -> impl Drop {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(kudu.ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(kudu.host.clone()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", kudu.port)).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "POST /api/zipdeploy?isAsync=true HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: {}\r\nContent-Type: application/zip\r\nContent-Length: {}\r\n\r\n",
        kudu.host,
        kudu.port,
        kudu.authorization,
        zip.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&zip[..zip.len() / 2]).unwrap();
    s.flush().unwrap();
    struct Held(
        #[allow(dead_code, reason = "kept open")]
        rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    );
    impl Drop for Held {
        fn drop(&mut self) {}
    }
    Held(s)
}

#[test]
fn a_management_process_killed_mid_deployment_leaves_one_version_serving() {
    let db = crate::support::Database::create("publishkill");
    let url = db.url();
    let env = [("STRATUS_DATABASE_URL", url.as_str())];
    let opts = [
        "--deploy-receive-timeout-seconds",
        "2",
        "--worker-timeout-seconds",
        "3",
    ];
    // Workers and the front door on one management process; deployments through others.
    let steady = crate::manage::manage_env(tempfile::tempdir().unwrap(), &opts, &env);
    let token = steady.join_token();
    let _a = spawn_worker(&steady, &token, "w1", &[]);
    let _b = spawn_worker(&steady, &token, "w2", &[]);
    steady
        .apps(&["create", "shop", "--min", "2", "--max", "2"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1");
    std::fs::write(&v1, greeter(dir.path(), "Hello")).unwrap();
    steady
        .apps(&["deploy", "shop", v1.to_str().unwrap()])
        .unwrap();
    steady.wait_hello("shop", "Hello, x!");
    let sampler = Sampler::start(steady.front);

    // Killed while the package arrives: the deployment fails, nothing changes.
    let mut first = crate::manage::manage_env(crate::manage::shared_data(&steady), &opts, &env);
    let kudu = Kudu::from_profile(&first, "shop");
    // A package big enough to be cut in half (incompressible padding).
    let big_dir = dir.path().join("big");
    copy_dir(&crate::support::sample("python-handler"), &big_dir);
    let padding: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(big_dir.join("padding.bin"), padding).unwrap();
    let handler = std::fs::read_to_string(big_dir.join("handler.py")).unwrap();
    std::fs::write(
        big_dir.join("handler.py"),
        handler.replace("os.environ.get(\"GREETING\", \"Hello\")", "\"Howdy\""),
    )
    .unwrap();
    let big = dir.path().join("big.zip");
    zip_dir(&big_dir, &big);
    let big = std::fs::read(&big).unwrap();
    let held = half_upload(&kudu, &big);
    eventually(Duration::from_secs(10), || {
        let list: Value =
            serde_json::from_str(&steady.apps(&["deployments", "shop"]).unwrap()).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == 0 || d["status"] == 1)
            .then_some(())
    });
    first.kill();
    drop(held);
    let abandoned = eventually(Duration::from_secs(20), || {
        let list: Value =
            serde_json::from_str(&steady.apps(&["deployments", "shop"]).unwrap()).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["deployer"] == "ZipDeploy" && d["status"] == 3)
            .cloned()
    });
    let shown: Value = serde_json::from_str(
        &steady
            .apps(&["deployments", "shop", abandoned["id"].as_str().unwrap()])
            .unwrap(),
    )
    .unwrap();
    assert!(
        shown["log"]
            .to_string()
            .contains("stopped before it was stored"),
        "{shown}"
    );

    // Killed while the replicas start the new version: another process finishes it; the
    // app then answers with the new version only.
    let mut second = crate::manage::manage_env(crate::manage::shared_data(&steady), &opts, &env);
    let kudu = Kudu::from_profile(&second, "shop");
    let r = kudu.send("POST", "/api/zipdeploy?isAsync=true", &[], &big);
    assert_eq!(r.status, 202, "{}", r.text());
    second.kill();
    let finished = eventually(Duration::from_secs(60), || {
        let list: Value =
            serde_json::from_str(&steady.apps(&["deployments", "shop"]).unwrap()).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == r.json()["id"] && d["complete"] == true)
            .cloned()
    });
    assert_eq!(finished["status"], 4, "{finished}");
    steady.wait_hello("shop", "Howdy, x!");
    std::thread::sleep(Duration::from_millis(500));
    let seen = sampler.finish();
    let failed: Vec<&String> = seen
        .iter()
        .filter(|s| *s != "Hello, x!" && *s != "Howdy, x!")
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    let first_new = seen.iter().position(|s| s == "Howdy, x!").unwrap();
    assert!(
        seen[first_new..].iter().all(|s| s == "Howdy, x!"),
        "an old answer after a new one"
    );
}

#[test]
fn the_publishing_endpoint_serves_plain_http_only_when_told_to() {
    let m = manage_with(&["--scm-plain-http"]);
    m.apps(&["create", "shop"]).unwrap();
    let credential: Value =
        serde_json::from_str(&m.apps(&["publishing", "shop"]).unwrap()).unwrap();
    assert!(
        credential["scmUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://shop.scm.")
    );
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credential["userName"].as_str().unwrap(),
        credential["password"].as_str().unwrap()
    ));
    let r = request(
        m.scm,
        "GET",
        "/scm/shop/api/settings",
        &[("Authorization", &format!("Basic {basic}"))],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // No authority of its own: nothing to trust.
    assert_eq!(
        request(m.port, "GET", "/api/scm/ca.pem", &[], b"")
            .unwrap()
            .status,
        404
    );
}
