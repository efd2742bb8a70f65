//! Routes, constraints, methods and load errors, against `tests/apps/routes` (which also
//! holds broken functions and files with a byte-order mark).

use serde_json::{Value, json};

use crate::support::{MASTER, Options, Stratus, test_app};

/// (method, path, expected function or None for 404, expected params)
fn table() -> Vec<(&'static str, &'static str, Option<&'static str>, Value)> {
    vec![
        ("GET", "/api/r/int/42", Some("int"), json!({"id": "42"})),
        ("GET", "/api/r/int/-7", Some("int"), json!({"id": "-7"})),
        (
            "GET",
            "/api/r/int/2147483648",
            Some("zzzshadow"),
            json!({"id": "2147483648"}),
        ),
        (
            "GET",
            "/api/r/int/abc",
            Some("zzzshadow"),
            json!({"id": "abc"}),
        ),
        (
            "GET",
            "/api/r/long/2147483648",
            Some("long"),
            json!({"x": "2147483648"}),
        ),
        ("GET", "/api/r/long/1.5", None, json!(null)),
        (
            "GET",
            "/api/r/guid/0f8fad5b-d9cb-469f-a165-70867728950e",
            Some("guid"),
            json!({"id": "0f8fad5b-d9cb-469f-a165-70867728950e"}),
        ),
        ("GET", "/api/r/guid/not-a-guid", None, json!(null)),
        (
            "GET",
            "/api/r/alpha/abcXYZ",
            Some("alpha"),
            json!({"s": "abcXYZ"}),
        ),
        ("GET", "/api/r/alpha/abc1", None, json!(null)),
        (
            "GET",
            "/api/r/bool/TRUE",
            Some("bool"),
            json!({"b": "TRUE"}),
        ),
        ("GET", "/api/r/bool/1", None, json!(null)),
        (
            "GET",
            "/api/r/date/2024-02-29",
            Some("datetime"),
            json!({"d": "2024-02-29"}),
        ),
        ("GET", "/api/r/date/2024-02-30", None, json!(null)),
        ("GET", "/api/r/range/5", Some("range"), json!({"n": "5"})),
        ("GET", "/api/r/range/6", None, json!(null)),
        ("GET", "/api/r/len/abc", Some("length"), json!({"s": "abc"})),
        ("GET", "/api/r/len/abcd", None, json!(null)),
        (
            "GET",
            "/api/r/minmax/15",
            Some("minmax"),
            json!({"n": "15"}),
        ),
        ("GET", "/api/r/minmax/21", None, json!(null)),
        (
            "GET",
            "/api/r/mml/abcd",
            Some("minmaxlength"),
            json!({"s": "abcd"}),
        ),
        ("GET", "/api/r/mml/a", None, json!(null)),
        (
            "GET",
            "/api/r/regex/AB-12",
            Some("regex"),
            json!({"code": "AB-12"}),
        ),
        ("GET", "/api/r/regex/abc-12", None, json!(null)),
        (
            "GET",
            "/api/r/dec/1,234.5",
            Some("decimal"),
            json!({"x": "1,234.5"}),
        ),
        (
            "GET",
            "/api/r/dbl/1.5e3",
            Some("double"),
            json!({"x": "1.5e3"}),
        ),
        ("GET", "/api/r/flt/x", None, json!(null)),
        ("GET", "/api/r/opt", Some("optional"), json!({"a": null})),
        ("GET", "/api/r/opt/x", Some("optional"), json!({"a": "x"})),
        ("GET", "/api/r/def", Some("defaults"), json!({"a": "dflt"})),
        (
            "GET",
            "/api/r/files/a/b/c.txt",
            Some("catchall"),
            json!({"path": "a/b/c.txt"}),
        ),
        (
            "GET",
            "/api/r/files",
            Some("catchall"),
            json!({"path": null}),
        ),
        (
            "GET",
            "/api/r/file/report.tar.gz",
            Some("complex"),
            json!({"name": "report.tar", "ext": "gz"}),
        ),
        (
            "GET",
            "/api/r/file/readme",
            Some("complex"),
            json!({"name": "readme", "ext": null}),
        ),
        (
            "GET",
            "/api/r/int/a%20b",
            Some("zzzshadow"),
            json!({"id": "a b"}),
        ),
        (
            "GET",
            "/api/r/int/a%2Fb",
            Some("zzzshadow"),
            json!({"id": "a%2Fb"}),
        ),
        ("GET", "/API/R/VERBS", Some("getonly"), json!({})),
        ("POST", "/api/r/verbs", Some("postonly"), json!({})),
        ("DELETE", "/api/r/verbs", None, json!(null)),
        ("GET", "/api/plain", Some("plain"), json!({})),
        ("GET", "/api/r/bom", Some("bom"), json!({})),
        ("GET", "/api/r/int//42", None, json!(null)),
        ("GET", "/api/administrators/1", None, json!(null)),
        ("GET", "/api/r/disabled", None, json!(null)),
    ]
}

#[test]
fn routes_constraints_and_methods() {
    let s = Stratus::start(&test_app("routes"), Options::default());
    let mut failures = Vec::new();
    for (method, path, function, params) in table() {
        let r = s.request(method, path, &[], if method == "POST" { b"x" } else { b"" });
        match function {
            None if r.status == 404 && r.body.is_empty() => {}
            None => failures.push(format!(
                "{method} {path}: expected 404, got {} {}",
                r.status,
                r.text()
            )),
            Some(f) => {
                if r.status != 200 {
                    failures.push(format!(
                        "{method} {path}: expected {f}, got {} {}",
                        r.status,
                        r.text()
                    ));
                    continue;
                }
                let v = r.json();
                if v["function"] != f || v["params"] != params || v["method"] != method {
                    failures.push(format!(
                        "{method} {path}: expected {f} {params}, got {} {} {}",
                        v["function"], v["params"], v["method"]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A disabled function answers 404 unless the caller is admin.
    assert_eq!(s.get_with_key("/api/r/disabled", MASTER).status, 200);
}

#[test]
fn broken_functions_are_reported_and_the_others_serve() {
    let s = Stratus::start(&test_app("routes"), Options::default());
    let status = |f: &str| s.get_with_key(&format!("/admin/functions/{f}/status"), MASTER);
    for (function, needle) in [
        (
            "broken",
            "broken/function.json: $: expected a JSON document",
        ),
        (
            "notrigger",
            "notrigger/function.json: $.bindings: expected exactly one trigger",
        ),
        (
            "badlevel",
            "badlevel/function.json: $.bindings[0].authLevel: expected one of",
        ),
        ("adminroute", "conflicts with one or more built in routes"),
        (
            "intdup",
            "conflicts with the route defined by function 'int'",
        ),
        ("badconstraint", "could not be resolved"),
    ] {
        let r = status(function);
        assert_eq!(r.status, 200, "{function}");
        let errors = r.json()["errors"].as_array().cloned().unwrap_or_default();
        let text = errors
            .iter()
            .map(|e| e.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains(needle), "{function}: {text}");
    }
    assert_eq!(status("int").json(), json!({}));
    assert_eq!(status("nosuch").status, 404);
    // Broken functions are not listed; the console names them.
    let list = s.get_with_key("/admin/functions", MASTER).json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"bom") && names.contains(&"int") && !names.contains(&"broken"),
        "{names:?}"
    );
    s.wait_log("The 'broken' function is in error");
    s.wait_log("Function disabled is disabled.");
}

#[test]
fn route_prefix_can_be_changed_or_removed() {
    let s = Stratus::start(
        &test_app("routes"),
        Options::default().env("AzureFunctionsJobHost__extensions__http__routePrefix", ""),
    );
    assert_eq!(s.get("/r/int/1").json()["function"], "int");
    assert_eq!(s.get("/api/r/int/1").status, 404);
    drop(s);
    let s = Stratus::start(
        &test_app("routes"),
        Options::default().env("AzureFunctionsJobHost__extensions__http__routePrefix", "v2"),
    );
    assert_eq!(s.get("/v2/plain").json()["function"], "plain");
}

#[test]
fn an_invalid_host_json_stops_start_up() {
    let data = tempfile::tempdir().unwrap();
    let out = crate::support::stratus_command()
        .args([
            "start",
            test_app("badhost").to_str().unwrap(),
            "--port",
            &crate::support::free_port().to_string(),
        ])
        .env("STRATUS_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("host.json: $.version: expected \"2.0\", found \"3.0\""),
        "{err}"
    );
}
