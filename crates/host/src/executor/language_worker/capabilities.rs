//! The capabilities a worker advertises in `WorkerInitResponse`, as flags (any non-empty
//! value turns one on, as in the Azure host).

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub raw_http_body_bytes: bool,
    pub rpc_http_body_only: bool,
    pub trigger_metadata_removed: bool,
    pub typed_data_collection: bool,
    pub nullable_maps: bool,
    pub ignore_empty_headers: bool,
    pub worker_status: bool,
    pub handles_worker_terminate: bool,
    pub handles_invocation_cancel: bool,
    pub accepts_load_list: bool,
    /// Where the worker serves HTTP itself (`HttpUri`), for streamed HTTP functions.
    pub http_uri: Option<String>,
    pub requires_route_parameters: bool,
}

impl Capabilities {
    pub fn from_map(map: &HashMap<String, String>) -> Capabilities {
        let on = |name: &str| {
            map.iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
        };
        Capabilities {
            raw_http_body_bytes: on("RawHttpBodyBytes"),
            rpc_http_body_only: on("RpcHttpBodyOnly"),
            trigger_metadata_removed: on("RpcHttpTriggerMetadataRemoved"),
            typed_data_collection: on("TypedDataCollection"),
            nullable_maps: on("UseNullableValueDictionaryForHttp"),
            ignore_empty_headers: on("IgnoreEmptyValuedRpcHttpHeaders"),
            worker_status: on("WorkerStatus"),
            handles_worker_terminate: on("HandlesWorkerTerminateMessage"),
            handles_invocation_cancel: on("HandlesInvocationCancelMessage"),
            // The Azure host batches loads on this capability alone.
            accepts_load_list: on("SupportsLoadResponseCollection"),
            http_uri: map
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case("HttpUri") && !v.trim().is_empty())
                .map(|(_, v)| v.clone()),
            requires_route_parameters: on("RequiresRouteParameters"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_worker_capabilities() {
        let map: HashMap<String, String> = [
            ("RawHttpBodyBytes", "true"),
            ("TypedDataCollection", "true"),
            ("RpcHttpBodyOnly", "true"),
            ("RpcHttpTriggerMetadataRemoved", "true"),
            ("WorkerStatus", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = Capabilities::from_map(&map);
        assert!(c.raw_http_body_bytes && c.rpc_http_body_only && c.trigger_metadata_removed);
        assert!(
            !c.worker_status,
            "an empty value does not enable a capability"
        );
        assert!(!c.nullable_maps && c.http_uri.is_none());
    }
}
