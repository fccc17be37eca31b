//! Who shares with whom: prefix and secret; and what Redis holds.

use super::*;
use crate::support::counting::start_counting;
use crate::support::redis::Redis;
use crate::support::*;

const ONE_PER_MINUTE: &str = "{ rate: 1/min, mode: reject, key: token, shared: true }";

/// Whether a second request (through `b`) is refused after a first one through `a`.
async fn shares(a: &Instance, b: &Instance, token: &str) -> bool {
    let c = client();
    assert_eq!(send(&c, with_token(&a.url("/x"), token)).await.0, 200);
    send(&c, with_token(&b.url("/x"), token)).await.0 == 429
}

#[tokio::test]
async fn only_the_same_prefix_and_secret_share() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let base = config(&redis, &up, ONE_PER_MINUTE, "");
    let a = start_shared(&base).await;
    let same = start_shared(&base).await;
    let prefix = start_shared(&config(
        &redis,
        &up,
        ONE_PER_MINUTE,
        "  key_prefix: other-org",
    ))
    .await;
    let secret = start_shared(&base.replace(
        &format!("key_secret_env: {SECRET_ENV}\n"),
        &format!("key_secret_env: {OTHER_SECRET_ENV}\n"),
    ))
    .await;
    assert!(
        shares(&a, &same, "token-1").await,
        "same prefix and secret must share"
    );
    assert!(
        !shares(&a, &prefix, "token-2").await,
        "another prefix must not share"
    );
    assert!(
        !shares(&a, &secret, "token-3").await,
        "another secret must not share"
    );
}

#[tokio::test]
async fn no_raw_token_reaches_redis() {
    let Some(redis) = Redis::start() else { return };
    let up = start_counting().await;
    let limit = "{ rate: 10/s, concurrency: 2, key: token, shared: true }";
    let a = start_shared(&config(&redis, &up, limit, "")).await;
    let token = "raw-token-must-not-leak-4f2a";
    let c = client();
    for _ in 0..3 {
        assert_eq!(send(&c, with_token(&a.url("/x"), token)).await.0, 200);
    }
    let dump = redis.dump_all();
    assert!(
        dump.contains("pacer:l:"),
        "the limit's keys are in Redis:\n{dump}"
    );
    assert!(!dump.contains(token), "the raw token is in Redis:\n{dump}");
    assert!(
        !dump.contains("4f2a"),
        "part of the raw token is in Redis:\n{dump}"
    );
}

#[test]
fn shared_true_without_the_section_names_the_line() {
    set_secrets();
    let yaml = "upstreams:\n  up: { base_url: 'http://127.0.0.1:1' }\nlimits:\n  l: { rate: 1/s, shared: true }\n";
    let err = pacer::Config::parse(yaml, std::path::Path::new(".")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("limits.l.shared, line 4"), "{text}");
}

#[test]
fn the_shared_section_is_checked() {
    set_secrets();
    let yaml = "upstreams:\n  up: { base_url: 'http://127.0.0.1:1' }\nshared:\n  redis: http://x\n  key_secret_env: PACER_TEST_UNSET_SECRET\n  on_unavailable: maybe\n  bogus: 1\n";
    let err = pacer::Config::parse(yaml, std::path::Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("shared"), "{err}");
    let yaml = "upstreams:\n  up: { base_url: 'http://127.0.0.1:1' }\nshared:\n  redis: http://x\n  key_secret_env: PACER_TEST_UNSET_SECRET\n  on_unavailable: maybe\n";
    let text = pacer::Config::parse(yaml, std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    for part in [
        "shared.redis, line 4: must be redis://",
        "shared.key_secret_env, line 5: environment variable PACER_TEST_UNSET_SECRET is not set",
        "shared.on_unavailable, line 6: unknown value \"maybe\"",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

#[test]
fn the_redis_password_never_shows() {
    set_secrets();
    let yaml = format!(
        "upstreams:\n  up: {{ base_url: 'http://127.0.0.1:1' }}\nshared:\n  redis: redis://:hunter2@127.0.0.1:6379/0\n  key_secret_env: {SECRET_ENV}\nlimits:\n  l: {{ rate: 1/s, shared: true }}\n"
    );
    let config = pacer::Config::parse(&yaml, std::path::Path::new(".")).unwrap();
    let described = pacer::app::describe(&config);
    assert!(
        described.contains("redis://:redacted@127.0.0.1:6379/0"),
        "{described}"
    );
    // In the config's own words, not Rust's debug notation.
    assert!(
        described.contains("on_unavailable local instances 1 limits l\n"),
        "{described}"
    );
    for shown in [described, format!("{config:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("test-secret"), "{shown}");
    }
}
