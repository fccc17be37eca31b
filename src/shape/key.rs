//! What a limit counts a request by.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use http::HeaderMap;

use crate::config::KeyKind;

/// A limit key: a hash of what the request is counted by. Raw tokens and header values are never
/// kept, so a key in memory, a log or (later) Redis reveals nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitKey(pub u64);

impl LimitKey {
    pub const GLOBAL: LimitKey = LimitKey(0);
}

/// Derives the key of a request for a limit of `kind`. A request without the token or header
/// it is keyed by shares the key of all such requests (it is still limited, never exempt).
pub fn key_for(kind: &KeyKind, headers: &HeaderMap, client_ip: IpAddr) -> LimitKey {
    match kind {
        KeyKind::Global => LimitKey::GLOBAL,
        KeyKind::Token => headers
            .get(http::header::AUTHORIZATION)
            .map(|v| hash_bytes(bearer(v.as_bytes())))
            .unwrap_or(LimitKey(1)),
        KeyKind::ClientIp => hash_of(&client_ip),
        KeyKind::Header(name) => headers
            .get(name)
            .map(|v| hash_bytes(v.as_bytes()))
            .unwrap_or(LimitKey(1)),
    }
}

/// The token part of `Bearer <token>`, or the whole value for other schemes.
fn bearer(value: &[u8]) -> &[u8] {
    match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case(b"bearer ") => value[7..].trim_ascii(),
        _ => value,
    }
}

// A keyed hash with a per-process random seed: equal inputs map to equal keys within one
// process, and keys cannot be reversed or precomputed from outside.
fn hasher() -> &'static std::collections::hash_map::RandomState {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    STATE.get_or_init(Default::default)
}

fn hash_bytes(bytes: &[u8]) -> LimitKey {
    // Keys 0 and 1 are reserved for "global" and "missing".
    LimitKey(hasher().hash_one(bytes).max(2))
}

fn hash_of<T: Hash>(value: &T) -> LimitKey {
    LimitKey(hasher().hash_one(value).max(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(auth).unwrap(),
        );
        h
    }

    #[test]
    fn token_key_ignores_scheme_case_and_differs_per_token() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let a = key_for(&KeyKind::Token, &headers("Bearer abc"), ip);
        let a2 = key_for(&KeyKind::Token, &headers("bearer abc"), ip);
        let b = key_for(&KeyKind::Token, &headers("Bearer abd"), ip);
        assert_eq!(a, a2);
        assert_ne!(a, b);
        assert_eq!(key_for(&KeyKind::Token, &HeaderMap::new(), ip), LimitKey(1));
    }
}
