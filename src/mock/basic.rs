//! `Authorization: Basic base64(id:secret)` as the OAuth client-credentials grant sends it.
//!
//! A dozen lines of base64 decoding here instead of one more dependency for a mock.

use http::header::AUTHORIZATION;
use http::HeaderMap;

/// The client id of well-formed Basic credentials (a non-empty id, a colon, any secret).
pub(crate) fn client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(decode(encoded.trim())?).ok()?;
    let (id, _secret) = decoded.split_once(':')?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// Standard base64 with optional padding; None on any other character.
fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover character cannot encode a byte.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_standard_base64() {
        assert_eq!(decode("aWQ6c2VjcmV0").unwrap(), b"id:secret");
        assert_eq!(decode("YQ==").unwrap(), b"a");
        assert_eq!(decode("YWI=").unwrap(), b"ab");
        assert!(decode("a$b").is_none());
        assert!(decode("Y").is_none());
    }

    #[test]
    fn client_id_needs_basic_id_and_colon() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Basic aWQ6c2VjcmV0".parse().unwrap());
        assert_eq!(client_id(&h).as_deref(), Some("id"));
        h.insert(AUTHORIZATION, "Basic bm9jb2xvbg==".parse().unwrap()); // "nocolon"
        assert_eq!(client_id(&h), None);
        h.insert(AUTHORIZATION, "Bearer aWQ6c2VjcmV0".parse().unwrap());
        assert_eq!(client_id(&h), None);
    }
}
