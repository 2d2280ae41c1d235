//! The `dialtone` binary's pieces: CLI commands, config, the HTTP API and webhooks.
//! Thin: it wires the crates together.

pub mod accounts;
pub mod api;
pub mod app;
pub mod bench;
pub mod bench_stats;
mod bench_tick;
pub mod client;
pub mod config;
pub mod cpu;
pub mod dashboard;
pub mod demo;
pub mod demo_voice;
pub mod export;
pub mod import;
pub mod inbound;
pub mod keys;
pub mod linger;
pub mod logs;
pub mod media;
pub mod sim_cmd;
pub mod speech;
