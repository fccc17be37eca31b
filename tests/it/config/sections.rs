//! `listen`, `admin`, `retry`, `server`, `intercept` and `proxy_auth`.

use super::*;
use std::path::PathBuf;

#[test]
fn addresses() {
    let c = ok(&with(&["listen: 0.0.0.0:8080", "admin: 127.0.0.1:9091"]));
    assert_eq!(c.listen, "0.0.0.0:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(c.admin, Some("127.0.0.1:9091".parse().unwrap()));
    assert_error(
        &with(&["listen: localhost:8080"]),
        "listen, line 3: \"localhost:8080\" is not an IP address and port",
        &[],
    );
    assert_error(
        &with(&["admin: 127.0.0.1:8080"]),
        "admin, line 3: 127.0.0.1:8080 is also the proxy's listen address",
        &[],
    );
}

#[test]
fn retry_rules() {
    let errs = errors(&with(&[
        "retry:",
        "  max_attempts: 21",
        "  backoff: {base: 20s, max: 10s}",
        "  on_5xx: always",
    ]));
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_error_in(
        &errs,
        "retry.max_attempts, line 4: must be between 1 and 20",
        &[],
    );
    assert_error_in(
        &errs,
        "retry.backoff, line 5: base (20s) must not exceed max (10s)",
        &[],
    );
    assert_error_in(
        &errs,
        "retry.on_5xx, line 6: unknown value \"always\"",
        &["never"],
    );
    assert_error(
        &with(&["retry: {max_attempts: 0}"]),
        "retry.max_attempts, line 3: must be between 1 and 20",
        &[],
    );
    let c = ok(&with(&["retry: {on_5xx: never, max_body: 0}"]));
    assert_eq!((c.retry.on_5xx, c.retry.max_body), (On5xx::Never, 0));
}

#[test]
fn server_rules() {
    assert_error(
        &with(&["server:", "  max_header_bytes: 512"]),
        "server.max_header_bytes, line 4: must be at least 1024, not 512",
        &[],
    );
    let c = ok(&with(&[
        "server: {max_header_bytes: 1024, max_body_bytes: 1}",
    ]));
    assert_eq!(
        (c.server.max_header_bytes, c.server.max_body_bytes),
        (1024, 1)
    );
}

#[test]
fn intercept_paths_are_relative_and_need_not_exist() {
    let c = ok(&with(&[
        "intercept: {ca_cert: ca.pem, ca_key: /abs/ca-key.pem}",
    ]));
    let i = c.intercept.unwrap();
    assert_eq!(i.ca_cert, PathBuf::from("/etc/pacer/ca.pem"));
    assert_eq!(i.ca_key, PathBuf::from("/abs/ca-key.pem"));
    assert_error(
        &with(&["intercept: {ca_cert: \"\", ca_key: k.pem}"]),
        "intercept.ca_cert, line 3: must not be empty",
        &[],
    );
}

#[test]
fn proxy_auth_never_shows_the_password() {
    let c = ok(&with(&[
        "proxy_auth: {username: jmeter, password: hunter2}",
    ]));
    let auth = c.proxy_auth.unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.password.as_str()),
        ("jmeter", "hunter2")
    );
    assert!(!format!("{auth:?}").contains("hunter2"));
    let errs = errors(&with(&["proxy_auth: {username: \"\", password: hunter2}"]));
    assert_eq!(errs, ["proxy_auth.username, line 3: must not be empty"]);
    assert_error(
        &with(&["proxy_auth:", "  username: jmeter", "  password: \"\""]),
        "proxy_auth.password, line 5: must not be empty",
        &[],
    );
}

#[test]
fn max_pause_defaults_to_max_retry_after() {
    let c = ok(&with(&["retry: {max_retry_after: 30s}"]));
    assert_eq!(c.retry.max_pause, Duration::from_secs(30));
    let c = ok(&with(&["retry: {max_retry_after: 30s, max_pause: 2s}"]));
    assert_eq!(c.retry.max_pause, Duration::from_secs(2));
}
