//! The structured IETF fields, parsed with `sfv` (RFC 9651 structured field values):
//! `RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400` and
//! `RateLimit: "burst";r=40;t=12`.

use std::time::Duration;

use http::header::HeaderName;
use http::HeaderMap;
use sfv::{BareItem, List, ListEntry, Parameters, Parser};

use super::headers::window_secs;
use super::retry_after::single;
use super::{Advertised, Family};

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// One member of either field: its name and the parameters that matter.
#[derive(Debug, Default, Clone)]
struct Member {
    name: String,
    quota: Option<u32>,
    window: Option<Duration>,
    remaining: Option<u32>,
    reset: Option<Duration>,
}

/// `RateLimit-Policy` and `RateLimit`, several policies each. Members of the two fields are
/// joined by name; of the policies, the tightest is taken: the lowest remaining, then the lowest
/// quota per second (a policy without a remaining cannot be the one holding the key back).
pub fn ietf_structured(headers: &HeaderMap) -> Option<Advertised> {
    let policies = members(headers, &POLICY);
    let mut states = members(headers, &RATELIMIT);
    if policies.is_empty() && states.is_empty() {
        return None;
    }
    for p in &policies {
        match states.iter_mut().find(|s| s.name == p.name) {
            Some(s) => {
                s.quota = p.quota;
                s.window = p.window;
            }
            None => states.push(p.clone()),
        }
    }
    let tightest = states.into_iter().min_by(|a, b| {
        let remaining = |m: &Member| m.remaining.map_or(u64::MAX, u64::from);
        remaining(a)
            .cmp(&remaining(b))
            .then_with(|| per_second(a).total_cmp(&per_second(b)))
    })?;
    Advertised {
        quota: tightest.quota,
        window: tightest.window,
        remaining: tightest.remaining,
        reset: tightest.reset,
        ..Advertised::empty(Family::IetfStructured)
    }
    .nonempty()
}

/// The quota and window of a first-generation `RateLimit-Limit`: the first member of the list
/// is the quota in force (`10, 10;w=1, 50;w=60`); its window is the `w` of the first policy with
/// that quota (the member itself may carry it).
pub(super) fn first_policy(value: &[u8]) -> (Option<u32>, Option<Duration>) {
    let Ok(list) = Parser::new(value).parse::<List>() else {
        return (None, None);
    };
    let items: Vec<_> = list
        .iter()
        .filter_map(|e| match e {
            ListEntry::Item(item) => Some(item),
            ListEntry::InnerList(_) => None,
        })
        .collect();
    let Some(quota) = items.first().and_then(|i| integer(&i.bare_item)) else {
        return (None, None);
    };
    let window = items
        .iter()
        .filter(|i| integer(&i.bare_item) == Some(quota))
        .find_map(|i| param(&i.params, "w"))
        .and_then(window_secs);
    (u32::try_from(quota).ok(), window)
}

/// Every member of a one-line structured list field; none when absent, sent twice or malformed.
fn members(headers: &HeaderMap, name: &HeaderName) -> Vec<Member> {
    let Some(value) = single(headers, name) else {
        return Vec::new();
    };
    let Ok(list) = Parser::new(value.as_bytes()).parse::<List>() else {
        return Vec::new();
    };
    list.iter().filter_map(member).collect()
}

fn member(entry: &ListEntry) -> Option<Member> {
    let ListEntry::Item(item) = entry else {
        return None;
    };
    let name = match &item.bare_item {
        BareItem::String(s) => s.as_str().to_owned(),
        BareItem::Token(t) => t.as_str().to_owned(),
        _ => return None,
    };
    let p = &item.params;
    let count = |key| param(p, key).and_then(|n| u32::try_from(n).ok());
    let secs = |key| {
        param(p, key)
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_secs)
    };
    Some(Member {
        name,
        quota: count("q"),
        window: param(p, "w").and_then(window_secs),
        remaining: count("r"),
        reset: secs("t").filter(|&t| t <= crate::ratelimit::retry_after::RETRY_AFTER_CAP),
    })
}

fn param(params: &Parameters, key: &str) -> Option<i64> {
    params.get(key).and_then(integer)
}

fn integer(item: &BareItem) -> Option<i64> {
    item.as_integer().map(i64::from)
}

/// Quota per second, for ranking policies; unknown ranks last.
fn per_second(m: &Member) -> f64 {
    match (m.quota, m.window) {
        (Some(q), Some(w)) => f64::from(q) / w.as_secs_f64(),
        _ => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(policy: Option<&'static str>, state: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(p) = policy {
            h.insert(POLICY, http::HeaderValue::from_static(p));
        }
        if let Some(s) = state {
            h.insert(RATELIMIT, http::HeaderValue::from_static(s));
        }
        h
    }

    #[test]
    fn one_policy_and_its_state() {
        let h = headers(
            Some(r#""default";q=100;w=60"#),
            Some(r#""default";r=40;t=12"#),
        );
        let a = ietf_structured(&h).unwrap();
        assert_eq!(a.family, Family::IetfStructured);
        assert_eq!((a.quota, a.remaining), (Some(100), Some(40)));
        assert_eq!(a.window, Some(Duration::from_secs(60)));
        assert_eq!(a.reset, Some(Duration::from_secs(12)));
    }

    #[test]
    fn several_policies_take_the_tightest() {
        let h = headers(
            Some(r#""burst";q=100;w=60, "daily";q=1000;w=86400"#),
            Some(r#""burst";r=40;t=12, "daily";r=3;t=5000"#),
        );
        let a = ietf_structured(&h).unwrap();
        assert_eq!((a.quota, a.remaining), (Some(1000), Some(3)));
        // Without states, the lowest quota per second.
        let h = headers(Some(r#""burst";q=100;w=60, daily;q=1000;w=86400"#), None);
        let a = ietf_structured(&h).unwrap();
        assert_eq!(
            (a.quota, a.window),
            (Some(1000), Some(Duration::from_secs(86_400)))
        );
    }

    #[test]
    fn garbage_counts_as_absent() {
        for bad in [
            r#""x";q=-5;w=0"#,
            r#""x";q=1.5;w="60""#,
            r#""x";q=99999999999;w=9999999999"#,
            "(((",
            r#""unterminated"#,
            "",
        ] {
            let mut h = HeaderMap::new();
            h.insert(POLICY, http::HeaderValue::from_str(bad).unwrap());
            assert_eq!(ietf_structured(&h), None, "{bad:?}");
        }
        let h = headers(None, Some(r#""x";r=-1;t=-4"#));
        assert_eq!(ietf_structured(&h), None);
    }

    #[test]
    fn first_generation_list() {
        assert_eq!(
            first_policy(b"10, 10;w=1, 50;w=60"),
            (Some(10), Some(Duration::from_secs(1)))
        );
        assert_eq!(first_policy(b"100"), (Some(100), None));
        assert_eq!(first_policy(b"-1"), (None, None));
        assert_eq!(first_policy(b"nonsense;;"), (None, None));
    }
}
