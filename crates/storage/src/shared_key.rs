//! Shared Key authentication of storage requests: the string-to-sign the service computes
//! from a request, and verification of the `Authorization: SharedKey <account>:<signature>`
//! header, tolerant of the SDKs' known quirks.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

/// Why a request is not authenticated (the service answers 403 `AuthenticationFailed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the request has no Authorization header")]
    Missing,
    #[error("the Authorization header is not \"SharedKey <account>:<signature>\"")]
    Malformed,
    #[error("the request is signed for account \"{0}\", not this one")]
    WrongAccount(String),
    #[error("the account key is not valid base64")]
    BadKey,
    #[error("the signature does not match the request")]
    Mismatch,
}

/// The parts of a request that are signed.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub method: &'a str,
    /// The path as sent, still percent-encoded (path-style: it starts with the account).
    pub path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub(crate) use stratus_model::text::url_decode as percent_decode;

/// Which order the standard headers are signed in: the specification's, or the JavaScript
/// SDK's (Content-Language before Content-Encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Standard,
    LanguageFirst,
}

/// The string-to-sign of `req` for `account` (Shared Key, Blob/Queue/File services).
pub fn string_to_sign(account: &str, req: &Signed<'_>, layout: Layout) -> String {
    let h = |n: &str| header(req.headers, n);
    let length = match h("content-length") {
        "0" => "",
        other => other,
    };
    let (first, second) = match layout {
        Layout::Standard => (h("content-encoding"), h("content-language")),
        Layout::LanguageFirst => (h("content-language"), h("content-encoding")),
    };
    let mut s = String::with_capacity(256);
    for line in [
        req.method,
        first,
        second,
        length,
        h("content-md5"),
        h("content-type"),
        h("date"),
        h("if-modified-since"),
        h("if-match"),
        h("if-none-match"),
        h("if-unmodified-since"),
        h("range"),
    ] {
        s.push_str(line);
        s.push('\n');
    }
    let mut ms: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-ms-"))
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).trim().to_string(),
            )
        })
        .collect();
    ms.sort();
    for (n, v) in ms {
        s.push_str(&n);
        s.push(':');
        s.push_str(&v);
        s.push('\n');
    }
    s.push('/');
    s.push_str(account);
    s.push_str(req.path);
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for pair in req.query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k).to_ascii_lowercase();
        let v = percent_decode(v);
        match params.iter_mut().find(|(n, _)| *n == k) {
            Some((_, vs)) => vs.push(v),
            None => params.push((k, vec![v])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, mut vs) in params {
        vs.sort();
        s.push('\n');
        s.push_str(&k);
        s.push(':');
        s.push_str(&vs.join(","));
    }
    s
}

/// The base64 HMAC-SHA256 of `text` with the (base64) account key.
pub fn sign(key_base64: &str, text: &str) -> Result<String, AuthError> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_base64)
        .map_err(|_| AuthError::BadKey)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| AuthError::BadKey)?;
    mac.update(text.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the request's Shared Key signature for `account` with its key.
pub fn verify(account: &str, key_base64: &str, req: &Signed<'_>) -> Result<(), AuthError> {
    let auth = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::Missing)?;
    let rest = auth
        .strip_prefix("SharedKey ")
        .ok_or(AuthError::Malformed)?;
    let (who, signature) = rest.trim().split_once(':').ok_or(AuthError::Malformed)?;
    if who != account {
        return Err(AuthError::WrongAccount(who.to_string()));
    }
    for layout in [Layout::Standard, Layout::LanguageFirst] {
        let expected = sign(key_base64, &string_to_sign(account, req, layout))?;
        if equal(expected.as_bytes(), signature.as_bytes()) {
            return Ok(());
        }
    }
    Err(AuthError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_receive_example_of_the_reference() {
        let h = headers(&[
            ("x-ms-version", "2026-10-06"),
            ("x-ms-date", "Mon, 23 Nov 2026 09:10:20 GMT"),
            (
                "x-ms-client-request-id",
                "6b1d3c2a-0000-4000-8000-000000000001",
            ),
            ("accept", "application/xml"),
        ]);
        let req = Signed {
            method: "GET",
            path: "/devstoreaccount1/jobs/messages",
            query: Some("numofmessages=5"),
            headers: &h,
        };
        let s = string_to_sign(DEV_ACCOUNT, &req, Layout::Standard);
        assert_eq!(
            s,
            "GET\n\n\n\n\n\n\n\n\n\n\n\n\
             x-ms-client-request-id:6b1d3c2a-0000-4000-8000-000000000001\n\
             x-ms-date:Mon, 23 Nov 2026 09:10:20 GMT\n\
             x-ms-version:2026-10-06\n\
             /devstoreaccount1/devstoreaccount1/jobs/messages\nnumofmessages:5"
        );
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let mut h = headers(&[
            ("x-ms-version", "2026-10-06"),
            ("x-ms-date", "Mon, 23 Nov 2026 09:10:20 GMT"),
            ("content-type", "application/xml"),
            ("content-length", "88"),
        ]);
        let unsigned = h.clone();
        let req = Signed {
            method: "POST",
            path: "/devstoreaccount1/jobs/messages",
            query: Some("visibilitytimeout=0&messagettl=-1"),
            headers: &unsigned,
        };
        let sig = sign(
            DEV_ACCOUNT_KEY,
            &string_to_sign(DEV_ACCOUNT, &req, Layout::Standard),
        )
        .unwrap();
        h.insert(
            http::header::AUTHORIZATION,
            format!("SharedKey {DEV_ACCOUNT}:{sig}").parse().unwrap(),
        );
        let req = Signed { headers: &h, ..req };
        assert_eq!(verify(DEV_ACCOUNT, DEV_ACCOUNT_KEY, &req), Ok(()));
        let other = Signed {
            query: Some("visibilitytimeout=30&messagettl=-1"),
            ..req
        };
        assert_eq!(
            verify(DEV_ACCOUNT, DEV_ACCOUNT_KEY, &other),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify("someoneelse", DEV_ACCOUNT_KEY, &req),
            Err(AuthError::WrongAccount(DEV_ACCOUNT.into()))
        );
        let bare = HeaderMap::new();
        let none = Signed {
            headers: &bare,
            ..req
        };
        assert_eq!(
            verify(DEV_ACCOUNT, DEV_ACCOUNT_KEY, &none),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn query_values_are_decoded_and_sorted() {
        let h = HeaderMap::new();
        let req = Signed {
            method: "DELETE",
            path: "/devstoreaccount1/q/messages/abc",
            query: Some("popreceipt=AgAAAAMAAAAAAAAA%2Bx%3D%3D&Timeout=30"),
            headers: &h,
        };
        let s = string_to_sign(DEV_ACCOUNT, &req, Layout::Standard);
        assert!(s.ends_with("/devstoreaccount1/devstoreaccount1/q/messages/abc\npopreceipt:AgAAAAMAAAAAAAAA+x==\ntimeout:30"), "{s}");
    }
}
