//! Reading the text into [`RawConfig`], with the field path and line of the first error, and
//! the lines of user-chosen names for the errors validation may find later.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use super::{Named, RawConfig};
use crate::config::{ConfigError, ConfigErrors};

/// Parses the YAML into [`RawConfig`]. Only syntax, type and unknown-key errors come from here,
/// and serde stops at the first of those, so this returns at most one error
/// ([`super::parse_all`] goes on past it).
pub fn parse(text: &str) -> Result<RawConfig, ConfigErrors> {
    let mut path = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = Some(field_path(e.path()));
            e.into_inner()
        })
    });
    let mut raw: RawConfig = parsed.map_err(|e| parse_error(path.unwrap_or_default(), &e))?;
    add_name_lines(text, &mut raw);
    Ok(raw)
}

/// Turns the first parse error into a [`ConfigError`]: the message without the crate's own
/// "at line X" suffix and source snippet, because [`ConfigError`]'s display adds the line.
fn parse_error(path: String, err: &serde_saphyr::Error) -> ConfigErrors {
    let line = err.location().map(|l| l.line()).filter(|&l| l > 0);
    let message = UserMessageFormatter.format_message(err.without_snippet());
    ConfigErrors::single(ConfigError::new(path, line, plain_words(&message)))
}

/// Rewords the parser's terse type errors for someone editing a config file.
fn plain_words(message: &str) -> String {
    let reworded = match message {
        "invalid u32" | "invalid u64" => "expected a whole number, 0 or more",
        "invalid f64" => "expected a number",
        "invalid boolean" => "expected true or false",
        "expected string scalar" => "expected a single value, not a list or a map",
        "expected mapping start" => "expected a map of keys and values",
        "expected sequence start" => "expected a list",
        other => other,
    };
    reworded.to_owned()
}

/// Fields whose value is a [`Spanned`] scalar. `Spanned` deserializes through a synthetic
/// `{value, ...}` map, so an error inside one gets an extra `value` segment that is not in the
/// file; [`field_path`] drops it.
const SPANNED_FIELDS: &[&str] = &[
    "listen",
    "default_upstream",
    "admin",
    "region",
    "base_url",
    "ca_file",
    "connect",
    "request",
    "body_idle",
    "max_idle",
    "rate",
    "burst",
    "concurrency",
    "key",
    "mode",
    "max_keys",
    "key_idle",
    "max_depth",
    "max_wait",
    "factor",
    "floor",
    "step",
    "interval",
    "match",
    "max_attempts",
    "max_retry_after",
    "on_5xx",
    "max_body",
    "base",
    "max",
    "max_header_bytes",
    "max_body_bytes",
    "drain_timeout",
    "ca_cert",
    "ca_key",
    "username",
    "password",
    "retry_after_unit",
    "quota",
    "margin",
    "shared",
    "headroom",
    "max_pause",
    "body_timeout",
    "backlog",
    "redis",
    "key_prefix",
    "key_secret_env",
    "timeout",
    "on_unavailable",
    "instances",
];

/// Lists whose items are [`Spanned`] scalars (`upstreams.*.hosts`, `routes[*].limits`,
/// `routes[*].pause`).
const SPANNED_LISTS: &[&str] = &["hosts", "limits", "pause"];

/// The dotted path of a parse error, as the user wrote it: `upstreams.genesys.hostz`,
/// `routes[1].limits`. Empty for the document as a whole.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let key = |i: usize| match segments.get(i) {
        Some(Segment::Map { key }) => Some(key.as_str()),
        _ => None,
    };
    // Index 1 under `upstreams` and `limits` is a user-chosen name, which may be anything.
    let is_name = |i: usize| i == 1 && matches!(key(0), Some("upstreams" | "limits"));
    let is_spanned = |i: usize| match segments[i] {
        Segment::Map { key } => SPANNED_FIELDS.contains(&key.as_str()) && !is_name(i),
        Segment::Seq { .. } => i >= 1 && key(i - 1).is_some_and(|k| SPANNED_LISTS.contains(&k)),
        _ => false,
    };
    // The `value` a `Spanned` field adds is not in the file, so it is not in the path either.
    let skip = |i: usize| {
        matches!(segments[i], Segment::Map { key } if key == "value") && i > 0 && is_spanned(i - 1)
    };
    dotted_path(path, skip)
}

/// Joins a serde path as the user wrote it (`phases[1].rate`, `headers.Content-Type`), leaving
/// out the segments `skip` names. Shared by every YAML file pacer reads.
pub(crate) fn dotted_path(
    path: &serde_path_to_error::Path,
    skip: impl Fn(usize) -> bool,
) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for (i, segment) in path.iter().enumerate() {
        match segment {
            _ if skip(i) => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            // A key that failed before it was read (a duplicate, a non-string key): the
            // message names it, and the path up to its parent still locates it.
            Segment::Unknown => {}
        }
    }
    out
}

/// Just the locations of the user-chosen names, read in a second pass over text that already
/// parsed. Everything else is ignored here.
#[derive(Deserialize)]
struct NameLines {
    upstreams: Option<Spanned<KeyLines>>,
    limits: Option<Spanned<KeyLines>>,
}

struct KeyLines(Vec<u64>);

impl<'de> Deserialize<'de> for KeyLines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyLinesVisitor;

        impl<'de> Visitor<'de> for KeyLinesVisitor {
            type Value = KeyLines;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyLines, A::Error> {
                let mut lines = Vec::new();
                while let Some((key, _)) = map.next_entry::<Spanned<String>, de::IgnoredAny>()? {
                    lines.push(key.referenced.line());
                }
                Ok(KeyLines(lines))
            }
        }

        deserializer.deserialize_map(KeyLinesVisitor)
    }
}

fn add_name_lines(text: &str, raw: &mut RawConfig) {
    // The first pass accepted this text, so this one cannot fail; if it somehow does, errors
    // about names merely go without a line.
    let Ok(lines) = serde_saphyr::from_str::<NameLines>(text) else {
        return;
    };
    fn fill<T>(named: Option<&mut Named<T>>, lines: Option<Spanned<KeyLines>>) {
        let (Some(named), Some(lines)) = (named, lines) else {
            return;
        };
        named.line = Some(lines.referenced.line()).filter(|&l| l > 0);
        for ((name, _), line) in named.entries.iter_mut().zip(lines.value.0) {
            name.line = Some(line).filter(|&l| l > 0);
        }
    }
    fill(raw.upstreams.as_mut(), lines.upstreams);
    fill(raw.limits.as_mut(), lines.limits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawAdaptive;

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(_) => panic!("parsed: {text}"),
            Err(mut e) => e.0.remove(0),
        }
    }

    const UPSTREAM: &str = "upstreams:\n  genesys:\n    region: us-east-1\n";

    #[test]
    fn spanned_leaf_errors_have_no_synthetic_segment() {
        let e = err(&format!("{UPSTREAM}limits:\n  a:\n    burst: -1\n"));
        assert_eq!((e.path.as_str(), e.line), ("limits.a.burst", Some(6)));
        let e = err("listen: {a: 1}\n");
        assert_eq!((e.path.as_str(), e.line), ("listen", Some(1)));
        let e = err("routes:\n  - match: GET /a\n    limits: [{a: 1}]\n");
        assert_eq!(e.path, "routes[0].limits[0]");
        let e = err("upstreams:\n  g:\n    hosts:\n      - [x]\n");
        assert_eq!((e.path.as_str(), e.line), ("upstreams.g.hosts[0]", Some(4)));
    }

    #[test]
    fn a_real_key_named_value_stays_in_the_path() {
        let e = err("upstreams:\n  g:\n    timeouts:\n      value: 1\n");
        assert_eq!(e.path, "upstreams.g.timeouts.value");
        let e = err("limits:\n  rate:\n    value: 1\n");
        assert_eq!(e.path, "limits.rate.value");
        let e = err("routes:\n  - match: GET /\n    value: 1\n");
        assert_eq!(e.path, "routes[0].value");
        let e = err("value: 1\n");
        assert_eq!(e.path, "value");
    }

    #[test]
    fn messages_are_plain() {
        let e = err(&format!("{UPSTREAM}limits:\n  a:\n    burst: abc\n"));
        assert_eq!(e.message, "expected a whole number, 0 or more");
        let e = err(&format!(
            "{UPSTREAM}limits:\n  a:\n    adaptive: {{factr: 1}}\n"
        ));
        assert_eq!(e.path, "limits.a.adaptive.factr");
        assert!(
            e.message.starts_with("unknown field `factr`"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("line"), "{}", e.message);
    }

    #[test]
    fn names_keep_file_order_and_lines() {
        let text = "upstreams:\n  b:\n    region: us-east-1\n  a:\n    region: eu-west-1\n";
        let named = parse(text).unwrap().upstreams.unwrap();
        let names: Vec<_> = named
            .entries
            .iter()
            .map(|(n, _)| (n.value.as_str(), n.line))
            .collect();
        assert_eq!(names, [("b", Some(2)), ("a", Some(4))]);
    }

    #[test]
    fn adaptive_is_bool_or_map() {
        let text = "limits:\n  a:\n    adaptive: true\n  b:\n    adaptive: {factor: 0.5}\n";
        let limits = parse(text).unwrap().limits.unwrap().entries;
        assert!(matches!(
            limits[0].1.adaptive,
            Some(RawAdaptive::Enabled(true))
        ));
        match &limits[1].1.adaptive {
            Some(RawAdaptive::Settings(s)) => assert_eq!(s.factor.as_ref().unwrap().value, 0.5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_document_parses_to_nothing() {
        assert!(parse("").unwrap().upstreams.is_none());
        assert!(parse("# just a comment\n").unwrap().upstreams.is_none());
    }

    /// Every spanned field, given a map where a scalar belongs, reports its own path: this
    /// keeps [`SPANNED_FIELDS`] in step with the structs.
    #[test]
    fn every_spanned_field_reports_its_own_path() {
        let fields = [
            "listen",
            "default_upstream",
            "admin",
            "upstreams.g.region",
            "upstreams.g.base_url",
            "upstreams.g.tls.ca_file",
            "upstreams.g.timeouts.connect",
            "upstreams.g.timeouts.request",
            "upstreams.g.timeouts.body_idle",
            "upstreams.g.max_idle",
            "limits.a.rate",
            "limits.a.burst",
            "limits.a.concurrency",
            "limits.a.key",
            "limits.a.mode",
            "limits.a.max_keys",
            "limits.a.key_idle",
            "limits.a.queue.max_depth",
            "limits.a.queue.max_wait",
            "limits.a.adaptive.factor",
            "limits.a.adaptive.floor",
            "limits.a.adaptive.step",
            "limits.a.adaptive.interval",
            "retry.max_attempts",
            "retry.max_retry_after",
            "retry.on_5xx",
            "retry.max_body",
            "retry.backoff.base",
            "retry.backoff.max",
            "server.max_header_bytes",
            "server.max_body_bytes",
            "server.drain_timeout",
            "intercept.ca_cert",
            "intercept.ca_key",
            "proxy_auth.username",
            "proxy_auth.password",
            "upstreams.g.retry_after_unit",
            "limits.a.quota",
            "limits.a.margin",
            "limits.a.shared",
            "retry.max_pause",
            "server.body_timeout",
            "server.backlog",
            "shared.redis",
            "shared.key_prefix",
            "shared.key_secret_env",
            "shared.timeout",
            "shared.on_unavailable",
            "shared.instances",
        ];
        for field in fields {
            let mut yaml = "[x]".to_owned();
            for key in field.rsplit('.') {
                yaml = format!("{{{key}: {yaml}}}");
            }
            let e = err(&yaml);
            assert_eq!(e.path, field, "{yaml}: {e}");
        }
        let e = err("routes: [{match: [x]}]");
        assert_eq!(e.path, "routes[0].match");
        let e = err("routes: [{pause: [[x]]}]");
        assert_eq!(e.path, "routes[0].pause[0]");
    }

    #[test]
    fn duplicate_keys_and_syntax_errors() {
        let e = err("upstreams:\n  g:\n    region: us-east-1\n  g:\n    region: eu-west-1\n");
        assert_eq!((e.path.as_str(), e.line), ("upstreams", Some(4)));
        assert!(e.message.contains("duplicate"), "{e}");
        let e = err("listen: \"127.0.0.1:80\nadmin: x\n");
        assert!(e.line.is_some(), "{e}");
        let e = err("upstreams:\n  g:\n    region: us-east-1\n   hosts: [a]\n");
        assert!(e.line.is_some(), "{e}");
    }
}
