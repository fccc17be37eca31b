//! Configuration: YAML in, validated types out.
//!
//! Loading happens in two steps so that every mistake can be reported with the field path and line:
//! [`raw`] mirrors the YAML with serde (unknown keys rejected, source locations kept through
//! `serde_saphyr::Spanned`), and [`validate`] turns it into the types below, which the rest of
//! pacer uses. Nothing outside this module sees raw YAML.
//!
//! These types describe what the user asked for; runtime state (limiter buckets, effective rates
//! after a live change) lives elsewhere, so a later reload can swap state without a restart.

mod duration;
mod error;
pub mod pattern;
mod percent;
mod raw;
mod region;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, Method};

pub use self::duration::{parse_duration, DurationError};
pub use self::error::{ConfigError, ConfigErrors};
pub use self::pattern::{PathPattern, PatternError};
pub use self::percent::parse_percent;
pub(crate) use self::raw::dotted_path;
pub use self::region::{region_base_url, REGIONS};
pub use self::validate::{CountError, QuotaError, RateError};
use crate::exchange::LimitId;
pub use crate::exchange::RetryAfterUnit;

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the proxy listens. Defaults to 127.0.0.1:8080; a non-loopback address must be set
    /// explicitly.
    pub listen: SocketAddr,
    /// Upstreams in the order they appear in the file.
    pub upstreams: Vec<Upstream>,
    /// Index into `upstreams` of the one origin-form requests go to. Set implicitly when there is
    /// exactly one upstream.
    pub default_upstream: Option<usize>,
    /// Named limits in file order.
    pub limits: Vec<Limit>,
    /// Routes in file order; first match wins.
    pub routes: Vec<Route>,
    pub retry: Retry,
    pub server: Server,
    /// The admin listener (metrics, status, live limits). None when not configured.
    pub admin: Option<SocketAddr>,
    /// TLS interception of CONNECT. None when not configured (CONNECT to intercepted hosts is
    /// then refused with 403).
    pub intercept: Option<Intercept>,
    pub proxy_auth: Option<ProxyAuth>,
    /// Where limits with `shared: true` keep their state. None when not configured.
    pub shared: Option<SharedStore>,
    /// The limits with `learn:` on, by name, and how they learn. Kept beside the limits rather
    /// than in [`Limit`] so a limit built in code (tests, the shared fallback) needs no change.
    pub learn: std::collections::BTreeMap<String, Learn>,
}

/// `learn: true` (or a map of these fields): pace a limit's keys to what the API's rate-limit
/// headers advertise (see [`crate::ratelimit`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learn {
    /// The learned rate is quota / window less this fraction (default 0.05).
    pub headroom: f64,
}

impl Default for Learn {
    fn default() -> Self {
        Learn { headroom: 0.05 }
    }
}

/// One upstream API.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    /// Scheme, host and optional port (and no path other than `/`), for example
    /// `https://api.mypurecloud.com`.
    pub base_url: url::Url,
    /// Lower-cased host names clients may address in absolute-form or CONNECT. Defaults to the
    /// host of `base_url`.
    pub hosts: Vec<String>,
    /// Extra PEM trust roots, resolved relative to the config file's directory.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// The whole response, head and body, must arrive within this.
    pub request_timeout: Duration,
    /// The longest pause allowed between two pieces of a streamed response body.
    pub body_idle_timeout: Duration,
    /// Idle connections kept for reuse per worker thread; past it the least recently used close.
    pub max_idle: usize,
    /// Whether CONNECT to this upstream's hosts is TLS-intercepted (true) or tunnelled blind.
    pub intercept: bool,
    /// What a number in this upstream's `Retry-After` counts (seconds, as RFC 9110 says, unless
    /// the API is known to send milliseconds).
    pub retry_after_unit: RetryAfterUnit,
}

/// A named limit.
#[derive(Debug, Clone)]
pub struct Limit {
    pub name: String,
    pub rate: Option<Rate>,
    /// Token bucket size; 1 when not set.
    pub burst: u32,
    /// No window of this length ever holds more than this many releases (per key).
    pub quota: Option<Quota>,
    pub concurrency: Option<u32>,
    pub key: KeyKind,
    pub mode: Mode,
    pub queue: Queue,
    /// Maximum number of live keys; past it new keys are refused (503 pacer.keys.exhausted).
    pub max_keys: usize,
    /// A key unused this long is forgotten.
    pub key_idle: Duration,
    pub adaptive: Option<Adaptive>,
}

/// `N/s`, `N/min` or `N/h`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/min` or `N/h` exactly as the config file does (the admin API's live
    /// changes use it, so a rate means the same everywhere). The error says how to write one.
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        validate::parse_rate(text)
    }

    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.per.as_secs_f64()
    }

    /// The time between two requests at this rate (GCRA's emission interval).
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.per.as_secs() {
            1 => write!(f, "{}/s", self.count),
            60 => write!(f, "{}/min", self.count),
            3600 => write!(f, "{}/h", self.count),
            _ => write!(f, "{}/{}s", self.count, self.per.as_secs_f64()),
        }
    }
}

/// `quota: N/W`: at most N releases in any window of length W, counted with a margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub count: u32,
    pub window: Duration,
    /// Added to the window when counting, for latency jitter between pacer and the API
    /// (default 1% of the window, at least 50 ms).
    pub margin: Duration,
}

impl Quota {
    /// Parses `N/s`, `N/min`, `N/h` or `N/<duration>` (e.g. `30/6s`) exactly as the config file
    /// does, with the default margin.
    pub fn parse(text: &str) -> Result<Quota, QuotaError> {
        validate::parse_quota(text)
    }

    /// The margin pacer adds when none is given: 1% of the window, at least 50 ms.
    pub fn default_margin(window: Duration) -> Duration {
        (window / 100).max(Duration::from_millis(50))
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{:?}", self.count, self.window)
    }
}

/// What a limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// One bucket for every request.
    Global,
    /// One bucket per bearer token (hashed, never stored raw).
    Token,
    /// One bucket per client IP address.
    ClientIp,
    /// One bucket per value of this request header (hashed).
    Header(HeaderName),
}

/// What a limit does with a request that cannot go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Delay it in a bounded FIFO queue.
    Queue,
    /// Answer 429 at once.
    Reject,
    /// Let it through; only count.
    Observe,
}

/// As written in the config (`global`, `token`, `client_ip`, `header:NAME`).
impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Global => f.write_str("global"),
            KeyKind::Token => f.write_str("token"),
            KeyKind::ClientIp => f.write_str("client_ip"),
            KeyKind::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// As written in the config (`queue`, `reject`, `observe`).
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Queue => "queue",
            Mode::Reject => "reject",
            Mode::Observe => "observe",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    pub max_depth: usize,
    pub max_wait: Duration,
}

/// AIMD settings for `adaptive: true` (or a map of these fields).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// Multiplied into the effective rate on each upstream 429 (default 0.7).
    pub factor: f64,
    /// The effective rate never drops below this fraction of the configured rate (default 0.1).
    pub floor: f64,
    /// Fraction of the configured rate added back after each clean interval (default 0.05).
    pub step: f64,
    /// How long without a 429 counts as a clean interval (default 5s).
    pub interval: Duration,
}

/// A route: which requests pass which limits.
#[derive(Debug, Clone)]
pub struct Route {
    /// The pattern exactly as written, e.g. `GET /api/v2/scripts/**`; used as the metrics label.
    pub name: String,
    /// None matches any method (`*`).
    pub method: Option<Method>,
    pub path: PathPattern,
    /// Entries of [`Config::limits`], in acquisition order.
    pub limits: Vec<LimitId>,
    /// The limits (indices, a subset of `limits`) whose keys an upstream 429 on this route
    /// pauses; every limit of the route unless `pause:` names some.
    pub pause: Vec<LimitId>,
}

/// Upstream 429 absorption and replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// Upstream attempts per request, first included (default 5).
    pub max_attempts: u32,
    /// A longer Retry-After is handed back to the client at once (default 60s).
    pub max_retry_after: Duration,
    /// The longest one Retry-After pauses a limit key (default: `max_retry_after`); then one
    /// request probes whether the API accepts again.
    pub max_pause: Duration,
    /// Full-jitter exponential backoff when a 429 has no usable Retry-After.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub on_5xx: On5xx,
    /// Bodies up to this many bytes are buffered for replay (default 512000).
    pub max_body: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On5xx {
    Never,
    /// Retry 502/503/504 for GET, HEAD, PUT, DELETE and OPTIONS only.
    Idempotent,
}

/// Limits of the listener itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Server {
    /// Largest accepted request header section (default 64 KiB); larger gets 431.
    pub max_header_bytes: usize,
    /// Largest accepted request body (default 16 MiB); larger gets 413.
    pub max_body_bytes: u64,
    /// How long in-flight requests may take to finish after a shutdown signal (default 30s).
    pub drain_timeout: Duration,
    /// How long a client may take to send a request body, counted from the first moment pacer
    /// waits for it (default 30s, like the request head's); slower gets 408.
    pub body_timeout: Duration,
    /// The proxy listener's accept backlog; None: the OS maximum (`net.core.somaxconn`).
    pub backlog: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Intercept {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
}

#[derive(Clone)]
pub struct ProxyAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ProxyAuth {
    // The password must never reach a log line, even through `{:?}` of the whole config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `shared:`: the Redis that shared limits live in, and what to do without it.
#[derive(Clone)]
pub struct SharedStore {
    /// `redis://` URL, with `PACER_REDIS_PASSWORD` put in when the URL has no password.
    pub redis: url::Url,
    /// Instances with the same prefix (and secret) share their limits.
    pub key_prefix: String,
    /// The HMAC key for limit keys in Redis, read from the `key_secret_env` variable.
    pub key_secret: Vec<u8>,
    /// Longest wait for one Redis call; past it Redis counts as unavailable.
    pub timeout: Duration,
    pub on_unavailable: OnUnavailable,
    /// How many instances share the budget: each takes `1/instances` when falling back.
    pub instances: u32,
    /// Names of the limits with `shared: true`; the others stay in-process.
    pub limits: Vec<String>,
    /// `shared.tls.ca_file`'s certificates (PEM): the only roots a `rediss://` Redis is
    /// checked against when set; otherwise the public (webpki) roots.
    pub tls_ca: Option<Vec<u8>>,
}

impl SharedStore {
    /// The Redis URL with its password (if any) replaced, for logs and `pacer check`.
    pub fn redis_redacted(&self) -> String {
        let mut url = self.redis.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("redacted"));
        }
        url.to_string()
    }
}

impl std::fmt::Debug for SharedStore {
    // Neither the Redis password nor the key secret may reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("redis", &self.redis_redacted())
            .field("key_prefix", &self.key_prefix)
            .field("key_secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("on_unavailable", &self.on_unavailable)
            .field("instances", &self.instances)
            .field("limits", &self.limits)
            .field("tls_ca", &self.tls_ca.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// What a shared limit does while Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnavailable {
    /// Enforce the limit in-process at `1/instances` of it.
    Local,
    /// Answer 503 `pacer.shared.unavailable`.
    Reject,
    /// Let requests through unshaped (and count them).
    Allow,
}

impl std::fmt::Display for OnUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnUnavailable::Local => "local",
            OnUnavailable::Reject => "reject",
            OnUnavailable::Allow => "allow",
        })
    }
}

impl Config {
    /// Reads and validates a config file. Relative paths inside it resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors::single(ConfigError::file(path, e)))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::parse(&text, base)
    }

    /// Parses and validates YAML text; `base` is the directory relative paths resolve against.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigErrors> {
        // Every problem at once: what the parser refuses, then what validation finds in the rest.
        let (raw, structural, removed) = raw::parse_all(text);
        let validated = raw.map(|raw| validate::validate(raw, base));
        raw::finish(structural, &removed, validated)
    }

    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    pub fn limit(&self, name: &str) -> Option<&Limit> {
        self.limits.iter().find(|l| l.name == name)
    }

    /// The limit a route names.
    pub fn limit_at(&self, id: LimitId) -> &Limit {
        &self.limits[id.index()]
    }

    /// How the limit with this name learns from rate-limit headers, if it does (`learn:`).
    pub fn learn_for(&self, name: &str) -> Option<Learn> {
        self.learn.get(name).copied()
    }

    /// Whether the limit with this name is shared through Redis (`shared: true`).
    pub fn is_shared(&self, name: &str) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| s.limits.iter().any(|l| l == name))
    }
}
