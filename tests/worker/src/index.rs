//! Worker indexing: `<app>/functions.test.json` lists the app's functions, the way a Python v2
//! or Node v4 app registers them in code. Without the file the worker asks the host to read
//! `function.json` files (`use_default_metadata_indexing`).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use stratus_proto::msg::{
    BindingDataType, BindingDirection, BindingInfo, FunctionMetadata, FunctionMetadataResponse,
    Outcome, RpcException, StatusResult,
};

/// The answer to `FunctionsMetadataRequest{app_directory}`.
pub fn index(app_directory: &str) -> FunctionMetadataResponse {
    let file = Path::new(app_directory).join("functions.test.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return FunctionMetadataResponse {
                functions: Vec::new(),
                result: StatusResult::success(),
                use_default_metadata_indexing: true,
            };
        }
        Err(e) => return failure(format!("cannot read {}: {e}", file.display())),
    };
    match functions(app_directory, &text) {
        Ok(functions) => FunctionMetadataResponse {
            functions,
            result: StatusResult::success(),
            use_default_metadata_indexing: false,
        },
        Err(e) => failure(format!("{}: {e}", file.display())),
    }
}

fn failure(message: String) -> FunctionMetadataResponse {
    FunctionMetadataResponse {
        functions: Vec::new(),
        result: StatusResult {
            status: Outcome::Failure,
            exception: Some(RpcException {
                message,
                ..RpcException::default()
            }),
            ..StatusResult::default()
        },
        use_default_metadata_indexing: false,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn functions(app_directory: &str, json: &str) -> Result<Vec<FunctionMetadata>, String> {
    let entries: Vec<Value> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    entries
        .iter()
        .map(|entry| {
            let name = text(entry, "name");
            if name.is_empty() {
                return Err("every function needs a \"name\"".to_string());
            }
            let bindings = entry
                .get("bindings")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            Ok(FunctionMetadata {
                name: name.to_string(),
                directory: app_directory.to_string(),
                script_file: Path::new(app_directory)
                    .join("index.js")
                    .to_string_lossy()
                    .into_owned(),
                entry_point: text(entry, "entryPoint").to_string(),
                bindings: bindings
                    .iter()
                    .map(|b| (text(b, "name").to_string(), binding_info(b)))
                    .collect(),
                language: "test".to_string(),
                raw_bindings: bindings.iter().map(Value::to_string).collect(),
                function_id: format!("fn-{name}"),
                properties: [("worker_indexed".to_string(), "True".to_string())].into(),
                ..FunctionMetadata::default()
            })
        })
        .collect()
}

fn binding_info(b: &Value) -> BindingInfo {
    let direction = match text(b, "direction").to_ascii_lowercase().as_str() {
        "out" => BindingDirection::Out,
        "inout" => BindingDirection::InOut,
        _ => BindingDirection::In,
    };
    let data_type = match text(b, "dataType").to_ascii_lowercase().as_str() {
        "string" => BindingDataType::String,
        "binary" => BindingDataType::Binary,
        "stream" => BindingDataType::Stream,
        _ => BindingDataType::Undefined,
    };
    BindingInfo {
        type_name: text(b, "type").to_string(),
        direction,
        data_type,
        properties: HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_becomes_worker_indexed_metadata() {
        let json = r#"[{"name": "hello", "entryPoint": "echo", "bindings": [
            {"type": "httpTrigger", "direction": "in", "name": "req", "route": "hi"},
            {"type": "http", "direction": "out", "name": "$return"}]}]"#;
        let fs = functions("/app", json).unwrap();
        assert_eq!(fs.len(), 1);
        let f = &fs[0];
        assert_eq!(f.function_id, "fn-hello");
        assert_eq!(f.script_file, "/app/index.js");
        assert_eq!(f.entry_point, "echo");
        assert_eq!(f.bindings["$return"].direction, BindingDirection::Out);
        assert_eq!(f.bindings["req"].type_name, "httpTrigger");
        let raw: Value = serde_json::from_str(&f.raw_bindings[0]).unwrap();
        assert_eq!(raw["route"], "hi");
        assert_eq!(f.properties["worker_indexed"], "True");
    }

    #[test]
    fn without_the_file_the_host_indexes() {
        let r = index("/nonexistent-stratus-app");
        assert!(r.use_default_metadata_indexing);
        assert!(r.functions.is_empty());
        assert_eq!(r.result.status, Outcome::Success);
    }

    #[test]
    fn a_broken_file_is_a_failure() {
        assert!(functions("/app", "{").is_err());
        assert!(functions("/app", r#"[{"bindings": []}]"#).is_err());
    }
}
