//! Views of an HTTP request shared by executors: query parsing, header names, identities.

use serde_json::{Map, Value, json};

use crate::keys::Principal;

pub use stratus_model::text::url_decode;

/// Decodes percent-escapes in a path segment (`+` stays a plus, unlike in a query).
pub fn path_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    url_decode(&s.replace('+', "%2B"))
}

/// Query parameters grouped by name (case-insensitive, first spelling kept), values in order.
pub fn parse_query(query: Option<&str>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let Some(q) = query else { return out };
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (url_decode(k), url_decode(v));
        match out
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(&k))
        {
            Some((_, values)) => values.push(v),
            None => out.push((k, vec![v])),
        }
    }
    out
}

/// `UrlEncoder.Default`: everything but ASCII letters, digits and `-._~` is percent-encoded.
pub fn url_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
            out.push(
                char::from_digit(u32::from(b & 15), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
        }
    }
}

/// The query string as the host rebuilds it before forwarding: one `name=v1,v2` per name,
/// re-encoded.
pub fn rebuild_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len() + 8);
    for (k, values) in parse_query(Some(query)) {
        out.push(if out.is_empty() { '?' } else { '&' });
        url_encode(&k, &mut out);
        out.push('=');
        url_encode(&values.join(","), &mut out);
    }
    out
}

/// Whether `rebuild_query` would give the query back as it is (`?` before it): only
/// unreserved characters, every parameter `name=value` once, no name twice (in any case).
/// Lets a forwarded request keep its target without re-encoding it.
pub fn query_is_canonical(query: &str) -> bool {
    let plain = query
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'=' | b'&'));
    if !plain || query.is_empty() {
        return false;
    }
    let mut names: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            return false;
        };
        if name.is_empty() || value.contains('=') {
            return false;
        }
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return false;
        }
        names.push(name);
    }
    true
}

/// Header names as Kestrel spells the ones it knows; others keep hyper's lower case.
pub fn header_display_name(lower: &str) -> &str {
    const KNOWN: &[&str] = &[
        "Accept",
        "Accept-Charset",
        "Accept-Encoding",
        "Accept-Language",
        "Access-Control-Request-Headers",
        "Access-Control-Request-Method",
        "Allow",
        "Authorization",
        "Baggage",
        "Cache-Control",
        "Connection",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Location",
        "Content-MD5",
        "Content-Range",
        "Content-Type",
        "Cookie",
        "Correlation-Context",
        "Date",
        "DNT",
        "Expect",
        "Expires",
        "From",
        "Grpc-Accept-Encoding",
        "Grpc-Encoding",
        "Grpc-Timeout",
        "Host",
        "If-Match",
        "If-Modified-Since",
        "If-None-Match",
        "If-Range",
        "If-Unmodified-Since",
        "Keep-Alive",
        "Last-Modified",
        "Max-Forwards",
        "Origin",
        "Pragma",
        "Proxy-Authorization",
        "Range",
        "Referer",
        "Request-Id",
        "TE",
        "Traceparent",
        "Tracestate",
        "Trailer",
        "Transfer-Encoding",
        "Translate",
        "Upgrade",
        "Upgrade-Insecure-Requests",
        "User-Agent",
        "Via",
        "Warning",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(lower))
        .copied()
        .unwrap_or(lower)
}

/// The media type of the request's `Content-Type` (lower case, without parameters).
pub fn media_type(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a body of this content type is binary to the host (`application/octet-stream`,
/// `multipart/*`): it travels as bytes or base64.
pub fn is_binary_content(headers: &http::HeaderMap) -> bool {
    let media = media_type(headers);
    media == "application/octet-stream" || media.contains("multipart/")
}

/// Every value of header `name`, joined with `,` as ASP.NET's `StringValues` does.
pub fn joined_header(headers: &http::HeaderMap, name: &http::header::HeaderName) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// A content type with its charset set to UTF-8, as ASP.NET's text formatter writes it.
pub fn with_utf8(ct: &str) -> String {
    let mut parts = ct
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("charset="));
    let mut out = parts.next().unwrap_or("text/plain").to_string();
    for p in parts {
        out.push_str("; ");
        out.push_str(p);
    }
    out.push_str("; charset=utf-8");
    out
}

const NAME_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
const ROLE_CLAIM: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
const CLAIMS: &str = "http://schemas.microsoft.com/2017/07/functions/claims";

fn claim(kind: &str, value: &str) -> Value {
    json!({
        "Issuer": "LOCAL AUTHORITY",
        "OriginalIssuer": "LOCAL AUTHORITY",
        "Properties": {},
        "Type": kind,
        "Value": value,
        "ValueType": "http://www.w3.org/2001/XMLSchema#string",
    })
}

/// The caller's identities as the host serializes .NET `ClaimsIdentity` objects.
pub fn identities(principal: Option<&Principal>) -> Value {
    let identity = |auth_type: Value, authenticated: bool, claims: Vec<Value>| {
        let mut m = Map::new();
        m.insert("AuthenticationType".into(), auth_type);
        m.insert("IsAuthenticated".into(), Value::Bool(authenticated));
        m.insert("Actor".into(), Value::Null);
        m.insert("BootstrapContext".into(), Value::Null);
        m.insert("Claims".into(), Value::Array(claims));
        m.insert("Label".into(), Value::Null);
        m.insert("Name".into(), Value::Null);
        m.insert("NameClaimType".into(), Value::String(NAME_CLAIM.into()));
        m.insert("RoleClaimType".into(), Value::String(ROLE_CLAIM.into()));
        Value::Object(m)
    };
    match principal {
        Some(p) if p.level != stratus_model::AuthLevel::Anonymous => {
            let level = match p.level {
                stratus_model::AuthLevel::Admin => "Admin",
                stratus_model::AuthLevel::System => "System",
                stratus_model::AuthLevel::User => "User",
                _ => "Function",
            };
            let mut claims = vec![
                claim(&format!("{CLAIMS}/authlevel"), level),
                claim(&format!("{CLAIMS}/invoke"), "true"),
            ];
            if let Some(k) = &p.key_name {
                claims.push(claim(&format!("{CLAIMS}/keyid"), k));
            }
            Value::Array(vec![identity(
                Value::String("WebJobsAuthLevel".into()),
                true,
                claims,
            )])
        }
        _ => Value::Array(vec![identity(Value::Null, false, Vec::new())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_queries() {
        for q in ["name=bench", "a=1&b=2", "x=&y=z", "id=1-2.3_4~5"] {
            assert!(query_is_canonical(q), "{q}");
        }
        for q in [
            "", "a", "a=1&", "&a=1", "a=1&&b=2", "=1", "a=1&A=2", "a=b=c", "a=%20", "a=x+y",
        ] {
            assert!(!query_is_canonical(q), "{q}");
        }
    }

    proptest::proptest! {
        /// A query said to be canonical is exactly what rebuilding it gives.
        #[test]
        fn canonical_means_rebuilt_unchanged(q in "[a-cA-C0-9=&%+._~ -]{0,24}") {
            if query_is_canonical(&q) {
                proptest::prop_assert_eq!(rebuild_query(&q), format!("?{q}"));
            }
        }
    }

    #[test]
    fn query_parsing_and_rebuilding() {
        let q = parse_query(Some("a=1&A=2&name=Ink+And%20Toner&flag&code=k"));
        assert_eq!(
            q[0],
            ("a".to_string(), vec!["1".to_string(), "2".to_string()])
        );
        assert_eq!(q[1].1, vec!["Ink And Toner".to_string()]);
        assert_eq!(q[2], ("flag".to_string(), vec![String::new()]));
        assert_eq!(
            rebuild_query("id=149656222&name=Ink%20And%20Toner"),
            "?id=149656222&name=Ink%20And%20Toner"
        );
        assert_eq!(rebuild_query("a=1&a=2"), "?a=1%2C2");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(path_decode("c++%20x"), "c++ x");
        assert_eq!(path_decode("c++"), "c++");
    }

    #[test]
    fn header_names() {
        assert_eq!(header_display_name("content-type"), "Content-Type");
        assert_eq!(header_display_name("x-custom"), "x-custom");
    }

    #[test]
    fn anonymous_identity_shape() {
        let v = identities(None);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"[{"AuthenticationType":null,"IsAuthenticated":false,"Actor":null,"BootstrapContext":null,"Claims":[],"Label":null,"Name":null,"NameClaimType":"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name","RoleClaimType":"http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}]"#
        );
    }
}
