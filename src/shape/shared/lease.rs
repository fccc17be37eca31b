//! Shared concurrency caps: a lease-based semaphore in Redis.
//!
//! Each key has a sorted set of holders scored by when their lease ends. Taking a slot drops
//! ended leases and adds this request if fewer than the cap hold one; a held lease is renewed
//! every [`LEASE`]/3 while the request runs and removed when it ends. An instance that dies
//! (even by SIGKILL) stops renewing, so its slots come back by themselves within [`LEASE`].
//!
//! Waiters queue locally in FIFO order per key (a fair lock): only the head asks Redis, again
//! when a slot of this instance frees or every [`POLL`] for slots freed elsewhere.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::{Store, Unavailable};
use crate::shape::LimitKey;

/// How long a lease lasts without renewal: a crashed instance's slots return within this.
pub const LEASE: Duration = Duration::from_secs(3);

/// How often the head of a local queue asks Redis again while the cap is reached elsewhere.
const POLL: Duration = Duration::from_millis(10);

pub(super) struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    limit: String,
    script: redis::Script,
    cap: AtomicU32,
    /// Leases this instance holds: member -> Redis key.
    held: Mutex<HashMap<String, String>>,
    /// One fair lock per key with waiters: the local FIFO line.
    lines: Mutex<HashMap<LimitKey, Arc<tokio::sync::Mutex<()>>>>,
    freed: Notify,
    instance: String,
    next: AtomicU64,
}

/// A held slot; dropping it gives the slot back.
pub(super) struct Lease {
    inner: Arc<Inner>,
    member: String,
}

// === impl Leases ===

impl Leases {
    pub(super) fn new(store: Arc<Store>, limit: &str, cap: u32) -> Leases {
        let inner = Arc::new(Inner {
            store,
            limit: limit.to_owned(),
            script: redis::Script::new(include_str!("lease.lua")),
            cap: AtomicU32::new(cap),
            held: Mutex::new(HashMap::new()),
            lines: Mutex::new(HashMap::new()),
            freed: Notify::new(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            next: AtomicU64::new(0),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(renew(Arc::downgrade(&inner)));
        }
        Leases { inner }
    }

    pub(super) fn cap(&self) -> u32 {
        self.inner.cap.load(Ordering::Relaxed)
    }

    pub(super) fn set_cap(&self, cap: u32) {
        self.inner.cap.store(cap, Ordering::Relaxed);
        self.inner.freed.notify_waiters();
    }

    /// Slots this instance holds.
    pub(super) fn held(&self) -> usize {
        self.inner.held.lock().len()
    }

    /// Takes a slot: waits in line until `deadline` (None: reject mode, no wait). Ok(None)
    /// when the deadline passed first.
    pub(super) async fn acquire(
        &self,
        key: LimitKey,
        deadline: Option<Instant>,
        depth: &AtomicUsize,
    ) -> Result<Option<Lease>, Unavailable> {
        let inner = &self.inner;
        let line = inner.line(key);
        let _head = match (line.try_lock(), deadline) {
            (Ok(head), _) => head,
            (Err(_), None) => return Ok(None),
            (Err(_), Some(deadline)) => {
                depth.fetch_add(1, Ordering::Relaxed);
                let _queued = Decrement(depth);
                match tokio::time::timeout_at(deadline, line.lock()).await {
                    Ok(head) => head,
                    Err(_) => return Ok(None),
                }
            }
        };
        loop {
            let freed = inner.freed.notified();
            if let Some(lease) = inner.take(key).await? {
                return Ok(Some(lease));
            }
            let Some(deadline) = deadline.filter(|d| *d > Instant::now()) else {
                return Ok(None);
            };
            let wake = (Instant::now() + POLL).min(deadline);
            tokio::select! {
                _ = freed => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Reads the live cap back from Redis.
    pub(super) async fn refresh(&self) {
        let mut hget = redis::cmd("HGET");
        hget.arg(self.inner.store.params_key(&self.inner.limit))
            .arg("concurrency");
        let read = self.inner.store.command::<Option<u32>>(hget).await;
        if let Ok(Some(cap)) = read.map(|c| c.filter(|&c| c > 0)) {
            self.inner.cap.store(cap, Ordering::Relaxed);
        }
    }
}

// === impl Inner ===

impl Inner {
    fn set_key(&self, key: LimitKey) -> String {
        format!("{}:leases", self.store.bucket_key(&self.limit, key.0))
    }

    /// One attempt at a slot.
    async fn take(self: &Arc<Self>, key: LimitKey) -> Result<Option<Lease>, Unavailable> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let member = format!("{}:{n}", self.instance);
        let set = self.set_key(key);
        let (taken, cap) = self.run("take", &set, &member).await?;
        self.cap.store(cap, Ordering::Relaxed);
        if taken == 0 {
            return Ok(None);
        }
        self.held.lock().insert(member.clone(), set);
        Ok(Some(Lease {
            inner: self.clone(),
            member,
        }))
    }

    async fn run(&self, op: &str, set: &str, member: &str) -> Result<(u32, u32), Unavailable> {
        let mut call = self.script.prepare_invoke();
        call.key(set)
            .key(self.store.params_key(&self.limit))
            .arg(op)
            .arg(member)
            .arg(LEASE.as_micros() as u64)
            .arg(self.cap.load(Ordering::Relaxed));
        self.store
            .call(|mut c| async move { call.invoke_async(&mut c).await })
            .await
    }

    fn line(&self, key: LimitKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut lines = self.lines.lock();
        // Lines nobody waits in are dropped, so the table holds only keys with waiters.
        lines.retain(|_, l| Arc::strong_count(l) > 1);
        lines.entry(key).or_default().clone()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let set = self.inner.held.lock().remove(&self.member);
        let Some(set) = set else { return };
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(set).arg(&self.member);
        let inner = self.inner.clone();
        // Without a runtime to run it on, the lease expires by itself.
        super::spawn(async move {
            let _ = inner.store.command::<()>(zrem).await;
            inner.freed.notify_waiters();
        });
    }
}

struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Renews every held lease each LEASE/3 until the limiter is dropped.
async fn renew(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let Some(inner) = inner.upgrade() else { return };
        let held: Vec<(String, String)> = (inner.held.lock().iter())
            .map(|(m, s)| (m.clone(), s.clone()))
            .collect();
        for (member, set) in held {
            let _ = inner.run("renew", &set, &member).await;
        }
    }
}
