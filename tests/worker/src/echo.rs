//! The `echo` behaviour's answer: a JSON description of exactly what arrived in an
//! invocation, so tests can check what the host sent without a real language worker.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use stratus_proto::msg::{Invocation, RpcHttp, TypedData};

use crate::behaviour::Function;

/// The protocol's name of a value's kind (`none` when nothing is set).
pub fn kind(t: &TypedData) -> &'static str {
    t.kind()
}

/// `{"kind": ..., "value": ...}`: text as it came, bytes in base64; no value for `none`
/// and `http`.
fn shape(t: Option<&TypedData>) -> Value {
    let Some(t) = t else {
        return json!({ "kind": "none" });
    };
    let value = match t {
        TypedData::String(s) | TypedData::Json(s) => Some(json!(s)),
        TypedData::Bytes(b) | TypedData::Stream(b) => Some(json!(STANDARD.encode(b))),
        TypedData::Int(i) => Some(json!(i)),
        TypedData::Double(d) => Some(json!(d)),
        TypedData::CollectionBytes(v) => Some(json!(
            v.iter().map(|b| STANDARD.encode(b)).collect::<Vec<_>>()
        )),
        TypedData::CollectionString(v) => Some(json!(v)),
        TypedData::CollectionDouble(v) => Some(json!(v)),
        TypedData::CollectionSint64(v) => Some(json!(v)),
        TypedData::None | TypedData::Http(_) | TypedData::Unsupported(_) => None,
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind(t)));
    if let Some(v) = value {
        out.insert("value".into(), v);
    }
    Value::Object(out)
}

fn object(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// What arrived, as JSON; the HTTP fields come from the first HTTP input (empty without one).
pub fn describe(function: &Function, inv: &Invocation) -> Value {
    let empty = RpcHttp::default();
    let http = inv
        .input_data
        .iter()
        .find_map(|p| match &p.data {
            TypedData::Http(h) => Some(h.as_ref()),
            _ => None,
        })
        .unwrap_or(&empty);
    let mut trigger_keys: Vec<&String> = inv.trigger_metadata.keys().collect();
    trigger_keys.sort();
    let kinds: Map<String, Value> = trigger_keys
        .iter()
        .map(|k| ((*k).clone(), json!(kind(&inv.trigger_metadata[*k]))))
        .collect();
    json!({
        "function": function.name,
        "functionId": function.id,
        "pid": std::process::id(),
        "invocationId": inv.invocation_id,
        "inputs": inv.input_data.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        "inputKinds": inv
            .input_data
            .iter()
            .map(|p| (p.name.clone(), json!(kind(&p.data))))
            .collect::<Map<_, _>>(),
        "method": http.method,
        "url": http.url,
        "headers": object(&http.headers),
        "query": object(&http.query),
        "params": object(&http.params),
        "nullableMaps": http.nullable_maps,
        "body": shape(http.body.as_ref()),
        "rawBody": shape(http.raw_body.as_ref()),
        "identities": http
            .identities
            .iter()
            .map(|i| json!({
                "authenticationType": i.authentication_type,
                "claims": i.claims.iter().map(|(t, v)| json!([t, v])).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
        "triggerMetadata": trigger_keys,
        "triggerMetadataKinds": kinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_proto::msg::{ClaimsIdentity, ParameterBinding};

    #[test]
    fn an_http_invocation_is_described() {
        let f = Function {
            id: "fn-a".into(),
            name: "a".into(),
            entry_point: "echo".into(),
            http_output: None,
        };
        let inv = Invocation {
            invocation_id: "i".into(),
            function_id: "fn-a".into(),
            input_data: vec![ParameterBinding {
                name: "req".into(),
                data: TypedData::Http(Box::new(RpcHttp {
                    method: "POST".into(),
                    headers: vec![("x-a".into(), "1".into())],
                    body: Some(TypedData::Bytes(bytes::Bytes::from_static(b"\x00\x01"))),
                    raw_body: None,
                    identities: vec![ClaimsIdentity {
                        authentication_type: Some("WebJobsAuthLevel".into()),
                        claims: vec![("t".into(), "v".into())],
                        ..ClaimsIdentity::default()
                    }],
                    ..RpcHttp::default()
                })),
            }],
            trigger_metadata: [
                ("b".to_string(), TypedData::Json("{}".into())),
                ("a".to_string(), TypedData::String("x".into())),
            ]
            .into(),
            ..Invocation::default()
        };
        let d = describe(&f, &inv);
        assert_eq!(d["inputs"], json!(["req"]));
        assert_eq!(d["method"], "POST");
        assert_eq!(d["headers"], json!({"x-a": "1"}));
        assert_eq!(d["body"], json!({"kind": "bytes", "value": "AAE="}));
        assert_eq!(d["rawBody"], json!({"kind": "none"}));
        assert_eq!(d["identities"][0]["claims"], json!([["t", "v"]]));
        assert_eq!(d["triggerMetadata"], json!(["a", "b"]));
        assert_eq!(
            d["triggerMetadataKinds"],
            json!({"a": "string", "b": "json"})
        );
    }
}
