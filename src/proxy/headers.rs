//! Hop-by-hop headers (RFC 9110 section 7.6.1): they describe one connection, so a proxy removes
//! them instead of passing them on.

use http::header::{self, HeaderMap, HeaderName};

/// Headers that are always hop-by-hop. `Upgrade` is kept by the caller when it forwards an
/// upgrade; `Proxy-Authorization` carries pacer's own credentials and must never reach the API.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Removes hop-by-hop headers, including any named in `Connection`. With `keep_upgrade`, the
/// `Upgrade` header and a `Connection: upgrade` survive so the upstream sees the upgrade request.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none of these. One pass over their few names is much cheaper than a
    // hashed removal per hop-by-hop name, which this function did on every request and response.
    let any = headers
        .keys()
        .any(|name| name == header::UPGRADE || HOP_BY_HOP.contains(name));
    if !any {
        return;
    }
    // Names listed in Connection are hop-by-hop too; collect them before Connection goes.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == header::UPGRADE))
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if keep_upgrade {
        if headers.contains_key(header::UPGRADE) {
            headers.insert(
                header::CONNECTION,
                http::HeaderValue::from_static("upgrade"),
            );
        }
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Whether a message says both how long its body is and that it is chunked. RFC 9112 section
/// 6.3 lets a recipient go by Transfer-Encoding, but a sender of both is broken or smuggling, and
/// a proxy passing such an answer on (or reusing its connection) would guess where it ends.
pub fn ambiguous_framing(headers: &HeaderMap) -> bool {
    headers.contains_key(header::CONTENT_LENGTH) && headers.contains_key(header::TRANSFER_ENCODING)
}

/// The size of a header section as it travels on the wire (`name: value\r\n` per field), used
/// to enforce `server.max_header_bytes`.
pub fn wire_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_fixed_and_listed_hop_by_hop() {
        let mut h = map(&[
            ("connection", "keep-alive, x-trace"),
            ("keep-alive", "timeout=5"),
            ("x-trace", "1"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("upgrade", "websocket"),
            ("authorization", "Bearer t"),
            ("content-type", "application/json"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["authorization", "content-type"]);
    }

    #[test]
    fn keeps_upgrade_when_upgrading() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }
}
