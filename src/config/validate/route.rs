//! `routes`: which requests pass which limits.

use http::Method;

use super::{join, list, Errors};
use crate::config::raw::{RawRoute, Text};
use crate::config::PathPattern;
use crate::config::Route;
use crate::exchange::LimitId;

/// Methods whose lower-case spelling is almost certainly a typo: HTTP methods are
/// case-sensitive, and `get` would never match a client's `GET`.
const STANDARD_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// `limit_names` are the limits in file order; a route stores indices into that order.
pub(super) fn routes(
    errs: &mut Errors,
    raw: Option<&[RawRoute]>,
    limit_names: &[&str],
) -> Vec<Route> {
    let mut out: Vec<(usize, Route)> = Vec::new();
    for (i, raw) in raw.unwrap_or_default().iter().enumerate() {
        let path = format!("routes[{i}]");
        let limits = route_limits(
            errs,
            &join(&path, "limits"),
            raw.limits.as_deref(),
            limit_names,
        );
        let pause = match raw.pause.as_deref() {
            None => limits.clone(),
            Some(names) => route_pause(errs, &join(&path, "pause"), names, &limits, limit_names),
        };
        let text = &raw.matches;
        let (method, pattern) = match parse_match(&text.value) {
            Ok(parsed) => parsed,
            Err(msg) => {
                errs.at(join(&path, "match"), text, msg);
                continue;
            }
        };
        // First match wins, so a second route with the same method and pattern is dead config.
        let earlier = out
            .iter()
            .find(|(_, r)| r.method == method && r.path == pattern);
        if let Some((j, _)) = earlier {
            let msg = format!(
                "same match as routes[{j}], which comes first, so this route would never be used"
            );
            errs.at(join(&path, "match"), text, msg);
        }
        let name = text.value.trim().to_owned();
        out.push((
            i,
            Route {
                name,
                method,
                path: pattern,
                limits: limits.into_iter().map(LimitId::new).collect(),
                pause: pause.into_iter().map(LimitId::new).collect(),
            },
        ));
    }
    out.into_iter().map(|(_, route)| route).collect()
}

/// `METHOD PATH` or `* PATH`.
fn parse_match(text: &str) -> Result<(Option<Method>, PathPattern), String> {
    let mut parts = text.split_whitespace();
    let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "{text:?} is not \"METHOD PATH\"; write e.g. \"GET /api/v2/users/**\", or \"* /api/v2/**\" for any method"
        ));
    };
    let method = match method {
        "*" => None,
        m => Some(parse_method(m)?),
    };
    let pattern = PathPattern::parse(path).map_err(|e| format!("path {path:?}: {e}"))?;
    Ok((method, pattern))
}

fn parse_method(text: &str) -> Result<Method, String> {
    let upper = text.to_ascii_uppercase();
    if text != upper && STANDARD_METHODS.contains(&upper.as_str()) {
        return Err(format!(
            "HTTP methods are case-sensitive; write {upper}, not {text}"
        ));
    }
    // HTTP allows extension methods (PROPFIND), so only a near miss of a standard one is
    // refused: GETT is a typo that would leave the route matching nothing.
    if let Some(meant) = STANDARD_METHODS.iter().find(|m| one_edit_apart(m, text)) {
        return Err(format!(
            "{text:?} is not an HTTP method (did you mean {meant}?); the methods are {}, or * \
             for any",
            STANDARD_METHODS.join(", ")
        ));
    }
    Method::from_bytes(text.as_bytes()).map_err(|_| {
        format!("{text:?} is not an HTTP method; write e.g. GET, POST, PUT or DELETE, or * for any")
    })
}

/// Whether `b` is `a` with one letter added, dropped, changed, or two neighbours swapped.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[head..], &b[head..]);
    let swapped =
        a.len() == b.len() && a.len() >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..];
    swapped
        || a.get(1..) == b.get(1..)
        || a == b.get(1..).unwrap_or_default()
        || a.get(1..).unwrap_or_default() == b
}

fn route_limits(errs: &mut Errors, path: &str, raw: Option<&[Text]>, names: &[&str]) -> Vec<usize> {
    let mut out = Vec::new();
    for text in raw.unwrap_or_default() {
        let wanted = text.value.trim();
        match names.iter().position(|n| *n == wanted) {
            Some(i) if out.contains(&i) => {
                errs.at(path, text, format!("limit {wanted:?} is listed twice"));
            }
            Some(i) => out.push(i),
            None if names.is_empty() => {
                let msg = format!(
                    "unknown limit {wanted:?}; no limits are defined (add them under limits:)"
                );
                errs.at(path, text, msg);
            }
            None => {
                let msg = format!(
                    "unknown limit {wanted:?}; defined limits: {}",
                    list(names.iter().copied())
                );
                errs.at(path, text, msg);
            }
        }
    }
    out
}

/// `pause:`: names among the route's own limits (a 429 can only pause a key the request
/// passed).
fn route_pause(
    errs: &mut Errors,
    path: &str,
    raw: &[Text],
    limits: &[usize],
    names: &[&str],
) -> Vec<usize> {
    let own: Vec<&str> = limits.iter().map(|&i| names[i]).collect();
    let mut out = route_limits(errs, path, Some(raw), names);
    out.retain(|i| limits.contains(i));
    for text in raw {
        let wanted = text.value.trim();
        if names.contains(&wanted) && !own.contains(&wanted) {
            let msg = format!(
                "limit {wanted:?} is not one of this route's limits ({})",
                list(own.iter().copied())
            );
            errs.at(path, text, msg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches() {
        let (m, p) = parse_match("GET /api/v2/scripts/**").unwrap();
        assert_eq!(m, Some(Method::GET));
        assert!(p.matches("/api/v2/scripts/1"));
        let (m, _) = parse_match("  *   /api/**  ").unwrap();
        assert_eq!(m, None);
        assert_eq!(
            parse_match("PROPFIND /dav").unwrap().0.unwrap().as_str(),
            "PROPFIND"
        );
    }

    #[test]
    fn near_misses_of_standard_methods_are_typos() {
        for typo in ["GETT", "GT", "PUTT", "POTS", "DELET", "PATHC"] {
            assert!(parse_match(&format!("{typo} /x"))
                .unwrap_err()
                .contains("did you mean"));
        }
        for fine in ["PROPFIND", "MKCOL", "PURGE"] {
            assert!(parse_match(&format!("{fine} /x")).is_ok(), "{fine}");
        }
    }

    #[test]
    fn bad_matches() {
        let err = |s| parse_match(s).unwrap_err();
        assert!(err("/api/v2/users").contains("METHOD PATH"));
        assert!(err("GET /a /b").contains("METHOD PATH"));
        assert!(err("").contains("METHOD PATH"));
        assert!(err("get /a").contains("write GET"));
        assert!(err("G(T /a").contains("not an HTTP method"));
        assert!(err("GET api").contains("must start with '/'"));
        assert!(err("GET /a/b*").contains("wildcard"));
    }
}
