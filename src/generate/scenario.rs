//! Scenario files: what `pacer generate` sends, where, and at what pace.
//!
//! Read like the proxy's config: serde-saphyr with serde_path_to_error, unknown keys refused,
//! and every mistake reported as [`ConfigError`]s naming the field path and line. Values are
//! checked as they are read ([`raw`]); rules across fields are checked after ([`validate`]).

mod env;
mod raw;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde::Deserialize;
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use crate::config::{ConfigError, ConfigErrors};

pub use self::raw::{parse_percent, parse_rate, MAX_RATE};

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `name`, or the file's name without `.yaml` when loaded from a file; shown in reports.
    pub name: Option<String>,
    /// Base URL request paths are joined to.
    pub target: url::Url,
    pub auth: Option<Auth>,
    /// Sent with every request (a request's own headers override them).
    pub headers: HeaderMap,
    /// How long one request may take, connect included (default 30s); later it counts as an
    /// error of kind `timeout`.
    pub timeout: Duration,
    /// Requests in flight at once in open-model phases (default 1000). An arrival that finds
    /// them all busy is not sent and counts as `dropped`, so a stalled target cannot make the
    /// generator's memory grow without bound.
    pub max_in_flight: usize,
    pub phases: Vec<Phase>,
    pub requests: Vec<RequestSpec>,
    /// `tls.ca_file`: more certificates to trust for `https://` targets (pacer's CA when it
    /// intercepts), besides the public roots and `SSL_CERT_FILE`.
    pub ca_file: Option<PathBuf>,
    pub thresholds: Thresholds,
}

/// Pass/fail criteria of a run (k6's thresholds): a run that crosses one exits non-zero.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// Latency quantiles of the whole run must stay at or under these.
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    pub p99: Option<Duration>,
    pub max: Option<Duration>,
    /// The share of requests that failed (no response, or a status of 400 or more) must stay
    /// at or under this fraction.
    pub error_rate: Option<f64>,
    /// Open-model phases: requests actually sent (not dropped) over those scheduled must be
    /// at least this fraction.
    pub rate_achieved: Option<f64>,
}

/// OAuth client credentials; the token is fetched once and shared by every request.
#[derive(Clone)]
pub struct Auth {
    pub token_url: url::Url,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for Auth {
    // The secret must never reach a log line, even through `{:?}` of the whole scenario.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub duration: Duration,
    pub load: Load,
}

/// How a phase makes load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Requests arrive on a schedule whatever the responses do: `rate` per second at the start,
    /// changing linearly to `to` at the end (equal for a constant rate).
    Open { rate: f64, to: f64 },
    /// `users` loops of request, answer, think.
    Closed { users: u32, think: Duration },
}

/// One kind of request, picked by weight.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub name: String,
    pub weight: u32,
    pub method: Method,
    /// The full URI: target joined with the path.
    pub uri: Uri,
    pub body: Bytes,
    /// Scenario headers with the request's own on top.
    pub headers: HeaderMap,
}

// === impl Scenario ===

impl Scenario {
    /// Reads and validates a scenario file; `${VAR}` reads the process environment.
    /// Relative file names in it (`tls.ca_file`) start from the file's directory.
    pub fn load(path: &Path) -> Result<Scenario, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors::single(ConfigError::file(path, e)))?;
        let dir = path.parent().map(Path::to_path_buf);
        let mut scenario = env::with_base(dir, || Self::parse(&text))?;
        if scenario.name.is_none() {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            scenario.name = stem;
        }
        Ok(scenario)
    }

    /// Parses YAML text; `${VAR}` reads the process environment.
    pub fn parse(text: &str) -> Result<Scenario, ConfigErrors> {
        Self::parse_with_env(text, |name| std::env::var(name).ok())
    }

    /// Parses YAML text with `env` standing in for the environment.
    pub fn parse_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String> + 'static,
    ) -> Result<Scenario, ConfigErrors> {
        let raw = env::with_env(Box::new(env), || parse_raw(text))?;
        validate::validate(raw, item_lines(text))
    }

    /// The phases' durations added up.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// Reads the text into the raw structs; at most one error, the first serde meets.
fn parse_raw(text: &str) -> Result<raw::RawScenario, ConfigErrors> {
    let mut path = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = Some(field_path(e.path()));
            e.into_inner()
        })
    });
    parsed.map_err(|e| {
        let line = e.location().map(|l| l.line()).filter(|&l| l > 0);
        let message = UserMessageFormatter.format_message(e.without_snippet());
        ConfigErrors::single(ConfigError::new(
            path.unwrap_or_default(),
            line,
            plain_words(&message),
        ))
    })
}

/// Rewords the parser's terse type errors for someone editing a scenario.
fn plain_words(message: &str) -> String {
    let reworded = match message {
        "invalid u32" | "invalid u64" => "expected a whole number, 0 or more",
        "invalid boolean" => "expected true or false",
        "expected string scalar" => "expected a single value, not a list or a map",
        "expected mapping start" => "expected a map of keys and values",
        "expected sequence start" => "expected a list",
        other => other,
    };
    reworded.to_owned()
}

/// `phases[1].rate`, `headers.Content-Type`: the path as the user wrote it.
fn field_path(path: &serde_path_to_error::Path) -> String {
    crate::config::dotted_path(path, |_| false)
}

/// Lines of the items of `phases` and `requests`, for errors about an item as a whole.
#[derive(Debug, Default)]
pub(crate) struct ItemLines {
    pub phases: Vec<u64>,
    pub requests: Vec<u64>,
}

/// A second pass over text that already parsed, keeping only where each item starts.
fn item_lines(text: &str) -> ItemLines {
    #[derive(Deserialize)]
    struct Lines {
        phases: Option<Vec<Spanned<serde::de::IgnoredAny>>>,
        requests: Option<Vec<Spanned<serde::de::IgnoredAny>>>,
    }
    let lines = |items: Option<Vec<Spanned<serde::de::IgnoredAny>>>| {
        let items = items.unwrap_or_default();
        items.iter().map(|s| s.referenced.line()).collect()
    };
    // The first pass accepted this text, so this one should too; if not, errors about items
    // merely go without a line.
    match serde_saphyr::from_str::<Lines>(text) {
        Ok(l) => ItemLines {
            phases: lines(l.phases),
            requests: lines(l.requests),
        },
        Err(_) => ItemLines::default(),
    }
}
