//! The config loader: defaults, every validation rule, and the example config.
//!
//! Sections of the config have their own files under `tests/it/config/`; this one holds the
//! helpers they share and the tests that span the whole file.
//!
//! Configs are written as one string per line (see [`yaml`]) so the line numbers asserted in
//! error messages can be read off the test.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::Method;
use pacer::config::{Config, ConfigErrors, KeyKind, Mode, On5xx, Queue, Rate, Retry, Server};

/// Lines joined into a YAML document; `lines[0]` is line 1.
fn yaml<S: AsRef<str>>(lines: &[S]) -> String {
    let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
    lines.join("\n") + "\n"
}

fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Config, ConfigErrors> {
    Config::parse(&yaml(lines), Path::new("/etc/pacer"))
}

fn ok<S: AsRef<str>>(lines: &[S]) -> Config {
    parse(lines).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

/// Every error message of an invalid config, as displayed.
fn errors<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    match parse(lines) {
        Ok(_) => panic!("expected errors, but the config is valid:\n{}", yaml(lines)),
        Err(errs) => errs.0.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts that exactly one error was found, that it starts with `prefix` (the
/// `path, line N: ` part and the start of the message), and that it contains each of `parts`.
#[track_caller]
fn assert_error<S: AsRef<str>>(lines: &[S], prefix: &str, parts: &[&str]) {
    let errs = errors(lines);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    assert_error_in(&errs, prefix, parts);
}

#[track_caller]
fn assert_error_in(errs: &[String], prefix: &str, parts: &[&str]) {
    let found = errs.iter().find(|e| e.starts_with(prefix));
    let Some(found) = found else {
        panic!("no error starts with {prefix:?}; errors: {errs:#?}");
    };
    for part in parts {
        assert!(found.contains(part), "{found:?} does not contain {part:?}");
    }
}

/// The smallest useful config; tests append to it. Two lines.
const MINIMAL: &[&str] = &["upstreams:", "  genesys: {region: us-east-1}"];

/// MINIMAL followed by `extra`, which therefore starts at line 3.
fn with(extra: &[&str]) -> Vec<String> {
    MINIMAL.iter().chain(extra).map(|s| s.to_string()).collect()
}

// The crate root is this file, so the section files are named explicitly.
mod learn;
mod limits;
mod routes;
mod sections;
mod upstreams;

// === defaults ===

#[test]
fn minimal_config_gets_all_defaults() {
    let c = ok(MINIMAL);
    assert_eq!(c.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(c.upstreams.len(), 1);
    let u = &c.upstreams[0];
    assert_eq!(u.name, "genesys");
    assert_eq!(u.base_url.as_str(), "https://api.mypurecloud.com/");
    assert_eq!(u.hosts, ["api.mypurecloud.com"]);
    assert_eq!(u.ca_file, None);
    assert_eq!(u.connect_timeout, Duration::from_secs(5));
    assert_eq!(u.request_timeout, Duration::from_secs(60));
    assert_eq!(u.body_idle_timeout, Duration::from_secs(30));
    assert!(u.intercept);
    assert_eq!(c.default_upstream, Some(0));
    assert!(c.limits.is_empty());
    assert!(c.routes.is_empty());
    let retry = Retry {
        max_attempts: 5,
        max_retry_after: Duration::from_secs(60),
        max_pause: Duration::from_secs(60),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(10),
        on_5xx: On5xx::Idempotent,
        max_body: 512_000,
    };
    assert_eq!(c.retry, retry);
    let server = Server {
        max_header_bytes: 65536,
        max_body_bytes: 16 * 1024 * 1024,
        drain_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(30),
        backlog: None,
    };
    assert_eq!(c.server, server);
    assert_eq!(c.admin, None);
    assert!(c.intercept.is_none());
    assert!(c.proxy_auth.is_none());
}

#[test]
fn limit_defaults() {
    let c = ok(&with(&["limits:", "  a: {rate: 20/s}"]));
    let l = &c.limits[0];
    assert_eq!(l.name, "a");
    assert_eq!(
        l.rate,
        Some(Rate {
            count: 20,
            per: Duration::from_secs(1)
        })
    );
    assert_eq!(l.burst, 1);
    assert_eq!(l.concurrency, None);
    assert_eq!(l.key, KeyKind::Global);
    assert_eq!(l.mode, Mode::Queue);
    let queue = Queue {
        max_depth: 10_000,
        max_wait: Duration::from_secs(60),
    };
    assert_eq!(l.queue, queue);
    assert_eq!(l.max_keys, 10_000);
    assert_eq!(l.key_idle, Duration::from_secs(600));
    assert_eq!(l.adaptive, None);
}

#[test]
fn empty_file_needs_upstreams() {
    assert_error(&["# nothing yet"], "upstreams: at least one upstream", &[]);
    assert_error(
        &["upstreams: {}"],
        "upstreams, line 1: at least one upstream",
        &[],
    );
}

// === unknown keys and parse errors ===

#[test]
fn unknown_top_level_key() {
    assert_error(
        &with(&["listn: 127.0.0.1:8080"]),
        "listn, line 3: unknown field `listn`",
        &["listen", "upstreams"],
    );
}

#[test]
fn unknown_nested_keys() {
    let lines = [
        "listen: 127.0.0.1:8080",
        "upstreams:",
        "  genesys:",
        "    region: us-east-1",
        "    hostz: [api.mypurecloud.com]",
    ];
    assert_error(
        &lines,
        "upstreams.genesys.hostz, line 5: unknown field `hostz`",
        &["hosts"],
    );
    assert_error(
        &with(&[
            "limits:",
            "  a:",
            "    rate: 1/s",
            "    queue: {max_dept: 5}",
        ]),
        "limits.a.queue.max_dept, line 6: unknown field",
        &["max_depth"],
    );
    assert_error(
        &with(&["routes:", "  - match: GET /a", "    limit: []"]),
        "routes[0].limit, line 5: unknown field",
        &[],
    );
    assert_error(
        &with(&["retry:", "  backoff: {base: 1s, maximum: 2s}"]),
        "retry.backoff.maximum, line 4: unknown field",
        &[],
    );
}

#[test]
fn type_errors_name_path_and_line() {
    assert_error(
        &with(&["limits:", "  a:", "    rate: 1/s", "    burst: lots"]),
        "limits.a.burst, line 6: expected a whole number",
        &[],
    );
    assert_error(
        &with(&["routes:", "  - limits: []"]),
        "routes[0], line 4: missing field `match`",
        &[],
    );
    assert_error(
        &with(&["intercept: {ca_cert: ca.pem}"]),
        "intercept, line 3: missing field `ca_key`",
        &[],
    );
}

// === durations ===

#[test]
fn bad_durations() {
    let check = |value: &str, parts: &[&str]| {
        let line = format!("  genesys: {{region: us-east-1, timeouts: {{connect: {value}}}}}");
        let prefix = "upstreams.genesys.timeouts.connect, line 2: ";
        assert_error(&["upstreams:", line.as_str()], prefix, parts);
    };
    check("5", &["no unit", "5s"]);
    check("-5s", &["negative"]);
    check("soon", &["not a duration"]);
    check("5 days", &["not a duration"]);
    check("0s", &["more than 0"]);
    assert_error(
        &with(&[
            "limits:",
            "  a:",
            "    rate: 1/s",
            "    queue: {max_wait: 60}",
        ]),
        "limits.a.queue.max_wait, line 6: \"60\" has no unit",
        &[],
    );
}

#[test]
fn durations_with_units() {
    let c = ok(&with(&[
        "retry: {max_retry_after: 1.5s, backoff: {base: 250ms, max: 2m}}",
        "server: {drain_timeout: 1h}",
    ]));
    assert_eq!(c.retry.max_retry_after, Duration::from_millis(1500));
    assert_eq!(c.retry.backoff_base, Duration::from_millis(250));
    assert_eq!(c.retry.backoff_max, Duration::from_secs(120));
    assert_eq!(c.server.drain_timeout, Duration::from_secs(3600));
}

// === all errors at once ===

#[test]
fn all_errors_are_collected() {
    let errs = errors(&[
        "listen: nowhere",
        "upstreams:",
        "  genesys:",
        "    region: us-east-9",
        "    timeouts: {connect: 5}",
        "limits:",
        "  scripts: {burst: 3, rate: 20/fortnight}",
        "  empty: {}",
        "routes:",
        "  - match: GET /api/v2/scripts",
        "    limits: [scripts, nope]",
        "retry: {max_attempts: 50}",
    ]);
    let expected = [
        "listen, line 1: ",
        "upstreams.genesys.region, line 4: unknown region",
        "upstreams.genesys.timeouts.connect, line 5: \"5\" has no unit",
        "limits.scripts.rate, line 7: unknown unit",
        "limits.empty, line 8: a limit needs a rate",
        "routes[0].limits, line 11: unknown limit \"nope\"",
        "retry.max_attempts, line 12: must be between 1 and 20",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for prefix in expected {
        assert_error_in(&errs, prefix, &[]);
    }
    // One message per line, in file order, so the whole list reads top to bottom.
    let shown = parse(&["listen: nowhere", "upstreams: {}"])
        .unwrap_err()
        .to_string();
    assert_eq!(shown.lines().count(), 2, "{shown}");
}

// === the example config ===

#[test]
fn example_genesys_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/genesys.yaml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
    assert!(c.listen.ip().is_loopback());
    let genesys = c.upstream("genesys").unwrap();
    assert_eq!(genesys.base_url.as_str(), "https://api.mypurecloud.com/");
    assert_eq!(genesys.hosts, ["api.mypurecloud.com"]);
    assert_eq!(c.default_upstream, Some(0));

    let per_token = c.limit("per-token").unwrap();
    assert_eq!(per_token.key, KeyKind::Token);
    let quota = per_token.quota.unwrap();
    assert_eq!((quota.count, quota.window), (300, Duration::from_secs(60)));
    let analytics = c.limit("analytics-query").unwrap();
    assert!(analytics.concurrency.is_some());
    assert!(c.limit("scripts").unwrap().rate.is_some());

    let route = |m: &Method, p: &str| {
        c.routes
            .iter()
            .find(|r| r.method.as_ref().is_none_or(|rm| rm == m) && r.path.matches(p))
            .map(|r| {
                r.limits
                    .iter()
                    .map(|&i| c.limit_at(i).name.as_str())
                    .collect::<Vec<_>>()
            })
    };
    let scripts = route(&Method::GET, "/api/v2/scripts").unwrap();
    assert!(scripts.contains(&"scripts") && scripts.contains(&"per-token"));
    let query = route(
        &Method::POST,
        "/api/v2/analytics/conversations/details/query",
    )
    .unwrap();
    assert!(query.contains(&"analytics-query"));
    let flow = route(&Method::PUT, "/api/v2/flows/8f2b").unwrap();
    assert!(flow.contains(&"per-token"));
}

/// A structural error (unknown key, wrong type) no longer hides the rest of the file: every
/// problem is reported, sorted by line, with the path as written (a route after one that had
/// to be dropped keeps its index).
#[test]
fn structural_errors_do_not_hide_the_others() {
    let found = errors(&[
        "upstreams:",
        "  api:",
        "    base_url: http://127.0.0.1:9000",
        "    hostz: [api.test]",
        "    timeouts: { connect: 5, request: 60s }",
        "limits:",
        "  a:",
        "    rate: 300/d",
        "    burst: ten",
        "routes:",
        "  - matchh: GET /x",
        "    limits: [a]",
        "  - match: GETT /api/v2/**",
        "    limits: [a, nope]",
    ]);
    let starts = [
        "upstreams.api.hostz, line 4: unknown field",
        "upstreams.api.timeouts.connect, line 5: \"5\" has no unit",
        "limits.a.rate, line 8: unknown unit \"d\"",
        "limits.a.burst, line 9: expected a whole number",
        "routes[0].matchh, line 11: unknown field",
        "routes[1].match, line 13: \"GETT\" is not an HTTP method (did you mean GET?)",
        "routes[1].limits, line 14: unknown limit \"nope\"",
    ];
    assert_eq!(found.len(), starts.len(), "{found:#?}");
    for (error, start) in found.iter().zip(starts) {
        assert!(
            error.starts_with(start),
            "{error} should start with {start}"
        );
    }
}
