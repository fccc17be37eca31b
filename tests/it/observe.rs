//! Observability end to end: the admin API, the metrics, the logs, and the shipped Prometheus
//! and Grafana files checked against a real pacer (and a real Prometheus where installed).
//!
//! Sections live under `tests/it/observe/`; this file holds what they share: reading `/metrics`
//! into samples, and the admin client.

mod admin;
mod logs;
mod metrics;
mod prometheus;
mod refusals;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;

use crate::support::*;

/// One line of the text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Parses the text exposition format (comments skipped, label values unescaped).
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("not an exposition line: {line}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, rest)) = head.split_once('{') else {
        return Some(Sample {
            name: head.to_owned(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.strip_suffix('}')?.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        (chars.next()? == '"').then_some(())?;
        let mut val = String::new();
        loop {
            match chars.next()? {
                '\\' => val.push(match chars.next()? {
                    'n' => '\n',
                    c => c,
                }),
                '"' => break,
                c => val.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), val);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `GET` on the admin listener: (status, headers, body).
pub async fn admin_get(
    admin: SocketAddr,
    path: &str,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    get(&client(), &format!("http://{admin}{path}")).await
}

/// `PUT` a JSON body on the admin listener.
pub async fn admin_put(admin: SocketAddr, path: &str, body: &str) -> (http::StatusCode, Bytes) {
    let req = request("PUT", &format!("http://{admin}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let (status, _, body) = send(&client(), req).await;
    (status, body)
}

/// The current scrape, as text.
pub async fn scrape(admin: SocketAddr) -> String {
    let (status, headers, body) = admin_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    String::from_utf8(body.to_vec()).unwrap()
}

/// The samples of `name` in the current scrape.
pub async fn samples(admin: SocketAddr, name: &str) -> Vec<Sample> {
    parse_exposition(&scrape(admin).await)
        .into_iter()
        .filter(|s| s.name == name)
        .collect()
}

/// The value of the one sample of `name` whose labels include all of `labels`, or 0 when there is
/// none (a counter that has not counted yet).
pub fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == *v))
        .collect();
    assert!(found.len() <= 1, "{name}{labels:?} is ambiguous: {found:?}");
    found.first().map_or(0.0, |s| s.value)
}

#[test]
fn parses_the_exposition_format() {
    let text = "# HELP x y\nx_total{a=\"b\",route=\"GET /a/{id}\"} 3\nup 1\nq{v=\"a\\\"b\"} 0.5\n";
    let s = parse_exposition(text);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].label("route"), "GET /a/{id}");
    assert_eq!(s[0].label("a"), "b");
    assert_eq!(s[0].value, 3.0);
    assert_eq!(s[1].name, "up");
    assert_eq!(s[2].label("v"), "a\"b");
}
