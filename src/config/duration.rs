//! Durations as written in the config: `500ms`, `5s`, `1.5s`, `2m`, `1h`.
//!
//! A unit is always required: a bare `60` could mean seconds or milliseconds depending on which
//! tool the reader last used, and guessing wrong by a factor of 1000 is how load tests go bad.

use std::time::Duration;

/// Units and their length in nanoseconds. A unit must match the whole suffix, so `5ms` is never
/// read as minutes followed by garbage.
const UNITS: &[(&str, u128)] = &[
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("sec", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("min", 60 * NANOS_PER_SEC),
    ("h", 3600 * NANOS_PER_SEC),
    ("hour", 3600 * NANOS_PER_SEC),
];

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Why a duration does not parse; each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; write a number and a unit, e.g. 5s or 500ms")]
    Empty,
    #[error("{0:?} is negative; a duration must be 0 or more")]
    Negative(String),
    #[error("{0:?} has no unit; add one, e.g. {0}s or {0}ms")]
    NoUnit(String),
    #[error("{0:?} is not a duration; write a number and one of the units ms, s, m (or min), h, e.g. 5s")]
    UnknownUnit(String),
    #[error("{0:?} is not a duration; write e.g. 5s, 1.5s or 500ms")]
    NotANumber(String),
    #[error("{0:?} is too long a duration")]
    TooLong(String),
}

/// Parses `500ms`, `5s`, `1.5s`, `2m`/`2min`, `1h`. The error says what to write instead.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim_start());
    if unit.is_empty() {
        return Err(DurationError::NoUnit(text.to_owned()));
    }
    let Some(&(_, unit_nanos)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(DurationError::UnknownUnit(text.to_owned()));
    };
    let nanos = decimal_nanos(number, unit_nanos)
        .ok_or_else(|| DurationError::NotANumber(text.to_owned()))?;
    let secs = u64::try_from(nanos / NANOS_PER_SEC)
        .map_err(|_| DurationError::TooLong(text.to_owned()))?;
    // The remainder is below one second, so it fits in u32.
    Ok(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

/// `whole[.fraction]` times `unit_nanos`, computed in integers so that `0.1s` is exactly 100ms.
/// Digits beyond nanosecond precision are dropped.
fn decimal_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (number.contains('.') && !digits(fraction)) {
        return None;
    }
    let mut nanos = whole.parse::<u128>().ok()?.checked_mul(unit_nanos)?;
    // Long fractions could overflow the scale; nothing past 1e-18 of an hour is meaningful.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let scale = 10u128.pow(fraction.len() as u32);
        nanos = nanos.checked_add(fraction.parse::<u128>().ok()? * unit_nanos / scale)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse_duration(s).expect_err(s).to_string()
    }

    #[test]
    fn units() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("5sec"), Duration::from_secs(5));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.1s"), Duration::from_millis(100));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("2min"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0.5h"), Duration::from_secs(1800));
        assert_eq!(ok(" 10 s "), Duration::from_secs(10));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("1.0000000001s"), Duration::from_secs(1));
    }

    #[test]
    fn bare_number_asks_for_a_unit() {
        let e = err("60");
        assert!(e.contains("no unit"), "{e}");
        assert!(e.contains("60s"), "{e}");
        assert!(err("1.5").contains("no unit"));
    }

    #[test]
    fn garbage() {
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("-5s").contains("negative"));
        assert!(err("5d").contains("not a duration"));
        assert!(err("abc").contains("not a duration"));
        assert!(err("s").contains("not a duration"));
        assert!(err("1.2.3s").contains("not a duration"));
        assert!(err(".5s").contains("not a duration"));
        assert!(err("5.s").contains("not a duration"));
        assert!(err("5s5").contains("not a duration"));
        assert!(err("99999999999999999999999999h").contains("duration"));
    }
}
