//! pacer: a traffic-shaping proxy between a load tool and a rate-limited SaaS API.
//!
//! # Layout
//!
//! A request's way through, outermost first, and the module that owns each step:
//!
//! - [`app`]: `run(listeners, config, shutdown)`, which wires everything and owns the tasks.
//! - [`proxy`]: the listener and front door (origin-form, absolute-form, CONNECT), and the one
//!   place the tower stack is assembled ([`proxy::stack`]), with the reasons for its order.
//!   - [`proxy::rescue`] is the only code that turns an [`error::Error`] into an HTTP response.
//!   - [`proxy::client`] is the upstream client (hyper HTTP/1.1 over rustls), its idle
//!     connections kept per thread; [`proxy::workers`] serves on one runtime per core.
//!   - [`proxy::connect`] answers CONNECT: TLS interception with [`tls`] leaves (the requests
//!     inside go through the same stack), blind tunnels, or 403; [`proxy::upgrade`] pipes
//!     WebSocket upgrades.
//! - [`tls`]: pacer's own CA (load or create) and the leaf certificates it signs for CONNECT.
//! - [`route`]: `(method, path)` to the route and the limits it passes, after normalising the
//!   path (RFC 3986), in time linear in the path.
//! - [`ratelimit`]: the rate-limit headers APIs send (Genesys, IETF, `X-RateLimit-*`) read into
//!   one value, for limits that learn from them.
//! - [`discover`]: what the API showed about its limits during a run (`GET /discovered`,
//!   `pacer proxy --discover-out FILE`), as JSON and as a config to keep.
//! - [`retry`]: absorbing upstream 429s: Retry-After parsing, backoff, replayable bodies, and the
//!   retry layer that pauses limit keys and re-sends.
//! - [`shape`]: the [`shape::Limiter`] trait, the in-memory limiter, and the shaping layer.
//! - [`metrics`]: the Prometheus series; [`proxy::observe`] counts every answer clients get.
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`, `/status` and live limit changes.
//! - [`config`]: YAML to validated types; every error names the field path and line.
//! - [`error`]: the request path's error type; status, code and retryability live on it.
//! - [`exchange`]: the request path's vocabulary (body, target, extensions, `x-pacer-*` headers)
//!   that the layers pass each other; a leaf, so no layer imports another through it.
//! - [`mock`]: a Genesys-like API that enforces the platform's limits, for rehearsals and tests.
//! - [`generate`]: the built-in load generator (open and closed model, OAuth, HDR reports).
//! - [`demo`]: the mock, pacer and the generator in one process, side by side.
//! - [`cli`]: the command line; `main.rs` only parses it and maps errors to exit codes.
//! - [`shutdown`]: the drain signal shared by listeners.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod discover;
pub mod error;
pub mod exchange;
pub mod generate;
pub mod metrics;
pub mod mock;
pub mod proxy;
pub mod ratelimit;
pub mod retry;
pub mod route;
pub mod shape;
pub mod shutdown;
pub mod tls;

pub use crate::config::Config;
pub use crate::error::Error;

pub use crate::exchange::BoxError;
