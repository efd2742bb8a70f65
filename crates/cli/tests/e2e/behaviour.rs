//! How the host behaves around the function: payloads, timeouts, crashes, limits, headers,
//! CORS, the homepage, admin shapes and shutdown — against `tests/apps/behaviour`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{HOST_KEY, MASTER, Options, Stratus, eventually, test_app};

fn app() -> std::path::PathBuf {
    test_app("behaviour")
}

#[test]
fn json_payload_and_handler_environment() {
    let s = Stratus::start(&app(), Options::default());
    let r = s.request(
        "POST",
        "/api/keyed?x=1&x=2&code=testFunctionKey",
        &[("content-type", "application/json")],
        br#"{"a":"b"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.logs_hint(&s));
    let v = r.json();
    let req = &v["payload"]["Data"]["req"];
    assert_eq!(
        req["Url"],
        format!(
            "http://localhost:{}/api/keyed?x=1&x=2&code=testFunctionKey",
            s.port
        )
    );
    assert_eq!(req["Method"], "POST");
    assert_eq!(req["Query"], json!({"x": "1,2", "code": "testFunctionKey"}));
    assert_eq!(req["Headers"]["Content-Type"], json!(["application/json"]));
    assert_eq!(req["Body"], r#"{"a":"b"}"#);
    assert_eq!(
        req["Identities"][0]["AuthenticationType"],
        "WebJobsAuthLevel"
    );
    let claims = req["Identities"][0]["Claims"].as_array().unwrap();
    assert!(
        claims.iter().any(|c| c["Value"] == "Function"),
        "{claims:?}"
    );
    assert!(
        claims.iter().any(|c| c["Value"] == "default"),
        "the key name is a claim: {claims:?}"
    );
    let md = &v["payload"]["Metadata"];
    assert_eq!(md["a"], "\"b\"");
    assert_eq!(md["x"], "\"2\"");
    assert!(md.get("code").is_none());
    assert_eq!(md["sys"]["MethodName"], "keyed");
    assert_eq!(v["hostVersion"], "4.1037.0.0");
    assert_eq!(v["invocationId"].as_str().unwrap().len(), 36);
    assert_eq!(v["env"]["TEST_SETTING"], "from-local-settings");
    assert_eq!(v["env"]["FUNCTIONS_APP_ROOT_PATH"], app().to_str().unwrap());
    s.wait_log("handled keyed");
    let anon = s.get("/api/inspect");
    assert_eq!(
        anon.json()["payload"]["Data"]["req"]["Identities"][0]["IsAuthenticated"],
        false
    );
}

trait Hint {
    fn logs_hint(&self, s: &Stratus) -> String;
}

impl Hint for crate::support::Response {
    fn logs_hint(&self, s: &Stratus) -> String {
        format!("{} {}\n{}", self.status, self.text(), s.logs())
    }
}

fn timeout_restarts_the_handler(opts: Options) {
    let s = Stratus::start(&app(), opts);
    let before = s.get("/api/inspect").json()["pid"].clone();
    let started = Instant::now();
    let r = s.get("/api/slow?ms=8000");
    assert_eq!(r.status, 500, "{}", r.logs_hint(&s));
    assert!(r.body.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "timed out after {took:?}"
    );
    let after = eventually(Duration::from_secs(10), || {
        let r = s.get("/api/inspect");
        (r.status == 200).then(|| r.json()["pid"].clone())
    });
    assert_ne!(before, after, "the handler was restarted");
    s.wait_log("Timeout value of 00:00:02 exceeded by function 'Functions.slow'");
    s.wait_log("Executed 'Functions.slow' (Failed");
}

#[test]
fn function_timeout_fails_the_invocation_and_restarts_the_handler() {
    timeout_restarts_the_handler(Options::default());
}

#[test]
fn function_timeout_applies_to_forwarded_requests() {
    timeout_restarts_the_handler(Options::default().env(
        "AzureFunctionsJobHost__customHandler__enableForwardingHttpRequest",
        "true",
    ));
}

#[test]
fn timeouts_while_the_handler_starts_do_not_restart_it() {
    let s = Stratus::start(
        &app(),
        Options {
            wait_running: false,
            ..Options::default()
        }
        .env("STARTUP_DELAY_MS", "3500"),
    );
    let started = Instant::now();
    let r = s.get("/api/inspect");
    assert_eq!(
        r.status,
        500,
        "the request timed out waiting: {}",
        r.logs_hint(&s)
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The handler that was starting is not killed by that timeout: it comes up.
    let first = eventually(Duration::from_secs(10), || {
        let r = s.get("/api/inspect");
        (r.status == 200).then(|| r.json()["pid"].clone())
    });
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "started once, after {:?}",
        started.elapsed()
    );
    assert_eq!(s.get("/api/inspect").json()["pid"], first);
}

#[test]
fn admin_key_paths_ignore_case_and_keep_plus_signs() {
    let s = Stratus::start(&app(), Options::default());
    let m = [("x-functions-key", MASTER)];
    let put = s.request(
        "PUT",
        "/Admin/Host/Keys/ci+deploy",
        &m,
        br#"{"value":"plus-key"}"#,
    );
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(put.json()["name"], "ci+deploy");
    let list = s.get_with_key("/ADMIN/HOST/KEYS", MASTER).json();
    assert!(
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "ci+deploy"),
        "{list}"
    );
    assert_eq!(s.get_with_key("/api/keyed", "plus-key").status, 200);
}

#[test]
fn a_crashed_handler_fails_in_flight_requests_and_comes_back() {
    let s = Stratus::start(&app(), Options::default());
    let pid = s.get("/api/inspect").json()["pid"].clone();
    let started = Instant::now();
    let r = s.get("/api/crash");
    assert_eq!(r.status, 500, "{}", r.logs_hint(&s));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a crash fails the request at once"
    );
    // Requests during the restart wait for the handler instead of failing.
    let r = s.get("/api/inspect");
    assert_eq!(r.status, 200, "{}", r.logs_hint(&s));
    assert_ne!(r.json()["pid"], pid);
    // Repeated crashes keep being recovered.
    for _ in 0..3 {
        assert_eq!(s.get("/api/crash").status, 500);
        assert_eq!(s.get("/api/inspect").status, 200);
    }
    s.wait_log("the custom handler exited");
}

#[test]
fn request_body_limit_gives_413() {
    let s = Stratus::start(
        &app(),
        Options::default().env("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "1000"),
    );
    assert_eq!(
        s.request("POST", "/api/size", &[], &[b'x'; 1000]).status,
        200
    );
    let r = s.request("POST", "/api/size", &[], &[b'x'; 1001]);
    assert_eq!(r.status, 413);
    // Chunked bodies are counted as they stream, forwarded or not.
    let chunked = format!("{:x}\r\n{}\r\n0\r\n\r\n", 1500, "y".repeat(1500));
    let r = s.request(
        "POST",
        "/api/size",
        &[("transfer-encoding", "chunked")],
        chunked.as_bytes(),
    );
    assert_eq!(r.status, 413);
    drop(s);
    let s = Stratus::start(
        &app(),
        Options::default()
            .env("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "1000")
            .env(
                "AzureFunctionsJobHost__customHandler__enableForwardingHttpRequest",
                "true",
            ),
    );
    let r = s.request(
        "POST",
        "/api/size",
        &[("transfer-encoding", "chunked")],
        chunked.as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let ok = format!("{:x}\r\n{}\r\n0\r\n\r\n", 500, "y".repeat(500));
    let r = s.request(
        "POST",
        "/api/size",
        &[("transfer-encoding", "chunked")],
        ok.as_bytes(),
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "500"),
        "forwarded bodies stream to the handler"
    );
}

#[test]
fn outstanding_request_limit_gives_429() {
    let s = Stratus::start(
        &app(),
        Options::default()
            .env(
                "AzureFunctionsJobHost__extensions__http__maxConcurrentRequests",
                "1",
            )
            .env(
                "AzureFunctionsJobHost__extensions__http__maxOutstandingRequests",
                "1",
            ),
    );
    let port = s.port;
    let slow = std::thread::spawn(move || {
        crate::support::request(port, "GET", "/api/slow?ms=1500", &[], b"")
            .unwrap()
            .status
    });
    std::thread::sleep(Duration::from_millis(300));
    let r = s.get("/api/inspect");
    assert_eq!(
        (r.status, r.header("x-function-scaleout")),
        (429, Some("1"))
    );
    assert_eq!(
        s.get_with_key("/admin/host/status", MASTER).status,
        200,
        "admin requests are never throttled"
    );
    assert_eq!(slow.join().unwrap(), 200);
    assert_eq!(s.get("/api/inspect").status, 200);
}

#[test]
fn custom_headers_cors_and_homepage() {
    let s = Stratus::start(
        &app(),
        Options::default()
            .arg("--cors")
            .arg("http://good.example")
            .arg("--cors-credentials"),
    );
    let r = s.get("/api/inspect");
    assert_eq!(r.header("x-custom"), Some("yes"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8"),
        "the function's headers win"
    );
    assert_eq!(
        s.get("/api/nope").header("x-custom"),
        Some("yes"),
        "custom headers go on every response"
    );
    let pre = s.request(
        "OPTIONS",
        "/api/inspect",
        &[
            ("origin", "http://good.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-a"),
        ],
        b"",
    );
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("http://good.example")
    );
    assert_eq!(pre.header("access-control-allow-methods"), Some("PUT"));
    assert_eq!(pre.header("access-control-allow-headers"), Some("x-a"));
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    let actual = s.request(
        "GET",
        "/api/inspect",
        &[("origin", "http://good.example")],
        b"",
    );
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("http://good.example")
    );
    let other = s.request(
        "GET",
        "/api/inspect",
        &[("origin", "http://evil.example")],
        b"",
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
    let home = s.get("/");
    assert_eq!(
        (home.status, home.header("content-type")),
        (200, Some("text/html"))
    );
    drop(s);
    let s = Stratus::start(
        &app(),
        Options::default().env("AzureWebJobsDisableHomepage", "true"),
    );
    assert_eq!(s.get("/").status, 204);
}

#[test]
fn admin_shapes() {
    let s = Stratus::start(&app(), Options::default());
    let st = s.get_with_key("/admin/host/status", MASTER).json();
    let keys: Vec<&str> = st.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "id",
            "state",
            "version",
            "versionDetails",
            "platformVersion",
            "instanceId",
            "computerName",
            "processUptime",
            "functionAppContentEditingState"
        ]
    );
    assert_eq!(st["state"], "Running");
    let f = s.get_with_key("/admin/functions/keyed", MASTER).json();
    let fields: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "script_root_path_href",
            "script_href",
            "config_href",
            "test_data_href",
            "href",
            "invoke_url_template",
            "language",
            "config",
            "files",
            "test_data",
            "isDisabled",
            "isDirect",
            "isProxy"
        ]
    );
    let base = format!("http://localhost:{}", s.port);
    assert_eq!(f["href"], format!("{base}/admin/functions/keyed"));
    assert_eq!(f["invoke_url_template"], format!("{base}/api/keyed"));
    assert_eq!(f["config"]["bindings"][0]["authLevel"], "function");
    // The links work.
    let config_path = f["config_href"]
        .as_str()
        .unwrap()
        .trim_start_matches(&base)
        .to_string();
    let config = s.get_with_key(&config_path, MASTER);
    assert_eq!(config.status, 200);
    assert!(config.text().contains("httpTrigger"));
    assert_eq!(
        s.get_with_key("/admin/vfs/etc/passwd", MASTER).status,
        404,
        "nothing outside the app"
    );
    let list = s.get_with_key("/admin/functions", MASTER).json();
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert_eq!(
        s.get_with_key("/admin/functions/nosuch", MASTER).status,
        404
    );
    assert_eq!(
        s.get_with_key("/admin/functions/keyed/keys", HOST_KEY)
            .status,
        403
    );
}

#[test]
fn ctrl_c_lets_in_flight_requests_finish_and_stops_the_handler() {
    let mut s = Stratus::start(&app(), Options::default());
    let handler_pid = s.get("/api/inspect").json()["pid"].as_u64().unwrap();
    let port = s.port;
    let slow = std::thread::spawn(move || {
        crate::support::request(port, "GET", "/api/slow?ms=1000", &[], b"").unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = s.interrupt();
    let r = slow.join().unwrap();
    assert_eq!(
        r.status,
        200,
        "the in-flight request finished: {}",
        r.text()
    );
    assert_eq!(r.json()["function"], "slow");
    assert!(status.success(), "exit status {status}\n{}", s.logs());
    let alive = std::fs::read_to_string(format!("/proc/{handler_pid}/stat"))
        .map(|st| !st.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "the handler process is gone");
}

#[test]
fn timers_fire_on_schedule_on_startup_and_on_demand() {
    let s = Stratus::start(&test_app("timers"), Options::default());
    // A schedule that does not parse fails its function alone, naming the file and field.
    s.wait_log("broken/function.json: $.bindings[0].schedule");
    // runOnStartup: the nightly job runs once at start-up (and its %Setting% schedule resolved).
    s.wait_log("timer nightly IsPastDue=False AdjustForDST=True monitored=True sys=nightly");
    // Every two seconds: the tick timer fires with the invocation logs of the host.
    crate::support::eventually(std::time::Duration::from_secs(10), || {
        (s.logs().matches("timer tick IsPastDue=False").count() >= 2).then_some(())
    });
    s.wait_log("Executing 'Functions.tick' (Reason='Timer fired at ");
    // Admin invoke: 202, and the function runs with a synthesized TimerInfo.
    let key = s.master_key();
    let r = s.request(
        "POST",
        "/admin/functions/nightly",
        &[
            ("x-functions-key", &key),
            ("Content-Type", "application/json"),
        ],
        b"{\"input\":\"\"}",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    s.wait_log("timer nightly IsPastDue=False AdjustForDST=True monitored=False");
    let bad = s.request(
        "POST",
        "/admin/functions/nightly",
        &[("x-functions-key", &key)],
        b"nope",
    );
    assert_eq!(bad.status, 400);
    let missing = s.request(
        "POST",
        "/admin/functions/nope",
        &[("x-functions-key", &key)],
        b"{}",
    );
    assert_eq!(missing.status, 404);
    let status = s.get_with_key("/admin/functions/broken/status", &key);
    assert!(status.text().contains("25"), "{}", status.text());
}
