//! Signing in to the portal and what a session may do: the first user from the one-time
//! bootstrap token, sessions in a cookie whose changes need their CSRF token, and every route
//! of the management API refusing a request without a session (401) or a session's change
//! without its CSRF token (403).

use std::time::Duration;

use serde_json::Value;

use crate::manage::manage_with;
use crate::support::{Response, eventually, request};

/// The session cookie a response sets (`name=value`).
fn cookie(r: &Response) -> String {
    let set = r.header("set-cookie").expect("a session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

/// Every route of the OpenAPI document, with path parameters filled in.
fn routes(openapi: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), concrete.clone()));
            }
        }
    }
    out
}

#[test]
fn portal_sessions_open_the_api_and_changes_need_their_csrf_token() {
    let m = manage_with(&[]);
    let token = eventually(Duration::from_secs(10), || {
        let log = m.log();
        let at = log.find("\"token\": \"")? + 10;
        Some(log[at..at + log[at..].find('"')?].to_string())
    });
    let json = [("Content-Type", "application/json")];
    let post = |path: &str, headers: &[(&str, &str)], body: &str| {
        request(m.port, "POST", path, headers, body.as_bytes()).unwrap()
    };

    // Bootstrap: a wrong token, a short password, then the first user (signed in at once);
    // the token works once.
    let r = post(
        "/api/portal/bootstrap",
        &json,
        r#"{"token": "nope", "user": "ann", "password": "a long enough one"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post(
        "/api/portal/bootstrap",
        &json,
        &format!(r#"{{"token": "{token}", "user": "ann", "password": "short"}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let body = format!(r#"{{"token": "{token}", "user": "ann", "password": "a long enough one"}}"#);
    let r = post("/api/portal/bootstrap", &json, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let session = cookie(&r);
    let csrf = r.json()["csrf"].as_str().unwrap().to_string();
    assert_eq!(
        post("/api/portal/bootstrap", &json, &body).status,
        403,
        "used"
    );

    // What a session may do.
    let with_session = [("Cookie", session.as_str())];
    let r = request(m.port, "GET", "/api/apps", &with_session, b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(m.port, "GET", "/api/portal/session", &with_session, b"").unwrap();
    assert_eq!(
        (r.status, r.json()["csrf"].as_str()),
        (200, Some(csrf.as_str()))
    );
    let r = request(m.port, "PUT", "/api/apps/shop", &with_session, b"{}").unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "CsrfTokenMissing");
    let wrong = [("Cookie", session.as_str()), ("X-CSRF-Token", "not it")];
    assert_eq!(
        request(m.port, "PUT", "/api/apps/shop", &wrong, b"{}")
            .unwrap()
            .status,
        403
    );
    let right = [
        ("Cookie", session.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
    ];
    let r = request(m.port, "PUT", "/api/apps/shop", &right, b"{}").unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let elsewhere = [
        ("Cookie", session.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
        ("Origin", "https://evil.example"),
    ];
    let r = request(m.port, "DELETE", "/api/apps/shop", &elsewhere, b"").unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (403, Some("CrossOrigin"))
    );

    // Every route: nothing → 401 (but the public ones), a session's change without its
    // CSRF token → 403, a session's read → neither.
    let openapi = request(m.port, "GET", "/api/openapi.json", &[], b"")
        .unwrap()
        .json();
    let public = |p: &str| {
        p == "/api/openapi.json"
            || p == "/api/scm/ca.pem"
            || p == "/metrics"
            || p.starts_with("/api/workers/x1/")
            || p == "/api/workers/join"
            || (p.starts_with("/api/portal/") && !p.starts_with("/api/portal/users"))
    };
    let mut checked = 0;
    for (method, path) in routes(&openapi) {
        if public(&path) {
            continue;
        }
        let r = request(m.port, &method, &path, &[], b"{}").unwrap();
        assert_eq!(
            r.status,
            401,
            "{method} {path} without a session: {}",
            r.text()
        );
        let r = request(m.port, &method, &path, &with_session, b"{}").unwrap();
        if method == "GET" {
            assert!(
                r.status != 401 && r.status != 403,
                "{method} {path} with a session: {} {}",
                r.status,
                r.text()
            );
        } else {
            assert_eq!(
                r.status,
                403,
                "{method} {path} with a session, no CSRF token: {}",
                r.text()
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked} routes checked");

    // Users: made with the admin token or a session; sign in, wrong password, sign out.
    let r = request(
        m.port,
        "PUT",
        "/api/portal/users/bob",
        &[
            ("Cookie", session.as_str()),
            ("X-CSRF-Token", csrf.as_str()),
        ],
        br#"{"password": "bob's long password"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post(
        "/api/portal/login",
        &json,
        r#"{"user": "bob", "password": "not bob's password"}"#,
    );
    assert_eq!(r.status, 401);
    let r = post(
        "/api/portal/login",
        &json,
        r#"{"user": "nobody", "password": "whatever it is"}"#,
    );
    assert_eq!(r.status, 401);
    let r = post(
        "/api/portal/login",
        &json,
        r#"{"user": "bob", "password": "bob's long password"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let bob = cookie(&r);
    let bob_csrf = r.json()["csrf"].as_str().unwrap().to_string();
    let r = post("/api/portal/logout", &[("Cookie", bob.as_str())], "");
    assert_eq!(r.status, 403, "sign-out is a change too");
    let r = post(
        "/api/portal/logout",
        &[
            ("Cookie", bob.as_str()),
            ("X-CSRF-Token", bob_csrf.as_str()),
        ],
        "",
    );
    assert_eq!(r.status, 204);
    let r = request(m.port, "GET", "/api/apps", &[("Cookie", bob.as_str())], b"").unwrap();
    assert_eq!(r.status, 401, "the session ended");
    // Ann's session is unaffected.
    assert_eq!(
        request(m.port, "GET", "/api/portal/users", &with_session, b"")
            .unwrap()
            .json(),
        serde_json::json!(["ann", "bob"])
    );
}
