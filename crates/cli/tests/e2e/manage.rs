//! The management role: `stratus manage` serves the management API over the store, and
//! `stratus apps` drives it; the admin token guards it.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{eventually, free_port, request, stratus_command};

struct Manage {
    child: Child,
    port: u16,
    data: tempfile::TempDir,
}

impl Drop for Manage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manage() -> Manage {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = stratus_command()
        .arg("manage")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("STRATUS_DATA_DIR", data.path())
        .env_remove("STRATUS_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), || {
        request(port, "GET", "/api/openapi.json", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    Manage { child, port, data }
}

impl Manage {
    fn apps(&self, args: &[&str]) -> Result<String, String> {
        let out = stratus_command()
            .arg("apps")
            .args(args)
            .arg("--url")
            .arg(format!("http://127.0.0.1:{}", self.port))
            .env("STRATUS_DATA_DIR", self.data.path())
            .env_remove("STRATUS_ADMIN_TOKEN")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.apps(args).unwrap()).unwrap()
    }
}

#[test]
fn apps_settings_and_versions_through_the_management_api() {
    let m = manage();
    // The token is generated into the data directory, readable by its owner only.
    let token_file = m.data.path().join("admin-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let r = request(m.port, "GET", "/api/apps", &[], b"").unwrap();
    assert_eq!(r.status, 401, "no token");
    let r = request(
        m.port,
        "GET",
        "/api/apps",
        &[("Authorization", "Bearer wrong")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401, "a wrong token");
    let bearer = format!("Bearer {token}");
    let r = request(
        m.port,
        "GET",
        "/api/apps",
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!((r.status, r.text()), (200, "[]".to_string()));

    let created = m.json(&[
        "create", "Orders", "--min", "2", "--max", "3", "--label", "zone=b",
    ]);
    assert_eq!(created["name"], "orders");
    assert_eq!(created["labels"]["zone"], "b");
    let e = m.apps(&["create", "bad_name"]).unwrap_err();
    assert!(e.contains("letters, digits and hyphens"), "{e}");
    let e = m
        .apps(&["create", "x1", "--min", "3", "--max", "1"])
        .unwrap_err();
    assert!(e.contains("above maxReplicas"), "{e}");

    m.apps(&["set", "orders", "DB_PASSWORD", "s3cret"]).unwrap();
    assert_eq!(m.json(&["settings", "orders"])["DB_PASSWORD"], "s3cret");
    m.apps(&["unset", "orders", "db_password"]).unwrap();
    assert_eq!(m.json(&["settings", "orders"]), serde_json::json!({}));

    // Versions: zip packages by SHA-256; the newest is active unless told otherwise.
    let dir = tempfile::tempdir().unwrap();
    let zip_a = dir.path().join("a.zip");
    let zip_b = dir.path().join("b.zip");
    std::fs::write(&zip_a, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    std::fs::write(&zip_b, b"PK\x03\x04 another package").unwrap();
    let v1 = m.json(&[
        "deploy",
        "orders",
        zip_a.to_str().unwrap(),
        "-m",
        "first cut",
    ]);
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["sha256"].as_str().unwrap().len(), 64);
    let v2 = m.json(&["deploy", "orders", zip_b.to_str().unwrap(), "--no-activate"]);
    assert_eq!(
        (v2["number"].as_i64(), v2["active"].as_bool()),
        (Some(2), Some(false))
    );
    let not_zip = dir.path().join("c.txt");
    std::fs::write(&not_zip, b"hello").unwrap();
    let e = m
        .apps(&["deploy", "orders", not_zip.to_str().unwrap()])
        .unwrap_err();
    assert!(e.contains("not a zip archive"), "{e}");
    assert_eq!(m.json(&["show", "orders"])["activeVersion"], 1);
    m.apps(&["activate", "orders", "2"]).unwrap();
    assert_eq!(m.json(&["show", "orders"])["activeVersion"], 2);
    let e = m.apps(&["activate", "orders", "9"]).unwrap_err();
    assert!(e.contains("no version 9"), "{e}");
    let versions = m.json(&["versions", "orders"]);
    assert_eq!(versions[1]["message"], "first cut");
    // Packages are served by hash (for workers), byte for byte.
    let sha = v2["sha256"].as_str().unwrap();
    let r = request(
        m.port,
        "GET",
        &format!("/api/packages/{sha}"),
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.body, b"PK\x03\x04 another package");

    let listed = m.apps(&["list"]).unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("orders") && l.contains("2..3") && l.contains("zone=b")),
        "{listed}"
    );
    m.apps(&["delete", "orders"]).unwrap();
    let e = m.apps(&["show", "orders"]).unwrap_err();
    assert!(e.contains("404"), "{e}");
}
