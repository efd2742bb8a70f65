//! Keys and authorization: the admin API's 401/403, the key API, key rotation, keys kept in
//! the store and changed with `stratus keys`, and relaxed mode.

use serde_json::json;

use crate::support::{HOST_KEY, MASTER, Options, SYSTEM_KEY, Stratus, eventually, sample};

#[test]
fn admin_api_requires_the_master_key() {
    let s = Stratus::start(&sample("python-handler"), Options::default());
    let own = s
        .get_with_key("/admin/functions/products/keys/default", MASTER)
        .json()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let no_key = s.get("/admin/host/status");
    assert_eq!(
        (no_key.status, no_key.header("www-authenticate")),
        (401, Some("Bearer"))
    );
    assert!(no_key.body.is_empty());
    assert_eq!(s.get_with_key("/admin/host/status", "wrong").status, 401);
    assert_eq!(
        s.get_with_key("/admin/host/status", &own).status,
        401,
        "function keys are not checked on admin routes"
    );
    assert_eq!(s.get_with_key("/admin/host/status", HOST_KEY).status, 403);
    assert_eq!(s.get_with_key("/admin/host/status", SYSTEM_KEY).status, 403);
    assert_eq!(
        s.get(&format!("/admin/host/status?code={MASTER}")).status,
        200
    );
    // Ping is anonymous.
    let ping = s.request("POST", "/admin/host/ping", &[], b"");
    assert_eq!(
        (ping.status, ping.header("cache-control")),
        (200, Some("no-store,no-cache"))
    );
}

#[test]
fn key_api_round_trips() {
    let s = Stratus::start(&sample("python-handler"), Options::default());
    let m = [("x-functions-key", MASTER)];
    let port = s.port;
    // Create with an explicit value: 201 with Location; again: 200.
    let put = s.request(
        "PUT",
        "/admin/functions/products/keys/mine",
        &[m[0], ("content-type", "application/json")],
        br#"{"name":"mine","value":"my-secret-value"}"#,
    );
    assert_eq!(put.status, 201, "{}", put.text());
    let href = format!("http://localhost:{port}/admin/functions/products/keys/mine");
    assert_eq!(put.header("location"), Some(href.as_str()));
    assert_eq!(
        put.json(),
        json!({"name":"mine","value":"my-secret-value","links":[{"rel":"self","href":href}]})
    );
    assert_eq!(
        s.request(
            "PUT",
            "/admin/functions/products/keys/mine",
            &m,
            br#"{"value":"my-secret-value-2"}"#
        )
        .status,
        200
    );
    assert_eq!(
        s.get_with_key("/api/products/a", "my-secret-value-2")
            .status,
        200
    );
    assert_eq!(
        s.get_with_key("/api/products/a", "my-secret-value").status,
        401
    );
    // A bad body.
    let bad = s.request("PUT", "/admin/functions/products/keys/mine", &m, b"{}");
    assert_eq!(
        (bad.status, bad.text().as_str()),
        (400, "Invalid key value")
    );
    // Generated values are Azure-format keys.
    let post = s.request("POST", "/admin/functions/products/keys/gen", &m, b"");
    assert_eq!(post.status, 201);
    let generated = post.json()["value"].as_str().unwrap().to_string();
    assert_eq!(generated.len(), 56);
    assert_eq!(&generated[44..48], "AzFu");
    // List and get.
    let list = s
        .get_with_key("/admin/functions/products/keys", MASTER)
        .json();
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["default", "mine", "gen"]);
    assert_eq!(
        s.get_with_key("/admin/functions/nosuch/keys", MASTER)
            .status,
        404
    );
    // Delete.
    assert_eq!(
        s.request("DELETE", "/admin/functions/products/keys/mine", &m, b"")
            .status,
        204
    );
    assert_eq!(
        s.request("DELETE", "/admin/functions/products/keys/mine", &m, b"")
            .status,
        404
    );
    assert_eq!(
        s.get_with_key("/api/products/a", "my-secret-value-2")
            .status,
        401
    );
    // Host keys and the master key.
    let sys = s.get_with_key("/admin/host/systemkeys", MASTER).json();
    assert_eq!(
        sys["keys"],
        json!([{"name":"eventgridextensionconfig_extension","value":SYSTEM_KEY}]),
        "the master key is not listed"
    );
    assert_eq!(
        s.get_with_key("/admin/host/systemkeys/_master", MASTER)
            .json()["value"],
        MASTER
    );
    assert_eq!(
        s.get_with_key("/admin/host/keys/_master", MASTER).status,
        404
    );
    assert_eq!(
        s.get_with_key("/admin/host/keys", MASTER).json()["keys"][0]["value"],
        HOST_KEY
    );
    let del = s.request("DELETE", "/admin/host/systemkeys/_master", &m, b"");
    assert_eq!(
        (del.status, del.text().as_str()),
        (400, "Cannot delete System Key.")
    );
    assert_eq!(
        s.request("POST", "/admin/host/functionkeys/ci", &m, b"")
            .status,
        201
    );
    // Renewing the master key: the old one stops working at once.
    let renewed = s.request("POST", "/admin/host/keys/_master", &m, b"");
    assert_eq!(renewed.status, 201);
    let new_master = renewed.json()["value"].as_str().unwrap().to_string();
    assert_eq!(s.get_with_key("/admin/host/status", MASTER).status, 401);
    assert_eq!(
        s.get_with_key("/admin/host/status", &new_master).status,
        200
    );
    let set = s.request(
        "PUT",
        "/admin/host/systemkeys/_master",
        &[("x-functions-key", &new_master)],
        br#"{"value":"testMasterKey"}"#,
    );
    assert_eq!(set.status, 200);
    assert_eq!(s.get_with_key("/admin/host/status", MASTER).status, 200);
}

#[test]
fn keys_in_the_store_and_the_cli() {
    let s = Stratus::start(&sample("node-handler"), Options::default().store_keys());
    let master = s.master_key();
    assert_eq!(master.len(), 56, "a generated master key");
    assert_eq!(s.get_with_key("/admin/host/status", &master).status, 200);
    let list = s.keys(&["list"]);
    assert!(
        list.contains("_master") && list.contains("products"),
        "{list}"
    );
    // A key set from the command line works at once in the running host.
    s.keys(&["set", "ci", "set-from-cli", "--function", "products"]);
    assert_eq!(
        s.get_with_key("/api/products/a", "set-from-cli").status,
        200
    );
    // Deleted from the command line: refused soon after (the host follows the store).
    s.keys(&["delete", "ci", "--function", "products"]);
    eventually(std::time::Duration::from_secs(5), || {
        (s.get_with_key("/api/products/a", "set-from-cli").status == 401).then_some(())
    });
    // Renewing prints the new value, which works.
    let renewed = s.keys(&["renew", "default", "--function", "products"]);
    eventually(std::time::Duration::from_secs(5), || {
        (s.get_with_key("/api/products/a", renewed.trim()).status == 200).then_some(())
    });
    // Keys are encrypted at rest: the database does not contain them in clear.
    let db = std::fs::read(s.data.path().join("stratus.db")).unwrap_or_default();
    let wal = std::fs::read(s.data.path().join("stratus.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(master.len()).any(|w| w == master.as_bytes()),
            "master key stored in clear"
        );
    }
}

#[test]
fn relaxed_mode_treats_everyone_as_admin() {
    let s = Stratus::start(
        &sample("python-handler"),
        Options::default().arg("--no-auth"),
    );
    assert_eq!(s.get("/api/report").status, 200);
    assert_eq!(s.get("/admin/host/status").status, 200);
    s.wait_log("Keys are NOT checked");
}
