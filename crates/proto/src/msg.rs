//! The protocol's messages as plain Rust values: what the host sends to a language worker
//! ([`ToWorker`]) and what it receives ([`FromWorker`]). Only the subset the host acts on
//! is modelled; anything else a worker sends arrives as [`FromWorker::Other`].

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

/// A message from the host to a worker.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "each message is built once and moved into the stream"
)]
pub enum ToWorker {
    WorkerInit(WorkerInit),
    FunctionsMetadata {
        app_directory: String,
    },
    FunctionLoad(FunctionLoad),
    /// Several loads in one message (workers that advertise `SupportsLoadResponseCollection`).
    FunctionLoadCollection(Vec<FunctionLoad>),
    Invocation(Box<Invocation>),
    InvocationCancel {
        invocation_id: String,
    },
    WorkerStatus,
    WorkerTerminate {
        grace: Duration,
    },
}

/// A message from a worker to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum FromWorker {
    StartStream {
        worker_id: String,
    },
    WorkerInitResponse(WorkerInitResponse),
    FunctionMetadataResponse(FunctionMetadataResponse),
    FunctionLoadResponse(FunctionLoadResponse),
    FunctionLoadResponses(Vec<FunctionLoadResponse>),
    InvocationResponse(Box<InvocationResponse>),
    Log(Log),
    WorkerStatusResponse,
    /// A message the host does not act on, by its protocol name.
    Other(&'static str),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerInit {
    pub host_version: String,
    pub capabilities: HashMap<String, String>,
    pub log_categories: HashMap<String, LogLevel>,
    pub worker_directory: String,
    pub function_app_directory: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerInitResponse {
    pub capabilities: HashMap<String, String>,
    pub result: StatusResult,
    pub worker_metadata: Option<WorkerMetadata>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerMetadata {
    pub runtime_name: String,
    pub runtime_version: String,
    pub worker_version: String,
    pub worker_bitness: String,
}

/// Whether an operation succeeded, and the worker's explanation when it did not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusResult {
    pub status: Outcome,
    pub result: String,
    pub exception: Option<RpcException>,
    pub logs: Vec<Log>,
}

impl StatusResult {
    pub fn success() -> StatusResult {
        StatusResult {
            status: Outcome::Success,
            ..StatusResult::default()
        }
    }

    /// The worker's reason for a failure: the exception's message, else `result`.
    pub fn reason(&self) -> String {
        match &self.exception {
            Some(e) if !e.message.is_empty() => e.message.clone(),
            _ if !self.result.is_empty() => self.result.clone(),
            _ => "the worker gave no reason".to_string(),
        }
    }
}

/// `StatusResult.Status`. Failure is the protocol's default value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    #[default]
    Failure,
    Success,
    Cancelled,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RpcException {
    pub source: String,
    pub stack_trace: String,
    pub message: String,
    pub is_user_exception: bool,
    pub type_name: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionMetadataResponse {
    pub functions: Vec<FunctionMetadata>,
    pub result: StatusResult,
    /// The worker found nothing to index: read function.json files instead.
    pub use_default_metadata_indexing: bool,
}

/// `RpcFunctionMetadata`: a function as the host describes it to a worker, or as a
/// worker reports it after indexing the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionMetadata {
    pub name: String,
    pub directory: String,
    pub script_file: String,
    pub entry_point: String,
    pub bindings: HashMap<String, BindingInfo>,
    pub is_proxy: bool,
    pub status: Option<StatusResult>,
    pub language: String,
    /// Each binding as the JSON object of function.json.
    pub raw_bindings: Vec<String>,
    pub function_id: String,
    pub managed_dependency_enabled: bool,
    pub retry_options: Option<RetryOptions>,
    pub properties: HashMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BindingInfo {
    pub type_name: String,
    pub direction: BindingDirection,
    pub data_type: BindingDataType,
    pub properties: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindingDirection {
    #[default]
    In,
    Out,
    InOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindingDataType {
    #[default]
    Undefined,
    String,
    Binary,
    Stream,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryOptions {
    pub max_retry_count: i32,
    pub delay_interval: Option<Duration>,
    pub minimum_interval: Option<Duration>,
    pub maximum_interval: Option<Duration>,
    pub exponential_backoff: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionLoad {
    pub function_id: String,
    pub metadata: FunctionMetadata,
    pub managed_dependency_enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionLoadResponse {
    pub function_id: String,
    pub result: StatusResult,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub invocation_id: String,
    pub function_id: String,
    pub input_data: Vec<ParameterBinding>,
    pub trigger_metadata: HashMap<String, TypedData>,
    pub trace_context: TraceContext,
    pub retry_context: Option<RetryContext>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceContext {
    pub trace_parent: String,
    pub trace_state: String,
    pub attributes: HashMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryContext {
    pub retry_count: i32,
    pub max_retry_count: i32,
    pub exception: Option<RpcException>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationResponse {
    pub invocation_id: String,
    pub output_data: Vec<ParameterBinding>,
    pub return_value: Option<TypedData>,
    pub result: StatusResult,
}

/// A named value: an input of an invocation, or an output of its response.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterBinding {
    pub name: String,
    pub data: TypedData,
}

/// `TypedData`: one value of one of the protocol's kinds.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TypedData {
    /// No value set.
    #[default]
    None,
    String(String),
    Json(String),
    Bytes(Bytes),
    Stream(Bytes),
    Http(Box<RpcHttp>),
    Int(i64),
    Double(f64),
    CollectionBytes(Vec<Bytes>),
    CollectionString(Vec<String>),
    CollectionDouble(Vec<f64>),
    CollectionSint64(Vec<i64>),
    /// A kind the host does not use (model binding data, shared memory), by name.
    Unsupported(&'static str),
}

impl TypedData {
    /// The protocol's name of the value's kind (`none` when nothing is set).
    pub fn kind(&self) -> &'static str {
        match self {
            TypedData::None => "none",
            TypedData::String(_) => "string",
            TypedData::Json(_) => "json",
            TypedData::Bytes(_) => "bytes",
            TypedData::Stream(_) => "stream",
            TypedData::Http(_) => "http",
            TypedData::Int(_) => "int",
            TypedData::Double(_) => "double",
            TypedData::CollectionBytes(_) => "collection_bytes",
            TypedData::CollectionString(_) => "collection_string",
            TypedData::CollectionDouble(_) => "collection_double",
            TypedData::CollectionSint64(_) => "collection_sint64",
            TypedData::Unsupported(name) => name,
        }
    }
}

/// `RpcHttp`: an HTTP request as the host hands it to a worker, or a response as a
/// worker returns it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RpcHttp {
    pub method: String,
    pub url: String,
    /// Header names in lower case; several values of one header joined with `, `.
    pub headers: Vec<(String, String)>,
    pub body: Option<TypedData>,
    pub raw_body: Option<TypedData>,
    pub params: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    /// The status code of a response, as text (`"200"`); empty when the worker set none.
    pub status_code: String,
    pub enable_content_negotiation: bool,
    pub identities: Vec<ClaimsIdentity>,
    pub cookies: Vec<Cookie>,
    /// Send `headers`, `params` and `query` in the nullable maps (`UseNullableValueDictionaryForHttp`).
    pub nullable_maps: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimsIdentity {
    pub authentication_type: Option<String>,
    pub name_claim_type: Option<String>,
    pub role_claim_type: Option<String>,
    /// (type, value) pairs.
    pub claims: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub domain: Option<String>,
    pub path: Option<String>,
    /// Seconds since the Unix epoch.
    pub expires: Option<i64>,
    pub secure: Option<bool>,
    pub http_only: Option<bool>,
    pub same_site: SameSite,
    pub max_age: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Not set.
    #[default]
    Unspecified,
    Lax,
    Strict,
    /// `SameSite=None`, stated explicitly.
    None,
}

/// A log line of a worker, for one invocation or for the worker itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Log {
    pub invocation_id: String,
    pub category: String,
    pub level: LogLevel,
    pub message: String,
    pub exception: Option<RpcException>,
    /// `System` logs come from the worker, `User` logs from function code.
    pub system: bool,
}

/// `RpcLog.Level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Information,
    Warning,
    Error,
    Critical,
    None,
}
