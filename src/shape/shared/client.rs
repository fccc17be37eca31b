//! The connection to Redis that every shared limit of a config uses, and whether it is usable.
//!
//! One multiplexed [`ConnectionManager`] pipelines the calls of every request over one
//! connection and reconnects by itself. A background task connects at start, and while Redis is
//! down checks it every [`CHECK_EVERY`]; requests never wait for that, they see [`Health::Down`]
//! and take the `on_unavailable` path at once. A failed or slow call (past `timeout`) marks
//! Redis down; each switch is logged once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;
use tokio::time::Instant;

use super::gcra::{Op, Params, Reply};
use super::stats::Stats;
use crate::config::SharedStore;

/// How often a down Redis is tried again (live parameters are read back by `live.rs`).
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not connected yet: a request waits for the first connection, at most `timeout`.
    Connecting,
    Up,
    Down,
}

/// Redis could not answer in time; the reason is counted and logged, not handed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The Redis of a config's `shared:` section.
pub struct Store {
    pub(super) config: SharedStore,
    conn: RwLock<Option<ConnectionManager>>,
    health: watch::Sender<Health>,
    gcra: redis::Script,
    pub(super) quota: redis::Script,
    pub(super) stats: Stats,
}

// === impl Store ===

impl Store {
    /// Starts connecting in the background on the current tokio runtime, if there is one
    /// (otherwise at the first call).
    pub fn new(config: SharedStore) -> Arc<Store> {
        let store = Arc::new(Store {
            config,
            conn: RwLock::new(None),
            health: watch::Sender::new(Health::Connecting),
            gcra: redis::Script::new(include_str!("gcra.lua")),
            quota: redis::Script::new(include_str!("quota.lua")),
            stats: Stats::default(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(watch_health(Arc::downgrade(&store)));
        }
        store
    }

    /// The client's latency and error series, for the metrics registry.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn health(&self) -> Health {
        *self.health.borrow()
    }

    /// `{prefix}:{limit}:{key}`; the key is already an HMAC, printed as 16 hex digits.
    pub fn bucket_key(&self, limit: &str, key: u64) -> String {
        format!("{}:{limit}:{key:016x}", self.config.key_prefix)
    }

    /// `{prefix}:{limit}:params`: the live rate and burst every instance reads.
    pub fn params_key(&self, limit: &str) -> String {
        format!("{}:{limit}:params", self.config.key_prefix)
    }

    /// One GCRA operation on a key's bucket; `params` apply unless live ones are set in Redis.
    pub async fn gcra(
        &self,
        limit: &str,
        key: u64,
        params: Params,
        op: Op,
    ) -> Result<Reply, Unavailable> {
        let (name, arg) = op.script_args();
        let mut call = self.gcra.prepare_invoke();
        call.key(self.bucket_key(limit, key))
            .key(self.params_key(limit))
            .arg(name)
            .arg("")
            .arg(params.interval)
            .arg(params.burst)
            .arg(arg);
        match params.aimd {
            Some(a) => call.arg(a.factor).arg(a.floor).arg(a.step).arg(a.every),
            None => call.arg("").arg("").arg("").arg(""),
        };
        let reply: (u8, u64, u64, u64, u64) = self
            .call(|mut conn| async move { call.invoke_async(&mut conn).await })
            .await?;
        Ok(Reply::from(reply))
    }

    /// Runs one command (see [`Store::call`]).
    pub async fn command<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, Unavailable> {
        self.call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Runs one Redis call under the timeout; a failure marks Redis down.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.ready().await.ok_or(Unavailable)?;
        let start = Instant::now();
        let result = tokio::time::timeout(self.config.timeout, f(conn)).await;
        self.stats.latency(start.elapsed());
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.failed(error_kind(&e), &e.to_string());
                Err(Unavailable)
            }
            Err(_) => {
                self.failed("timeout", "no answer within shared.timeout");
                Err(Unavailable)
            }
        }
    }

    /// The connection, once Redis is up; while connecting, waits for it at most `timeout`.
    async fn ready(&self) -> Option<ConnectionManager> {
        if self.health() == Health::Connecting {
            let mut rx = self.health.subscribe();
            let first = rx.wait_for(|h| *h != Health::Connecting);
            let _ = tokio::time::timeout(self.config.timeout, first).await;
        }
        if self.health() != Health::Up {
            return None;
        }
        self.conn.read().clone()
    }

    fn failed(&self, kind: &'static str, detail: &str) {
        self.stats.error(kind);
        self.set_health(Health::Down, detail);
    }

    fn set_health(&self, to: Health, detail: &str) {
        let from = self.health.send_replace(to);
        if from == to {
            return;
        }
        match to {
            Health::Up => tracing::info!(
                prefix = %self.config.key_prefix,
                "shared limits: Redis answers; limits are shared again"
            ),
            Health::Down => tracing::warn!(
                prefix = %self.config.key_prefix,
                on_unavailable = ?self.config.on_unavailable,
                error = detail,
                "shared limits: Redis is unavailable; applying on_unavailable until it answers"
            ),
            Health::Connecting => {}
        }
    }

    /// Connects (first time) or pings (after a failure); true when Redis answered.
    async fn check(&self) -> bool {
        let existing = self.conn.read().clone();
        let timeout = self.config.timeout.max(Duration::from_millis(200));
        let result = match existing {
            Some(mut conn) => {
                let ping = redis::cmd("PING");
                let answer = ping.query_async::<String>(&mut conn);
                tokio::time::timeout(timeout, answer)
                    .await
                    .map(|r| r.map(drop))
            }
            None => tokio::time::timeout(timeout, self.connect()).await,
        };
        match result {
            Ok(Ok(())) => {
                self.set_health(Health::Up, "");
                true
            }
            Ok(Err(e)) => {
                self.failed(error_kind(&e), &e.to_string());
                false
            }
            Err(_) => {
                self.failed("timeout", "no answer within shared.timeout");
                false
            }
        }
    }

    async fn connect(&self) -> redis::RedisResult<()> {
        let url = self.config.redis.as_str();
        let client = match &self.config.tls_ca {
            Some(ca) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        // Reconnects are quick and few: requests do not wait for them (they fall back), and
        // the health check tries again every CHECK_EVERY.
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(self.config.timeout.max(Duration::from_millis(200)))
            .set_response_timeout(self.config.timeout)
            .set_number_of_retries(1)
            .set_max_delay(CHECK_EVERY.as_millis() as u64);
        let conn = ConnectionManager::new_with_config(client, cfg).await?;
        *self.conn.write() = Some(conn);
        Ok(())
    }
}

/// Connects, then keeps checking a down Redis until the store is dropped.
async fn watch_health(store: Weak<Store>) {
    loop {
        let Some(s) = store.upgrade() else { return };
        if s.health() != Health::Up {
            s.check().await;
        }
        drop(s);
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// The `kind` label of `pacer_shared_redis_errors_total`.
fn error_kind(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
        "connection"
    } else if e.kind() == redis::ErrorKind::AuthenticationFailed {
        "auth"
    } else if e.kind() == redis::ErrorKind::ResponseError {
        "response"
    } else {
        "other"
    }
}
