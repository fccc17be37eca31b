//! Arbitrary bytes as two rate-limit header values of any family (Genesys, IETF structured and
//! first generation, X-RateLimit): parsing must never panic, never return a reset or window above
//! the cap, and never a Genesys remaining above its quota.
//!
//! The input layout and the invariants live in `pacer::ratelimit::fuzz_entry`, which the
//! stable-toolchain smoke test in `tests/it/ratelimit_units.rs` runs too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pacer::ratelimit::fuzz_entry(data);
});
