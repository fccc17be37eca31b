//! The mock's YAML config: what it enforces and how it misbehaves on purpose.
//!
//! Values are checked while deserializing (durations, `match` patterns, zero limits), so every
//! mistake surfaces as one serde error, which [`MockConfig::from_yaml`] turns into
//! `field.path, line N: why`.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::tls::MockTls;
use crate::route::PathPattern;

/// What the mock enforces and how it misbehaves on purpose.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// The per-token limit every `/api/v2` request passes; None disables it.
    pub default_limit: Option<WindowLimit>,
    /// Whether `/api/v2` requests need `Authorization: Bearer ...` (any token is accepted).
    pub require_auth: bool,
    /// Added to every answer of `/oauth/token` and `/api/v2` (a route's `latency` replaces it).
    pub latency: Duration,
    pub retry_after: RetryAfterMode,
    /// Per-route limits, first match wins.
    pub routes: Vec<MockRoute>,
    /// Serve HTTPS with this identity instead of plain HTTP.
    pub tls: Option<MockTls>,
    /// Which family of rate-limit headers answers carry (the platform sends `inin-ratelimit-*`).
    pub ratelimit_headers: HeaderFamily,
}

/// The rate-limit header family the mock sends with every `/api/v2` answer, 429s included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderFamily {
    /// `inin-ratelimit-allowed/count/reset`, as the platform does.
    #[default]
    Genesys,
    /// `X-RateLimit-Limit/Remaining/Reset` (reset in delta seconds).
    X,
    /// `RateLimit-Limit/Remaining/Reset` (the IETF draft's first generation).
    Ietf,
    /// `RateLimit-Policy: "default";q=N;w=W` and `RateLimit: "default";r=R;t=T`.
    IetfStructured,
    /// No rate-limit headers at all.
    None,
}

/// `requests` per fixed `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub requests: u32,
    pub window: Duration,
}

/// What the `Retry-After` header of a 429 says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterMode {
    /// Whole seconds until the limit frees, like the platform.
    #[default]
    Normal,
    /// No header at all.
    Omit,
    /// `Retry-After: soon`, which no client can parse.
    Garbage,
    /// `Retry-After: 3600`, far longer than needed.
    Huge,
    /// An HTTP-date that many seconds ahead instead of a number.
    HttpDate,
}

/// Limits and latency for the requests one `match` selects.
#[derive(Debug, Clone)]
pub struct MockRoute {
    /// The `match` as written, for messages.
    pub pattern: String,
    /// None matches any method.
    pub method: Option<Method>,
    pub path: PathPattern,
    /// Per token, like the default limit.
    pub rate: Option<WindowLimit>,
    /// Requests of this route in flight at once, across all tokens.
    pub concurrency: Option<u32>,
    pub latency: Option<Duration>,
}

// === impl MockConfig ===

impl Default for MockConfig {
    /// The platform's default: 300 requests per 60 s per token, no auth required, no latency.
    fn default() -> Self {
        MockConfig {
            default_limit: Some(WindowLimit {
                requests: 300,
                window: Duration::from_secs(60),
            }),
            require_auth: false,
            latency: Duration::ZERO,
            retry_after: RetryAfterMode::Normal,
            routes: Vec::new(),
            tls: None,
            ratelimit_headers: HeaderFamily::Genesys,
        }
    }
}

impl MockConfig {
    /// Reads a YAML file; a relative `tls.cert_out` is resolved against the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<MockConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        from_yaml_in(&text, base)
    }

    /// Parses YAML text; a relative `tls.cert_out` stays relative to the working directory.
    pub fn from_yaml(text: &str) -> anyhow::Result<MockConfig> {
        from_yaml_in(text, Path::new(""))
    }

    /// The first route matching the request, with its index.
    pub fn route(&self, method: &Method, path: &str) -> Option<(usize, &MockRoute)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.method.as_ref().is_none_or(|m| m == method) && r.path.matches(path))
    }
}

/// Parses `text`, resolving relative paths against `base`.
fn from_yaml_in(text: &str, base: &Path) -> anyhow::Result<MockConfig> {
    let mut field = String::new();
    let raw: RawConfig = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| anyhow::anyhow!(describe(&field, &e)))?;
    raw.into_config(base)
}

/// `routes[0].concurrency, line 3: invalid u32`: the field path and line, then serde's reason.
fn describe(field: &str, err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    // serde-saphyr appends ` at line L, column C`; the line is reported up front instead.
    let reason = match text.rsplit_once(" at line ") {
        Some((reason, at)) if at.starts_with(|c: char| c.is_ascii_digit()) => reason,
        _ => text.as_str(),
    };
    let field = if field.is_empty() || field == "." {
        "(top level)"
    } else {
        field
    };
    match err.location() {
        Some(loc) => format!("{field}, line {}: {reason}", loc.line()),
        None => format!("{field}: {reason}"),
    }
}

// === raw YAML ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "platform_limit", deserialize_with = "limit_or_off")]
    default_limit: Option<WindowLimit>,
    #[serde(default)]
    require_auth: bool,
    #[serde(default)]
    latency: Option<Dur>,
    #[serde(default)]
    retry_after: RetryAfterMode,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    ratelimit_headers: HeaderFamily,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(rename = "match")]
    matcher: Matcher,
    #[serde(default)]
    rate: Option<RawLimit>,
    #[serde(default)]
    concurrency: Option<NonZeroU32>,
    #[serde(default)]
    latency: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    requests: NonZeroU32,
    window: Dur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    /// Where to write the generated certificate's PEM so clients can trust it.
    #[serde(default)]
    cert_out: Option<PathBuf>,
}

fn platform_limit() -> Option<WindowLimit> {
    MockConfig::default().default_limit
}

impl RawConfig {
    fn into_config(self, base: &Path) -> anyhow::Result<MockConfig> {
        let tls = match self.tls {
            None => None,
            Some(raw) => {
                let mut tls = MockTls::self_signed()?;
                tls.cert_out = raw.cert_out.map(|p| base.join(p));
                Some(tls)
            }
        };
        let routes = self.routes.into_iter().map(RawRoute::into_route).collect();
        Ok(MockConfig {
            default_limit: self.default_limit,
            require_auth: self.require_auth,
            latency: self.latency.map_or(Duration::ZERO, |d| d.0),
            retry_after: self.retry_after,
            routes,
            tls,
            ratelimit_headers: self.ratelimit_headers,
        })
    }
}

impl RawRoute {
    fn into_route(self) -> MockRoute {
        MockRoute {
            pattern: self.matcher.text,
            method: self.matcher.method,
            path: self.matcher.path,
            rate: self.rate.map(RawLimit::into_limit),
            concurrency: self.concurrency.map(NonZeroU32::get),
            latency: self.latency.map(|d| d.0),
        }
    }
}

impl RawLimit {
    fn into_limit(self) -> WindowLimit {
        WindowLimit {
            requests: self.requests.get(),
            window: self.window.0,
        }
    }
}

/// `default_limit` is a limit map, or `null` / `off` / `false` to disable it.
fn limit_or_off<'de, D: Deserializer<'de>>(de: D) -> Result<Option<WindowLimit>, D::Error> {
    struct LimitVisitor;
    impl<'de> Visitor<'de> for LimitVisitor {
        type Value = Option<WindowLimit>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("{ requests: N, window: DURATION }, or null / off to disable")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let raw = RawLimit::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(Some(raw.into_limit()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            match on {
                false => Ok(None),
                true => Err(E::custom(
                    "`true` is not a limit; write { requests, window }",
                )),
            }
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            match s {
                "off" | "none" => Ok(None),
                _ => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
            }
        }
    }
    de.deserialize_any(LimitVisitor)
}

// === impl Dur ===

/// A duration as written in YAML: `200ms`, `1.5s`, `2m`, `1h`, or a bare `0`.
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Dur, D::Error> {
        struct DurVisitor;
        impl Visitor<'_> for DurVisitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 200ms, 1s, 2m or 1h")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                // A bare number has no unit to go by; only zero means the same in every unit.
                match n {
                    0 => Ok(Dur(Duration::ZERO)),
                    _ => Err(E::custom(format!("`{n}` has no unit; write {n}ms or {n}s"))),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                self.visit_u64(u64::try_from(n).map_err(|_| E::custom("negative duration"))?)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(E::custom)
            }
        }
        de.deserialize_any(DurVisitor)
    }
}

/// Parses `500ms`, `1.5s`, `2m`, `1h`. Kept private to the mock so it does not depend on the
/// proxy config's parser.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: expected e.g. 200ms, 1s, 2m, 1h"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number before the unit"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|e| format!("invalid duration {text:?}: {e}"))
}

// === impl Matcher ===

/// A route's `match`: `METHOD /path`, `* /path` or just `/path` (any method).
struct Matcher {
    text: String,
    method: Option<Method>,
    path: PathPattern,
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Matcher, D::Error> {
        let text = String::deserialize(de)?;
        parse_matcher(&text).map_err(de::Error::custom)
    }
}

fn parse_matcher(text: &str) -> Result<Matcher, String> {
    let (method, path) = match text.trim().split_once(char::is_whitespace) {
        Some((m, p)) => (Some(m), p.trim()),
        None => (None, text.trim()),
    };
    let method = match method {
        None | Some("*") => None,
        Some(m) => Some(
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("invalid method {m:?} in {text:?}"))?,
        ),
    };
    let path = PathPattern::parse(path).map_err(|e| format!("invalid path in {text:?}: {e}"))?;
    Ok(Matcher {
        text: text.trim().to_owned(),
        method,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("3x").is_err());
    }

    #[test]
    fn matchers() {
        let m = parse_matcher("post /api/v2/things/{id}").unwrap();
        assert_eq!(m.method, Some(Method::POST));
        assert!(m.path.matches("/api/v2/things/7"));
        assert_eq!(parse_matcher("* /api/**").unwrap().method, None);
        assert_eq!(parse_matcher("/api/**").unwrap().method, None);
        assert!(parse_matcher("GET api").is_err());
    }
}
