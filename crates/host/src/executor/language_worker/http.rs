//! HTTP over the worker protocol: a client request as `RpcHttp` and trigger metadata, and
//! the worker's answer as a response, with the Azure host's conversion rules.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, SET_COOKIE};
use http::{Response, StatusCode};
use serde_json::{Map, Value};
use stratus_model::AuthLevel;
use stratus_model::route::RouteValues;
use stratus_proto::msg::{
    ClaimsIdentity, Cookie, InvocationResponse, RpcHttp, SameSite, TypedData,
};

use super::capabilities::Capabilities;
use crate::http::body::Body;
use crate::http::response::{HttpResponse, TEXT_PLAIN};
use crate::http_data::{
    header_display_name, is_binary_content, joined_header, media_type, parse_query, url_encode,
    with_utf8,
};
use crate::keys::Principal;

const NAME_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
const ROLE_CLAIM: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
const CLAIMS: &str = "http://schemas.microsoft.com/2017/07/functions/claims";

/// The parts of a client request the conversion reads.
#[derive(Debug)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub url: String,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub params: &'a RouteValues,
    pub principal: Option<&'a Principal>,
    /// The body, when the request declared a length above zero (the host reads no other).
    pub body: Option<Bytes>,
}

fn text(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.strip_prefix('\u{feff}').unwrap_or(&s).to_string()
}

/// A parsed JSON body as the host converts it (`ToRpc`).
fn json_typed(v: &Value) -> TypedData {
    match v {
        Value::Null => TypedData::None,
        Value::String(s) => TypedData::String(s.clone()),
        Value::Number(n) if n.is_f64() => TypedData::Double(n.as_f64().unwrap_or_default()),
        other => TypedData::Json(other.to_string()),
    }
}

fn identities(principal: Option<&Principal>) -> Vec<ClaimsIdentity> {
    match principal {
        Some(p) if p.level != AuthLevel::Anonymous => {
            let level = match p.level {
                AuthLevel::Admin => "Admin",
                AuthLevel::System => "System",
                AuthLevel::User => "User",
                _ => "Function",
            };
            let mut claims = vec![(format!("{CLAIMS}/authlevel"), level.to_string())];
            if let Some(k) = &p.key_name {
                claims.push((format!("{CLAIMS}/invoke"), "true".to_string()));
                claims.push((format!("{CLAIMS}/keyid"), k.clone()));
            }
            vec![ClaimsIdentity {
                authentication_type: Some("WebJobsAuthLevel".into()),
                name_claim_type: Some(NAME_CLAIM.into()),
                role_claim_type: Some(ROLE_CLAIM.into()),
                claims,
            }]
        }
        _ => vec![ClaimsIdentity {
            authentication_type: None,
            name_claim_type: Some(NAME_CLAIM.into()),
            role_claim_type: Some(ROLE_CLAIM.into()),
            claims: Vec::new(),
        }],
    }
}

/// The request as `RpcHttp`, honouring the worker's capabilities.
pub fn rpc_http(req: &RequestView<'_>, caps: &Capabilities) -> RpcHttp {
    let nullable = caps.nullable_maps;
    let mut headers = Vec::with_capacity(req.headers.keys_len());
    for name in req.headers.keys() {
        let joined = joined_header(req.headers, name);
        if joined.is_empty() && caps.ignore_empty_headers && !nullable {
            continue;
        }
        headers.push((name.as_str().to_string(), joined));
    }
    let query = parse_query(req.query)
        .into_iter()
        .filter_map(|(k, values)| {
            let joined = values
                .into_iter()
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
                .join(",");
            (nullable || !joined.is_empty()).then_some((k, joined))
        })
        .collect();
    let params = req
        .params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    let (body, raw_body) = match &req.body {
        None => (None, None),
        Some(bytes) => {
            let octet = is_binary_content(req.headers);
            if caps.rpc_http_body_only {
                if octet || caps.raw_http_body_bytes {
                    (Some(TypedData::Bytes(bytes.clone())), None)
                } else {
                    (Some(TypedData::String(text(bytes))), None)
                }
            } else {
                let raw = if caps.raw_http_body_bytes {
                    TypedData::Bytes(bytes.clone())
                } else {
                    TypedData::String(text(bytes))
                };
                let body = if media_type(req.headers) == "application/json" {
                    let t = text(bytes);
                    match serde_json::from_str::<Value>(&t) {
                        Ok(v) => json_typed(&v),
                        Err(_) => TypedData::String(t),
                    }
                } else if octet {
                    TypedData::Bytes(bytes.clone())
                } else {
                    TypedData::String(text(bytes))
                };
                (Some(body), Some(raw))
            }
        }
    };
    RpcHttp {
        method: req.method.to_string(),
        url: req.url.clone(),
        headers,
        body,
        raw_body,
        params,
        query,
        identities: identities(req.principal),
        nullable_maps: nullable,
        ..RpcHttp::default()
    }
}

/// The `RpcHttp` of a request the worker receives on its own HTTP server (`HttpUri`): empty,
/// but for the route values when the worker asks for them.
pub fn streamed_rpc_http(req: &RequestView<'_>, caps: &Capabilities) -> RpcHttp {
    let params = if caps.requires_route_parameters {
        req.params
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect()
    } else {
        Vec::new()
    };
    RpcHttp {
        params,
        nullable_maps: caps.nullable_maps,
        ..RpcHttp::default()
    }
}

/// Trigger metadata of an HTTP invocation: JSON body properties, query values, route values,
/// `Query` and `Headers`, and (unless the worker opted out) the request itself as `req` and
/// `$request`.
pub fn trigger_metadata(
    req: &RequestView<'_>,
    http: &RpcHttp,
    trigger_name: &str,
    caps: &Capabilities,
) -> HashMap<String, TypedData> {
    let mut data: Vec<(String, TypedData)> = Vec::new();
    let set = |data: &mut Vec<(String, TypedData)>, k: &str, v: TypedData| {
        data.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        data.push((k.to_string(), v));
    };
    if let Some(bytes) = &req.body {
        let t = text(bytes);
        let trimmed = t.trim();
        if trimmed.starts_with('{')
            && trimmed.ends_with('}')
            && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(trimmed)
        {
            for (k, v) in obj {
                match v {
                    Value::Null | Value::Array(_) => {}
                    Value::Object(o) => {
                        set(&mut data, &k, TypedData::Json(Value::Object(o).to_string()))
                    }
                    Value::String(s) => set(&mut data, &k, TypedData::String(s)),
                    Value::Bool(b) => set(
                        &mut data,
                        &k,
                        TypedData::String(if b { "True" } else { "False" }.into()),
                    ),
                    Value::Number(n) => set(&mut data, &k, TypedData::String(n.to_string())),
                }
            }
        }
    }
    let query = parse_query(req.query);
    for (k, values) in &query {
        if k.eq_ignore_ascii_case("code") {
            continue;
        }
        if let Some(last) = values.last() {
            set(&mut data, k, TypedData::String(last.clone()));
        }
    }
    for (k, v) in req.params {
        if let Some(v) = v {
            set(&mut data, k, TypedData::String(v.clone()));
        }
    }
    if !data.iter().any(|(k, _)| k.eq_ignore_ascii_case("query")) {
        let mut q = Map::new();
        for (k, values) in &query {
            q.insert(
                k.clone(),
                Value::String(values.last().cloned().unwrap_or_default()),
            );
        }
        set(
            &mut data,
            "Query",
            TypedData::Json(Value::Object(q).to_string()),
        );
    }
    if !data.iter().any(|(k, _)| k.eq_ignore_ascii_case("headers")) {
        let mut h = Map::new();
        for name in req.headers.keys() {
            let joined = joined_header(req.headers, name);
            h.insert(
                header_display_name(name.as_str()).to_string(),
                Value::String(joined),
            );
        }
        set(
            &mut data,
            "Headers",
            TypedData::Json(Value::Object(h).to_string()),
        );
    }
    if !caps.trigger_metadata_removed {
        set(
            &mut data,
            "$request",
            TypedData::Http(Box::new(http.clone())),
        );
        set(
            &mut data,
            trigger_name,
            TypedData::Http(Box::new(http.clone())),
        );
    }
    data.into_iter().collect()
}

/// A `Set-Cookie` value as ASP.NET writes it: lower-case attributes in a fixed order.
pub fn set_cookie(c: &Cookie) -> String {
    let mut out = format!("{}=", c.name);
    url_encode(&c.value, &mut out);
    if let Some(secs) = c.expires
        && let Some(t) = chrono::DateTime::from_timestamp(secs, 0)
    {
        out.push_str(&t.format("; expires=%a, %d %b %Y %H:%M:%S GMT").to_string());
    }
    if let Some(age) = c.max_age {
        out.push_str(&format!("; max-age={}", age.trunc() as i64));
    }
    if let Some(d) = &c.domain {
        out.push_str("; domain=");
        out.push_str(d);
    }
    out.push_str("; path=");
    out.push_str(c.path.as_deref().unwrap_or("/"));
    if c.secure == Some(true) {
        out.push_str("; secure");
    }
    match c.same_site {
        SameSite::Unspecified => {}
        SameSite::Lax => out.push_str("; samesite=lax"),
        SameSite::Strict => out.push_str("; samesite=strict"),
        SameSite::None => out.push_str("; samesite=none"),
    }
    if c.http_only == Some(true) {
        out.push_str("; httponly");
    }
    out
}

enum OutBody {
    None,
    Text(String),
    Bytes(Bytes),
}

fn build(
    status: u16,
    headers: &[(String, String)],
    cookies: &[Cookie],
    body: OutBody,
) -> Result<HttpResponse, String> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() =
        StatusCode::from_u16(status).map_err(|_| format!("invalid status code {status}"))?;
    let mut content_type: Option<&str> = None;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("content-type") {
            content_type = Some(v);
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) else {
            tracing::warn!(header = %k, "dropping a response header that is not valid HTTP");
            continue;
        };
        if name == http::header::CONTENT_LENGTH
            || name == http::header::TRANSFER_ENCODING
            || name == http::header::CONNECTION
        {
            continue;
        }
        if resp.headers().contains_key(&name) {
            tracing::debug!(header = %k, "dropping a repeated response header");
            continue;
        }
        resp.headers_mut().insert(name, value);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&set_cookie(c)) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    match body {
        OutBody::None => {
            if let Some(v) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
                resp.headers_mut().insert(CONTENT_TYPE, v);
            }
        }
        OutBody::Text(t) => {
            let ct = content_type.map_or_else(|| TEXT_PLAIN.to_string(), with_utf8);
            if let Ok(v) = HeaderValue::from_str(&ct) {
                resp.headers_mut().insert(CONTENT_TYPE, v);
            }
            *resp.body_mut() = Body::full(t);
        }
        OutBody::Bytes(b) => {
            if let Some(v) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
                resp.headers_mut().insert(CONTENT_TYPE, v);
            }
            *resp.body_mut() = Body::full(b);
        }
    }
    Ok(resp)
}

/// A JSON value written as the host writes a non-string object: `JToken.ToString()`.
fn token_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Object(_) | Value::Array(_) => serde_json::to_string_pretty(v).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn body_of(t: &TypedData) -> Result<OutBody, String> {
    Ok(match t {
        TypedData::None | TypedData::Unsupported(_) => OutBody::None,
        TypedData::String(s) => OutBody::Text(s.clone()),
        TypedData::Bytes(b) | TypedData::Stream(b) => OutBody::Bytes(b.clone()),
        TypedData::Json(j) => match serde_json::from_str::<Value>(j) {
            Ok(v) => OutBody::Text(token_text(&v)),
            Err(_) => OutBody::Text(j.clone()),
        },
        TypedData::Int(i) => OutBody::Text(i.to_string()),
        TypedData::Double(d) => OutBody::Text(d.to_string()),
        other => return Err(format!("Unknown RpcDataType: {}", other.kind())),
    })
}

/// A worker's output value as JSON, for output bindings: text as strings, JSON parsed,
/// bytes as base64.
pub fn json_of(t: &TypedData) -> Value {
    use base64::Engine as _;
    match t {
        TypedData::None | TypedData::Unsupported(_) | TypedData::Http(_) => Value::Null,
        TypedData::String(s) => Value::String(s.clone()),
        TypedData::Json(j) => serde_json::from_str(j).unwrap_or_else(|_| Value::String(j.clone())),
        TypedData::Bytes(b) | TypedData::Stream(b) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        TypedData::Int(i) => Value::from(*i),
        TypedData::Double(d) => Value::from(*d),
        TypedData::CollectionBytes(v) => Value::Array(
            v.iter()
                .map(|b| Value::String(base64::engine::general_purpose::STANDARD.encode(b)))
                .collect(),
        ),
        TypedData::CollectionString(v) => Value::from(v.clone()),
        TypedData::CollectionDouble(v) => Value::from(v.clone()),
        TypedData::CollectionSint64(v) => Value::from(v.clone()),
    }
}

fn get_ci<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A JSON response object (`{"status": ..., "headers": ..., "body": ...}`), or any other
/// JSON value written as the body.
fn from_json(v: &Value) -> Result<HttpResponse, String> {
    let Value::Object(obj) = v else {
        return build(200, &[], &[], OutBody::Text(token_text(v)));
    };
    let Some(body) = get_ci(obj, "body") else {
        return build(200, &[], &[], OutBody::Text(token_text(v)));
    };
    let status = ["statusCode", "status"]
        .iter()
        .find_map(|k| match get_ci(obj, k)? {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => s.trim().parse::<u16>().ok(),
            _ => None,
        })
        .unwrap_or(200);
    let headers: Vec<(String, String)> = match get_ci(obj, "headers") {
        Some(Value::Object(h)) => h
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), token_text(v)))
            .collect(),
        _ => Vec::new(),
    };
    let body = match body {
        Value::Null => OutBody::None,
        other => OutBody::Text(token_text(other)),
    };
    build(status, &headers, &[], body)
}

/// The value bound to the function's `http` output, as the response.
fn from_value(value: &TypedData) -> Result<HttpResponse, String> {
    match value {
        TypedData::Http(h) => {
            let status = match h.status_code.trim() {
                "" => 200,
                s => s.parse::<u16>().unwrap_or(200),
            };
            let body = match &h.body {
                None => OutBody::None,
                Some(b) => body_of(b)?,
            };
            build(status, &h.headers, &h.cookies, body)
        }
        TypedData::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => from_json(&v),
            Err(_) => build(200, &[], &[], OutBody::Text(s.clone())),
        },
        TypedData::Json(j) => match serde_json::from_str::<Value>(j) {
            Ok(v) => from_json(&v),
            Err(_) => build(200, &[], &[], OutBody::Text(j.clone())),
        },
        TypedData::None => build(204, &[], &[], OutBody::None),
        other => build(200, &[], &[], body_of(other)?),
    }
}

/// The response of an invocation whose function declares the `http` output `output`.
pub fn response(output: Option<&str>, answer: &InvocationResponse) -> Result<HttpResponse, String> {
    let value = match output {
        Some(name) if name != "$return" => answer
            .output_data
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| &p.data),
        _ => answer.return_value.as_ref(),
    };
    match value {
        None => build(204, &[], &[], OutBody::None),
        Some(v) => from_value(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use stratus_proto::msg::ParameterBinding;

    fn caps_python() -> Capabilities {
        Capabilities {
            raw_http_body_bytes: true,
            rpc_http_body_only: true,
            trigger_metadata_removed: true,
            typed_data_collection: true,
            ..Capabilities::default()
        }
    }

    #[test]
    fn request_conversion_follows_the_capabilities() {
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", HeaderValue::from_static("application/json"));
        headers.append("X-Multi", HeaderValue::from_static("a"));
        headers.append("X-Multi", HeaderValue::from_static("b"));
        headers.insert("X-Empty", HeaderValue::from_static(""));
        let params: RouteValues = vec![("id".into(), Some("42".into())), ("opt".into(), None)];
        let view = RequestView {
            method: "POST",
            url: "http://localhost:7071/api/x/42?a=1&a=2&e=&code=k".into(),
            query: Some("a=1&a=2&e=&code=k"),
            headers: &headers,
            params: &params,
            principal: None,
            body: Some(Bytes::from_static(b"{\"name\":\"Bo\",\"n\":5,\"ok\":true}")),
        };
        let h = rpc_http(&view, &caps_python());
        assert_eq!(h.body, Some(TypedData::Bytes(view.body.clone().unwrap())));
        assert_eq!(h.raw_body, None);
        assert!(h.headers.contains(&("x-multi".into(), "a,b".into())));
        assert!(h.headers.contains(&("x-empty".into(), String::new())));
        assert_eq!(h.params, vec![("id".to_string(), "42".to_string())]);
        assert!(h.query.contains(&("a".into(), "1,2".into())));
        assert!(
            !h.query.iter().any(|(k, _)| k == "e"),
            "empty values are left out"
        );
        assert_eq!(h.identities[0].authentication_type, None);

        let m = trigger_metadata(&view, &h, "req", &caps_python());
        assert_eq!(m["name"], TypedData::String("Bo".into()));
        assert_eq!(m["ok"], TypedData::String("True".into()));
        assert_eq!(m["a"], TypedData::String("2".into()));
        assert_eq!(m["id"], TypedData::String("42".into()));
        assert!(!m.contains_key("code") && !m.contains_key("req"));
        assert!(matches!(&m["Query"], TypedData::Json(j) if j.contains("\"code\":\"k\"")));

        let legacy = Capabilities::default();
        let h = rpc_http(&view, &legacy);
        assert!(matches!(h.body, Some(TypedData::Json(_))));
        assert!(matches!(h.raw_body, Some(TypedData::String(_))));
        let m = trigger_metadata(&view, &h, "req", &legacy);
        assert!(m.contains_key("req") && m.contains_key("$request"));
    }

    async fn render(resp: HttpResponse) -> (u16, HeaderMap, Bytes) {
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status.as_u16(), parts.headers, bytes)
    }

    #[tokio::test]
    async fn responses_follow_the_host_rules() {
        let http = RpcHttp {
            status_code: "201".into(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-One".into(), "1".into()),
            ],
            body: Some(TypedData::String("{\"a\":1}".into())),
            cookies: vec![Cookie {
                name: "k".into(),
                value: "a b".into(),
                http_only: Some(true),
                same_site: SameSite::Lax,
                ..Cookie::default()
            }],
            ..RpcHttp::default()
        };
        let answer = InvocationResponse {
            output_data: vec![ParameterBinding {
                name: "res".into(),
                data: TypedData::Http(Box::new(http)),
            }],
            ..InvocationResponse::default()
        };
        let (status, headers, body) = render(response(Some("res"), &answer).unwrap()).await;
        assert_eq!(status, 201);
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        assert_eq!(headers["x-one"], "1");
        assert_eq!(
            headers["set-cookie"],
            "k=a%20b; path=/; samesite=lax; httponly"
        );
        assert_eq!(&body[..], b"{\"a\":1}");

        let answer = InvocationResponse {
            return_value: Some(TypedData::String("logged".into())),
            ..InvocationResponse::default()
        };
        let (status, headers, body) = render(response(Some("$return"), &answer).unwrap()).await;
        assert_eq!((status, &body[..]), (200, &b"logged"[..]));
        assert_eq!(headers["content-type"], TEXT_PLAIN);

        let bytes = RpcHttp {
            body: Some(TypedData::Bytes(Bytes::from_static(b"\x00\x01"))),
            ..RpcHttp::default()
        };
        let answer = InvocationResponse {
            return_value: Some(TypedData::Http(Box::new(bytes))),
            ..InvocationResponse::default()
        };
        let (status, headers, body) = render(response(Some("$return"), &answer).unwrap()).await;
        assert_eq!((status, &body[..]), (200, &b"\x00\x01"[..]));
        assert!(
            headers.get("content-type").is_none(),
            "bytes get no default type"
        );

        let none = InvocationResponse::default();
        let (status, _, _) = render(response(Some("$return"), &none).unwrap()).await;
        assert_eq!(status, 204);
    }
}
