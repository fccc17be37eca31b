//! GCRA's arithmetic, in one place for the local bucket (`local/bucket.rs`, nanoseconds of tokio
//! time) and the shared limits' Rust copy of the Redis script (`shared/gcra.rs`, microseconds of
//! Redis's clock; `shared/gcra.lua` repeats these lines).
//!
//! A bucket is one number, its theoretical arrival time `tat`: when it would be full again. With
//! emission interval `T` and burst `B`, the tolerance is `tau = (B-1)·T`; a request conforms at
//! any instant from `tat - tau` on, and one that goes at `at` moves `tat` to `max(tat, at) + T`.
//! A `tat` of zero is a full bucket.

/// `tau`: how far ahead of now `tat` may be and a request still go, `(burst-1)·interval`.
pub fn tolerance(interval: u64, burst: u64) -> u64 {
    interval.saturating_mul(burst.saturating_sub(1))
}

/// The first instant at which a request conforms.
pub fn conforms_from(tat: u64, tau: u64) -> u64 {
    tat.saturating_sub(tau)
}

/// `tat` after a request that goes at `at`.
pub fn after(tat: u64, at: u64, interval: u64) -> u64 {
    tat.max(at).saturating_add(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_three_then_one_per_interval() {
        let tau = tolerance(100, 3);
        let mut tat = 0;
        for _ in 0..3 {
            assert!(conforms_from(tat, tau) <= 1_000);
            tat = after(tat, 1_000, 100);
        }
        assert_eq!((tat, conforms_from(tat, tau)), (1_300, 1_100));
    }
}
