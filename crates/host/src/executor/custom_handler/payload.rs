//! The JSON invocation request of the custom-handler protocol: `{"Data": {...}, "Metadata": {...}}`,
//! shaped exactly as the Azure host builds it (including its double-encoded metadata strings).

use base64::Engine as _;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};
use stratus_model::route::RouteValues;

use crate::app::Function;
use crate::http_data::{header_display_name, identities};
use crate::keys::Principal;

/// What the payload needs from an HTTP request.
#[derive(Debug)]
pub struct HttpRequestView<'a> {
    pub method: &'a str,
    pub url: String,
    pub query: Vec<(String, Vec<String>)>,
    pub headers: &'a HeaderMap,
    pub params: &'a RouteValues,
    pub principal: Option<&'a Principal>,
    pub body: &'a Bytes,
}

/// `Data.<trigger>` for an HTTP trigger.
pub fn http_request_object(req: &HttpRequestView<'_>) -> Value {
    let mut m = Map::new();
    m.insert("Url".into(), Value::String(req.url.clone()));
    m.insert("Method".into(), Value::String(req.method.to_string()));
    let mut query = Map::new();
    for (k, values) in &req.query {
        query.insert(k.clone(), Value::String(values.join(",")));
    }
    m.insert("Query".into(), Value::Object(query));
    let mut headers = Map::new();
    for name in req.headers.keys() {
        let values: Vec<Value> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(
            header_display_name(name.as_str()).to_string(),
            Value::Array(values),
        );
    }
    m.insert("Headers".into(), Value::Object(headers));
    let mut params = Map::new();
    for (k, v) in req.params {
        params.insert(k.clone(), v.clone().map_or(Value::Null, Value::String));
    }
    m.insert("Params".into(), Value::Object(params));
    m.insert("Identities".into(), identities(req.principal));
    if !req.body.is_empty() {
        let body = if crate::http_data::is_binary_content(req.headers) {
            base64::engine::general_purpose::STANDARD.encode(req.body)
        } else {
            let text = req.body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(req.body);
            String::from_utf8_lossy(text).into_owned()
        };
        m.insert("Body".into(), Value::String(body));
    }
    Value::Object(m)
}

/// A case-insensitive ordered map, like the host's binding-data dictionary: setting an
/// existing key (any case) keeps its first spelling and position.
#[derive(Default)]
struct BindingData(Vec<(String, Value)>);

impl BindingData {
    fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_string(), value)),
        }
    }
}

/// A string as the host hands scalar binding data to custom handlers: serialized to JSON,
/// then sent as a JSON string (so `x` arrives as `"\"x\""`).
fn double_encoded(s: &str) -> Value {
    Value::String(serde_json::to_string(s).unwrap_or_default())
}

/// `(string)token` of Newtonsoft for a scalar JSON value.
fn token_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// `DateTime.UtcNow` as Newtonsoft writes it: ISO 8601, up to 7 fraction digits, `Z`.
pub fn utc_now_text(now: chrono::DateTime<chrono::Utc>) -> String {
    let mut s = now.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    s.truncate(s.len() - 2);
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s.push('Z');
    s
}

/// `Metadata` for an HTTP trigger.
pub fn http_metadata(
    function: &Function,
    req: &HttpRequestView<'_>,
    now: chrono::DateTime<chrono::Utc>,
    rand: uuid::Uuid,
) -> Value {
    let mut data = BindingData::default();
    if !req.body.is_empty()
        && let Ok(text) = std::str::from_utf8(req.body)
    {
        let t = text.trim().trim_start_matches('\u{feff}');
        if t.starts_with('{')
            && t.ends_with('}')
            && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(t)
        {
            for (k, v) in obj {
                match v {
                    Value::Null | Value::Array(_) => {}
                    Value::Object(o) => data.set(&k, Value::Object(o)),
                    scalar => data.set(&k, double_encoded(&token_text(&scalar))),
                }
            }
        }
    }
    for (k, values) in &req.query {
        if k.eq_ignore_ascii_case("code") {
            continue;
        }
        if let Some(last) = values.last() {
            data.set(k, double_encoded(last));
        }
    }
    for (k, v) in req.params {
        if let Some(v) = v {
            data.set(k, double_encoded(v));
        }
    }
    let mut query = Map::new();
    for (k, values) in &req.query {
        query.insert(
            k.clone(),
            Value::String(values.last().cloned().unwrap_or_default()),
        );
    }
    data.set("Query", Value::Object(query));
    let mut headers = Map::new();
    for name in req.headers.keys() {
        let joined = crate::http_data::joined_header(req.headers, name);
        headers.insert(
            header_display_name(name.as_str()).to_string(),
            Value::String(joined),
        );
    }
    data.set("Headers", Value::Object(headers));
    let sys_key = if data.0.iter().any(|(k, _)| k.eq_ignore_ascii_case("sys")) {
        "$sys"
    } else {
        "sys"
    };
    let mut sys = Map::new();
    sys.insert("MethodName".into(), Value::String(function.name.clone()));
    sys.insert("UtcNow".into(), Value::String(utc_now_text(now)));
    sys.insert("RandGuid".into(), Value::String(rand.to_string()));
    data.set(sys_key, Value::Object(sys));
    Value::Object(
        data.0
            .into_iter()
            .filter(|(k, _)| !k.to_ascii_lowercase().ends_with("trigger"))
            .collect(),
    )
}

/// The whole invocation request body for an HTTP-triggered function.
pub fn http_invocation(function: &Function, req: &HttpRequestView<'_>) -> Vec<u8> {
    let trigger = function.config.trigger_binding().name.clone();
    let mut data = Map::new();
    data.insert(trigger, http_request_object(req));
    let payload = serde_json::json!({
        "Data": Value::Object(data),
        "Metadata": http_metadata(function, req, chrono::Utc::now(), uuid::Uuid::new_v4()),
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The invocation request body of a non-HTTP trigger: the trigger's value under its binding
/// name, and its metadata with `sys` (scalars double-encoded, as for HTTP).
pub fn trigger_invocation(
    function: &Function,
    value: &Value,
    metadata: &Map<String, Value>,
    retry: Option<&crate::executor::RetryContext>,
    now: chrono::DateTime<chrono::Utc>,
    rand: uuid::Uuid,
) -> Vec<u8> {
    let trigger = function.config.trigger_binding().name.clone();
    let mut data = Map::new();
    data.insert(trigger, value.clone());
    let mut md = BindingData::default();
    for (k, v) in metadata {
        match v {
            Value::Null | Value::Array(_) => {}
            Value::Object(o) => md.set(k, Value::Object(o.clone())),
            scalar => md.set(k, double_encoded(&token_text(scalar))),
        }
    }
    let mut sys = Map::new();
    sys.insert("MethodName".into(), Value::String(function.name.clone()));
    sys.insert("UtcNow".into(), Value::String(utc_now_text(now)));
    sys.insert("RandGuid".into(), Value::String(rand.to_string()));
    md.set("sys", Value::Object(sys));
    if let Some(r) = retry {
        md.set(
            "RetryContext",
            serde_json::json!({
                "RetryCount": r.retry_count,
                "MaxRetryCount": r.max_retry_count,
                "Exception": r.exception.as_ref().map(|m| serde_json::json!({"Message": m})),
            }),
        );
    }
    let payload = serde_json::json!({
        "Data": Value::Object(data),
        "Metadata": Value::Object(md.0.into_iter().collect()),
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn function() -> Function {
        crate::test_support::function(
            "Hello",
            serde_json::json!([{"type":"httpTrigger","name":"req","direction":"in"},{"type":"http","direction":"out","name":"res"}]),
        )
    }

    #[test]
    fn matches_the_host_shape() {
        let mut headers = HeaderMap::new();
        headers.insert("accept", "*/*".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.append("x-multi", "1".parse().unwrap());
        headers.append("x-multi", "2".parse().unwrap());
        let params = vec![
            ("id".to_string(), Some("42".to_string())),
            ("opt".to_string(), None),
        ];
        let body = Bytes::from_static(br#"{"a":"b","n":5,"t":true,"o":{"x":1},"l":[1],"z":null}"#);
        let req = HttpRequestView {
            method: "POST",
            url: "http://localhost:7071/api/Hello/42?name=x&name=y&code=k".into(),
            query: crate::http_data::parse_query(Some("name=x&name=y&code=k")),
            headers: &headers,
            params: &params,
            principal: None,
            body: &body,
        };
        let data = http_request_object(&req);
        assert_eq!(data["Query"]["name"], "x,y");
        assert_eq!(data["Headers"]["Accept"], serde_json::json!(["*/*"]));
        assert_eq!(data["Headers"]["x-multi"], serde_json::json!(["1", "2"]));
        assert_eq!(data["Params"], serde_json::json!({"id":"42","opt":null}));
        assert_eq!(
            data["Body"],
            r#"{"a":"b","n":5,"t":true,"o":{"x":1},"l":[1],"z":null}"#
        );

        let now = chrono::Utc
            .with_ymd_and_hms(2024, 10, 25, 15, 2, 17)
            .unwrap()
            + chrono::Duration::microseconds(123_400);
        let md = http_metadata(&function(), &req, now, uuid::Uuid::nil());
        let text = serde_json::to_string(&md).unwrap();
        assert_eq!(
            text,
            r#"{"a":"\"b\"","n":"\"5\"","t":"\"True\"","o":{"x":1},"name":"\"y\"","id":"\"42\"","Query":{"name":"y","code":"k"},"Headers":{"Accept":"*/*","Content-Type":"application/json","x-multi":"1,2"},"sys":{"MethodName":"Hello","UtcNow":"2024-10-25T15:02:17.1234Z","RandGuid":"00000000-0000-0000-0000-000000000000"}}"#
        );
    }

    #[test]
    fn binary_bodies_are_base64() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/octet-stream".parse().unwrap());
        let body = Bytes::from_static(&[0, 1, 2, 255]);
        let params = Vec::new();
        let req = HttpRequestView {
            method: "POST",
            url: "http://h/api/x".into(),
            query: Vec::new(),
            headers: &headers,
            params: &params,
            principal: None,
            body: &body,
        };
        assert_eq!(http_request_object(&req)["Body"], "AAEC/w==");
    }
}
