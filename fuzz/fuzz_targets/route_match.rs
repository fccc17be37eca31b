//! Arbitrary route patterns against arbitrary paths (a few segments over a small alphabet, so
//! they meet often): the linear matcher must agree with a plain backtracking one.
//!
//! The input layout and the invariant live in `pacer::route::pattern::fuzz_entry`, which the
//! stable-toolchain smoke test in `tests/it/hardening.rs` runs too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pacer::route::pattern::fuzz_entry(data);
});
