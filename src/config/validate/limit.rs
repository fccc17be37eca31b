//! `limits`: rates, concurrency, keys, queueing and adaptive settings.

use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;
use serde_saphyr::Spanned;

use super::{check_name, duration, join, number, positive_duration, Errors};
use crate::config::raw::{Name, Named, RawAdaptive, RawAdaptiveSettings, RawLimit, Text};
use crate::config::{
    parse_duration, Adaptive, DurationError, KeyKind, Limit, Mode, Queue, Quota, Rate,
};

const DEFAULT_MAX_DEPTH: u64 = 10_000;
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_KEYS: u64 = 10_000;
const DEFAULT_KEY_IDLE: Duration = Duration::from_secs(600);
const DEFAULT_ADAPTIVE: Adaptive = Adaptive {
    factor: 0.7,
    floor: 0.1,
    step: 0.05,
    interval: Duration::from_secs(5),
};

pub(super) fn limits(errs: &mut Errors, raw: Option<&Named<RawLimit>>) -> Vec<Limit> {
    let entries = raw.map(|n| n.entries.as_slice()).unwrap_or_default();
    let mut out = Vec::with_capacity(entries.len());
    for (name, raw) in entries {
        let path = join("limits", &name.value);
        check_name(errs, &path, name);
        if raw.rate.is_none()
            && raw.quota.is_none()
            && raw.concurrency.is_none()
            && !super::learn::learns(raw)
        {
            let msg = "a limit needs a rate or a quota (e.g. quota: 300/min), a concurrency (e.g. concurrency: 10), learn: true, or some of these";
            errs.add(&path, name.line, msg);
        }
        out.push(limit(errs, &path, name, raw));
    }
    out
}

fn limit(errs: &mut Errors, path: &str, name: &Name, raw: &RawLimit) -> Limit {
    let field = |f: &str| join(path, f);
    let (rate, burst) = rate_and_burst(errs, path, name, raw);
    let concurrency = raw.concurrency.as_ref().map(|c| {
        let c = number(errs, &field("concurrency"), Some(c), 1, 1..=u32::MAX.into());
        c as u32
    });
    let max_keys = raw.max_keys.as_ref();
    let max_keys = number(
        errs,
        &field("max_keys"),
        max_keys,
        DEFAULT_MAX_KEYS,
        1..=u64::MAX,
    );
    Limit {
        name: name.value.clone(),
        rate,
        burst,
        quota: quota(errs, path, raw),
        concurrency,
        key: key(errs, &field("key"), raw.key.as_ref()),
        mode: mode(errs, &field("mode"), raw.mode.as_ref()),
        queue: queue(errs, &field("queue"), raw),
        max_keys: usize::try_from(max_keys).unwrap_or(usize::MAX),
        key_idle: positive_duration(
            errs,
            &field("key_idle"),
            raw.key_idle.as_ref(),
            DEFAULT_KEY_IDLE,
        ),
        adaptive: adaptive(errs, &field("adaptive"), raw.adaptive.as_ref()),
    }
}

/// The rate and its bucket size. Burst and adaptive only shape a rate; without one they would
/// silently do nothing, so that is an error.
fn rate_and_burst(
    errs: &mut Errors,
    path: &str,
    name: &Name,
    raw: &RawLimit,
) -> (Option<Rate>, u32) {
    let field = |f: &str| join(path, f);
    let rate = raw.rate.as_ref().and_then(|text| {
        parse_rate(&text.value)
            .map_err(|e| errs.at(field("rate"), text, e.to_string()))
            .ok()
    });
    if let (None, Some(burst)) = (&raw.rate, &raw.burst) {
        errs.at(
            field("burst"),
            burst,
            "burst sizes the rate's bucket; set rate too",
        );
    }
    if let (None, Some(adaptive)) = (&raw.rate, &raw.adaptive) {
        if !matches!(adaptive, RawAdaptive::Enabled(false)) {
            let msg = "adaptive adjusts the rate; set rate too";
            errs.add(field("adaptive"), name.line, msg);
        }
    }
    let burst = number(
        errs,
        &field("burst"),
        raw.burst.as_ref(),
        1,
        1..=u32::MAX.into(),
    );
    (rate, burst as u32)
}

/// The quota and its margin. A margin without a quota would silently do nothing.
fn quota(errs: &mut Errors, path: &str, raw: &RawLimit) -> Option<Quota> {
    let field = |f: &str| join(path, f);
    if let (Some(_), Some(rate)) = (&raw.quota, &raw.rate) {
        let msg = "a limit has a quota or a rate, not both: quota counts the API's windows exactly, rate paces evenly; use two limits for both";
        errs.at(field("rate"), rate, msg);
    }
    if let (None, Some(margin)) = (&raw.quota, &raw.margin) {
        errs.at(
            field("margin"),
            margin,
            "margin widens the quota's window; set quota too",
        );
    }
    let text = raw.quota.as_ref()?;
    let mut quota = parse_quota(&text.value)
        .map_err(|e| errs.at(field("quota"), text, e.to_string()))
        .ok()?;
    if let Some(margin) = &raw.margin {
        quota.margin = duration(errs, &field("margin"), Some(margin), quota.margin);
    }
    Some(quota)
}

/// How to write a quota, said by every [`QuotaError`].
const QUOTA_HINT: &str = "write a quota as N/s, N/min, N/h or N/<duration>, e.g. 300/min or 30/6s";

/// Why a quota does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("{text:?} is not a quota; {QUOTA_HINT}")]
    NotAQuota { text: String },
    #[error("window of {text:?}: {window}; {QUOTA_HINT}")]
    Window { window: DurationError, text: String },
    #[error("{text:?} has an empty window; {QUOTA_HINT}")]
    EmptyWindow { text: String },
    #[error("{}", count.in_text(text, QUOTA_HINT))]
    Count { count: CountError, text: String },
}

/// `N/s`, `N/min`, `N/h` or `N/<duration>` (`30/6s`, `300/60s`), with the default margin.
pub(crate) fn parse_quota(text: &str) -> Result<Quota, QuotaError> {
    let Some((count, window)) = text.split_once('/') else {
        return Err(QuotaError::NotAQuota { text: text.into() });
    };
    let window = match named_period(window.trim()) {
        Some(period) => period,
        None => parse_duration(window).map_err(|window| QuotaError::Window {
            window,
            text: text.into(),
        })?,
    };
    if window.is_zero() {
        return Err(QuotaError::EmptyWindow { text: text.into() });
    }
    let count = parse_count(count.trim()).map_err(|count| QuotaError::Count {
        count,
        text: text.into(),
    })?;
    Ok(Quota {
        count,
        window,
        margin: Quota::default_margin(window),
    })
}

/// `N/s`, `N/sec`, `N/min`, `N/m`, `N/h` or `N/hour`, with N a positive whole number.
/// How to write a rate, said by every [`RateError`].
const RATE_HINT: &str = "write a rate as N/s, N/min or N/h, e.g. 300/min";

/// Why a rate does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("{text:?} is not a rate; {RATE_HINT}")]
    NotARate { text: String },
    #[error("unknown unit {unit:?} in {text:?}; {RATE_HINT}")]
    UnknownUnit { unit: String, text: String },
    #[error("{}", count.in_text(text, RATE_HINT))]
    Count { count: CountError, text: String },
}

/// Why the N of a rate or quota is not a count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    #[error("the count must be at least 1")]
    Zero,
    #[error("{0:?} is not a whole number of requests up to {max}", max = u32::MAX)]
    NotWhole(String),
}

impl CountError {
    /// The message about this count in `text`, ending with `hint`.
    fn in_text(&self, text: &str, hint: &str) -> String {
        match self {
            CountError::Zero => format!("{text:?} allows nothing; the count must be at least 1"),
            CountError::NotWhole(count) => format!(
                "{count:?} in {text:?} is not a whole number of requests up to {}; {hint}",
                u32::MAX
            ),
        }
    }
}

pub(crate) fn parse_rate(text: &str) -> Result<Rate, RateError> {
    let Some((count, unit)) = text.split_once('/') else {
        return Err(RateError::NotARate { text: text.into() });
    };
    let unit = unit.trim();
    let Some(per) = named_period(unit) else {
        return Err(RateError::UnknownUnit {
            unit: unit.into(),
            text: text.into(),
        });
    };
    let count = parse_count(count.trim()).map_err(|count| RateError::Count {
        count,
        text: text.into(),
    })?;
    Ok(Rate { count, per })
}

/// `s`, `min`, `h` and their other spellings, as a rate's or quota's period.
fn named_period(unit: &str) -> Option<Duration> {
    match unit {
        "s" | "sec" => Some(Duration::from_secs(1)),
        "m" | "min" => Some(Duration::from_secs(60)),
        "h" | "hour" => Some(Duration::from_secs(3600)),
        _ => None,
    }
}

/// The N of a rate or quota: a whole number from 1.
fn parse_count(count: &str) -> Result<u32, CountError> {
    // `u32::from_str` also takes a leading '+', which is not a count anyone means to write.
    let digits = !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit());
    match count.parse::<u32>() {
        Ok(0) => Err(CountError::Zero),
        Ok(count) if digits => Ok(count),
        _ => Err(CountError::NotWhole(count.into())),
    }
}

fn key(errs: &mut Errors, path: &str, raw: Option<&Text>) -> KeyKind {
    let Some(raw) = raw else {
        return KeyKind::Global;
    };
    parse_key(raw.value.trim()).unwrap_or_else(|msg| {
        errs.at(path, raw, msg);
        KeyKind::Global
    })
}

fn parse_key(text: &str) -> Result<KeyKind, String> {
    match text {
        "global" => Ok(KeyKind::Global),
        "token" => Ok(KeyKind::Token),
        "client_ip" => Ok(KeyKind::ClientIp),
        _ => match text.strip_prefix("header:") {
            Some(name) => HeaderName::from_str(name.trim())
                .map(KeyKind::Header)
                .map_err(|_| format!("{:?} is not a valid HTTP header name", name.trim())),
            None => Err(format!(
                "unknown key {text:?}; use global, token, client_ip or header:NAME"
            )),
        },
    }
}

fn mode(errs: &mut Errors, path: &str, raw: Option<&Text>) -> Mode {
    let Some(raw) = raw else {
        return Mode::Queue;
    };
    match raw.value.trim() {
        "queue" => Mode::Queue,
        "reject" => Mode::Reject,
        "observe" => Mode::Observe,
        other => {
            let msg = format!("unknown mode {other:?}; use queue, reject or observe");
            errs.at(path, raw, msg);
            Mode::Queue
        }
    }
}

fn queue(errs: &mut Errors, path: &str, raw: &RawLimit) -> Queue {
    let queue = raw.queue.as_ref();
    let depth = queue.and_then(|q| q.max_depth.as_ref());
    let max_depth = number(
        errs,
        &join(path, "max_depth"),
        depth,
        DEFAULT_MAX_DEPTH,
        1..=u64::MAX,
    );
    let wait = queue.and_then(|q| q.max_wait.as_ref());
    Queue {
        max_depth: usize::try_from(max_depth).unwrap_or(usize::MAX),
        max_wait: positive_duration(errs, &join(path, "max_wait"), wait, DEFAULT_MAX_WAIT),
    }
}

fn adaptive(errs: &mut Errors, path: &str, raw: Option<&RawAdaptive>) -> Option<Adaptive> {
    let settings = match raw? {
        RawAdaptive::Enabled(false) => return None,
        RawAdaptive::Enabled(true) => return Some(DEFAULT_ADAPTIVE),
        RawAdaptive::Settings(settings) => settings,
    };
    Some(adaptive_settings(errs, path, settings))
}

fn adaptive_settings(errs: &mut Errors, path: &str, raw: &RawAdaptiveSettings) -> Adaptive {
    let d = DEFAULT_ADAPTIVE;
    let interval = raw.interval.as_ref();
    Adaptive {
        // A factor of 1 would never cut the rate; a floor or step of 1 is merely aggressive.
        factor: fraction(
            errs,
            &join(path, "factor"),
            raw.factor.as_ref(),
            d.factor,
            false,
        ),
        floor: fraction(
            errs,
            &join(path, "floor"),
            raw.floor.as_ref(),
            d.floor,
            true,
        ),
        step: fraction(errs, &join(path, "step"), raw.step.as_ref(), d.step, true),
        interval: positive_duration(errs, &join(path, "interval"), interval, d.interval),
    }
}

/// A fraction in (0, 1), or (0, 1] when `one_ok`; `default` when absent or out of range.
fn fraction(
    errs: &mut Errors,
    path: &str,
    raw: Option<&Spanned<f64>>,
    default: f64,
    one_ok: bool,
) -> f64 {
    let Some(raw) = raw else {
        return default;
    };
    let v = raw.value;
    // Written so that NaN fails both comparisons.
    if v > 0.0 && (v < 1.0 || (one_ok && v == 1.0)) {
        return v;
    }
    let range = if one_ok {
        "more than 0 and at most 1"
    } else {
        "between 0 and 1 (exclusive)"
    };
    errs.at(path, raw, format!("must be {range}, not {v}"));
    default
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let r = parse_rate("20/s").unwrap();
        assert_eq!((r.count, r.per), (20, Duration::from_secs(1)));
        assert_eq!(parse_rate("20/sec").unwrap().per, Duration::from_secs(1));
        assert_eq!(parse_rate("300/min").unwrap().per, Duration::from_secs(60));
        assert_eq!(parse_rate("300/m").unwrap().per, Duration::from_secs(60));
        assert_eq!(parse_rate("5/h").unwrap().per, Duration::from_secs(3600));
        assert_eq!(parse_rate("5/hour").unwrap().per, Duration::from_secs(3600));
        assert_eq!(parse_rate(" 300 / min ").unwrap().count, 300);
    }

    #[test]
    fn bad_rates() {
        let err = |s| parse_rate(s).unwrap_err().to_string();
        assert!(err("20").contains("not a rate"));
        assert!(err("0/s").contains("at least 1"));
        assert!(err("-1/s").contains("whole number"));
        assert!(err("1.5/s").contains("whole number"));
        assert!(err("+5/s").contains("whole number"));
        assert!(err("abc/s").contains("whole number"));
        assert!(err("5/d").contains("unknown unit \"d\""));
        assert!(err("5/").contains("unknown unit"));
    }

    #[test]
    fn quotas() {
        let q = parse_quota("300/60s").unwrap();
        assert_eq!((q.count, q.window), (300, Duration::from_secs(60)));
        assert_eq!(q.margin, Duration::from_millis(600));
        assert_eq!(
            parse_quota("300/min").unwrap().window,
            Duration::from_secs(60)
        );
        assert_eq!(
            parse_quota("10/s").unwrap().margin,
            Duration::from_millis(50)
        );
        assert_eq!(
            parse_quota("5/h").unwrap().window,
            Duration::from_secs(3600)
        );
        assert_eq!(parse_quota("30/6s").unwrap().window, Duration::from_secs(6));
        assert!(parse_quota("0/s")
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        assert!(parse_quota("30/0s")
            .unwrap_err()
            .to_string()
            .contains("empty window"));
        assert!(parse_quota("30/6")
            .unwrap_err()
            .to_string()
            .contains("no unit"));
        assert!(parse_quota("30")
            .unwrap_err()
            .to_string()
            .contains("not a quota"));
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key("global"), Ok(KeyKind::Global));
        assert_eq!(parse_key("token"), Ok(KeyKind::Token));
        assert_eq!(parse_key("client_ip"), Ok(KeyKind::ClientIp));
        assert_eq!(
            parse_key("header:X-Tenant"),
            Ok(KeyKind::Header(HeaderName::from_static("x-tenant")))
        );
        assert!(parse_key("header:").unwrap_err().contains("header name"));
        assert!(parse_key("header:a b").unwrap_err().contains("header name"));
        assert!(parse_key("ip").unwrap_err().contains("unknown key"));
    }
}
