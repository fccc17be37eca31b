//! Arbitrary bytes as a request path: normalising never panics, is idempotent, and leaves no
//! dot segment and no escaped unreserved character.
//!
//! The invariants live in `pacer::route::normalize::fuzz_entry`, which the stable-toolchain
//! smoke test in `tests/it/hardening.rs` runs too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pacer::route::normalize::fuzz_entry(data);
});
