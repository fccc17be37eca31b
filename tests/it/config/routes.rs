//! `routes`.

use super::*;

/// MINIMAL plus the limits `scripts` and `per-token`, then `routes:` at line 6 and `routes`
/// from line 7.
/// The typed ids of the limits at these places in `limits:`.
fn ids<const N: usize>(places: [usize; N]) -> Vec<pacer::exchange::LimitId> {
    places.map(pacer::exchange::LimitId::new).to_vec()
}

fn with_limits(routes: &[&str]) -> Vec<String> {
    let mut lines = with(&[
        "limits:",
        "  scripts: {rate: 20/s}",
        "  per-token: {rate: 300/min, key: token}",
        "routes:",
    ]);
    lines.extend(routes.iter().map(|s| s.to_string()));
    lines
}

#[test]
fn routes_refer_to_limits_in_order() {
    let c = ok(&with_limits(&[
        "  - match: GET /api/v2/scripts/**",
        "    limits: [per-token, scripts]",
        "  - match: \"* /api/v2/**\"",
        "    limits: [per-token]",
        "  - match: GET /health",
    ]));
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.routes[0].name, "GET /api/v2/scripts/**");
    assert_eq!(c.routes[0].method, Some(Method::GET));
    assert_eq!(c.routes[0].limits, ids([1, 0]));
    assert!(c.routes[0].path.matches("/api/v2/scripts/abc"));
    assert_eq!(c.routes[1].method, None);
    assert_eq!(c.routes[1].limits, ids([1]));
    assert!(c.routes[2].limits.is_empty());
}

#[test]
fn unknown_limit_in_route() {
    assert_error(
        &with_limits(&[
            "  - match: GET /api/v2/scripts",
            "    limits: [scripts]",
            "  - match: GET /api/v2/users",
            "    limits: [scripts, per-tokn]",
        ]),
        "routes[1].limits, line 10: unknown limit \"per-tokn\"; defined limits: scripts, per-token",
        &[],
    );
    assert_error(
        &with(&["routes:", "  - {match: GET /a, limits: [x]}"]),
        "routes[0].limits, line 4: unknown limit \"x\"; no limits are defined",
        &[],
    );
    assert_error(
        &with_limits(&["  - match: GET /a", "    limits: [scripts, scripts]"]),
        "routes[0].limits, line 8: limit \"scripts\" is listed twice",
        &[],
    );
}

#[test]
fn bad_matches() {
    for (pattern, part) in [
        ("/api/v2/users", "is not \"METHOD PATH\""),
        ("get /api/v2/users", "write GET"),
        ("G@T /api/v2/users", "not an HTTP method"),
        ("GET api/v2/users", "must start with '/'"),
        ("GET /api/v2/users*", "wildcard"),
    ] {
        let line = format!("  - match: \"{pattern}\"");
        assert_error(
            &with_limits(&[line.as_str()]),
            "routes[0].match, line 7: ",
            &[part],
        );
    }
    assert_error(
        &with_limits(&["  - match: GET /a/{id}", "  - match: GET /a/*"]),
        "routes[1].match, line 8: same match as routes[0]",
        &[],
    );
}

#[test]
fn pause_names_some_of_the_routes_limits() {
    let c = ok(&with(&[
        "limits:",
        "  org: {quota: 100/min}",
        "  agent: {quota: 300/min, key: token}",
        "routes:",
        "  - {match: GET /a/**, limits: [org, agent], pause: [agent]}",
        "  - {match: GET /b/**, limits: [org, agent]}",
    ]));
    assert_eq!(c.routes[0].pause, ids([1]));
    assert_eq!(c.routes[1].pause, ids([0, 1]), "every limit by default");
    let errs = errors(&with(&[
        "limits:",
        "  org: {quota: 100/min}",
        "  agent: {quota: 300/min, key: token}",
        "routes:",
        "  - {match: GET /a/**, limits: [agent], pause: [org, nope]}",
    ]));
    assert_error_in(
        &errs,
        "routes[0].pause, line 7: limit \"org\" is not one",
        &[],
    );
    assert_error_in(
        &errs,
        "routes[0].pause, line 7: unknown limit \"nope\"",
        &[],
    );
}
