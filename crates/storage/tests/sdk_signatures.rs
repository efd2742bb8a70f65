//! Requests recorded from the official Python queue SDK (send, receive, delete with a pop
//! receipt that needs encoding) must verify with the development account's key, and fail
//! once anything signed is changed.

use http::HeaderMap;
use stratus_storage::shared_key::{AuthError, Signed, verify};
use stratus_storage::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};

#[test]
fn recorded_python_sdk_requests_verify() {
    let text = include_str!("data/python-queue-requests.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let requests = doc["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 3);
    for r in requests {
        let mut headers = HeaderMap::new();
        for pair in r["headers"].as_array().unwrap() {
            let (k, v) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            headers.append(
                http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let target = r["target"].as_str().unwrap();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let method = r["method"].as_str().unwrap();
        let req = Signed {
            method,
            path,
            query,
            headers: &headers,
        };
        assert_eq!(
            verify(DEV_ACCOUNT, DEV_ACCOUNT_KEY, &req),
            Ok(()),
            "{method} {target}"
        );
        let tampered = Signed {
            path: "/devstoreaccount1/other/messages",
            ..req
        };
        assert_eq!(
            verify(DEV_ACCOUNT, DEV_ACCOUNT_KEY, &tampered),
            Err(AuthError::Mismatch)
        );
    }
}
