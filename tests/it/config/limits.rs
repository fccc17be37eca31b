//! `limits`.

use super::*;
use http::HeaderName;
use pacer::config::Adaptive;

#[test]
fn limit_needs_rate_or_concurrency() {
    assert_error(
        &with(&["limits:", "  scripts:", "    mode: reject"]),
        "limits.scripts, line 4: a limit needs a rate",
        &["concurrency"],
    );
    let c = ok(&with(&["limits:", "  q: {concurrency: 4}"]));
    assert_eq!(c.limit("q").unwrap().concurrency, Some(4));
}

#[test]
fn bad_rates() {
    for (rate, part) in [
        ("20", "not a rate"),
        ("0/s", "at least 1"),
        ("1.5/s", "whole number"),
        ("-3/min", "whole number"),
        ("20/day", "unknown unit \"day\""),
        ("fast", "not a rate"),
    ] {
        let line = format!("    rate: {rate}");
        assert_error(
            &with(&["limits:", "  a:", line.as_str()]),
            "limits.a.rate, line 5: ",
            &[part],
        );
    }
}

#[test]
fn rate_units() {
    let c = ok(&with(&[
        "limits:",
        "  a: {rate: 20/sec}",
        "  b: {rate: 300/min}",
        "  c: {rate: 300/m}",
        "  d: {rate: 1000/hour}",
        "  e: {rate: 10/h}",
    ]));
    let per: Vec<_> = c
        .limits
        .iter()
        .map(|l| l.rate.unwrap().per.as_secs())
        .collect();
    assert_eq!(per, [1, 60, 60, 3600, 3600]);
    assert_eq!(c.limits[1].rate.unwrap().to_string(), "300/min");
}

#[test]
fn keys() {
    let c = ok(&with(&[
        "limits:",
        "  a: {rate: 1/s, key: token}",
        "  b: {rate: 1/s, key: client_ip}",
        "  c: {rate: 1/s, key: \"header:X-Tenant-Id\"}",
    ]));
    assert_eq!(c.limits[0].key, KeyKind::Token);
    assert_eq!(c.limits[1].key, KeyKind::ClientIp);
    let tenant = HeaderName::from_static("x-tenant-id");
    assert_eq!(c.limits[2].key, KeyKind::Header(tenant));
    assert_error(
        &with(&["limits:", "  a: {rate: 1/s, key: per_token}"]),
        "limits.a.key, line 4: unknown key \"per_token\"",
        &["global, token, client_ip or header:NAME"],
    );
    assert_error(
        &with(&["limits:", "  a: {rate: 1/s, key: \"header:bad name\"}"]),
        "limits.a.key, line 4: \"bad name\" is not a valid HTTP header name",
        &[],
    );
}

#[test]
fn limit_fields_are_range_checked() {
    let errs = errors(&with(&[
        "limits:",
        "  a:",
        "    rate: 1/s",
        "    burst: 0",
        "    concurrency: 0",
        "    mode: drop",
        "    max_keys: 0",
        "    queue: {max_depth: 0, max_wait: 0s}",
    ]));
    assert_eq!(errs.len(), 6, "{errs:#?}");
    assert_error_in(&errs, "limits.a.burst, line 6: must be at least 1", &[]);
    assert_error_in(
        &errs,
        "limits.a.concurrency, line 7: must be at least 1",
        &[],
    );
    assert_error_in(
        &errs,
        "limits.a.mode, line 8: unknown mode \"drop\"",
        &["observe"],
    );
    assert_error_in(&errs, "limits.a.max_keys, line 9: must be at least 1", &[]);
    assert_error_in(
        &errs,
        "limits.a.queue.max_depth, line 10: must be at least 1",
        &[],
    );
    assert_error_in(
        &errs,
        "limits.a.queue.max_wait, line 10: must be more than 0",
        &[],
    );
}

#[test]
fn limit_names_become_labels() {
    assert_error(
        &with(&["limits:", "  \"per token\": {rate: 1/s}"]),
        "limits.per token, line 4: name \"per token\" may only contain",
        &[],
    );
}

#[test]
fn burst_and_adaptive_need_a_rate() {
    let errs = errors(&with(&[
        "limits:",
        "  a:",
        "    concurrency: 5",
        "    burst: 10",
        "    adaptive: true",
    ]));
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_error_in(
        &errs,
        "limits.a.burst, line 6: burst sizes the rate's bucket",
        &[],
    );
    assert_error_in(
        &errs,
        "limits.a.adaptive, line 4: adaptive adjusts the rate",
        &[],
    );
}

#[test]
fn adaptive_settings() {
    let c = ok(&with(&[
        "limits:",
        "  on: {rate: 1/s, adaptive: true}",
        "  off: {rate: 1/s, adaptive: false}",
        "  tuned: {rate: 1/s, adaptive: {factor: 0.5, floor: 1, interval: 10s}}",
    ]));
    let defaults = Adaptive {
        factor: 0.7,
        floor: 0.1,
        step: 0.05,
        interval: Duration::from_secs(5),
    };
    assert_eq!(c.limits[0].adaptive, Some(defaults));
    assert_eq!(c.limits[1].adaptive, None);
    let tuned = Adaptive {
        factor: 0.5,
        floor: 1.0,
        interval: Duration::from_secs(10),
        ..defaults
    };
    assert_eq!(c.limits[2].adaptive, Some(tuned));
    let errs = errors(&with(&[
        "limits:",
        "  a:",
        "    rate: 1/s",
        "    adaptive:",
        "      factor: 1",
        "      floor: 0",
        "      step: 1.5",
    ]));
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_error_in(
        &errs,
        "limits.a.adaptive.factor, line 7: must be between 0 and 1",
        &[],
    );
    assert_error_in(
        &errs,
        "limits.a.adaptive.floor, line 8: must be more than 0",
        &[],
    );
    assert_error_in(
        &errs,
        "limits.a.adaptive.step, line 9: must be more than 0",
        &[],
    );
}

#[test]
fn quotas_and_margins() {
    let c = ok(&with(&[
        "limits:",
        "  a: {quota: 300/60s}",
        "  b: {quota: 30/6s, margin: 200ms, key: token, concurrency: 2}",
        "  c: {quota: 10/s}",
    ]));
    let q = |i: usize| c.limits[i].quota.unwrap();
    assert_eq!((q(0).count, q(0).window), (300, Duration::from_secs(60)));
    assert_eq!(q(0).margin, Duration::from_millis(600), "1% of the window");
    assert_eq!(q(1).margin, Duration::from_millis(200));
    assert_eq!(q(2).margin, Duration::from_millis(50), "at least 50 ms");
    assert!(c.limits[0].rate.is_none());
}

#[test]
fn bad_quotas() {
    assert_error(
        &with(&["limits:", "  a:", "    quota: 30/6"]),
        "limits.a.quota, line 5: ",
        &["no unit"],
    );
    assert_error(
        &with(&["limits:", "  a:", "    quota: 30/s", "    rate: 30/s"]),
        "limits.a.rate, line 6: ",
        &["not both"],
    );
    assert_error(
        &with(&["limits:", "  a:", "    rate: 30/s", "    margin: 1s"]),
        "limits.a.margin, line 6: ",
        &["set quota too"],
    );
}
