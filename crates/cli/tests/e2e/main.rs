//! End-to-end tests: each starts the real `stratus` binary and talks HTTP to it.

mod auth;
mod behaviour;
mod routing;
mod samples;
mod support;
