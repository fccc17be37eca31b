//! The load generator end to end, in process, against the mock (and pacer, for proxy mode).

use std::time::Duration;

use pacer::generate::{self, Options, Scenario};
use pacer::mock::MockConfig;

use crate::support::generator::{run, scenario};
use crate::support::*;

fn within(value: f64, expected: f64, tolerance: f64) -> bool {
    (value - expected).abs() <= expected * tolerance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_keeps_the_arrival_rate() {
    let mock = open_mock().await;
    let s = scenario(
        "target: http://{target}\nphases: [{ name: steady, duration: 2s, rate: 500/s }]\n\
         requests: [{ path: /api/v2/users }]\n",
        &mock.addr.to_string(),
    );
    let started = std::time::Instant::now();
    let report = run(s, None).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(report.total.requests, 1000, "{}", report.table());
    assert_eq!(report.total.status_count(200), 1000, "{}", report.table());
    let phase = report.by_phase.get("steady").unwrap();
    let achieved = phase.achieved_rps.unwrap();
    assert!(within(achieved, 500.0, 0.03), "achieved {achieved}/s");
    assert!((1.9..3.5).contains(&took), "took {took} s");
    // The mock saw them too, and the timeline accounts for every one.
    assert_eq!(mock_stats(&mock).await["requests_total"], 1000);
    let sent: u64 = report.timeline.iter().map(|s| s.sent).sum();
    let completed: u64 = report.timeline.iter().map(|s| s.completed).sum();
    assert_eq!((sent, completed), (1000, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_sends_the_area_under_the_line() {
    let mock = open_mock().await;
    let s = scenario(
        "target: http://{target}\nphases: [{ name: up, duration: 1s, rate: 0/s, to: 400/s }]\n\
         requests: [{ path: /api/v2/users }]\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    assert_eq!(report.total.requests, 200);
    assert_eq!(mock_stats(&mock).await["requests_total"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_mixed_by_weight() {
    let mock = open_mock().await;
    let s = scenario(
        "target: http://{target}\nphases: [{ duration: 1s, rate: 400/s }]\nrequests:\n\
         - { name: scripts, weight: 3, path: /api/v2/scripts }\n\
         - { name: query, weight: 1, method: POST, path: /api/v2/analytics/conversations/details/query, body: '{}' }\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    let count = |name: &str| report.by_request.get(name).unwrap().requests;
    assert_eq!((count("scripts"), count("query")), (300, 100));
    let routes = &mock_stats(&mock).await["routes"];
    assert_eq!(routes["GET /api/v2/scripts"]["requests"], 300);
    assert_eq!(
        routes["POST /api/v2/analytics/conversations/details/query"]["requests"],
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_users_wait_for_answers_and_think() {
    let mock = start_mock(MockConfig {
        default_limit: None,
        latency: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let s = scenario(
        "target: http://{target}\nphases: [{ name: agents, duration: 1500ms, users: 3, think: 200ms }]\n\
         requests: [{ path: /api/v2/scripts }]\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    // Each user: 50 ms answer + 200 ms think, so about six rounds in 1.5 s (the last users
    // start up to a think time late).
    let n = report.total.requests;
    assert!((8..=19).contains(&n), "{n} requests\n{}", report.table());
    let stats = mock_stats(&mock).await;
    assert!(stats["max_in_flight"].as_u64().unwrap() <= 3, "{stats}");
    let p50 = report.total.latency_ms.p50;
    assert!(
        (45.0..150.0).contains(&p50),
        "latency is the answer's, not the think time: {p50}"
    );
    assert_eq!(report.by_phase.get("agents").unwrap().users, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_oauth_token_is_fetched_and_shared() {
    let mock = start_mock(MockConfig {
        default_limit: None,
        require_auth: true,
        ..Default::default()
    })
    .await;
    let s = scenario(
        "target: http://{target}\n\
         auth: { token_url: 'http://{target}/oauth/token', client_id: gen, client_secret: s3cret }\n\
         phases:\n  - { duration: 500ms, rate: 200/s }\n  - { duration: 500ms, users: 10 }\n\
         requests: [{ path: /api/v2/users }]\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    // The mock answers 401 to a request without a bearer token.
    assert_eq!(report.total.status_count(401), 0, "{}", report.table());
    assert!(report.total.status_count(200) >= 100, "{}", report.table());
    assert_eq!(mock_stats(&mock).await["tokens_issued"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_request_stops_the_run_before_any_load() {
    let mock = open_mock().await;
    let s = scenario(
        "target: http://{target}\n\
         auth: { token_url: 'http://{target}/__mock/status/401', client_id: gen, client_secret: s3cret }\n\
         phases: [{ duration: 1s, rate: 10/s }]\nrequests: [{ path: /api/v2/users }]\n",
        &mock.addr.to_string(),
    );
    let options = Options::default();
    let err = generate::run(s, &options).await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("s3cret"), "the secret never shows: {err}");
    assert_eq!(mock_stats(&mock).await["requests_total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_is_bounded_and_the_overflow_counted_as_dropped() {
    let mock = start_mock(MockConfig {
        default_limit: None,
        latency: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let s = scenario(
        "target: http://{target}\nmax_in_flight: 2\nphases: [{ duration: 1s, rate: 100/s }]\n\
         requests: [{ path: /api/v2/users }]\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    let t = &report.total;
    assert_eq!(t.requests, 100);
    let dropped = t.error_kinds.get("dropped").copied().unwrap_or(0);
    assert_eq!(dropped, t.errors);
    assert_eq!(t.status_count(200) + dropped, 100);
    // Two at a time, 300 ms each: about eight got through in one second.
    assert!(
        (4..=12).contains(&t.status_count(200)),
        "{}",
        report.table()
    );
    assert!(mock_stats(&mock).await["max_in_flight"].as_u64().unwrap() <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_sends_on_schedule_whatever_the_answers() {
    let mock = start_mock(MockConfig {
        default_limit: None,
        latency: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let s = scenario(
        "target: http://{target}\nphases: [{ duration: 1s, rate: 50/s }]\n\
         requests: [{ path: /api/v2/users }]\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    assert_eq!(report.total.status_count(200), 50, "{}", report.table());
    // A closed loop would have had one in flight; on schedule, 300 ms answers overlap.
    let stats = mock_stats(&mock).await;
    assert!(stats["max_in_flight"].as_u64().unwrap() >= 10, "{stats}");
    let p50 = report.total.latency_ms.p50;
    assert!((295.0..700.0).contains(&p50), "p50 {p50}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_timeout_is_an_error() {
    let mock = start_mock(MockConfig {
        default_limit: None,
        latency: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let s = scenario(
        "target: http://{target}\ntimeout: 150ms\nphases: [{ duration: 500ms, rate: 20/s }]\n\
         requests: [{ path: /api/v2/users }]\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    assert_eq!(report.total.requests, 10);
    assert_eq!(report.total.error_kinds.get("timeout"), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_pacer_as_a_forward_proxy() {
    let mock = open_mock().await;
    // The target host exists only in pacer's config: requests reach the mock only if they go
    // through pacer in absolute-form.
    let pacer = start_pacer(
        "upstreams:\n  mock: { base_url: 'http://{mock}', hosts: [api.test] }\n",
        mock.addr,
    )
    .await;
    let s = scenario(
        "target: http://api.test\nauth: { token_url: 'http://api.test/oauth/token', client_id: a, client_secret: b }\n\
         phases: [{ duration: 1s, rate: 100/s }]\nrequests: [{ path: /api/v2/users }]\n",
        "",
    );
    let report = run(s, Some(format!("http://{}", pacer.addr))).await;
    assert_eq!(report.total.status_count(200), 100, "{}", report.table());
    assert_eq!(report.proxy.as_deref(), Some(pacer.url("").as_str()));
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["routes"]["GET /api/v2/users"]["requests"], 100);
    assert_eq!(stats["tokens_issued"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_html_reports() {
    let mock = open_mock().await;
    let s = scenario(
        "target: http://{target}\nphases:\n  - { name: warm, duration: 1s, rate: 50/s }\n\
         \x20 - { name: busy, duration: 1500ms, users: 2 }\nrequests:\n\
         - { name: users, path: /api/v2/users }\n- { name: '<scripts>', path: /api/v2/scripts }\n",
        &mock.addr.to_string(),
    );
    let report = run(s, None).await;
    let dir = crate::support::temp_dir("gen");
    let (out, html) = (dir.join("report.json"), dir.join("report.html"));
    generate::write_reports(&report, Some(&out), Some(&html)).unwrap();

    let text = std::fs::read_to_string(&out).unwrap();
    let json = json(text.as_bytes());
    for part in [
        &json,
        &json["by_request"]["users"],
        &json["by_phase"]["busy"],
    ] {
        assert!(part["requests"].as_u64().unwrap() > 0, "{part}");
        assert!(part["status"]["200"].as_u64().unwrap() > 0, "{part}");
        assert_eq!(part["errors"], 0);
        assert!(part["rps"].as_f64().unwrap() > 0.0);
        for q in ["p50", "p90", "p99", "max"] {
            assert!(part["latency_ms"][q].as_f64().unwrap() > 0.0, "{q}: {part}");
        }
    }
    assert_eq!(json["by_phase"]["warm"]["model"], "open");
    assert_eq!(json["by_phase"]["warm"]["requests"], 50);
    let by_phase = &text[text.find("\"by_phase\"").unwrap()..];
    let at = |name: &str| by_phase.find(&format!("\"{name}\": {{")).unwrap();
    assert!(at("warm") < at("busy"), "phases in file order");
    assert!(json["timeline"].as_array().unwrap().len() >= 2);
    assert_eq!(
        json["by_phase"]["busy"]["start_s"]
            .as_f64()
            .unwrap()
            .round(),
        1.0
    );
    assert_eq!(
        json["by_phase"]["warm"]["ramp_rps"],
        serde_json::json!([50.0, 50.0])
    );
    let last = json["timeline"].as_array().unwrap().last().unwrap();
    assert!(
        last["by_request"]["users"]["completed"].as_u64().unwrap() > 0,
        "{last}"
    );
    let users = json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap());
    assert_eq!(users.max(), Some(2), "the closed phase's two users");
    let buckets = json["latency_histogram"].as_array().unwrap();
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, json["status"]["200"].as_u64().unwrap());
    assert_eq!(json["scenario"], "scenario", "no name and no file");
    assert!(json["started_at"].as_str().unwrap().ends_with(" GMT"));

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    // Rate, status mix, latency (linear and log), distribution, two per request, users.
    assert_eq!(page.matches("<svg").count(), 8);
    let mut at = 0;
    for id in generate::html::SECTIONS {
        let found = page.find(&format!("<section id=\"{id}\">"));
        at = found
            .filter(|&f| f > at)
            .unwrap_or_else(|| panic!("#{id} missing or out of order"));
    }
    // Every chart over time marks where "busy" starts (and "warm", at 0).
    assert_eq!(page.matches("class=\"phase\"").count(), 2 * 7);
    assert!(page.contains("&lt;scripts&gt;"), "names are escaped");
    for external in ["src=", "href=", "<link", "@import", "url("] {
        assert!(
            !page.contains(external),
            "self-contained, but has {external}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_scenarios_name_the_field_and_line() {
    let err = |yaml: &str| {
        let e =
            Scenario::parse_with_env(yaml, |v| (v == "SET").then(|| "x".into())).expect_err(yaml);
        e.0.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let base = "target: http://api.test\nrequests: [{ path: /a }]\nphases:\n";
    let e = err(&format!(
        "{base}  - {{ duration: 1s, rate: 5/s }}\n  - {{ duration: 1s, rate: 5/d }}\n"
    ));
    assert!(e.starts_with("phases[1].rate, line 5:"), "{e}");
    let e = err(&format!("{base}  - {{ duration: 10, rate: 5/s }}\n"));
    assert!(
        e.starts_with("phases[0].duration, line 4:") && e.contains("unit"),
        "{e}"
    );
    let e = err(&format!(
        "{base}  - {{ duration: 1s, rate: 5/s, userz: 3 }}\n"
    ));
    assert!(
        e.starts_with("phases[0].userz, line 4: unknown field"),
        "{e}"
    );
    let e = err(&format!(
        "{base}  - {{ duration: 1s }}\n  - {{ duration: 1s, rate: 1/s, users: 2 }}\n"
    ));
    assert!(e.contains("phases[0], line 4: a phase needs rate"), "{e}");
    assert!(
        e.contains("phases[1], line 5: a phase has either rate"),
        "{e}"
    );
    let e = err("target: http://api.test\nauth:\n  token_url: http://api.test/t\n  client_id: ${SET}\n  client_secret: ${UNSET}\n");
    assert!(
        e.starts_with("auth.client_secret, line 5: environment variable UNSET is not set"),
        "{e}"
    );
    let e = err("target: ftp://api.test\n");
    assert!(e.starts_with("target, line 1:"), "{e}");
    let e = err("target: http://api.test\nheaders: { 'bad name': x }\n");
    assert!(e.starts_with("headers"), "{e}");
    let e = err("target: http://api.test\nphases: [{ duration: 1s, rate: 1/s }]\nrequests:\n  - { path: /a }\n  - { path: b, weight: 2 }\n");
    assert!(
        e.contains("requests[1], line 5: path \"b\" must start with /"),
        "{e}"
    );
    let e = err("target: http://a.test\nphases: [{ duration: 1s, rate: 1/s }]\nrequests:\n  - { path: /a, method: GETT }\n");
    assert!(
        e.starts_with("requests[0].method, line 4: \"GETT\" is not a request method; known methods: GET, HEAD, POST"),
        "{e}"
    );
    let e = err("target: http://a.test\nphases: [{ duration: 1s, users: 2 }]\nrequests: [{ path: /a }]\nthresholds: { rate_achieved: 99% }\n");
    assert!(e.contains("thresholds.rate_achieved"), "{e}");
    let e = err("target: http://a.test\nphases: [{ duration: 1s, rate: 1/s }]\nrequests: [{ path: /a }]\nthresholds: { p99: 500 }\n");
    assert!(e.starts_with("thresholds.p99, line 4:"), "{e}");
    let e = err("target: http://a.test\nphases: [{ duration: 1s, rate: 1/s }]\nrequests: [{ path: /a }]\nthresholds: { error_rate: 1 }\n");
    assert!(e.contains("not a percentage"), "{e}");
    let e = err("target: http://a.test\nphases: [{ duration: 1s, rate: 1/s }]\nrequests: [{ path: /a }]\nthresholds: { p95: 1s }\n");
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn the_example_scenarios_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let s = Scenario::parse_with_env(&text, |_| None)
            .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        assert!(s.auth.is_some(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 4);
}
