//! `POST /admin/functions/{name}`: runs a function now, in the background (202), with the
//! body's `input` bound to its trigger; a timer function gets a `TimerInfo` instead. The
//! answer names the (first) invocation in `x-stratus-invocation-id`.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value};

use crate::Host;
use crate::http::body::{CollectError, collect_limited};
use crate::http::response::{HostError, HttpResponse, empty};
use crate::triggers::timer::timer_info;

/// Largest admin invoke body read.
const BODY_LIMIT: u64 = 1 << 20;

pub async fn invoke(
    host: &Host,
    req: Request<Incoming>,
    name: &str,
) -> Result<HttpResponse, HostError> {
    let function = host
        .app
        .function(name)
        .cloned()
        .ok_or(HostError::NotFound)?;
    let body = collect_limited(req.into_body(), BODY_LIMIT)
        .await
        .map_err(|e| match e {
            CollectError::TooLarge => HostError::TooLarge,
            CollectError::Read(m) => HostError::BadRequest(m),
        })?;
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(o)) => match o.iter().find(|(k, _)| k.eq_ignore_ascii_case("input")) {
            None | Some((_, Value::Null)) => String::new(),
            Some((_, Value::String(s))) => s.clone(),
            Some((_, other)) => other.to_string(),
        },
        _ => {
            return Err(HostError::BadRequest(
                "expected a JSON object such as {\"input\": \"...\"}".into(),
            ));
        }
    };
    let value = if let Some(timer) = host.timers.get(&function.name.to_ascii_lowercase()) {
        timer_info(&timer.schedule, None, false, host.time_zone)
    } else if function.is_http() {
        return Err(HostError::BadRequest(format!(
            "{} is an HTTP function: call it at its URL",
            function.name
        )));
    } else {
        Value::String(input)
    };
    let invoker = host.invoker.clone();
    let id = uuid::Uuid::new_v4();
    tokio::spawn(async move {
        let _ = invoker
            .invoke_as(id, function, value, Map::new(), crate::logging::HTTP_REASON)
            .await;
    });
    let mut r = empty(StatusCode::ACCEPTED);
    r.headers_mut().insert(
        crate::http::INVOCATION_ID_HEADER,
        http::HeaderValue::from_str(&id.to_string()).expect("a UUID is a header value"),
    );
    Ok(r)
}
