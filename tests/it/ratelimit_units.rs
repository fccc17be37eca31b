//! The rate-limit header parsers (`pacer::ratelimit`) on the stable toolchain: the
//! `ratelimit_headers` fuzz target's body over hand-picked lies and random inputs
//! (`PACER_FUZZ_SMOKE_CASES` sets how many, 20,000 by default).

use rand::{Rng, SeedableRng};

use pacer::ratelimit::fuzz_entry;

/// Values that lie or break the grammar, under every name (byte 0 and 1 pick the names).
const NASTY: &[&str] = &[
    "-1",
    "+5",
    "1.5",
    "99999999999999999999999",
    "18446744073709551615",
    "4294967296",
    "",
    " 7 ",
    "\"p\";q=100;w=60, \"p\";q=1;w=1",
    "\"p\";r=-4;t=-9",
    "\"p\";q=999999999999999;w=999999999999999",
    "p;q=?1;w=:AAA=:",
    "(\"a\" \"b\");q=1",
    "\"unterminated",
    "10, 10;w=1, 50;w=60",
    "10;w=0",
];

#[test]
fn fuzz_target_survives_lies() {
    for a in 0..11u8 {
        for b in 0..11u8 {
            for first in NASTY {
                for second in NASTY {
                    let mut input = vec![a, b];
                    input.extend_from_slice(first.as_bytes());
                    input.push(b'\n');
                    input.extend_from_slice(second.as_bytes());
                    fuzz_entry(&input);
                }
            }
        }
    }
}

#[test]
fn fuzz_target_survives_random_bytes() {
    let cases: u32 = std::env::var("PACER_FUZZ_SMOKE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    // Mostly the bytes structured fields are made of, so inputs get deep into the grammar.
    let alphabet = b"\"abpqrtw;=,() 0123456789-.?:*";
    for _ in 0..cases {
        let len = rng.random_range(0..48);
        let mut input: Vec<u8> = vec![rng.random(), rng.random()];
        input.extend((0..len).map(|_| match rng.random_range(0..6) {
            0 => rng.random(),
            _ => alphabet[rng.random_range(0..alphabet.len())],
        }));
        fuzz_entry(&input);
    }
}
