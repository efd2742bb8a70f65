//! The Azure Functions language-worker protocol (`AzureFunctionsRpcMessages.FunctionRpc`):
//! the only crate that knows protobuf. Other crates use the plain values of [`msg`], the
//! host's gRPC server of [`server`], and the worker's side of a stream in [`client`] (for tests
//! and tools that act as a worker).

// The generated code carries `allow`s without reasons, which this lint cannot see past.
#![allow(
    clippy::allow_attributes_without_reason,
    reason = "generated code in `pb` is not ours to annotate"
)]

pub mod client;
pub mod msg;
pub mod server;

mod convert;

/// The generated protobuf types and service; private to this crate.
#[allow(clippy::all, clippy::pedantic, missing_docs, reason = "generated code")]
mod pb {
    tonic::include_proto!("azure_functions_rpc_messages");
}

pub use client::{ClientError, WorkerSide};
pub use msg::{FromWorker, ToWorker};
pub use server::{Expected, Inbound, RpcServer, ServerError, WorkerStream};
