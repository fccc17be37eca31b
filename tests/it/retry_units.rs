//! Property tests for the retry building blocks, and the stable-toolchain smoke run of the
//! `retry_after` fuzz target (`fuzz/`, which needs nightly).
//!
//! `PACER_FUZZ_SMOKE_CASES` sets how many random byte strings the smoke run feeds the fuzz target
//! (default 300,000).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use pacer::retry::retry_after::{fuzz_entry, retry_after, RETRY_AFTER_CAP};

const CAP: u64 = RETRY_AFTER_CAP.as_secs();

fn one(name: &str, value: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(
        HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
    map
}

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

/// The three forms of one instant: IMF-fixdate, RFC 850 and asctime.
fn http_dates(t: SystemTime) -> [String; 3] {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let imf = httpdate::fmt_http_date(t);
    let (wday, day, mon, year, time) = (
        &imf[0..3],
        &imf[5..7],
        &imf[8..11],
        &imf[12..16],
        &imf[17..25],
    );
    let long_wday = match wday {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    };
    let rfc850 = format!("{long_wday}, {day}-{mon}-{} {time} GMT", &year[2..]);
    let asctime = format!(
        "{wday} {mon} {:>2} {time} {year}",
        day.trim_start_matches('0')
    );
    [imf, rfc850, asctime]
}

// === properties ===

proptest! {
    #![proptest_config(Config::with_cases(2_000))]

    /// Any whole number of seconds up to the cap comes back unchanged from every header.
    #[test]
    fn delta_seconds_round_trip(secs in 0..=CAP, now in 0u64..4_000_000_000) {
        let now = at(now, 0);
        for name in ["retry-after", "inin-ratelimit-reset", "x-ratelimit-reset"] {
            let got = retry_after(&one(name, &secs.to_string()), now);
            prop_assert_eq!(got, Some(Duration::from_secs(secs)), "{}", name);
        }
    }

    /// Any u32 above the cap is garbage (for X-RateLimit-Reset: until it reads as a timestamp).
    #[test]
    fn above_cap_is_missing(secs in (CAP + 1)..=u64::from(u32::MAX)) {
        let now = at(1_700_000_000, 0);
        prop_assert_eq!(retry_after(&one("retry-after", &secs.to_string()), now), None);
        prop_assert_eq!(retry_after(&one("inin-ratelimit-reset", &secs.to_string()), now), None);
    }

    /// Any HTTP-date within the cap ahead of now maps to the difference, in all three forms.
    /// ±1 s: the date has whole seconds, `now` does not.
    #[test]
    fn future_http_date_maps_to_difference(
        now in 0u64..(3_000_000_000 - CAP),
        nanos in 0u32..1_000_000_000,
        ahead in 0..=CAP,
    ) {
        let now_t = at(now, nanos);
        for date in http_dates(at(now + ahead, 0)) {
            let got = retry_after(&one("retry-after", &date), now_t);
            let got = got.ok_or_else(|| TestCaseError::fail(format!("None for {date:?}")))?;
            let diff = got.as_secs_f64() - ahead as f64;
            prop_assert!(diff.abs() <= 1.0, "{:?}: {:?} for {} s ahead", date, got, ahead);
        }
    }

    /// A date in the past means "now".
    #[test]
    fn past_http_date_is_zero(now in 1_000u64..3_000_000_000, behind in 1u64..1_000_000) {
        let date = httpdate::fmt_http_date(at(now.saturating_sub(behind), 0));
        prop_assert_eq!(retry_after(&one("retry-after", &date), at(now, 0)), Some(Duration::ZERO));
    }

    /// An X-RateLimit-Reset timestamp within the cap maps to the difference.
    #[test]
    fn reset_timestamp_maps_to_difference(now in 1_000_000_001u64..4_000_000_000, ahead in 0..=CAP) {
        let got = retry_after(&one("x-ratelimit-reset", &(now + ahead).to_string()), at(now, 0));
        prop_assert_eq!(got, Some(Duration::from_secs(ahead)));
    }

    /// Arbitrary text never panics and never yields more than the cap.
    #[test]
    fn arbitrary_strings_are_none_or_capped(value in "\\PC*", now in any::<u32>()) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            for name in [RETRY_AFTER.as_str(), "inin-ratelimit-reset", "x-ratelimit-reset"] {
                let mut map = HeaderMap::new();
                map.insert(HeaderName::from_static(name), value.clone());
                let got = retry_after(&map, at(u64::from(now), 0));
                prop_assert!(got.is_none_or(|d| d <= RETRY_AFTER_CAP));
            }
        }
    }
}

// === fuzz target smoke ===

/// Inputs that broke or nearly broke parsers like this one: overflow, signs, lists, odd dates.
const NASTY: &[&[u8]] = &[
    b"",
    b" ",
    b"\t",
    b"0",
    b"-0",
    b"+0",
    b"00000000000000000000000000000000000000000000000000001",
    b"18446744073709551615",
    b"18446744073709551616",
    b"340282366920938463463374607431768211456",
    b"9223372036854775807",
    b"86400",
    b"86401",
    b"1e9",
    b"0x10",
    b"1.0",
    b".5",
    b"5,",
    b",5",
    b"5, 10",
    b"5\x0010",
    b"\xff\xfe",
    b"\xc3\xa9",
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
    b"Sun, 06 Nov 1994 08:49:37 GMTX",
    b"Sun, 31 Feb 1994 08:49:37 GMT",
    b"Fri, 31 Dec 9999 23:59:59 GMT",
    b"Sat, 01 Jan 10000 00:00:00 GMT",
    b"Thu, 01 Jan 1970 00:00:00 GMT",
    b"Wed, 31 Dec 1969 23:59:59 GMT",
    b"Sun, 06 Nov 1994 24:00:00 GMT",
    b"Sun, 06 Nov 1994 08:49:60 GMT",
    b"Sunday, 06-Nov-94 08:49:37 GMT",
    b"Sunday, 06-Nov-69 08:49:37 GMT",
    b"Sun Nov  6 08:49:37 1994",
    b"Sun Nov 6 08:49:37 1994",
    b"Sun Nov 06 08:49:37 1994 ",
    b"1700000000",
    b"999999999999999999",
    b"1700000000000",
];

#[test]
fn fuzz_target_survives_nasty_inputs() {
    // Every header combination (bits 0-3), clocks before, at and after the epoch.
    let clocks = [
        0i64,
        1_700_000_000,
        -1_700_000_000,
        253_402_300_799,
        i64::MAX,
        i64::MIN,
    ];
    for flags in 0u8..16 {
        for clock in clocks {
            for (i, value) in NASTY.iter().enumerate() {
                let other = NASTY[(i + 7) % NASTY.len()];
                let mut input = vec![flags];
                input.extend_from_slice(&clock.to_le_bytes());
                input.extend_from_slice(value);
                input.push(b'\n');
                input.extend_from_slice(other);
                fuzz_entry(&input);
            }
        }
    }
}

/// A small mutation fuzzer on the stable toolchain: proptest draws seeds, each seed drives
/// [`BATCH`] inputs that are random bytes or mutated [`NASTY`] entries behind a random header/clock
/// prefix. Per-byte proptest strategies cost ~20x more in a debug build, hence seeds.
#[test]
fn fuzz_target_survives_random_bytes() {
    let inputs: u32 = std::env::var("PACER_FUZZ_SMOKE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300_000);
    let config = Config {
        cases: inputs.div_ceil(BATCH),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&any::<u64>(), |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            for _ in 0..BATCH {
                let input = random_input(&mut rng);
                let run = std::panic::catch_unwind(|| fuzz_entry(&input));
                prop_assert!(run.is_ok(), "fuzz_entry panicked on {:?}", input);
            }
            Ok(())
        })
        .unwrap();
}

const BATCH: u32 = 100;

fn random_input(rng: &mut StdRng) -> Vec<u8> {
    let mut input = vec![0u8; 9];
    rng.fill(&mut input[..]);
    if rng.random_bool(0.3) {
        let len = rng.random_range(0..80);
        input.extend((0..len).map(|_| rng.random::<u8>()));
        return input;
    }
    let mut first = mutate(NASTY[rng.random_range(0..NASTY.len())], rng);
    let second = mutate(NASTY[rng.random_range(0..NASTY.len())], rng);
    input.append(&mut first);
    input.push(b'\n');
    input.extend(second);
    input
}

/// A few byte-level edits: replace (often with a digit or space, to stay near the grammar),
/// insert, delete, or splice in a piece of another corpus entry.
fn mutate(seed: &[u8], rng: &mut StdRng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789 \t,-+.:GMTSunNov\xff\x00";
    let mut out = seed.to_vec();
    for _ in 0..rng.random_range(0..4) {
        let at = rng.random_range(0..=out.len());
        let byte = match rng.random_bool(0.7) {
            true => ALPHABET[rng.random_range(0..ALPHABET.len())],
            false => rng.random(),
        };
        match rng.random_range(0..4) {
            0 if at < out.len() => out[at] = byte,
            1 => out.insert(at, byte),
            2 if at < out.len() => drop(out.remove(at)),
            _ => {
                let other = NASTY[rng.random_range(0..NASTY.len())];
                let from = rng.random_range(0..=other.len());
                out.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    out
}
