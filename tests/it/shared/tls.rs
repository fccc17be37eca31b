//! `rediss://`: a shared limit through a Redis that speaks TLS only, with a self-signed
//! certificate trusted through `shared.tls.ca_file`.

use super::*;
use crate::support::counting::start_counting;
use crate::support::redis::Redis;
use crate::support::*;

#[tokio::test]
async fn a_shared_limit_works_over_tls_with_a_private_ca() {
    let Some(redis) = Redis::start_tls() else {
        return;
    };
    let up = start_counting().await;
    let cert = redis.tls_cert.as_ref().unwrap().display().to_string();
    let tls = format!("  tls: {{ ca_file: '{cert}' }}");
    let limit = "{ rate: 2/min, burst: 2, mode: reject, shared: true }";
    let a = start_shared(&config(&redis, &up, limit, &tls)).await;
    let b = start_shared(&config(&redis, &up, limit, &tls)).await;
    let c = client();
    // Two instances, one budget of two: the third request is refused, so Redis counted all.
    assert_eq!(get(&c, &a.url("/x")).await.0, 200);
    assert_eq!(get(&c, &b.url("/x")).await.0, 200);
    assert_eq!(get(&c, &a.url("/x")).await.0, 429);
    assert!(redis.dump_all().contains(":l:"), "nothing stored in Redis");
}

/// Without the CA, the certificate is not trusted: Redis counts as unavailable (and the
/// fallback applies), not as a silent plain-text connection.
#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let Some(redis) = Redis::start_tls() else {
        return;
    };
    let up = start_counting().await;
    let limit = "{ rate: 2/min, mode: reject, shared: true }";
    let a = start_shared_any(&config(&redis, &up, limit, "")).await;
    wait_health(&a.limits, Health::Down).await;
}

#[test]
fn the_tls_section_is_checked() {
    set_secrets();
    let dir = crate::support::temp_dir("redis-tls-config");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let parse = |url: &str, ca: &str| {
        let yaml = format!(
            "upstreams:\n  up: {{ base_url: 'http://127.0.0.1:1' }}\nshared:\n  redis: {url}\n  key_secret_env: {SECRET_ENV}\n  tls: {{ ca_file: '{ca}' }}\n"
        );
        pacer::Config::parse(&yaml, std::path::Path::new("."))
    };
    let text = |r: Result<pacer::Config, pacer::config::ConfigErrors>| r.unwrap_err().to_string();
    let missing = dir.join("missing.pem").display().to_string();
    let not_pem = not_pem.display().to_string();
    let plain = text(parse("redis://127.0.0.1:6379/0", &not_pem));
    assert!(
        plain.contains("shared.tls.ca_file, line 6: applies to TLS only"),
        "{plain}"
    );
    let gone = text(parse("rediss://127.0.0.1:6379/0", &missing));
    assert!(
        gone.contains("shared.tls.ca_file, line 6: cannot read"),
        "{gone}"
    );
    let bad = text(parse("rediss://127.0.0.1:6379/0", &not_pem));
    assert!(bad.contains("holds no PEM certificate"), "{bad}");
    let yaml = format!(
        "upstreams:\n  up: {{ base_url: 'http://127.0.0.1:1' }}\nshared:\n  redis: rediss://127.0.0.1:6379/0\n  key_secret_env: {SECRET_ENV}\n"
    );
    assert!(pacer::Config::parse(&yaml, std::path::Path::new(".")).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
