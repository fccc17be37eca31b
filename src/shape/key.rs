//! What a limit counts a request by.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

use crate::config::KeyKind;

pub use crate::exchange::LimitKey;

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

/// Keys of shared limits: HMAC-SHA-256 with the shared secret, truncated to 64 bits. Equal in
/// every instance with the same secret (the per-process seed of [`key_for`] is not), and what
/// Redis holds can be neither reversed nor matched against a token without the secret.
#[derive(Clone)]
pub struct SharedKeys {
    mac: Hmac<Sha256>,
}

impl SharedKeys {
    pub fn new(secret: &[u8]) -> SharedKeys {
        SharedKeys {
            // HMAC takes keys of any length; the error type exists for other MACs.
            mac: Hmac::new_from_slice(secret).expect("HMAC accepts any key length"),
        }
    }

    /// The key of a request for a shared limit of `kind`; global and missing as in [`key_for`].
    pub fn key_for(&self, kind: &KeyKind, headers: &HeaderMap, client_ip: IpAddr) -> LimitKey {
        match kind {
            KeyKind::Global => LimitKey::GLOBAL,
            KeyKind::Token => headers
                .get(http::header::AUTHORIZATION)
                .map_or(LimitKey(1), |v| self.mac(b"t", bearer(v.as_bytes()))),
            KeyKind::ClientIp => self.mac(b"i", client_ip.to_string().as_bytes()),
            KeyKind::Header(name) => headers
                .get(name)
                .map_or(LimitKey(1), |v| self.mac(b"h", v.as_bytes())),
        }
    }

    /// The kind is part of the input so a token and a header with the same value differ.
    fn mac(&self, kind: &[u8], bytes: &[u8]) -> LimitKey {
        let mut mac = self.mac.clone();
        mac.update(kind);
        mac.update(b":");
        mac.update(bytes);
        let out = mac.finalize().into_bytes();
        let first: [u8; 8] = out[..8].try_into().expect("SHA-256 gives 32 bytes");
        LimitKey(u64::from_be_bytes(first).max(2))
    }
}

impl std::fmt::Debug for SharedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKeys(<secret>)")
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

    #[test]
    fn shared_keys_are_equal_across_instances_and_differ_per_secret() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let h = headers("Bearer abc");
        let one = SharedKeys::new(b"0123456789abcdef");
        let two = SharedKeys::new(b"0123456789abcdef");
        let other = SharedKeys::new(b"fedcba9876543210");
        let k = one.key_for(&KeyKind::Token, &h, ip);
        assert_eq!(k, two.key_for(&KeyKind::Token, &h, ip));
        assert_ne!(k, other.key_for(&KeyKind::Token, &h, ip));
        assert_ne!(k, one.key_for(&KeyKind::Token, &headers("Bearer abd"), ip));
        // HMAC-SHA-256("0123456789abcdef", "t:abc"), first 8 bytes: a fixed value, so a change
        // of derivation (which would split a fleet running two versions) fails here.
        assert_eq!(format!("{:016x}", k.0), EXPECTED_TOKEN_KEY);
    }

    const EXPECTED_TOKEN_KEY: &str = "cff1066af8a6c3f6";
}
