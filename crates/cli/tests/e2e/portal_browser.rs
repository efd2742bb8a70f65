//! The portal in a real browser (Debian's Chromium, driven by Playwright from
//! `portal/tests/`): the first user from the bootstrap token, the apps, signing out and in,
//! an app's deployments with their log, its settings masked until revealed, a key renewed
//! (the old value then refused through the front door), the cluster, an app made, set up and
//! deleted.
//! Screenshots go to `<target>/tmp/portal-screenshots`.

use std::time::Duration;

use serde_json::Value;

use crate::manage::{manage_with, spawn_worker};
use crate::support::{eventually, repo, request};

/// The browser, unless the machine has none (then the test says so and passes, except on CI,
/// which installs it).
fn chromium() -> Option<String> {
    let path = std::env::var("STRATUS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if std::path::Path::new(&path).is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no browser at {path}: CI installs Debian's chromium"
    );
    eprintln!("skipped: no browser at {path} (install Debian's chromium, or set STRATUS_CHROMIUM)");
    None
}

/// Runs `portal/tests/{script}` under node with `env`; its standard output. A failure shows
/// what the script and the server (`log`) said.
fn run_script(script: &str, env: &[(&str, &str)], log: impl Fn() -> String) -> String {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test drives the browser through node"
    )]
    let out = std::process::Command::new("node")
        .arg(repo().join("portal/tests").join(script))
        .current_dir(repo().join("portal"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    crate::support::succeeded(&out, log)
}

/// The screenshots' directory, emptied of the files a test makes (`mine`): the other browser
/// test may run meanwhile and keeps its own.
fn screenshots(mine: impl Fn(&str) -> bool) -> std::path::PathBuf {
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for old in std::fs::read_dir(&shots).unwrap().flatten() {
        if mine(&old.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(old.path());
        }
    }
    shots
}

#[test]
fn the_portal_signs_the_first_user_in_and_lists_the_apps() {
    let Some(browser) = chromium() else {
        return;
    };
    let m = manage_with(&[]);
    let token = eventually(Duration::from_secs(10), || {
        let log = m.log();
        let at = log.find("\"token\": \"")? + 10;
        Some(log[at..at + log[at..].find('"')?].to_string())
    });
    m.apps(&["create", "shop"]).unwrap();
    m.apps(&["set", "shop", "GREETING", "Bonjour"]).unwrap();
    let sample = crate::support::sample("python-handler");
    m.apps(&["deploy", "shop", sample.to_str().unwrap()])
        .unwrap();
    // A worker runs it: its host makes the app's keys.
    let token_w = m.join_token();
    let _w = spawn_worker(&m, &token_w, "w1", &[]);
    m.wait_serving("shop");
    let host_key = |keys: &Value| {
        keys["functionKeys"]
            .as_array()
            .and_then(|l| l.iter().find(|k| k["name"] == "default"))
            .and_then(|k| k["value"].as_str().map(str::to_string))
    };
    let old_key = eventually(Duration::from_secs(10), || {
        host_key(&serde_json::from_str(&m.apps(&["keys", "shop"]).ok()?).ok()?)
    });
    let products = |key: &str| {
        request(
            m.front,
            "GET",
            &format!("/apps/shop/api/products/books/42?code={key}"),
            &[],
            b"",
        )
        .unwrap()
        .status
    };
    assert_eq!(products(&old_key), 200);
    let shots = screenshots(|name| !name.starts_with("develop-"));
    let port = format!("http://127.0.0.1:{}", m.port);
    let stdout = run_script(
        "sign-in.mjs",
        &[
            ("PORTAL_URL", &port),
            ("BOOTSTRAP_TOKEN", &token),
            ("APP", "shop"),
            ("SCREENSHOTS", shots.to_str().unwrap()),
            ("CHROMIUM", &browser),
            ("OLD_KEY", &old_key),
        ],
        || m.log(),
    );
    for shot in [
        "bootstrap.png",
        "apps.png",
        "sign-in-refused.png",
        "app.png",
        "keys.png",
        "cluster.png",
        "test-panel.png",
    ] {
        assert!(shots.join(shot).is_file(), "{shot}");
    }
    // The key renewed in the browser: the old value is refused, the new one opens.
    let new_key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("NEW_KEY="))
        .expect("the script printed the renewed key")
        .trim()
        .to_string();
    assert_eq!(
        host_key(&serde_json::from_str(&m.apps(&["keys", "shop"]).unwrap()).unwrap()),
        Some(new_key.clone())
    );
    eventually(Duration::from_secs(10), || {
        (products(&old_key) == 401).then_some(())
    });
    assert_eq!(products(&new_key), 200);
    // The publishing password made in the browser is the one in force.
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PUBLISHING_PASSWORD="))
        .expect("the script printed the new publishing password")
        .trim()
        .to_string();
    let credential: Value =
        serde_json::from_str(&m.apps(&["publishing", "shop"]).unwrap()).unwrap();
    assert_eq!(credential["password"].as_str(), Some(password.as_str()));
    // Disabled in the browser: the running app stops serving it (a host with the setting).
    eventually(Duration::from_secs(30), || {
        let r = request(m.front, "GET", "/apps/shop/api/hello?name=x", &[], b"").ok()?;
        (r.status == 404).then_some(())
    });
}

/// The acceptance flow on `stratus up`: sign in, make an app, add an HTTP function from the
/// Python v1 template, edit and save it, run it from the test panel with its logs, find it
/// in the monitor's history and live log, renew a key and see the old one refused.
#[test]
fn the_portal_makes_edits_runs_and_watches_a_function_on_stratus_up() {
    let Some(browser) = chromium() else {
        return;
    };
    let python = crate::language_workers::python_worker();
    let data = tempfile::tempdir().unwrap();
    let (api, front) = (crate::support::free_port(), crate::support::free_port());
    let up = crate::up::Up::start_with(
        data.path(),
        api,
        front,
        &[(
            "languageWorkers__python__defaultExecutablePath",
            python.to_str().unwrap(),
        )],
    );
    let token = eventually(Duration::from_secs(60), || {
        let log = up.log();
        let at = log.find("bootstrap?token=")? + 16;
        let end =
            at + log[at..].find(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')?;
        Some(log[at..end].to_string())
    });
    let shots = screenshots(|name| name.starts_with("develop-"));
    let (portal, front_url) = (
        format!("http://127.0.0.1:{api}"),
        format!("http://127.0.0.1:{front}"),
    );
    run_script(
        "develop.mjs",
        &[
            ("PORTAL_URL", &portal),
            ("FRONT_URL", &front_url),
            ("BOOTSTRAP_TOKEN", &token),
            ("SCREENSHOTS", shots.to_str().unwrap()),
            ("CHROMIUM", &browser),
        ],
        || up.log(),
    );
    let made: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("develop-"))
        .collect();
    assert!(made.len() >= 5, "screenshots: {made:?}");
    // What the browser saved is what the front door serves.
    let r = request(front, "GET", "/apps/studio/api/greet?name=Bo", &[], b"").unwrap();
    assert_eq!(r.status, 401, "a function-level function needs its key");
}
