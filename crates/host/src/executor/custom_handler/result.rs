//! Reading the custom handler's JSON answer (`Outputs`, `Logs`, `ReturnValue`) and turning
//! the function's HTTP output into a response, with the Azure host's conversion rules.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use serde_json::{Map, Value};

use crate::http::body::Body;
use crate::http::response::{HttpResponse, TEXT_PLAIN};
use crate::http_data::with_utf8;

/// The handler's answer to one invocation.
#[derive(Debug, Default)]
pub struct HandlerResult {
    pub outputs: Option<Map<String, Value>>,
    pub logs: Vec<String>,
    pub return_value: Option<Value>,
}

fn get_ci<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Parses the HTTP answer of the handler; anything but a 2xx JSON object is a failure.
pub fn parse(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HandlerResult, String> {
    if !status.is_success() {
        return Err(format!(
            "the handler answered {status}: response status code does not indicate success"
        ));
    }
    let media = content_type.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match media.as_deref() {
        Some("application/json" | "text/json") => {}
        Some(m) if m.ends_with("+json") => {}
        other => {
            return Err(format!(
                "the handler answered with Content-Type {}; expected application/json with {{\"Outputs\", \"Logs\", \"ReturnValue\"}}",
                other.unwrap_or("(none)")
            ));
        }
    }
    let text = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| format!("the handler's answer is not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("the handler's answer is not a JSON object with \"Outputs\", \"Logs\" and \"ReturnValue\"".into());
    };
    let outputs = match get_ci(&obj, "Outputs") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o.clone()),
        Some(_) => return Err("\"Outputs\" in the handler's answer must be an object".into()),
    };
    let logs = match get_ci(&obj, "Logs") {
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        _ => Vec::new(),
    };
    let return_value = get_ci(&obj, "ReturnValue")
        .filter(|v| !v.is_null())
        .cloned();
    Ok(HandlerResult {
        outputs,
        logs,
        return_value,
    })
}

/// `ToString()` of a Newtonsoft token: strings raw, booleans `True`/`False`, structures as
/// indented JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// `Convert.FromBase64String`: white space ignored, length a multiple of 4, standard alphabet.
fn strict_base64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if !compact.len().is_multiple_of(4) {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

enum OutBody {
    None,
    Text(String),
    Bytes(Bytes),
}

fn build(status: u16, headers: Option<&Value>, body: OutBody) -> Result<HttpResponse, String> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() =
        StatusCode::from_u16(status).map_err(|_| format!("invalid status code {status}"))?;
    let mut content_type: Option<String> = None;
    if let Some(Value::Object(h)) = headers {
        for (k, v) in h {
            if k.eq_ignore_ascii_case("content-type") {
                if v.is_null() {
                    return Err("content-type header cannot be null".into());
                }
                content_type = Some(text_of(v));
                continue;
            }
            if v.is_null() {
                return Err(format!("header \"{k}\" cannot be null"));
            }
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&text_of(v)),
            ) else {
                tracing::warn!(header = %k, "dropping a response header that is not valid HTTP");
                continue;
            };
            // The host frames the body itself; a handler's framing headers would contradict it.
            if name == http::header::CONTENT_LENGTH
                || name == http::header::TRANSFER_ENCODING
                || name == http::header::CONNECTION
            {
                tracing::debug!(header = %k, "dropping a framing header from the function's response");
                continue;
            }
            if !resp.headers().contains_key(&name) {
                resp.headers_mut().insert(name, value);
            }
        }
    }
    match body {
        OutBody::None => {}
        OutBody::Text(t) => {
            let ct = content_type.map_or_else(|| TEXT_PLAIN.to_string(), |c| with_utf8(&c));
            if let Ok(v) = HeaderValue::from_str(&ct) {
                resp.headers_mut().insert(CONTENT_TYPE, v);
            }
            *resp.body_mut() = Body::full(t);
        }
        OutBody::Bytes(b) => {
            if let Some(v) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().insert(CONTENT_TYPE, v);
            }
            *resp.body_mut() = Body::full(b);
        }
    }
    Ok(resp)
}

fn status_of(v: Option<&Value>) -> Option<u16> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse::<u16>().ok(),
        _ => None,
    }
}

/// A named `http` output (`res`): an object (or a string holding one) with `statusCode`,
/// `headers` and `body`; `status` is not consulted, as in the host.
fn named_output(value: &Value) -> Result<HttpResponse, String> {
    let parsed;
    let obj = match value {
        Value::Object(o) => o,
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok();
            match &parsed {
                Some(Value::Object(o)) => o,
                _ => return Err("Failed while trying to Deserialize to httpOutputBindingResponse. Output is not in expected format".into()),
            }
        }
        _ => return Err("Failed while trying to Deserialize to httpOutputBindingResponse. Output is not in expected format".into()),
    };
    let status = status_of(get_ci(obj, "statusCode")).unwrap_or(200);
    let body = match get_ci(obj, "body") {
        None | Some(Value::Null) => OutBody::None,
        Some(v) => OutBody::Text(text_of(v)),
    };
    build(status, get_ci(obj, "headers"), body)
}

/// The value of a `$return` http output.
fn return_output(value: &Value) -> Result<HttpResponse, String> {
    match value {
        Value::String(s) => {
            if let Some(bytes) = strict_base64(s) {
                return build(200, None, OutBody::Bytes(Bytes::from(bytes)));
            }
            match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => return_output(&v),
                Ok(Value::String(inner)) => build(200, None, OutBody::Text(inner)),
                Ok(v @ (Value::Number(_) | Value::Bool(_))) => {
                    build(200, None, OutBody::Text(text_of(&v)))
                }
                _ => build(200, None, OutBody::Text(s.clone())),
            }
        }
        Value::Object(obj) => match get_ci(obj, "body") {
            Some(body) => {
                let status = status_of(get_ci(obj, "statusCode"))
                    .or_else(|| status_of(get_ci(obj, "status")))
                    .unwrap_or(200);
                let body = match body {
                    Value::Null => OutBody::None,
                    Value::String(s) => OutBody::Text(s.clone()),
                    Value::Object(_) | Value::Array(_) => OutBody::Text(body.to_string()),
                    other => OutBody::Text(text_of(other)),
                };
                build(status, get_ci(obj, "headers"), body)
            }
            None => build(200, None, OutBody::Text(text_of(value))),
        },
        Value::Null => build(204, None, OutBody::None),
        other => build(200, None, OutBody::Text(text_of(other))),
    }
}

/// The HTTP response of an invocation whose function declares the `http` output `output`.
pub fn http_response(output: Option<&str>, result: &HandlerResult) -> Result<HttpResponse, String> {
    match output {
        Some("$return") => match &result.return_value {
            None => build(204, None, OutBody::None),
            Some(v) => return_output(v),
        },
        Some(name) => {
            let from_outputs = result.outputs.as_ref().and_then(|o| get_ci(o, name));
            let from_return = match &result.return_value {
                Some(Value::Object(r)) => get_ci(r, name),
                _ => None,
            };
            match (from_return.or(from_outputs), &result.outputs) {
                (Some(v), _) if !v.is_null() => named_output(v),
                (_, Some(_)) => build(200, None, OutBody::Text("{}".into())),
                (_, None) => plain_return(result.return_value.as_ref()),
            }
        }
        None => plain_return(result.return_value.as_ref()),
    }
}

/// No http output value: the host answers with the function's return value itself.
fn plain_return(value: Option<&Value>) -> Result<HttpResponse, String> {
    match value {
        None | Some(Value::Null) => build(204, None, OutBody::None),
        Some(Value::String(s)) => build(200, None, OutBody::Text(s.clone())),
        Some(v @ Value::Object(_)) => {
            let mut r = build(200, None, OutBody::Text(v.to_string()))?;
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(crate::http::response::APPLICATION_JSON),
            );
            Ok(r)
        }
        Some(other) => build(200, None, OutBody::Text(text_of(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use serde_json::json;

    async fn render(
        output: Option<&str>,
        answer: Value,
    ) -> (u16, Option<String>, String, http::HeaderMap) {
        let (s, ct, body, h) = render_bytes(output, answer).await;
        (s, ct, String::from_utf8_lossy(&body).into_owned(), h)
    }

    async fn render_bytes(
        output: Option<&str>,
        answer: Value,
    ) -> (u16, Option<String>, Vec<u8>, http::HeaderMap) {
        let result = parse(
            StatusCode::OK,
            Some("application/json"),
            answer.to_string().as_bytes(),
        )
        .unwrap();
        let resp = http_response(output, &result).unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let ct = headers
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ct, body.to_vec(), headers)
    }

    #[test]
    fn failures() {
        assert!(
            parse(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("application/json"),
                b"{}"
            )
            .is_err()
        );
        assert!(parse(StatusCode::OK, Some("text/plain"), b"{}").is_err());
        assert!(parse(StatusCode::OK, None, b"{}").is_err());
        assert!(parse(StatusCode::OK, Some("application/json"), b"Hello World").is_err());
        assert!(parse(StatusCode::OK, Some("application/json"), b"null").is_err());
        let r = parse(
            StatusCode::OK,
            Some("application/json; charset=utf-8"),
            br#"{"outputs":{"res":1},"logs":["a",2]}"#,
        )
        .unwrap();
        assert_eq!(r.logs, vec!["a", "2"]);
        assert!(r.outputs.is_some());
    }

    #[tokio::test]
    async fn named_output_rules() {
        let (s, ct, body, h) = render(
            Some("res"),
            json!({"Outputs":{"res":{"statusCode":"201","status":404,"body":{"a":true},"headers":{"X-A":5,"Content-Type":"application/json"}}}}),
        )
        .await;
        assert_eq!(s, 201, "statusCode wins, status is ignored");
        assert_eq!(ct.as_deref(), Some("application/json; charset=utf-8"));
        assert_eq!(body, "{\n  \"a\": true\n}", "object bodies are indented");
        assert_eq!(h["x-a"], "5");
        let (_, _, body, h) = render(
            Some("res"),
            json!({"Outputs":{"res":{"body":"hello world","headers":{"Content-Length":"5","Connection":"close"}}}}),
        )
        .await;
        assert_eq!(body, "hello world");
        assert!(h.get("content-length").is_none() && h.get("connection").is_none());
        let (s, ct, body, _) = render(
            Some("res"),
            json!({"Outputs":{"res":{"status":404,"body":true}}}),
        )
        .await;
        assert_eq!(
            (s, ct.as_deref(), body.as_str()),
            (200, Some("text/plain; charset=utf-8"), "True")
        );
        let (s, _, body, _) = render(
            Some("res"),
            json!({"Outputs":{"res":"{\"statusCode\":202,\"body\":\"x\"}"}}),
        )
        .await;
        assert_eq!((s, body.as_str()), (202, "x"), "a string holding JSON");
        let (s, _, body, _) = render(Some("res"), json!({"Outputs":{}})).await;
        assert_eq!((s, body.as_str()), (200, "{}"));
        let (s, _, _, _) = render(Some("res"), json!({"Outputs":null})).await;
        assert_eq!(s, 204);
        let result = parse(
            StatusCode::OK,
            Some("application/json"),
            br#"{"Outputs":{"res":"hello"}}"#,
        )
        .unwrap();
        assert!(http_response(Some("res"), &result).is_err());
    }

    #[tokio::test]
    async fn return_output_rules() {
        let (s, ct, body, _) = render(Some("$return"), json!({"ReturnValue":{"status":"202","body":{"a":1},"headers":{"content-type":"application/json"}}})).await;
        assert_eq!(
            (s, ct.as_deref(), body.as_str()),
            (202, Some("application/json; charset=utf-8"), "{\"a\":1}")
        );
        let (s, ct, body, _) = render(Some("$return"), json!({"ReturnValue":"Hello, world"})).await;
        assert_eq!(
            (s, ct.as_deref(), body.as_str()),
            (200, Some("text/plain; charset=utf-8"), "Hello, world")
        );
        let (s, ct, body, _) = render_bytes(Some("$return"), json!({"ReturnValue":"test"})).await;
        assert_eq!(
            (s, ct, body.as_slice()),
            (200, None, &[0xb5, 0xeb, 0x2d][..]),
            "valid base64 becomes bytes, as in the host"
        );
        let (s, _, _, _) = render(Some("$return"), json!({})).await;
        assert_eq!(s, 204);
        let (s, _, body, _) = render(Some("$return"), json!({"ReturnValue":{"a":1}})).await;
        assert_eq!((s, body.as_str()), (200, "{\n  \"a\": 1\n}"));
    }

    #[test]
    fn charsets() {
        assert_eq!(
            with_utf8("application/json"),
            "application/json; charset=utf-8"
        );
        assert_eq!(
            with_utf8("text/html; charset=latin1"),
            "text/html; charset=utf-8"
        );
    }
}
