//! pacer's integration tests: one crate, so touching a source file relinks one test binary.
//!
//! Each module was once a crate of its own; `cargo test --test it shared::` runs one of them,
//! `cargo test --test it shared::rate::` one file of it. `support` is the harness they share.
//!
//! All of them share this process now. Nothing here may assume it is alone: servers bind port
//! 0, scratch files go to fresh directories, and the environment is only written before `main`
//! (see `shared::SECRETS_BEFORE_MAIN`).

mod support;

mod absorb;
mod cli;
mod config;
mod connect;
mod demo;
mod discover;
mod docs;
mod generate;
mod generate_ci;
mod generate_html;
mod hardening;
mod helm;
mod jmeter;
mod learn;
mod mock;
mod observe;
mod pool;
mod proxy;
mod proxy_auth;
mod quota;
mod ratelimit_units;
mod retry_units;
mod shape;
mod shaping;
mod shared;
mod upgrade;
mod upstream_faults;
