//! Raw YAML structs to validated config.
//!
//! Every check records its error and carries on with a default in place of the bad value, so one
//! run reports every problem in the file. Sections live in their own files; this one holds the
//! entry point and the helpers they share.

mod learn;
mod limit;
mod route;
mod sections;
mod shared;
mod upstream;

pub(super) use self::limit::{parse_quota, parse_rate};
pub use self::limit::{CountError, QuotaError, RateError};

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::raw::{Name, RawConfig, Text};
use super::{parse_duration, Config, ConfigError, ConfigErrors};

/// Checks everything and returns the config, or every error found.
pub fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigErrors> {
    let mut errs = Errors::default();
    let listen = sections::listen(&mut errs, raw.listen.as_ref());
    let upstreams = upstream::upstreams(&mut errs, raw.upstreams.as_ref(), base);
    let default_upstream =
        upstream::default_upstream(&mut errs, raw.default_upstream.as_ref(), &raw.upstreams);
    let limits = limit::limits(&mut errs, raw.limits.as_ref());
    // Routes refer to limits by their place in the file, which is also their place in `limits`
    // whenever validation succeeds.
    let limit_names: Vec<&str> = raw
        .limits
        .iter()
        .flat_map(|l| &l.entries)
        .map(|(name, _)| name.value.as_str())
        .collect();
    let routes = route::routes(&mut errs, raw.routes.as_deref(), &limit_names);
    let config = Config {
        listen,
        upstreams,
        default_upstream,
        limits,
        routes,
        retry: sections::retry(&mut errs, raw.retry.as_ref()),
        server: sections::server(&mut errs, raw.server.as_ref()),
        admin: sections::admin(&mut errs, raw.admin.as_ref(), listen),
        intercept: sections::intercept(&mut errs, raw.intercept.as_ref(), base),
        proxy_auth: sections::proxy_auth(&mut errs, raw.proxy_auth.as_ref()),
        shared: shared::shared(&mut errs, raw.shared.as_ref(), raw.limits.as_ref(), base),
        learn: learn::learn(&mut errs, raw.limits.as_ref()),
    };
    errs.finish(config)
}

/// The errors found so far.
#[derive(Default)]
pub(super) struct Errors(Vec<ConfigError>);

// === impl Errors ===

impl Errors {
    pub(super) fn add(
        &mut self,
        path: impl Into<String>,
        line: Option<u64>,
        msg: impl Into<String>,
    ) {
        self.0.push(ConfigError::new(path, line, msg));
    }

    /// Records an error about a spanned value, at its line.
    pub(super) fn at<T>(
        &mut self,
        path: impl Into<String>,
        value: &Spanned<T>,
        msg: impl Into<String>,
    ) {
        self.add(path, line(value), msg);
    }

    /// The config, or the errors in file order (errors about the file as a whole first), so
    /// the list reads top to bottom.
    fn finish(mut self, config: Config) -> Result<Config, ConfigErrors> {
        if self.0.is_empty() {
            return Ok(config);
        }
        self.0.sort_by_key(|e| e.line);
        Err(ConfigErrors(self.0))
    }
}

/// The 1-based line a value was written on, if known.
pub(super) fn line<T>(value: &Spanned<T>) -> Option<u64> {
    Some(value.referenced.line()).filter(|&l| l > 0)
}

/// `prefix.field`, or just `field` at the top level.
pub(super) fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// A duration field that may be zero; `default` when absent or invalid.
pub(super) fn duration(
    errs: &mut Errors,
    path: &str,
    raw: Option<&Text>,
    default: Duration,
) -> Duration {
    let Some(raw) = raw else {
        return default;
    };
    parse_duration(&raw.value).unwrap_or_else(|e| {
        errs.at(path, raw, e.to_string());
        default
    })
}

/// A duration field that must be more than zero.
pub(super) fn positive_duration(
    errs: &mut Errors,
    path: &str,
    raw: Option<&Text>,
    default: Duration,
) -> Duration {
    let value = duration(errs, path, raw, default);
    match raw {
        Some(raw) if value.is_zero() => {
            errs.at(path, raw, "must be more than 0");
            default
        }
        _ => value,
    }
}

/// A whole-number field within `range`; `default` when absent or out of range.
pub(super) fn number(
    errs: &mut Errors,
    path: &str,
    raw: Option<&Spanned<u64>>,
    default: u64,
    range: RangeInclusive<u64>,
) -> u64 {
    let Some(raw) = raw else {
        return default;
    };
    if range.contains(&raw.value) {
        return raw.value;
    }
    let (min, max, value) = (*range.start(), *range.end(), raw.value);
    // Only a bound a person would choose is worth mentioning; u32::MAX is a storage limit.
    let msg = if value < min && max >= u32::MAX.into() {
        format!("must be at least {min}, not {value}")
    } else if value > max && min == 0 {
        format!("must be at most {max}, not {value}")
    } else {
        format!("must be between {min} and {max}, not {value}")
    };
    errs.at(path, raw, msg);
    default
}

/// Names of upstreams and limits end up in metric labels and log fields, so they are kept to
/// characters that need no quoting anywhere.
pub(super) fn check_name(errs: &mut Errors, path: &str, name: &Name) {
    let ok = !name.value.is_empty()
        && name
            .value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        errs.add(
            path,
            name.line,
            format!(
                "name {:?} may only contain letters, digits, '_' and '-'",
                name.value
            ),
        );
    }
}

/// The names in a list, for error messages: `a, b, c`.
pub(super) fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}
