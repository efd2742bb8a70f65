//! The Azure Storage REST surface Stratus serves, so that the official SDKs and the Functions
//! host's own storage clients talk to Stratus unchanged: storage connection strings
//! (development storage included) and Shared Key request signing.

pub mod client;
pub mod connection;
pub mod queue_api;
pub mod serve;
pub mod shared_key;
pub mod xml;

pub use connection::{ConnectionString, DEV_ACCOUNT, DEV_ACCOUNT_KEY};
pub use shared_key::{AuthError, verify};
