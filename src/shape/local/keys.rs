//! The live keys of a keyed limit: a sharded map, bounded, with idle expiry.
//!
//! A shard's lock is held only for a lookup or an insert, never while a key decides, so requests
//! of different keys meet at most on a shard's lock for a few dozen nanoseconds. Expiry is lazy
//! and incremental: every `key_idle / SHARDS` one request sweeps one shard, so each shard is
//! swept once per `key_idle` and an idle key goes within about twice `key_idle`. When the table
//! is full, a newcomer sweeps every shard (at most once a second) before it is refused.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::gate::KeyState;
use super::Shared;
use crate::shape::LimitKey;

const SHARDS: usize = 16;

/// A [`LimitKey`] is already a keyed hash: use it as is.
#[derive(Default)]
struct KeyHasher(u64);

type Map = HashMap<LimitKey, Arc<KeyState>, BuildHasherDefault<KeyHasher>>;

pub(super) struct KeyTable {
    shards: Box<[Mutex<Map>]>,
    live: AtomicUsize,
    max: usize,
    idle: Duration,
    /// Reading at which the next shard is due for a sweep.
    next_sweep: AtomicU64,
    /// Reading before which a full table is not swept whole again.
    next_full_sweep: AtomicU64,
    cursor: AtomicUsize,
}

/// The table holds `max_keys` keys and none of them is idle.
#[derive(Debug)]
pub(super) struct Exhausted;

// === impl KeyHasher ===

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for LimitKey (it hashes one u64); fold anything else in, FNV-style.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

// === impl KeyTable ===

impl KeyTable {
    pub(super) fn new(max: usize, idle: Duration) -> KeyTable {
        KeyTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            live: AtomicUsize::new(0),
            max,
            idle,
            next_sweep: AtomicU64::new(0),
            next_full_sweep: AtomicU64::new(0),
            cursor: AtomicUsize::new(0),
        }
    }

    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The key's state, created when it is new and there is room.
    pub(super) fn get_or_insert(
        &self,
        sh: &Arc<Shared>,
        key: LimitKey,
        now: Instant,
    ) -> Result<Arc<KeyState>, Exhausted> {
        self.maintain(sh, now);
        if let Some(state) = self.get(key) {
            return Ok(state);
        }
        let room = self.reserve() || (self.sweep_all(sh, now) && self.reserve());
        if !room {
            return Err(Exhausted);
        }
        match self.shard(key).entry(key) {
            Entry::Occupied(e) => {
                // Another request created it meanwhile.
                self.live.fetch_sub(1, Ordering::Relaxed);
                Ok(Arc::clone(e.get()))
            }
            Entry::Vacant(e) => Ok(Arc::clone(
                e.insert(Arc::new(KeyState::new(Arc::clone(sh), now))),
            )),
        }
    }

    pub(super) fn get(&self, key: LimitKey) -> Option<Arc<KeyState>> {
        self.shard(key).get(&key).cloned()
    }

    /// Every live key (for a live change that must reach them all).
    pub(super) fn all(&self) -> Vec<Arc<KeyState>> {
        let mut all = Vec::with_capacity(self.live());
        for shard in self.shards.iter() {
            all.extend(shard.lock().values().cloned());
        }
        all
    }

    fn shard(&self, key: LimitKey) -> MutexGuard<'_, Map> {
        // The map indexes by the low bits and tags by the top ones: pick the shard from the
        // middle, so keys of one shard still differ where the map looks.
        self.shards[(key.0 >> 32) as usize % SHARDS].lock()
    }

    /// Counts one more key if there is room.
    fn reserve(&self) -> bool {
        self.live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Sweeps one shard when one is due; one request does it, the others go on.
    fn maintain(&self, sh: &Shared, now: Instant) {
        let reading = sh.epoch.reading(now).as_u64();
        let due = self.next_sweep.load(Ordering::Relaxed);
        if reading < due {
            return;
        }
        let next = reading.saturating_add(self.step().as_nanos() as u64);
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % SHARDS;
            self.sweep(i, sh, now);
        }
    }

    /// The table is full: sweep every shard, at most once a second (or once per incremental
    /// step, when that is shorter), so that a flood of new keys cannot make each refusal walk
    /// the whole table. Returns whether it swept.
    fn sweep_all(&self, sh: &Shared, now: Instant) -> bool {
        let reading = sh.epoch.reading(now).as_u64();
        let due = self.next_full_sweep.load(Ordering::Relaxed);
        let every = self.step().min(Duration::from_secs(1));
        let next = reading.saturating_add(every.as_nanos() as u64);
        if reading < due
            || self
                .next_full_sweep
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        for i in 0..SHARDS {
            self.sweep(i, sh, now);
        }
        true
    }

    /// How often one shard is swept: each once per `key_idle`.
    fn step(&self) -> Duration {
        (self.idle / SHARDS as u32).max(Duration::from_millis(1))
    }

    /// Forgets the idle keys of shard `i`. A key busy right now is not idle.
    fn sweep(&self, i: usize, sh: &Shared, now: Instant) {
        let mut map = self.shards[i].lock();
        let before = map.len();
        map.retain(|_, state| match state.try_lock() {
            Some(mut inner) if inner.is_idle(sh, now, self.idle) => {
                inner.removed = true;
                false
            }
            _ => true,
        });
        self.live.fetch_sub(before - map.len(), Ordering::Relaxed);
    }
}
