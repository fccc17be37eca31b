//! The YAML as written.
//!
//! These structs mirror the file one to one. Unknown keys are rejected here, by serde, so a typo
//! never silently falls back to a default. Values that [`super::validate`] checks are wrapped in
//! [`Spanned`] so that its errors can name the line. Almost every field is optional at this level,
//! so that validation, not the parser, reports what is missing, together with every other
//! problem; only fields that a present section cannot do without (a route's `match`, the files
//! of `intercept`, the credentials of `proxy_auth`) are required here.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use self::recover::{finish, parse_all};

mod read;
mod recover;

pub(crate) use self::read::dotted_path;

/// A scalar as written, with its location. serde-saphyr hands a bare number to a string field as
/// its text, so `connect: 60` reaches validation, which can then ask for a unit instead of the
/// parser failing with a type error.
pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<Text>,
    pub upstreams: Option<Named<RawUpstream>>,
    pub default_upstream: Option<Text>,
    pub limits: Option<Named<RawLimit>>,
    pub routes: Option<Vec<RawRoute>>,
    pub retry: Option<RawRetry>,
    pub server: Option<RawServer>,
    pub admin: Option<Text>,
    pub intercept: Option<RawIntercept>,
    pub proxy_auth: Option<RawProxyAuth>,
    pub shared: Option<RawShared>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub region: Option<Text>,
    pub base_url: Option<Text>,
    pub hosts: Option<Vec<Text>>,
    pub tls: Option<RawTls>,
    pub timeouts: Option<RawTimeouts>,
    pub max_idle: Option<Spanned<u64>>,
    pub intercept: Option<bool>,
    pub retry_after_unit: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect: Option<Text>,
    pub request: Option<Text>,
    pub body_idle: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub rate: Option<Text>,
    pub burst: Option<Spanned<u64>>,
    pub quota: Option<Text>,
    pub margin: Option<Text>,
    pub concurrency: Option<Spanned<u64>>,
    pub key: Option<Text>,
    pub mode: Option<Text>,
    pub queue: Option<RawQueue>,
    pub max_keys: Option<Spanned<u64>>,
    pub key_idle: Option<Text>,
    pub adaptive: Option<RawAdaptive>,
    pub shared: Option<Spanned<bool>>,
    pub learn: Option<RawLearn>,
}

/// `learn: true|false` or a map of its settings.
#[derive(Debug)]
pub enum RawLearn {
    Enabled(bool),
    Settings(RawLearnSettings),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLearnSettings {
    pub headroom: Option<Spanned<RawShare>>,
}

/// A share written `5%`, or as a fraction (`0.05`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawShare {
    Fraction(f64),
    Percent(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub max_depth: Option<Spanned<u64>>,
    pub max_wait: Option<Text>,
}

/// `adaptive: true|false` or a map of settings.
#[derive(Debug)]
pub enum RawAdaptive {
    Enabled(bool),
    // Boxed: the settings are large and a plain `true` is the common case.
    Settings(Box<RawAdaptiveSettings>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdaptiveSettings {
    pub factor: Option<Spanned<f64>>,
    pub floor: Option<Spanned<f64>>,
    pub step: Option<Spanned<f64>>,
    pub interval: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    #[serde(rename = "match")]
    pub matches: Text,
    pub limits: Option<Vec<Text>>,
    pub pause: Option<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<Spanned<u64>>,
    pub max_retry_after: Option<Text>,
    pub max_pause: Option<Text>,
    pub backoff: Option<RawBackoff>,
    pub on_5xx: Option<Text>,
    pub max_body: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    pub base: Option<Text>,
    pub max: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub max_header_bytes: Option<Spanned<u64>>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub drain_timeout: Option<Text>,
    pub body_timeout: Option<Text>,
    pub backlog: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntercept {
    pub ca_cert: Text,
    pub ca_key: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxyAuth {
    pub username: Text,
    pub password: Text,
}

/// `shared:`: the Redis that limits with `shared: true` keep their state in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShared {
    pub redis: Option<Text>,
    pub key_prefix: Option<Text>,
    pub key_secret_env: Option<Text>,
    pub timeout: Option<Text>,
    pub on_unavailable: Option<Text>,
    pub instances: Option<Spanned<u64>>,
    pub tls: Option<RawTls>,
}

/// A YAML map from user-chosen names (upstreams, limits), kept in file order.
#[derive(Debug)]
pub struct Named<T> {
    pub entries: Vec<(Name, T)>,
    /// Line of the map itself, for errors about the map as a whole (e.g. an empty one).
    pub line: Option<u64>,
}

/// A user-chosen name and the line it is written on.
#[derive(Debug)]
pub struct Name {
    pub value: String,
    pub line: Option<u64>,
}

// === impl Named ===

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Named<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for NamedVisitor<T> {
            type Value = Named<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from name to settings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                // Keys are read as plain strings, not `Spanned`, so that serde_path_to_error can
                // put the name into the path of an error below it; lines come from a second pass.
                while let Some((value, settings)) = map.next_entry::<String, T>()? {
                    entries.push((Name { value, line: None }, settings));
                }
                Ok(Named {
                    entries,
                    line: None,
                })
            }
        }

        deserializer.deserialize_map(NamedVisitor(PhantomData))
    }
}

// === impl RawLearn ===

impl<'de> Deserialize<'de> for RawLearn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LearnVisitor;

        impl<'de> Visitor<'de> for LearnVisitor {
            type Value = RawLearn;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false, or a map with headroom")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawLearn::Enabled(v))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let settings =
                    RawLearnSettings::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawLearn::Settings(settings))
            }
        }

        deserializer.deserialize_any(LearnVisitor)
    }
}

// === impl RawAdaptive ===

impl<'de> Deserialize<'de> for RawAdaptive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AdaptiveVisitor;

        impl<'de> Visitor<'de> for AdaptiveVisitor {
            type Value = RawAdaptive;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false, or a map of factor, floor, step and interval")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawAdaptive::Enabled(v))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let settings =
                    RawAdaptiveSettings::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawAdaptive::Settings(Box::new(settings)))
            }
        }

        deserializer.deserialize_any(AdaptiveVisitor)
    }
}
