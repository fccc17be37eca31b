//! The mock's YAML config: every key, and errors that name the field and line.

use std::time::Duration;

use pacer::mock::{MockConfig, RetryAfterMode};

use crate::support::mock::limit;

#[test]
fn bad_config_errors_name_the_field_and_line() {
    let yaml = "require_auth: true\nroutes:\n  - match: GET /api/v2/users\n    concurrency: lots\n";
    let err = MockConfig::from_yaml(yaml).unwrap_err().to_string();
    assert!(err.contains("routes[0].concurrency"), "{err}");
    assert!(err.contains("line 4"), "{err}");

    let err = MockConfig::from_yaml("latency: 0ms\nretry_afterr: huge\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("retry_afterr") && err.contains("line 2"),
        "{err}"
    );
    let err = MockConfig::from_yaml("routes:\n  - match: GET api\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes[0].match") && err.contains("line 2"),
        "{err}"
    );
    let err = MockConfig::from_yaml("latency: 5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("latency") && err.contains("no unit"), "{err}");
}

#[test]
fn config_yaml_sets_every_key() {
    let yaml = r"
default_limit: { requests: 10, window: 2m }
require_auth: true
latency: 5ms
retry_after: http_date
routes:
  - match: '* /api/v2/flows/{id}'
    rate: { requests: 3, window: 1s }
    concurrency: 4
    latency: 1.5s
";
    let config = MockConfig::from_yaml(yaml).unwrap();
    assert_eq!(config.default_limit, limit(10, 120));
    assert!(config.require_auth);
    assert_eq!(config.latency, Duration::from_millis(5));
    assert_eq!(config.retry_after, RetryAfterMode::HttpDate);
    let r = &config.routes[0];
    assert_eq!(
        (r.method.clone(), r.rate, r.concurrency),
        (None, limit(3, 1), Some(4))
    );
    assert_eq!(r.latency, Some(Duration::from_millis(1500)));
    assert!(r.path.matches("/api/v2/flows/abc"));
    assert_eq!(
        MockConfig::from_yaml("default_limit: off\n")
            .unwrap()
            .default_limit,
        None
    );
    assert_eq!(
        MockConfig::from_yaml("default_limit: null\n")
            .unwrap()
            .default_limit,
        None
    );
    assert_eq!(
        MockConfig::from_yaml("{}\n").unwrap().default_limit,
        limit(300, 60)
    );
}

#[test]
fn example_config_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mock.yaml");
    let config = MockConfig::load(&path).unwrap();
    assert!(
        config.tls.is_none(),
        "the example serves plain HTTP, as the scenarios expect"
    );
    // Its commented-out TLS block is valid once uncommented.
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("# tls:\n#   cert_out", "tls:\n  cert_out");
    let tls = MockConfig::from_yaml(&text)
        .unwrap()
        .tls
        .expect("TLS once uncommented");
    assert!(tls.cert_out.is_some());
}
