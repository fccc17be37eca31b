//! `rediss://`: a shared limit through a Redis that speaks TLS only, with a self-signed
//! certificate trusted through `shared.tls.ca_file`.

use super::support::counting::start_counting;
use super::support::redis::Redis;
use super::support::*;
use super::*;

#[tokio::test]
async fn a_shared_limit_works_over_tls_with_a_private_ca() {
    let Some(redis) = Redis::start_tls() else { return };
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
    let Some(redis) = Redis::start_tls() else { return };
    let up = start_counting().await;
    let limit = "{ rate: 2/min, mode: reject, shared: true }";
    let a = start_shared_any(&config(&redis, &up, limit, "")).await;
    wait_health(&a.limits, Health::Down).await;
}
