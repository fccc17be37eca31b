//! The metrics contract: names, bounded labels, and every client-facing answer counted.

use std::collections::BTreeSet;

use super::*;

/// Routes without limits, so these tests do not depend on a limiter; proxy auth on, so a 407
/// can be provoked.
const ROUTED: &str = "\
upstreams:
  mock:
    base_url: http://{mock}
    hosts: [api.test]
routes:
  - match: GET /api/v2/users/{userId}
  - match: \"* /api/v2/**\"
proxy_auth:
  username: jmeter
  password: s3cret
";

const AUTH: &str = "Basic am1ldGVyOnMzY3JldA=="; // jmeter:s3cret

fn authed(method: &str, uri: &str) -> http::request::Builder {
    request(method, uri).header("proxy-authorization", AUTH)
}

async fn send_raw(pacer: &Running, target: &str, extra: &str) -> String {
    let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    raw_exchange(pacer.addr, raw.as_bytes()).await
}

#[tokio::test]
async fn every_answer_is_counted_by_route_pattern_method_and_status() {
    let mock = start_mock_default().await;
    let (pacer, admin) = start_pacer_admin(ROUTED, mock.addr).await;
    let c = client();
    for id in ["1", "2", "3"] {
        let req = authed("GET", &pacer.url(&format!("/api/v2/users/{id}")));
        assert_eq!(send(&c, req.body(Full::default()).unwrap()).await.0, 200);
    }
    let req = authed("POST", &pacer.url("/api/v2/things"));
    assert_eq!(send(&c, req.body(Full::default()).unwrap()).await.0, 200);
    let req = authed("PROPFIND", &pacer.url("/api/v2/things"));
    send(&c, req.body(Full::default()).unwrap()).await;
    let req = authed("GET", &pacer.url("/__mock/status/418"));
    assert_eq!(send(&c, req.body(Full::default()).unwrap()).await.0, 418);
    // pacer's own answers: no credentials (407), a host no upstream lists (403).
    assert_eq!(get(&c, &pacer.url("/api/v2/users/4")).await.0, 407);
    let auth = format!("Proxy-Authorization: {AUTH}\r\n");
    let res = send_raw(&pacer, "http://evil.example/api/v2/users/5", &auth).await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");

    let s = samples(admin, "pacer_requests_total").await;
    let count = |route, method, status| {
        value_of(
            &s,
            "pacer_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(count("GET /api/v2/users/{userId}", "GET", "200"), 3.0);
    assert_eq!(count("GET /api/v2/users/{userId}", "GET", "407"), 1.0);
    assert_eq!(count("GET /api/v2/users/{userId}", "GET", "403"), 1.0);
    assert_eq!(count("* /api/v2/**", "POST", "200"), 1.0);
    assert_eq!(count("* /api/v2/**", "other", "200"), 1.0);
    assert_eq!(count("unmatched", "GET", "418"), 1.0);
    let total: f64 = s.iter().map(|s| s.value).sum();
    assert_eq!(total, 8.0, "every answer once: {s:?}");

    let d = samples(admin, "pacer_request_duration_seconds_count").await;
    let by_route = |route| {
        value_of(
            &d,
            "pacer_request_duration_seconds_count",
            &[("route", route)],
        )
    };
    assert_eq!(by_route("GET /api/v2/users/{userId}"), 5.0);
    assert_eq!(by_route("unmatched"), 1.0);
}

#[tokio::test]
async fn labels_never_carry_paths_tokens_or_addresses() {
    let mock = start_mock_default().await;
    let (pacer, admin) = start_pacer_admin(ROUTED, mock.addr).await;
    let c = client();
    for i in 0..5 {
        let req = authed(
            "GET",
            &pacer.url(&format!("/unrouted/path-{i}?q=secret-query-{i}")),
        )
        .header("authorization", format!("Bearer label-token-{i}"))
        .header("x-tenant", format!("tenant-{i}"));
        send(&c, req.body(Full::default()).unwrap()).await;
    }
    let text = scrape(admin).await;
    for leak in [
        "path-",
        "secret-query",
        "label-token",
        "tenant-",
        "127.0.0.1",
        "jmeter",
    ] {
        assert!(
            !text.contains(leak),
            "{leak:?} leaked into the metrics:\n{text}"
        );
    }
    let routes: std::collections::BTreeSet<String> = parse_exposition(&text)
        .iter()
        .filter(|s| s.name == "pacer_requests_total")
        .map(|s| s.label("route").to_owned())
        .collect();
    assert_eq!(routes.into_iter().collect::<Vec<_>>(), ["unmatched"]);
}

#[tokio::test]
async fn bounded_series_exist_before_any_traffic() {
    let mock = start_mock_default().await;
    let (_pacer, admin) = start_pacer_admin(ROUTED, mock.addr).await;
    let s = parse_exposition(&scrape(admin).await);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value_of(&s, "pacer_build_info", &[("version", version)]),
        1.0
    );
    for route in ["GET /api/v2/users/{userId}", "* /api/v2/**", "unmatched"] {
        let labels = [("upstream", "mock"), ("route", route)];
        let has = |name: &str, labels: &[(&str, &str)]| {
            s.iter()
                .any(|x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == *v))
        };
        assert!(has("pacer_upstream_throttled_total", &labels), "{route}");
        assert!(
            has("pacer_upstream_duration_seconds_count", &labels),
            "{route}"
        );
        assert!(
            has("pacer_request_duration_seconds_count", &labels[1..]),
            "{route}"
        );
        for reason in ["throttled", "upstream_5xx", "connect"] {
            assert!(has(
                "pacer_retries_total",
                &[("route", route), ("reason", reason)]
            ));
        }
    }
}

/// A limit, so that its `pacer_rejected_total` series exist; no upstream lists `evil.example`.
const LIMITED: &str = "\
upstreams:
  mock:
    base_url: http://{mock}
    hosts: [api.test]
limits:
  api:
    rate: 10/s
routes:
  - match: GET /api/v2/**
    limits: [api]
proxy_auth:
  username: jmeter
  password: s3cret
";

/// The backticked words of the README's metrics table row for `series`, after its labels.
fn readme_row_values(series: &str) -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with(&format!("| `{series}` |")))
        .unwrap_or_else(|| panic!("the README's metrics table has no row for {series}"));
    let what = row.rsplit('|').nth(1).unwrap();
    what.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// One list of rejection reasons: the code's (every one created up front), a live pacer's
/// series, the README's metrics table and the dashboard's panel all name the same reasons.
#[tokio::test]
async fn rejection_reasons_are_one_list() {
    let code: BTreeSet<String> = pacer::metrics::Rejection::ALL
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    let mock = start_mock_default().await;
    let (_pacer, admin) = start_pacer_admin(LIMITED, mock.addr).await;
    let live: BTreeSet<String> = parse_exposition(&scrape(admin).await)
        .iter()
        .filter(|s| s.name == "pacer_rejected_total" && s.label("limit") == "api")
        .map(|s| s.label("reason").to_owned())
        .collect();
    assert_eq!(live, code, "a live pacer's pacer_rejected_total reasons");
    assert_eq!(
        readme_row_values("pacer_rejected_total"),
        code,
        "the README's pacer_rejected_total row"
    );
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/grafana/pacer-dashboard.json"
    ))
    .unwrap();
    let dash: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let panel = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Rejections by limit and reason")
        .expect("the dashboard has a rejections panel");
    let described = panel["description"].as_str().unwrap();
    for reason in &code {
        assert!(described.contains(reason.as_str()), "{reason}: {described}");
    }
}

/// CONNECT's own answers are counted like every other answer, on route `unmatched`.
#[tokio::test]
async fn connect_answers_are_counted() {
    let mock = start_mock_default().await;
    let (pacer, admin) = start_pacer_admin(LIMITED, mock.addr).await;
    let connect = |auth: &str| {
        format!("CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n{auth}Connection: close\r\n\r\n")
    };
    let res = raw_exchange(pacer.addr, connect("").as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 407"), "{res}");
    let auth = format!("Proxy-Authorization: {AUTH}\r\n");
    let res = raw_exchange(pacer.addr, connect(&auth).as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    let s = samples(admin, "pacer_requests_total").await;
    for status in ["407", "403"] {
        let labels = [
            ("route", "unmatched"),
            ("method", "CONNECT"),
            ("status", status),
        ];
        assert_eq!(
            value_of(&s, "pacer_requests_total", &labels),
            1.0,
            "{status}"
        );
    }
}
