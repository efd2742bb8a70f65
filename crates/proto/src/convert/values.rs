//! Conversions of the protocol's values (typed data, HTTP, metadata, logs, statuses)
//! between the generated types and [`crate::msg`].

use crate::msg::*;
use crate::pb;
use std::collections::HashMap;
use std::time::Duration;

pub(super) fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub(super) fn from_duration(d: Option<prost_types::Duration>) -> Option<Duration> {
    let d = d?;
    let secs = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(Duration::new(secs, nanos))
}

pub(super) fn level(l: LogLevel) -> pb::rpc_log::Level {
    use pb::rpc_log::Level as L;
    match l {
        LogLevel::Trace => L::Trace,
        LogLevel::Debug => L::Debug,
        LogLevel::Information => L::Information,
        LogLevel::Warning => L::Warning,
        LogLevel::Error => L::Error,
        LogLevel::Critical => L::Critical,
        LogLevel::None => L::None,
    }
}

pub(super) fn from_level(l: i32) -> LogLevel {
    use pb::rpc_log::Level as L;
    match L::try_from(l) {
        Ok(L::Trace) => LogLevel::Trace,
        Ok(L::Debug) => LogLevel::Debug,
        Ok(L::Warning) => LogLevel::Warning,
        Ok(L::Error) => LogLevel::Error,
        Ok(L::Critical) => LogLevel::Critical,
        Ok(L::None) => LogLevel::None,
        Ok(L::Information) | Err(_) => LogLevel::Information,
    }
}

pub(super) fn from_log(l: pb::RpcLog) -> Log {
    Log {
        invocation_id: l.invocation_id,
        category: l.category,
        level: from_level(l.level),
        message: l.message,
        exception: l.exception.map(from_exception),
        system: l.log_category == pb::rpc_log::RpcLogCategory::System as i32,
    }
}

pub(super) fn log(l: Log) -> pb::RpcLog {
    use pb::rpc_log::RpcLogCategory as C;
    pb::RpcLog {
        invocation_id: l.invocation_id,
        category: l.category,
        level: level(l.level) as i32,
        message: l.message,
        event_id: String::new(),
        exception: l.exception.map(exception),
        properties: String::new(),
        log_category: if l.system { C::System } else { C::User } as i32,
        properties_map: HashMap::new(),
    }
}

pub(super) fn exception(e: RpcException) -> pb::RpcException {
    pb::RpcException {
        source: e.source,
        stack_trace: e.stack_trace,
        message: e.message,
        is_user_exception: e.is_user_exception,
        r#type: e.type_name,
    }
}

pub(super) fn from_exception(e: pb::RpcException) -> RpcException {
    RpcException {
        source: e.source,
        stack_trace: e.stack_trace,
        message: e.message,
        is_user_exception: e.is_user_exception,
        type_name: e.r#type,
    }
}

pub(super) fn status(s: Option<pb::StatusResult>) -> StatusResult {
    let Some(s) = s else {
        return StatusResult::default();
    };
    use pb::status_result::Status as S;
    StatusResult {
        status: match S::try_from(s.status) {
            Ok(S::Success) => Outcome::Success,
            Ok(S::Cancelled) => Outcome::Cancelled,
            Ok(S::Failure) | Err(_) => Outcome::Failure,
        },
        result: s.result,
        exception: s.exception.map(from_exception),
        logs: s.logs.into_iter().map(from_log).collect(),
    }
}

pub(super) fn to_status(s: StatusResult) -> pb::StatusResult {
    use pb::status_result::Status as S;
    pb::StatusResult {
        status: match s.status {
            Outcome::Failure => S::Failure,
            Outcome::Success => S::Success,
            Outcome::Cancelled => S::Cancelled,
        } as i32,
        result: s.result,
        exception: s.exception.map(exception),
        logs: s.logs.into_iter().map(log).collect(),
    }
}

pub(super) fn load(l: FunctionLoad) -> pb::FunctionLoadRequest {
    pb::FunctionLoadRequest {
        function_id: l.function_id,
        metadata: Some(metadata(l.metadata)),
        managed_dependency_enabled: l.managed_dependency_enabled,
    }
}

pub(super) fn from_load(l: pb::FunctionLoadRequest) -> FunctionLoad {
    FunctionLoad {
        function_id: l.function_id,
        metadata: from_metadata(l.metadata.unwrap_or_default()),
        managed_dependency_enabled: l.managed_dependency_enabled,
    }
}

pub(super) fn to_load_response(r: FunctionLoadResponse) -> pb::FunctionLoadResponse {
    pb::FunctionLoadResponse {
        function_id: r.function_id,
        result: Some(to_status(r.result)),
        is_dependency_downloaded: false,
    }
}

pub(super) fn load_response(r: pb::FunctionLoadResponse) -> FunctionLoadResponse {
    FunctionLoadResponse {
        function_id: r.function_id,
        result: status(r.result),
    }
}

pub(super) fn metadata(m: FunctionMetadata) -> pb::RpcFunctionMetadata {
    use pb::binding_info::{DataType as D, Direction as Dir};
    pb::RpcFunctionMetadata {
        name: m.name,
        directory: m.directory,
        script_file: m.script_file,
        entry_point: m.entry_point,
        bindings: m
            .bindings
            .into_iter()
            .map(|(k, b)| {
                let info = pb::BindingInfo {
                    r#type: b.type_name,
                    direction: match b.direction {
                        BindingDirection::In => Dir::In,
                        BindingDirection::Out => Dir::Out,
                        BindingDirection::InOut => Dir::Inout,
                    } as i32,
                    data_type: match b.data_type {
                        BindingDataType::Undefined => D::Undefined,
                        BindingDataType::String => D::String,
                        BindingDataType::Binary => D::Binary,
                        BindingDataType::Stream => D::Stream,
                    } as i32,
                    properties: b.properties,
                };
                (k, info)
            })
            .collect(),
        is_proxy: m.is_proxy,
        status: m.status.map(to_status),
        language: m.language,
        raw_bindings: m.raw_bindings,
        function_id: m.function_id,
        managed_dependency_enabled: m.managed_dependency_enabled,
        retry_options: m.retry_options.map(|r| pb::RpcRetryOptions {
            max_retry_count: r.max_retry_count,
            delay_interval: r.delay_interval.map(duration),
            minimum_interval: r.minimum_interval.map(duration),
            maximum_interval: r.maximum_interval.map(duration),
            retry_strategy: if r.exponential_backoff {
                pb::rpc_retry_options::RetryStrategy::ExponentialBackoff
            } else {
                pb::rpc_retry_options::RetryStrategy::FixedDelay
            } as i32,
        }),
        properties: m.properties,
    }
}

pub(super) fn from_metadata(m: pb::RpcFunctionMetadata) -> FunctionMetadata {
    use pb::binding_info::{DataType as D, Direction as Dir};
    FunctionMetadata {
        name: m.name,
        directory: m.directory,
        script_file: m.script_file,
        entry_point: m.entry_point,
        bindings: m
            .bindings
            .into_iter()
            .map(|(k, b)| {
                let info = BindingInfo {
                    direction: match Dir::try_from(b.direction) {
                        Ok(Dir::Out) => BindingDirection::Out,
                        Ok(Dir::Inout) => BindingDirection::InOut,
                        _ => BindingDirection::In,
                    },
                    data_type: match D::try_from(b.data_type) {
                        Ok(D::String) => BindingDataType::String,
                        Ok(D::Binary) => BindingDataType::Binary,
                        Ok(D::Stream) => BindingDataType::Stream,
                        _ => BindingDataType::Undefined,
                    },
                    type_name: b.r#type,
                    properties: b.properties,
                };
                (k, info)
            })
            .collect(),
        is_proxy: m.is_proxy,
        status: m.status.map(|s| status(Some(s))),
        language: m.language,
        raw_bindings: m.raw_bindings,
        function_id: m.function_id,
        managed_dependency_enabled: m.managed_dependency_enabled,
        retry_options: m.retry_options.map(|r| RetryOptions {
            max_retry_count: r.max_retry_count,
            delay_interval: from_duration(r.delay_interval),
            minimum_interval: from_duration(r.minimum_interval),
            maximum_interval: from_duration(r.maximum_interval),
            exponential_backoff: r.retry_strategy
                == pb::rpc_retry_options::RetryStrategy::ExponentialBackoff as i32,
        }),
        properties: m.properties,
    }
}

pub(super) fn invocation(i: Invocation) -> pb::InvocationRequest {
    pb::InvocationRequest {
        invocation_id: i.invocation_id,
        function_id: i.function_id,
        input_data: i.input_data.into_iter().map(param).collect(),
        trigger_metadata: i
            .trigger_metadata
            .into_iter()
            .map(|(k, v)| (k, typed(v)))
            .collect(),
        trace_context: Some(pb::RpcTraceContext {
            trace_parent: i.trace_context.trace_parent,
            trace_state: i.trace_context.trace_state,
            attributes: i.trace_context.attributes,
        }),
        retry_context: i.retry_context.map(|r| pb::RetryContext {
            retry_count: r.retry_count,
            max_retry_count: r.max_retry_count,
            exception: r.exception.map(exception),
        }),
    }
}

pub(super) fn from_invocation(i: pb::InvocationRequest) -> Invocation {
    let trace = i.trace_context.unwrap_or_default();
    Invocation {
        invocation_id: i.invocation_id,
        function_id: i.function_id,
        input_data: i.input_data.into_iter().filter_map(from_param).collect(),
        trigger_metadata: i
            .trigger_metadata
            .into_iter()
            .map(|(k, v)| (k, from_typed(v)))
            .collect(),
        trace_context: TraceContext {
            trace_parent: trace.trace_parent,
            trace_state: trace.trace_state,
            attributes: trace.attributes,
        },
        retry_context: i.retry_context.map(|r| RetryContext {
            retry_count: r.retry_count,
            max_retry_count: r.max_retry_count,
            exception: r.exception.map(from_exception),
        }),
    }
}

pub(super) fn param(p: ParameterBinding) -> pb::ParameterBinding {
    pb::ParameterBinding {
        name: p.name,
        rpc_data: Some(pb::parameter_binding::RpcData::Data(typed(p.data))),
    }
}

pub(super) fn from_param(p: pb::ParameterBinding) -> Option<ParameterBinding> {
    use pb::parameter_binding::RpcData;
    let data = match p.rpc_data {
        Some(RpcData::Data(d)) => from_typed(d),
        Some(RpcData::RpcSharedMemory(_)) => TypedData::Unsupported("rpc_shared_memory"),
        None => TypedData::None,
    };
    Some(ParameterBinding { name: p.name, data })
}

pub(super) fn typed(t: TypedData) -> pb::TypedData {
    use pb::typed_data::Data as D;
    let data = match t {
        TypedData::None | TypedData::Unsupported(_) => None,
        TypedData::String(s) => Some(D::String(s)),
        TypedData::Json(s) => Some(D::Json(s)),
        TypedData::Bytes(b) => Some(D::Bytes(b)),
        TypedData::Stream(b) => Some(D::Stream(b)),
        TypedData::Http(h) => Some(D::Http(Box::new(http(*h)))),
        TypedData::Int(i) => Some(D::Int(i)),
        TypedData::Double(d) => Some(D::Double(d)),
        TypedData::CollectionBytes(v) => Some(D::CollectionBytes(pb::CollectionBytes { bytes: v })),
        TypedData::CollectionString(v) => {
            Some(D::CollectionString(pb::CollectionString { string: v }))
        }
        TypedData::CollectionDouble(v) => {
            Some(D::CollectionDouble(pb::CollectionDouble { double: v }))
        }
        TypedData::CollectionSint64(v) => {
            Some(D::CollectionSint64(pb::CollectionSInt64 { sint64: v }))
        }
    };
    pb::TypedData { data }
}

pub(super) fn from_typed(t: pb::TypedData) -> TypedData {
    use pb::typed_data::Data as D;
    match t.data {
        None => TypedData::None,
        Some(D::String(s)) => TypedData::String(s),
        Some(D::Json(s)) => TypedData::Json(s),
        Some(D::Bytes(b)) => TypedData::Bytes(b),
        Some(D::Stream(b)) => TypedData::Stream(b),
        Some(D::Http(h)) => TypedData::Http(Box::new(from_http(*h))),
        Some(D::Int(i)) => TypedData::Int(i),
        Some(D::Double(d)) => TypedData::Double(d),
        Some(D::CollectionBytes(c)) => TypedData::CollectionBytes(c.bytes),
        Some(D::CollectionString(c)) => TypedData::CollectionString(c.string),
        Some(D::CollectionDouble(c)) => TypedData::CollectionDouble(c.double),
        Some(D::CollectionSint64(c)) => TypedData::CollectionSint64(c.sint64),
        Some(D::ModelBindingData(_)) => TypedData::Unsupported("model_binding_data"),
        Some(D::CollectionModelBindingData(_)) => {
            TypedData::Unsupported("collection_model_binding_data")
        }
    }
}

pub(super) fn nullable(s: String) -> pb::NullableString {
    pb::NullableString {
        string: Some(pb::nullable_string::String::Value(s)),
    }
}

pub(super) fn nullable_value(s: pb::NullableString) -> Option<String> {
    s.string.map(|pb::nullable_string::String::Value(v)| v)
}

pub(super) fn plain_map(pairs: Vec<(String, String)>) -> HashMap<String, String> {
    pairs.into_iter().collect()
}

pub(super) fn nullable_map(pairs: Vec<(String, String)>) -> HashMap<String, pb::NullableString> {
    pairs.into_iter().map(|(k, v)| (k, nullable(v))).collect()
}

/// The entries of a plain map and of its nullable twin (nulls dropped), sorted by name.
pub(super) fn merged(
    plain: HashMap<String, String>,
    nullable: HashMap<String, pb::NullableString>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = plain.into_iter().collect();
    for (k, v) in nullable {
        if let Some(v) = nullable_value(v)
            && !out.iter().any(|(n, _)| *n == k)
        {
            out.push((k, v));
        }
    }
    out.sort();
    out
}

pub(super) fn http(h: RpcHttp) -> pb::RpcHttp {
    let (headers, params, query, nullable_headers, nullable_params, nullable_query) =
        if h.nullable_maps {
            (
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                nullable_map(h.headers),
                nullable_map(h.params),
                nullable_map(h.query),
            )
        } else {
            (
                plain_map(h.headers),
                plain_map(h.params),
                plain_map(h.query),
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
            )
        };
    pb::RpcHttp {
        method: h.method,
        url: h.url,
        headers,
        body: h.body.map(|b| Box::new(typed(b))),
        params,
        status_code: h.status_code,
        query,
        enable_content_negotiation: h.enable_content_negotiation,
        raw_body: h.raw_body.map(|b| Box::new(typed(b))),
        identities: h.identities.into_iter().map(identity).collect(),
        cookies: h.cookies.into_iter().map(cookie).collect(),
        nullable_headers,
        nullable_params,
        nullable_query,
    }
}

pub(super) fn identity(i: ClaimsIdentity) -> pb::RpcClaimsIdentity {
    pb::RpcClaimsIdentity {
        authentication_type: i.authentication_type.map(nullable),
        name_claim_type: i.name_claim_type.map(nullable),
        role_claim_type: i.role_claim_type.map(nullable),
        claims: i
            .claims
            .into_iter()
            .map(|(r#type, value)| pb::RpcClaim { value, r#type })
            .collect(),
    }
}

pub(super) fn from_identity(i: pb::RpcClaimsIdentity) -> ClaimsIdentity {
    ClaimsIdentity {
        authentication_type: i.authentication_type.and_then(nullable_value),
        name_claim_type: i.name_claim_type.and_then(nullable_value),
        role_claim_type: i.role_claim_type.and_then(nullable_value),
        claims: i.claims.into_iter().map(|c| (c.r#type, c.value)).collect(),
    }
}

pub(super) fn from_http(h: pb::RpcHttp) -> RpcHttp {
    let nullable_maps = !h.nullable_headers.is_empty();
    RpcHttp {
        method: h.method,
        url: h.url,
        headers: merged(h.headers, h.nullable_headers),
        body: h.body.map(|b| from_typed(*b)),
        raw_body: h.raw_body.map(|b| from_typed(*b)),
        params: merged(h.params, h.nullable_params),
        query: merged(h.query, h.nullable_query),
        status_code: h.status_code,
        enable_content_negotiation: h.enable_content_negotiation,
        identities: h.identities.into_iter().map(from_identity).collect(),
        cookies: h.cookies.into_iter().map(from_cookie).collect(),
        nullable_maps,
    }
}

pub(super) fn nullable_bool(b: bool) -> pb::NullableBool {
    pb::NullableBool {
        bool: Some(pb::nullable_bool::Bool::Value(b)),
    }
}

pub(super) fn cookie(c: Cookie) -> pb::RpcHttpCookie {
    use pb::rpc_http_cookie::SameSite as S;
    pb::RpcHttpCookie {
        name: c.name,
        value: c.value,
        domain: c.domain.map(nullable),
        path: c.path.map(nullable),
        expires: c.expires.map(|seconds| pb::NullableTimestamp {
            timestamp: Some(pb::nullable_timestamp::Timestamp::Value(
                prost_types::Timestamp { seconds, nanos: 0 },
            )),
        }),
        secure: c.secure.map(nullable_bool),
        http_only: c.http_only.map(nullable_bool),
        same_site: match c.same_site {
            SameSite::Unspecified => S::None,
            SameSite::Lax => S::Lax,
            SameSite::Strict => S::Strict,
            SameSite::None => S::ExplicitNone,
        } as i32,
        max_age: c.max_age.map(|v| pb::NullableDouble {
            double: Some(pb::nullable_double::Double::Value(v)),
        }),
    }
}

pub(super) fn from_cookie(c: pb::RpcHttpCookie) -> Cookie {
    use pb::rpc_http_cookie::SameSite as S;
    Cookie {
        name: c.name,
        value: c.value,
        domain: c.domain.and_then(nullable_value),
        path: c.path.and_then(nullable_value),
        expires: c.expires.and_then(|t| {
            t.timestamp
                .map(|pb::nullable_timestamp::Timestamp::Value(ts)| ts.seconds)
        }),
        secure: c
            .secure
            .and_then(|b| b.bool.map(|pb::nullable_bool::Bool::Value(v)| v)),
        http_only: c
            .http_only
            .and_then(|b| b.bool.map(|pb::nullable_bool::Bool::Value(v)| v)),
        same_site: match S::try_from(c.same_site) {
            Ok(S::Lax) => SameSite::Lax,
            Ok(S::Strict) => SameSite::Strict,
            Ok(S::ExplicitNone) => SameSite::None,
            Ok(S::None) | Err(_) => SameSite::Unspecified,
        },
        max_age: c
            .max_age
            .and_then(|d| d.double.map(|pb::nullable_double::Double::Value(v)| v)),
    }
}
