//! Arbitrary bytes as `Retry-After`, `inin-ratelimit-reset` and `X-RateLimit-Reset` values, with an
//! arbitrary clock: parsing must never panic and never return a wait above the cap.
//!
//! The input layout and the invariants live in `pacer::retry::retry_after::fuzz_entry`, which the
//! stable-toolchain smoke test in `tests/it/retry_units.rs` runs too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pacer::retry::retry_after::fuzz_entry(data);
});
