//! Watching and editing managed apps through the management API, as the portal does: the
//! invocations a test request or an admin invoke caused, with their logs; the history with
//! filters, the per-minute statistics and rates; the live log stream (Server-Sent Events);
//! an app made and changed through the editor's change sets, invalid ones refused per file.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use serde_json::{Value, json};

use crate::manage::{Manage, manage_with, spawn_worker};
use crate::support::{eventually, request};

/// An admin call of the management API.
fn call(m: &Manage, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let bearer = m.admin_bearer();
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = request(
        m.port,
        method,
        path,
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// Invocation `id` of `app` with its logs, once the management role knows it.
fn invocation(m: &Manage, app: &str, id: &str) -> Value {
    eventually(Duration::from_secs(15), || {
        let (status, v) = call(
            m,
            "GET",
            &format!("/api/apps/{app}/invocations/{id}"),
            &Value::Null,
        );
        (status == 200 && !v["logs"].as_array()?.is_empty()).then_some(v)
    })
}

fn messages(v: &Value) -> Vec<String> {
    v["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect()
}

/// Reads the live log stream of `app` until `want` appears in it (or panics after `limit`).
fn stream_until(stream: &mut std::net::TcpStream, seen: &mut String, want: &str, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while !seen.contains(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "{want:?} not in the stream:\n{seen}"
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!("the stream ended:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the stream: {e}"),
        }
    }
}

#[test]
fn invocations_their_logs_statistics_and_the_live_stream_reach_the_management_role() {
    let m = manage_with(&[]);
    m.apps(&["create", "mon"]).unwrap();
    // The JSON invocation protocol, so the handler's `Logs` come back.
    m.apps(&[
        "set",
        "mon",
        "AzureFunctionsJobHost__customHandler__enableForwardingHttpRequest",
        "false",
    ])
    .unwrap();
    let sample = crate::support::sample("python-handler");
    m.apps(&["deploy", "mon", sample.to_str().unwrap()])
        .unwrap();
    let token = m.join_token();
    let _w = spawn_worker(&m, &token, "w1", &[]);
    m.wait_serving("mon");

    // The live stream, opened before anything ran: without a session or token, 401.
    let r = request(m.port, "GET", "/api/apps/mon/logs/stream", &[], b"").unwrap();
    assert_eq!(r.status, 401);
    let mut live = std::net::TcpStream::connect(("127.0.0.1", m.port)).unwrap();
    live.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        live,
        "GET /api/apps/mon/logs/stream HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
        m.admin_bearer()
    )
    .unwrap();
    let mut seen = String::new();
    stream_until(&mut live, &mut seen, "retry:", Duration::from_secs(10));
    assert!(seen.contains("text/event-stream"), "{seen}");

    // A test request names its invocation; the record and its log line follow.
    let (status, answer) = call(
        &m,
        "POST",
        "/api/apps/mon/test",
        &json!({"method": "GET", "path": "/api/hello", "query": "name=Ada"}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["body"], "Hello, Ada!");
    let id = answer["invocationId"]
        .as_str()
        .expect("an invocation id")
        .to_string();
    assert!(
        !answer["headers"]
            .to_string()
            .contains("x-stratus-invocation-id"),
        "{answer}"
    );
    let inv = invocation(&m, "mon", &id);
    assert_eq!(
        (
            &inv["function"],
            &inv["trigger"],
            &inv["status"],
            &inv["worker"]
        ),
        (
            &json!("hello"),
            &json!("httpTrigger"),
            &json!("ok"),
            &json!("w1")
        ),
        "{inv}"
    );
    assert!(inv["durationMs"].as_f64().unwrap() > 0.0);
    assert!(messages(&inv).contains(&"greeted Ada".to_string()), "{inv}");
    stream_until(&mut live, &mut seen, "greeted Ada", Duration::from_secs(10));
    assert!(seen.contains("event: log"), "{seen}");

    // An admin invoke of the timer through the test panel: 202 with the invocation's id; its
    // queue output runs `work` three times.
    let keys: Value = serde_json::from_str(&m.apps(&["keys", "mon"]).unwrap()).unwrap();
    let master = keys["master"].as_str().unwrap().to_string();
    let (status, answer) = call(
        &m,
        "POST",
        "/api/apps/mon/test",
        &json!({"method": "POST", "path": "/admin/functions/nightly",
                "headers": {"x-functions-key": master, "Content-Type": "application/json"}, "body": "{}"}),
    );
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(202)),
        "{answer}"
    );
    let timer = answer["invocationId"].as_str().unwrap().to_string();
    let inv = invocation(&m, "mon", &timer);
    assert_eq!(inv["trigger"], "timerTrigger", "{inv}");
    assert!(messages(&inv).contains(&"fanned out 3 jobs".to_string()));
    let work = eventually(Duration::from_secs(20), || {
        let (_, v) = call(
            &m,
            "GET",
            "/api/apps/mon/invocations?function=work",
            &Value::Null,
        );
        let list = v["invocations"].as_array()?.clone();
        (list.len() >= 3).then_some(list)
    });
    assert!(
        work.iter()
            .all(|i| i["trigger"] == "queueTrigger" && i["status"] == "ok")
    );

    // A poison message fails `work`: the failures are filtered apart.
    let r = request(
        m.front,
        "POST",
        "/apps/mon/api/enqueue",
        &[],
        br#"{"job": 9, "poison": true}"#,
    )
    .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let failed = eventually(Duration::from_secs(30), || {
        let (_, v) = call(
            &m,
            "GET",
            "/api/apps/mon/invocations?status=failed",
            &Value::Null,
        );
        v["invocations"].as_array()?.first().cloned()
    });
    assert_eq!(failed["function"], "work");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    let (_, ok) = call(
        &m,
        "GET",
        "/api/apps/mon/invocations?status=ok&limit=2",
        &Value::Null,
    );
    let ok = ok["invocations"].as_array().unwrap();
    assert_eq!(ok.len(), 2);
    assert!(
        ok[0]["start"].as_i64() >= ok[1]["start"].as_i64(),
        "newest first"
    );
    let (status, _) = call(
        &m,
        "GET",
        "/api/apps/mon/invocations?status=maybe",
        &Value::Null,
    );
    assert_eq!(status, 400);

    // Per-minute statistics and the apps' rates.
    let stats = eventually(Duration::from_secs(10), || {
        let (_, v) = call(&m, "GET", "/api/apps/mon/stats?minutes=5", &Value::Null);
        (v["total"]["errors"].as_i64()? >= 1 && v["total"]["count"].as_i64()? >= 6).then_some(v)
    });
    assert_eq!(stats["minutes"].as_array().unwrap().len(), 5);
    assert!(stats["total"]["p50"].as_f64().is_some(), "{stats}");
    let (_, apps) = call(&m, "GET", "/api/apps", &Value::Null);
    let mon = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "mon")
        .unwrap()
        .clone();
    assert!(mon["invocationsPerMinute"].as_f64().unwrap() > 0.0, "{mon}");
    assert_eq!(mon["replicasReady"], 1, "{mon}");

    // Lines keep coming on the open stream.
    let (status, _) = call(
        &m,
        "POST",
        "/api/apps/mon/test",
        &json!({"method": "GET", "path": "/api/hello", "query": "name=Live"}),
    );
    assert_eq!(status, 200);
    stream_until(
        &mut live,
        &mut seen,
        "greeted Live",
        Duration::from_secs(10),
    );
}

/// The Python handler sample's files, as a change set making a new app.
fn sample_files() -> Vec<Value> {
    let root = crate::support::sample("python-handler");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "local.settings.json") {
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files
                    .push(json!({"path": rel, "content": std::fs::read_to_string(&path).unwrap()}));
            }
        }
    }
    files
}

#[test]
fn the_editor_s_change_sets_make_and_change_an_app_and_invalid_ones_are_refused_per_file() {
    let m = manage_with(&[]);
    m.apps(&["create", "ed"]).unwrap();
    let token = m.join_token();
    let _w = spawn_worker(&m, &token, "w1", &[]);
    let (status, files) = call(&m, "GET", "/api/apps/ed/files", &Value::Null);
    assert_eq!(
        (status, &files),
        (200, &json!({"version": null, "files": []}))
    );

    // The first change makes the app from nothing.
    let (status, v) = call(
        &m,
        "POST",
        "/api/apps/ed/changes",
        &json!({"baseVersion": null, "message": "First", "files": sample_files()}),
    );
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["version"], 1);
    m.wait_hello("ed", "Hello, x!");
    let (_, files) = call(&m, "GET", "/api/apps/ed/files", &Value::Null);
    assert_eq!(files["version"], 1);
    let paths: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"hello/function.json") && paths.contains(&"handler.py"),
        "{paths:?}"
    );
    let bearer = m.admin_bearer();
    let r = request(
        m.port,
        "GET",
        "/api/apps/ed/files/handler.py",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-stratus-version"), Some("1"));
    let handler = r.text();
    assert!(handler.contains("\"Hello\""), "{handler}");
    let r = request(
        m.port,
        "GET",
        "/api/apps/ed/files/nope.py",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 404);

    // An invalid function.json is refused with the file and the JSON path; nothing changed.
    let (status, v) = call(
        &m,
        "POST",
        "/api/apps/ed/changes",
        &json!({"baseVersion": 1, "files": [
            {"path": "hello/function.json", "content": "{\"bindings\": [{\"type\": \"httpTrigger\", \"direction\": \"in\"}]}"}]}),
    );
    assert_eq!(status, 422, "{v}");
    let details = &v["error"]["details"];
    assert_eq!(details[0]["file"], "hello/function.json", "{v}");
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap()
            .contains("$.bindings[0]"),
        "{v}"
    );
    // So is a broken host.json, a path outside the app, and a stale base version.
    let (status, v) = call(
        &m,
        "POST",
        "/api/apps/ed/changes",
        &json!({"baseVersion": 1, "files": [{"path": "host.json", "content": "{\"version\": \"1.0\"}"}]}),
    );
    assert_eq!(
        (status, &v["error"]["details"][0]["file"]),
        (422, &json!("host.json")),
        "{v}"
    );
    let (status, _) = call(
        &m,
        "POST",
        "/api/apps/ed/changes",
        &json!({"baseVersion": 1, "files": [{"path": "../escape.py", "content": ""}]}),
    );
    assert_eq!(status, 400);
    let (status, v) = call(
        &m,
        "POST",
        "/api/apps/ed/changes",
        &json!({"baseVersion": null, "files": [{"path": "x.txt", "content": ""}]}),
    );
    assert_eq!(status, 409, "{v}");
    m.wait_hello("ed", "Hello, x!");

    // A valid edit is a new version, live everywhere at once.
    let (status, v) = call(
        &m,
        "POST",
        "/api/apps/ed/changes",
        &json!({"baseVersion": 1, "message": "Say it in French", "files": [
            {"path": "handler.py", "content": handler.replace("\"Hello\"", "\"Salut\"")},
            {"path": "report/function.json", "delete": true}]}),
    );
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["version"], 2);
    let deployment = v["deployment"].as_str().unwrap().to_string();
    let done = eventually(Duration::from_secs(60), || {
        let (_, d) = call(
            &m,
            "GET",
            &format!("/api/apps/ed/deployments/{deployment}"),
            &Value::Null,
        );
        (d["complete"] == true).then_some(d)
    });
    assert_eq!(done["status"], 4, "{done}");
    m.wait_hello("ed", "Salut, x!");
    let (_, files) = call(&m, "GET", "/api/apps/ed/files", &Value::Null);
    assert_eq!(files["version"], 2);
    assert!(!files.to_string().contains("report/function.json"));
}
