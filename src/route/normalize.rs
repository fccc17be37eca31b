//! Request paths normalised per RFC 3986 (section 6.2.2) before routing and forwarding.
//!
//! Without this, `/api/v2/%73cripts/1`, `/api/v2/x/../scripts/1` and `/api/v2/./scripts/1` name
//! the same resource as `/api/v2/scripts/1` upstream but miss the route `GET /api/v2/scripts/**`
//! and pass its limits unshaped. Two steps, in the RFC's order:
//!
//! 1. Percent-encoding: escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded,
//!    the hex digits of every other escape are upper-cased. `%2F` stays encoded: it is data, not
//!    a separator.
//! 2. Dot segments: `.` and `..` are removed (section 5.2.4); `..` never climbs above the root.
//!
//! Paths that need neither (nearly all) are returned borrowed: no allocation.

use std::borrow::Cow;

use http::uri::{PathAndQuery, Uri};

/// `path` normalised, or `path` itself when it already is. Paths that do not start with '/'
/// (the `*` of `OPTIONS *`) are left alone.
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    if !path.starts_with('/') {
        return Cow::Borrowed(path);
    }
    match decode_unreserved(path) {
        Cow::Borrowed(p) => remove_dot_segments(p),
        Cow::Owned(p) => Cow::Owned(remove_dot_segments(&p).into_owned()),
    }
}

/// The request target to route and forward, when it differs from `uri`: the path normalised,
/// and an absolute URI with no path (`http://host`, `http://host#frag`) given the path `/`.
/// The query is kept as sent.
pub fn normalize_uri(uri: &Uri) -> Option<Uri> {
    // An absolute URI without a path (`http://host#frag`) can keep an empty path-and-query,
    // which reads as "/" (`as_str`, `path`) but is written as an empty request target. Only a
    // URI rebuilt from it alone shows the difference; checked for the root path only.
    let no_path = uri.path() == "/"
        && uri.path_and_query().is_some_and(|pq| {
            !pq.as_str().starts_with('/') || Uri::from(pq.clone()).path().is_empty()
        });
    let normal = normalize_path(uri.path());
    if matches!(normal, Cow::Borrowed(_)) && !no_path {
        return None;
    }
    let target = match uri.query() {
        Some(q) => format!("{normal}?{q}"),
        None => normal.into_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(target).ok()?);
    Uri::from_parts(parts).ok()
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The two hex digits at `i + 1` of a `%` at `i`, if both are there.
fn escape_at(bytes: &[u8], i: usize) -> Option<(u8, u8)> {
    Some((*bytes.get(i + 1)?, *bytes.get(i + 2)?))
        .filter(|(h, l)| hex(*h).is_some() && hex(*l).is_some())
}

/// Step 1: decodes escapes of unreserved characters and upper-cases the others' hex digits.
/// Malformed escapes (`%zz`, a trailing `%`) are kept as they are.
fn decode_unreserved(path: &str) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    let needs = |i: usize| {
        escape_at(bytes, i).is_some_and(|(h, l)| {
            is_unreserved(hex(h).unwrap() << 4 | hex(l).unwrap())
                || h.is_ascii_lowercase()
                || l.is_ascii_lowercase()
        })
    };
    let Some(first) = (0..bytes.len()).find(|&i| bytes[i] == b'%' && needs(i)) else {
        return Cow::Borrowed(path);
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match (bytes[i], escape_at(bytes, i)) {
            (b'%', Some((h, l))) => {
                let c = hex(h).unwrap() << 4 | hex(l).unwrap();
                if is_unreserved(c) {
                    out.push(c);
                } else {
                    out.extend_from_slice(&[b'%', h.to_ascii_uppercase(), l.to_ascii_uppercase()]);
                }
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII escapes were decoded, and the rest was copied whole: still UTF-8.
    Cow::Owned(String::from_utf8(out).expect("decoding unreserved escapes keeps UTF-8"))
}

/// Step 2: removes `.` and `..` segments from an absolute path (RFC 3986 section 5.2.4).
fn remove_dot_segments(path: &str) -> Cow<'_, str> {
    let is_dot = |s: &str| s == "." || s == "..";
    if !path.split('/').any(is_dot) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut segments = path[1..].split('/').peekable();
    while let Some(seg) = segments.next() {
        if is_dot(seg) {
            if seg == ".." {
                out.truncate(out.rfind('/').unwrap_or(0));
            }
            // A dot segment at the end leaves the path ending in '/': `/a/b/..` is `/a/`.
            if segments.peek().is_none() {
                out.push('/');
            }
        } else {
            out.push('/');
            out.push_str(seg);
        }
    }
    Cow::Owned(out)
}

// === fuzzing ===

/// The body of the `normalize_path` fuzz target, shared with the stable-toolchain smoke test:
/// arbitrary bytes (as UTF-8, lossily) after a '/'. Normalising never panics, is idempotent,
/// leaves no dot segment and no escape of an unreserved character, and keeps the leading '/'.
pub fn fuzz_entry(data: &[u8]) {
    let path = format!("/{}", String::from_utf8_lossy(data));
    let once = normalize_path(&path);
    assert!(
        once.starts_with('/'),
        "{path:?} lost its leading '/': {once:?}"
    );
    assert_eq!(normalize_path(&once), once, "not idempotent on {path:?}");
    assert!(
        !once.split('/').any(|s| s == "." || s == ".."),
        "{path:?} kept a dot segment: {once:?}"
    );
    let b = once.as_bytes();
    let escaped_unreserved = (0..b.len()).any(|i| {
        b[i] == b'%'
            && escape_at(b, i)
                .is_some_and(|(h, l)| is_unreserved(hex(h).unwrap() << 4 | hex(l).unwrap()))
    });
    assert!(
        !escaped_unreserved,
        "{path:?} kept an escaped unreserved character: {once:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize_path(p).into_owned()
    }

    #[test]
    fn decodes_unreserved_escapes_only() {
        assert_eq!(n("/api/v2/%73cripts/1"), "/api/v2/scripts/1");
        assert_eq!(n("/a%2db%7E%5f"), "/a-b~_");
        assert_eq!(n("/a%2fb"), "/a%2Fb");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a%zz%4"), "/a%zz%4");
        assert_eq!(n("/%"), "/%");
    }

    #[test]
    fn removes_dot_segments() {
        assert_eq!(n("/api/v2/x/../scripts/1"), "/api/v2/scripts/1");
        assert_eq!(n("/api/v2/./scripts/1"), "/api/v2/scripts/1");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/a/b/."), "/a/b/");
        assert_eq!(n("/../../a"), "/a");
        assert_eq!(n("/a/../"), "/");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/a/%2e%2E/b"), "/b");
        assert_eq!(n("/a/.../b"), "/a/.../b");
        assert_eq!(n("/a/..b/c"), "/a/..b/c");
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in ["/", "/api/v2/users/me", "/a%20b", "/a//b/", "*"] {
            assert!(matches!(normalize_path(p), Cow::Borrowed(_)), "{p}");
        }
    }

    #[test]
    fn uris_keep_scheme_host_and_query() {
        let uri: Uri = "http://api.example.com/a/./%62?x=%2e&y=..".parse().unwrap();
        let out = normalize_uri(&uri).unwrap();
        assert_eq!(out.to_string(), "http://api.example.com/a/b?x=%2e&y=..");
        let uri: Uri = "/a/b?q".parse().unwrap();
        assert!(normalize_uri(&uri).is_none());
        for (uri, target) in [
            ("http://api.example.com", "/"),
            ("http://api.example.com#frag", "/"),
            ("http://api.example.com?q=1", "/?q=1"),
        ] {
            let uri: Uri = uri.parse().unwrap();
            let out = normalize_uri(&uri).unwrap_or(uri);
            let forwarded = Uri::from(out.path_and_query().unwrap().clone());
            assert_eq!(forwarded.to_string(), target);
            assert_eq!(out.host(), Some("api.example.com"));
        }
    }

    #[test]
    fn fuzz_entry_handles_odd_inputs() {
        for data in [
            &b""[..],
            b"%",
            b"%%2e",
            b"./../.",
            b"%2e%2e/%2E",
            b"\xff%41/..",
            b"a/%2",
        ] {
            fuzz_entry(data);
        }
    }
}
