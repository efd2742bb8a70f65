//! End-to-end tests: each starts the real `stratus` binary and talks HTTP to it.

mod auth;
mod behaviour;
mod cluster;
mod isolation;
mod language_workers;
mod manage;
mod monitor;
mod portal_auth;
mod portal_browser;
mod publish;
mod queue_service;
mod routing;
mod sample_queues;
mod samples;
mod support;
mod timers;
mod up;
mod worker_protocol;
