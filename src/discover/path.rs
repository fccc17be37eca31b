//! Grouping requests that match no route: a normalised path in which each segment that names
//! one thing among many (a number, a UUID, a long opaque token) becomes `{id}`, so
//! `/api/v2/architect/scripts/4b1c...` and `/api/v2/architect/scripts/77d0...` are one group and
//! the group's name is a route pattern pacer accepts as it is.

/// The segment every id becomes; a whole segment, so the result parses as a path pattern.
const ID: &str = "{id}";

/// Shortest segment taken for an opaque id when it is neither a number nor a UUID. Words in
/// API paths (`conversations`, `participants`, `authorization`) reach 13 letters or more but
/// have no digit; a segment of 16 or more with a digit is a key, a hash or an encoded id.
const OPAQUE_MIN: usize = 16;

/// `path` (already RFC 3986-normalised, without the query) with id-like segments as `{id}`.
/// Segments holding pattern syntax (`*`, `{`, `}`) become `{id}` too, so the result is always
/// a valid pattern that matches `path`.
pub fn group_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_id(seg) {
            out.push_str(ID);
        } else {
            out.push_str(seg);
        }
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

/// Whether a path segment names one resource among many.
pub fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let b = seg.as_bytes();
    b.iter().all(u8::is_ascii_digit)
        || is_uuid(b)
        || seg.contains(['*', '{', '}'])
        || (b.len() >= OPAQUE_MIN
            && b.iter().any(u8::is_ascii_digit)
            && b.iter().all(|&c| {
                c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b'%')
            }))
}

/// 8-4-4-4-12 hex digits, either case.
fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_uuids_and_opaque_ids_become_id() {
        assert_eq!(
            group_path("/api/v2/architect/scripts/6f1e2c3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b"),
            "/api/v2/architect/scripts/{id}"
        );
        assert_eq!(
            group_path("/api/v2/users/42/roles"),
            "/api/v2/users/{id}/roles"
        );
        assert_eq!(
            group_path("/api/v2/flows/5F9A0C2E4D6B8A1C3E5F7A9B"),
            "/api/v2/flows/{id}"
        );
        assert_eq!(
            group_path("/files/dGhpcyBpcyBhIHRva2Vu-1234_x"),
            "/files/{id}"
        );
    }

    #[test]
    fn words_and_short_names_stay() {
        for p in [
            "/api/v2/analytics/conversations/details/query",
            "/api/v2/users/me",
            "/api/v2/authorization/divisions",
            "/v1/abc123",
            "/",
            "/a//b/",
        ] {
            assert_eq!(group_path(p), p);
        }
        // A long word without a digit is a word.
        assert_eq!(
            group_path("/api/v2/externalcontacts/relationships"),
            "/api/v2/externalcontacts/relationships"
        );
        // Not quite a UUID: one dash moved.
        assert!(!is_uuid(b"6f1e2c3a4-b5d-4e6f-8a9b-0c1d2e3f4a5b"));
        assert!(is_uuid(b"6F1E2C3A-4B5D-4E6F-8A9B-0C1D2E3F4A5B"));
    }

    #[test]
    fn the_group_is_a_pattern_that_matches_the_path() {
        for p in [
            "/api/v2/users/42/roles/7",
            "/x/{weird}/a*b/c",
            "/api/v2/scripts/6f1e2c3a-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
            "/",
        ] {
            let g = group_path(p);
            let pattern = crate::route::PathPattern::parse(&g).unwrap();
            assert!(pattern.matches(p), "{g} does not match {p}");
        }
        assert_eq!(group_path("/x/{weird}/a*b/c"), "/x/{id}/{id}/c");
    }
}
