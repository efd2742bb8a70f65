//! The sample apps, data-driven: every case of `tests/cases/samples.json` runs against the
//! Python and the Node sample, with forwarding and with the JSON invocation protocol, and
//! must give the same bytes each time.

use base64::Engine as _;
use serde_json::Value;

use crate::support::{HOST_KEY, MASTER, Options, SYSTEM_KEY, Stratus, repo, sample};

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Runs every case of `tests/cases/<file>` against `s`; returns the failures.
pub fn run_cases(s: &Stratus, file: &str, label: &str) -> Vec<String> {
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/cases").join(file)).unwrap(),
    )
    .unwrap();
    let own_key = {
        let r = s.get_with_key("/admin/functions/products/keys/default", MASTER);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["value"].as_str().unwrap().to_string()
    };
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let key = match case["key"].as_str() {
            None => None,
            Some("function") => Some(own_key.clone()),
            Some("host") => Some(HOST_KEY.to_string()),
            Some("master") => Some(MASTER.to_string()),
            Some("system") => Some(SYSTEM_KEY.to_string()),
            Some("wrong") => Some("not-a-key".to_string()),
            Some(other) => panic!("unknown key kind {other}"),
        };
        let mut path = case["path"].as_str().unwrap().to_string();
        let mut headers: Vec<(String, String)> = case["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(k) = key {
            if case["key_in"].as_str() == Some("query") {
                path.push(if path.contains('?') { '&' } else { '?' });
                path.push_str(&format!("code={k}"));
            } else {
                headers.push(("x-functions-key".into(), k));
            }
        }
        let body = match (case["body"].as_str(), case["body_base64"].as_str()) {
            (Some(t), _) => t.as_bytes().to_vec(),
            (_, Some(b)) => b64(b),
            _ => Vec::new(),
        };
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = s.request(case["method"].as_str().unwrap(), &path, &h, &body);
        let expect = &case["expect"];
        let mut problems = Vec::new();
        if r.status != expect["status"].as_u64().unwrap() as u16 {
            problems.push(format!(
                "status {} (expected {})",
                r.status, expect["status"]
            ));
        }
        if let Some(ct) = expect["content_type"].as_str()
            && r.header("content-type") != Some(ct)
        {
            problems.push(format!(
                "content-type {:?} (expected {ct:?})",
                r.header("content-type")
            ));
        }
        let want_body = match (expect["body"].as_str(), expect["body_base64"].as_str()) {
            (Some(t), _) => Some(t.as_bytes().to_vec()),
            (_, Some(b)) => Some(b64(b)),
            _ => None,
        };
        if let Some(want) = want_body
            && r.body != want
        {
            problems.push(format!(
                "body {:?} (expected {:?})",
                r.text(),
                String::from_utf8_lossy(&want)
            ));
        }
        if let Some(want) = expect["headers"].as_object() {
            for (k, v) in want {
                let v = v.as_str().unwrap();
                if r.header(k) != Some(v) {
                    problems.push(format!("header {k} {:?} (expected {v:?})", r.header(k)));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!("[{label}] {name}: {}", problems.join("; ")));
        }
    }
    failures
}

fn check(app: &str) {
    let mut failures = Vec::new();
    {
        let s = Stratus::start(&sample(app), Options::default());
        failures.extend(run_cases(&s, "samples.json", &format!("{app}, forwarded")));
        // The handler's own output and the function logs reach the console.
        s.wait_log("Executed 'Functions.hello' (Succeeded");
    }
    {
        let s = Stratus::start(&sample(app), Options::default().json_protocol());
        failures.extend(run_cases(
            &s,
            "samples.json",
            &format!("{app}, JSON protocol"),
        ));
        s.wait_log("greeted Ann");
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn python_sample() {
    check("python-handler");
}

#[test]
fn node_sample() {
    check("node-handler");
}
