//! Limits shared between instances through a real Redis (a private `redis-server` per test).
//!
//! Several pacers run in this process, each on port 0 with its own limiters, exactly as
//! separate processes would: they share nothing but the Redis. Each test is bounded in time.

mod concurrency;
mod keys;
mod quota;
mod rate;
mod script;
mod tls;
mod unavailable;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use pacer::shape::layer::Limits;
use pacer::shape::shared::Health;

use crate::support::counting::Counting;
use crate::support::redis::Redis;
use crate::support::*;

/// Waits (5 s at most) until `check` holds, looking every 5 ms: for state pacer writes to Redis
/// after an answer, which the test can read but not be told of.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The secret every test instance reads (`key_secret_env`), and a second one.
pub const SECRET_ENV: &str = "PACER_TEST_SHARED_SECRET";
pub const OTHER_SECRET_ENV: &str = "PACER_TEST_SHARED_SECRET_2";

const SECRETS: [(&str, &str); 2] = [
    (SECRET_ENV, "test-secret-0123456789"),
    (OTHER_SECRET_ENV, "another-secret-9876543210"),
];

/// Puts the secrets in the environment before `main`, while the process has one thread. Every
/// test of the crate shares this process, and writing the environment while another thread
/// reads it is undefined behaviour: std locks its own readers, but C code does not (glibc's
/// resolver reads `RES_OPTIONS` during a `getaddrinfo`, which tests that resolve `localhost` run).
#[used]
#[cfg_attr(
    any(target_os = "linux", target_os = "android", target_os = "freebsd"),
    link_section = ".init_array"
)]
#[cfg_attr(target_vendor = "apple", link_section = "__DATA,__mod_init_func")]
static SECRETS_BEFORE_MAIN: extern "C" fn() = {
    extern "C" fn set() {
        for (name, value) in SECRETS {
            std::env::set_var(name, value);
        }
    }
    set
};

/// Where no constructor runs before `main` (other platforms), sets the secrets on first use.
fn set_secrets() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (name, value) in SECRETS {
            if std::env::var_os(name).is_none() {
                std::env::set_var(name, value);
            }
        }
    });
}

/// A config with one shared limit `l` on every path; `{up}` is the upstream. Unless
/// `extra_shared` sets one, the Redis timeout is 1 s: tests run side by side on a loaded
/// machine, where a 50 ms stall would switch to the fallback and test that instead.
pub fn config(redis: &Redis, up: &Counting, limit: &str, extra_shared: &str) -> String {
    let timeout = match extra_shared.contains("timeout:") {
        true => "",
        false => "  timeout: 1s",
    };
    format!(
        "
upstreams:
  up: {{ base_url: 'http://{up}' }}
shared:
  redis: {redis}
  key_secret_env: {SECRET_ENV}
  instances: 3
{timeout}
{extra_shared}
limits:
  l: {limit}
routes:
  - {{ match: '* /**', limits: [l] }}
retry:
  max_attempts: 3
  backoff: {{ base: 10ms, max: 20ms }}
",
        up = up.addr,
        redis = redis.url(),
    )
}

/// One pacer instance: its proxy, limits and admin address.
pub struct Instance {
    pub pacer: Running,
    pub limits: Arc<Limits>,
    pub admin: std::net::SocketAddr,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        self.pacer.url(path)
    }
}

/// Starts one pacer and waits (bounded) until its Redis connection is up.
pub async fn start_shared(yaml: &str) -> Instance {
    let instance = start_shared_any(yaml).await;
    wait_health(&instance.limits, Health::Up).await;
    instance
}

/// Starts one pacer without waiting for Redis.
pub async fn start_shared_any(yaml: &str) -> Instance {
    set_secrets();
    let config = pacer::Config::parse(yaml, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n---\n{yaml}"));
    let (pacer, limits, admin) = start_app_admin(pacer::app::App::new(config).unwrap()).await;
    Instance {
        pacer,
        limits,
        admin,
    }
}

pub async fn wait_health(limits: &Limits, want: Health) {
    let store = limits.store().expect("a shared limit");
    for _ in 0..500 {
        if store.health() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("Redis health never became {want:?}: {:?}", store.health());
}

pub fn with_token(url: &str, token: &str) -> http::Request<Full<Bytes>> {
    request("GET", url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap()
}
