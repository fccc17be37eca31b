//! The admin listener: health, readiness, `/status` and live limit changes.

use std::time::Duration;

use pacer::mock::MockConfig;

use super::*;

/// One limit slow enough that a second request must queue, on every `/api/v2` request.
const ONE_PER_MINUTE: &str = "\
upstreams:
  mock:
    base_url: http://{mock}
limits:
  slow:
    rate: 1/min
    burst: 1
    concurrency: 8
routes:
  - match: GET /api/v2/**
    limits: [slow]
";

#[tokio::test]
async fn health_readiness_and_unknown_paths() {
    let mock = start_mock_default().await;
    let (_pacer, admin) = start_pacer_admin(basic_config(), mock.addr).await;
    let (status, _, body) = admin_get(admin, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["status"], "ok");
    let (status, _, body) = admin_get(admin, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["status"], "ready");

    let (status, _, body) = admin_get(admin, "/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(json(&body)["code"], "pacer.admin.not_found");

    let req = request("POST", &format!("http://{admin}/metrics"))
        .body(Full::default())
        .unwrap();
    let (status, headers, body) = send(&client(), req).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET, HEAD");
    assert_eq!(json(&body)["code"], "pacer.admin.method_not_allowed");
}

#[tokio::test]
async fn readyz_answers_503_while_the_proxy_drains() {
    let mock = start_mock(MockConfig {
        latency: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let (mut pacer, admin) = start_pacer_admin(basic_config(), mock.addr).await;
    let slow = tokio::spawn({
        let url = pacer.url("/api/v2/users");
        async move { get(&client(), &url).await.0 }
    });
    // Shutdown only once the request is at the mock, so the drain has something to wait for.
    wait_until(|| async { mock_stats(&mock).await["in_flight"] == 1 }).await;
    pacer.signal_stop();
    let task = pacer.task();
    // The flag flips when the proxy's accept loop sees the signal; no event reaches the test.
    wait_until(|| async { admin_get(admin, "/readyz").await.0 == 503 }).await;
    let (_, _, body) = admin_get(admin, "/readyz").await;
    assert_eq!(json(&body)["status"], "draining");
    assert_eq!(json(&admin_get(admin, "/status").await.2)["draining"], true);
    assert_eq!(slow.await.unwrap(), 200, "the in-flight request finished");
    task.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(admin).await.is_err(),
        "the admin listener stopped with the proxy"
    );
}

#[tokio::test]
async fn put_refuses_unknown_limits_and_invalid_changes() {
    let mock = start_mock_default().await;
    let (_pacer, admin) = start_pacer_admin(ONE_PER_MINUTE, mock.addr).await;
    let (status, body) = admin_put(admin, "/limits/nope", r#"{"rate": "5/s"}"#).await;
    assert_eq!(status, 404);
    let doc = json(&body);
    assert_eq!(doc["code"], "pacer.admin.unknown_limit");
    assert!(doc["message"].as_str().unwrap().contains("slow"), "{doc}");

    for (body, why) in [
        (r#"{"rate": "5/d"}"#, "unknown unit"),
        (r#"{"rate": "0/s"}"#, "at least 1"),
        (r#"{"burst": 0}"#, "at least 1"),
        (r#"{"concurrency": -2}"#, "concurrency"),
        (r#"{"rate": 5}"#, "rate"),
        (r#"{"speed": "5/s"}"#, "unknown field"),
        ("{}", "nothing to change"),
        ("not json", "must be JSON"),
    ] {
        let (status, res) = admin_put(admin, "/limits/slow", body).await;
        assert_eq!(status, 400, "{body}");
        let doc = json(&res);
        assert_eq!(doc["code"], "pacer.admin.invalid");
        assert_eq!(doc["status"], 400);
        let msg = doc["message"].as_str().unwrap();
        assert!(msg.contains(why), "{body}: {msg}");
    }
}

#[tokio::test]
async fn status_reports_each_limit() {
    let mock = start_mock_default().await;
    let (pacer, admin) = start_pacer_admin(ONE_PER_MINUTE, mock.addr).await;
    assert_eq!(get(&client(), &pacer.url("/api/v2/users")).await.0, 200);
    let (status, headers, body) = admin_get(admin, "/status").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let doc = json(&body);
    assert_eq!(doc["draining"], false);
    let slow = &doc["limits"][0];
    assert_eq!(slow["name"], "slow");
    assert_eq!(slow["rate"], 1.0 / 60.0);
    assert_eq!(slow["effective_rate"], 1.0 / 60.0);
    assert_eq!(slow["burst"], 1);
    assert_eq!(slow["concurrency"], 8);
    assert_eq!(slow["in_flight"], 0);
    assert_eq!(slow["queue_depth"], 0);
    assert_eq!(slow["keys"], 1);
    assert!(slow.get("paused_until").is_none(), "{slow}");
    assert_eq!(json(&admin_get(admin, "/limits/slow").await.2), *slow);
}

/// A request queued behind a 1/min limit goes as soon as the limit is raised, and the change
/// shows in `/status` and the metrics.
#[tokio::test]
async fn a_live_change_governs_traffic_at_once() {
    let mock = start_mock_default().await;
    let (pacer, admin) = start_pacer_admin(ONE_PER_MINUTE, mock.addr).await;
    assert_eq!(get(&client(), &pacer.url("/api/v2/users")).await.0, 200);
    let queued = tokio::spawn({
        let url = pacer.url("/api/v2/users");
        async move { get(&client(), &url).await.0 }
    });
    wait_until(|| async {
        json(&admin_get(admin, "/status").await.2)["limits"][0]["queue_depth"] == 1
    })
    .await;
    let before = samples(admin, "pacer_queue_depth").await;
    assert_eq!(
        value_of(&before, "pacer_queue_depth", &[("limit", "slow")]),
        1.0
    );

    let (status, body) = admin_put(admin, "/limits/slow", r#"{"rate": "50/s", "burst": 5}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let state = json(&body);
    assert_eq!(
        (state["effective_rate"].clone(), state["burst"].clone()),
        (50.0.into(), 5.into())
    );
    let released = tokio::time::timeout(Duration::from_secs(5), queued).await;
    assert_eq!(
        released.expect("released well before a minute").unwrap(),
        200
    );

    let doc = json(&admin_get(admin, "/status").await.2);
    assert_eq!(doc["limits"][0]["effective_rate"], 50.0);
    assert_eq!(
        doc["limits"][0]["rate"],
        1.0 / 60.0,
        "the configured rate is still reported"
    );
    let after = samples(admin, "pacer_limit_rate").await;
    assert_eq!(
        value_of(&after, "pacer_limit_rate", &[("limit", "slow")]),
        50.0
    );
}

/// An upstream 429 pauses the limit key it came through; `/status` and the metrics show it.
#[tokio::test]
async fn a_retry_after_pause_shows_in_status_and_metrics() {
    let mock = start_mock_default().await;
    let yaml = "\
upstreams:
  mock:
    base_url: http://{mock}
limits:
  api:
    rate: 10/s
routes:
  - match: GET /__mock/**
    limits: [api]
retry:
  max_retry_after: 5s
";
    let (pacer, admin) = start_pacer_admin(yaml, mock.addr).await;
    let before = json(&admin_get(admin, "/limits/api").await.2);
    assert!(before["paused_ms"].is_null() && before.get("paused_until").is_none());
    // Longer than max_retry_after: pacer pauses the key (for at most max_pause, by default
    // max_retry_after), then hands the 429 back at once.
    let url = pacer.url("/__mock/status/429?retry_after=30");
    let (status, headers, _) = get(&client(), &url).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-pacer-gave-up"], "retry_after_too_long");

    let api = json(&admin_get(admin, "/limits/api").await.2);
    let paused_ms = api["paused_ms"].as_u64().expect("paused");
    assert!((4_000..=5_000).contains(&paused_ms), "{api}");
    let until = api["paused_until"].as_str().unwrap();
    assert!(until.ends_with('Z') && until.len() == 24, "{until}");
    let s = parse_exposition(&scrape(admin).await);
    assert_eq!(value_of(&s, "pacer_limit_paused", &[("limit", "api")]), 1.0);
    let throttled = [("upstream", "mock"), ("route", "GET /__mock/**")];
    assert_eq!(
        value_of(&s, "pacer_upstream_throttled_total", &throttled),
        1.0
    );
    let gave_up = [("limit", "api"), ("reason", "gave_up")];
    assert_eq!(value_of(&s, "pacer_rejected_total", &gave_up), 1.0);
}

/// `DELETE` on the admin listener: (status, body).
async fn admin_delete(admin: SocketAddr, path: &str) -> (http::StatusCode, Bytes) {
    let req = request("DELETE", &format!("http://{admin}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = send(&client(), req).await;
    (status, body)
}

/// `/status` shows the file's values beside the current ones and which changed live;
/// `"concurrency": null` removes a cap, and `DELETE` goes back to the file.
#[tokio::test]
async fn live_changes_show_beside_the_config_and_can_be_undone() {
    let mock = start_mock_default().await;
    let (_pacer, admin) = start_pacer_admin(ONE_PER_MINUTE, mock.addr).await;
    let file = serde_json::json!({"rate": "1/min", "burst": 1, "concurrency": 8, "quota": null});
    let slow = json(&admin_get(admin, "/limits/slow").await.2);
    assert_eq!((&slow["configured"], &slow["current"]), (&file, &file));
    assert_eq!(slow["changed_live"], serde_json::json!([]));

    let change = r#"{"rate": "50/s", "concurrency": null}"#;
    let (status, body) = admin_put(admin, "/limits/slow", change).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let slow = json(&body);
    assert_eq!(slow["configured"], file);
    let now = serde_json::json!({"rate": "50/s", "burst": 1, "concurrency": null, "quota": null});
    assert_eq!(slow["current"], now);
    assert_eq!(
        slow["changed_live"],
        serde_json::json!(["rate", "concurrency"])
    );
    assert_eq!(
        (slow["effective_rate"].clone(), slow["concurrency"].clone()),
        (50.0.into(), serde_json::Value::Null)
    );
    let status_doc = json(&admin_get(admin, "/status").await.2);
    assert_eq!(status_doc["limits"][0]["current"], now);

    let (status, body) = admin_delete(admin, "/limits/slow").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let slow = json(&body);
    assert_eq!((&slow["configured"], &slow["current"]), (&file, &file));
    assert_eq!(slow["changed_live"], serde_json::json!([]));
    assert_eq!(
        (slow["effective_rate"].clone(), slow["concurrency"].clone()),
        ((1.0 / 60.0).into(), 8.into())
    );
    assert_eq!(admin_delete(admin, "/limits/nope").await.0, 404);
}

/// A rate added live to a limit the file gives none could not be taken back: refused.
#[tokio::test]
async fn a_rate_cannot_be_added_live_to_a_limit_without_one() {
    let mock = start_mock_default().await;
    let yaml =
        "upstreams:\n  mock:\n    base_url: http://{mock}\nlimits:\n  cap: { concurrency: 2 }\n";
    let (_pacer, admin) = start_pacer_admin(yaml, mock.addr).await;
    let (status, body) = admin_put(admin, "/limits/cap", r#"{"rate": "5/s"}"#).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("no rate in the config"));
    let (status, body) = admin_put(admin, "/limits/cap", r#"{"concurrency": null}"#).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["concurrency"], serde_json::Value::Null);
}
