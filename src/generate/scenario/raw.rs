//! The scenario YAML as written, and the values checked while it is read.
//!
//! Every scalar is checked by its own deserializer (a duration needs a unit, a rate reads
//! `50/s`, `${VAR}` must be set), so a bad value fails right where it is written and the error
//! carries its field path and line. Checks that need several fields (a phase is open or closed,
//! names are unique) run afterwards in [`super::validate`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::env::{expand, resolve};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<Text>,
    pub target: Option<BaseUrl>,
    pub auth: Option<RawAuth>,
    pub headers: Option<Headers>,
    pub timeout: Option<NonZeroDur>,
    pub max_in_flight: Option<InFlight>,
    pub phases: Option<Vec<RawPhase>>,
    pub requests: Option<Vec<RawRequest>>,
    pub tls: Option<RawTls>,
    pub thresholds: Option<RawThresholds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<CaFile>,
}

/// Pass/fail criteria of a run, checked against the totals.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    pub p50: Option<NonZeroDur>,
    pub p90: Option<NonZeroDur>,
    pub p99: Option<NonZeroDur>,
    pub max: Option<NonZeroDur>,
    pub error_rate: Option<Percent>,
    pub rate_achieved: Option<Percent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub token_url: BaseUrl,
    pub client_id: Text,
    pub client_secret: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub name: Option<String>,
    pub duration: Option<Dur>,
    pub rate: Option<Rate>,
    pub to: Option<Rate>,
    pub users: Option<u32>,
    pub think: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    pub name: Option<String>,
    pub weight: Option<u32>,
    pub method: Option<MethodName>,
    pub path: Option<Text>,
    pub body: Option<Text>,
    pub headers: Option<Headers>,
}

// === leaf values ===

/// A string with `${VAR}` expanded.
#[derive(Debug, Clone)]
pub struct Text(pub String);

/// A duration with a unit: `500ms`, `2s`, `1m`.
#[derive(Debug, Clone, Copy)]
pub struct Dur(pub Duration);

/// A duration that must be more than zero.
#[derive(Debug, Clone, Copy)]
pub struct NonZeroDur(pub Duration);

/// `max_in_flight`: 1 to [`MAX_IN_FLIGHT`].
#[derive(Debug, Clone, Copy)]
pub struct InFlight(pub usize);

/// Each request in flight holds a connection and so a file descriptor.
pub const MAX_IN_FLIGHT: u64 = 100_000;

/// An arrival rate in requests per second, written `50/s`, `3000/min` or `0.5/s`.
#[derive(Debug, Clone, Copy)]
pub struct Rate(pub f64);

#[derive(Debug, Clone)]
pub struct MethodName(pub Method);

/// The methods a scenario may use; anything else is most likely a typo (`GETT`).
pub const METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
];

/// A readable file of PEM certificates, relative to the scenario's directory. Empty (as
/// `${PACER_CA_FILE:-}` is when the variable is unset) means none.
#[derive(Debug, Clone)]
pub struct CaFile(pub Option<PathBuf>);

/// A share written `1%` or `99.5%`, kept as a fraction (0.01, 0.995).
#[derive(Debug, Clone, Copy)]
pub struct Percent(pub f64);

/// An `http://` or `https://` URL with a host and no query or fragment; `${VAR}` expanded.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub url::Url);

/// Header names and values in file order; values may use `${VAR}`.
#[derive(Debug, Clone, Default)]
pub struct Headers(pub Vec<(HeaderName, HeaderValue)>);

/// The highest arrival rate a phase may ask for: far above what one machine can send, low
/// enough that a typo (`50000000/s`) is caught rather than attempted.
pub const MAX_RATE: f64 = 1_000_000.0;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(de)?;
        expand(&raw).map(Text).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(de)?;
        crate::config::parse_duration(&raw)
            .map(Dur)
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for NonZeroDur {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        match Dur::deserialize(de)? {
            Dur(d) if d.is_zero() => Err(de::Error::custom("must be more than 0")),
            Dur(d) => Ok(NonZeroDur(d)),
        }
    }
}

impl<'de> Deserialize<'de> for InFlight {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        match u64::deserialize(de)? {
            n @ 1..=MAX_IN_FLIGHT => Ok(InFlight(n as usize)),
            _ => Err(de::Error::custom(format!("must be 1 to {MAX_IN_FLIGHT}"))),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(de)?;
        parse_rate(&raw).map(Rate).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for MethodName {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(de)?;
        let upper = raw.trim().to_ascii_uppercase();
        match METHODS.iter().find(|m| m.as_str() == upper) {
            Some(m) => Ok(MethodName(m.clone())),
            None => {
                let known: Vec<&str> = METHODS.iter().map(Method::as_str).collect();
                Err(de::Error::custom(format!(
                    "{raw:?} is not a request method; known methods: {}",
                    known.join(", ")
                )))
            }
        }
    }
}

impl<'de> Deserialize<'de> for CaFile {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let Text(raw) = Text::deserialize(de)?;
        if raw.trim().is_empty() {
            return Ok(CaFile(None));
        }
        let file = resolve(raw.trim());
        crate::generate::client::read_certificates(&file)
            .map(|_| CaFile(Some(file)))
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(de)?;
        parse_percent(&raw).map(Percent).map_err(de::Error::custom)
    }
}

pub use crate::config::parse_percent;

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let Text(raw) = Text::deserialize(de)?;
        parse_base_url(&raw).map(BaseUrl).map_err(de::Error::custom)
    }
}

pub fn parse_base_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| {
        format!("{text:?} is not a URL ({e}); write e.g. https://api.mypurecloud.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?}: the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?}: a base URL takes no query or fragment; put them in a request's path"
        ));
    }
    Ok(url)
}

/// `N/s`, `N/min` (or `N/m`), `N/h`, where N may have a fraction. Returns requests per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let hint = "write a number of requests per unit, e.g. 50/s, 3000/min or 0.5/s";
    let Some((count, unit)) = text.trim().split_once('/') else {
        return Err(format!("{text:?} is not a rate; {hint}"));
    };
    let per = match unit.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(format!("{text:?} has an unknown unit; {hint}")),
    };
    let count: f64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a rate; {hint}"))?;
    let rate = count / per;
    if rate > MAX_RATE {
        return Err(format!(
            "{text:?} is more than {MAX_RATE}/s; check for a typo"
        ));
    }
    Ok(rate)
}

// === impl Headers ===

/// A header name, checked where it is written.
struct Name(HeaderName);

/// A header value with `${VAR}` expanded, checked where it is written.
struct Value(HeaderValue);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(de)?;
        HeaderName::from_bytes(raw.trim().as_bytes())
            .map(Name)
            .map_err(|_| de::Error::custom(format!("{raw:?} is not a valid header name")))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let Text(raw) = Text::deserialize(de)?;
        HeaderValue::from_str(&raw)
            .map(Value)
            .map_err(|_| de::Error::custom("not a valid header value (control characters?)"))
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;

        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = Headers;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of header names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut out = Vec::new();
                while let Some((Name(name), Value(value))) = map.next_entry()? {
                    out.push((name, value));
                }
                Ok(Headers(out))
            }
        }

        de.deserialize_map(HeadersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("50/s"), Ok(50.0));
        assert_eq!(parse_rate(" 3000 / min "), Ok(50.0));
        assert_eq!(parse_rate("0.5/s"), Ok(0.5));
        assert_eq!(parse_rate("7200/h"), Ok(2.0));
        assert_eq!(parse_rate("0/s"), Ok(0.0));
        assert!(parse_rate("50").unwrap_err().contains("not a rate"));
        assert!(parse_rate("50/d").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("-1/s").is_err());
        assert!(parse_rate("x/s").is_err());
        assert!(parse_rate("5000000/s").unwrap_err().contains("typo"));
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent(" 99.5 % "), Ok(0.995));
        assert!(parse_percent("1").unwrap_err().contains("not a percentage"));
        assert!(parse_percent("101%").unwrap_err().contains("0% to 100%"));
    }
}
