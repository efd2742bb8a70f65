//! The portal in a real browser (Debian's Chromium, driven by Playwright from
//! `portal/tests/`): the first user from the bootstrap token, the apps, signing out and in,
//! an app's deployments with their log, its settings masked until revealed.
//! Screenshots go to `<target>/tmp/portal-screenshots`.

use std::time::Duration;

use crate::manage::manage_with;
use crate::support::{eventually, repo};

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
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    #[allow(
        clippy::disallowed_methods,
        reason = "the test drives the browser through node"
    )]
    let out = std::process::Command::new("node")
        .arg(repo().join("portal/tests/sign-in.mjs"))
        .current_dir(repo().join("portal"))
        .env("PORTAL_URL", format!("http://127.0.0.1:{}", m.port))
        .env("BOOTSTRAP_TOKEN", &token)
        .env("APP", "shop")
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &browser)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
    for shot in [
        "bootstrap.png",
        "apps.png",
        "sign-in-refused.png",
        "app.png",
    ] {
        assert!(shots.join(shot).is_file(), "{shot}");
    }
}
