//! `learn:` with the rest of a limit: any key, a rate or a quota as a ceiling, the headroom,
//! and what `/status` and the metrics show.

use super::*;

#[tokio::test(start_paused = true)]
async fn any_key_learns() {
    for key in ["global", "'header:authorization'", "client_ip"] {
        let yaml = LEARN.replace("key: token", &format!("key: {key}"));
        learns_with(HeaderFamily::Genesys, &yaml).await;
    }
}

/// The API allows 5/s (30 per 6 s); a configured 3/s holds: 60 in 20 s, plus the bucket's one.
/// (Offered twice the ceiling, so the last in the queue is answered within the clients' 30 s.)
#[tokio::test(start_paused = true)]
async fn a_configured_rate_is_a_ceiling() {
    let mock = start_mock(platform(HeaderFamily::Genesys)).await;
    let pacer = start_pacer(
        &LEARN.replace("learn: true", "learn: true, rate: 3/s"),
        mock.addr,
    )
    .await;
    let run = offer(&pacer, &mock, 6, Duration::from_secs(20)).await;
    assert_eq!(run.throttled, 0);
    assert!(
        (55..=61).contains(&run.accepted_in_offer),
        "{} in 20 s at 3/s",
        run.accepted_in_offer
    );
}

/// A quota below what the API advertises holds too: no 6 s holds more than its 20, so 20 s
/// (windows from 0, 6, 12 and 18 s) take at most 80.
#[tokio::test(start_paused = true)]
async fn a_configured_quota_is_a_ceiling() {
    let mock = start_mock(platform(HeaderFamily::Genesys)).await;
    let yaml = LEARN.replace("learn: true", "learn: true, quota: 20/6s");
    let pacer = start_pacer(&yaml, mock.addr).await;
    let run = offer(&pacer, &mock, 6, Duration::from_secs(20)).await;
    assert_eq!(run.throttled, 0);
    assert!(
        (60..=80).contains(&run.accepted_in_offer),
        "{} in 20 s under 20 per 6 s",
        run.accepted_in_offer
    );
}

/// A headroom of 20% paces at 4/s of the API's 5/s, with 6 of each window's 30 free to go at
/// once when it opens: the window still fills, without a 429.
#[tokio::test(start_paused = true)]
async fn the_headroom_slows_the_pace_not_the_window() {
    let mock = start_mock(platform(HeaderFamily::Genesys)).await;
    let yaml = LEARN.replace("learn: true", "learn: {headroom: 20%}");
    let (pacer, admin) = start_pacer_admin(&yaml, mock.addr).await;
    let run = offer(&pacer, &mock, 10, Duration::from_secs(20)).await;
    assert_eq!(run.throttled, 0);
    assert!(run.accepted_in_offer >= 95, "{}", run.accepted_in_offer);
    let status = json(&get(&client(), &format!("http://{admin}/status")).await.2);
    let rate = status["limits"][0]["learned"]["rate"].as_f64().unwrap();
    assert!((rate - 4.0).abs() < 1e-9, "{status:#}");
}

#[tokio::test(start_paused = true)]
async fn status_and_metrics_show_what_was_learned() {
    let mock = start_mock(platform(HeaderFamily::Genesys)).await;
    let (pacer, admin) = start_pacer_admin(LEARN, mock.addr).await;
    let client = client();
    for _ in 0..3 {
        let req = request("GET", &pacer.url("/api/v2/users"))
            .header("authorization", "Bearer agent-1")
            .body(Full::default())
            .unwrap();
        assert_eq!(send(&client, req).await.0, 200);
    }
    let status = json(&get(&client, &format!("http://{admin}/status")).await.2);
    let learned = &status["limits"][0]["learned"];
    assert_eq!(learned["quota"], 30, "{status:#}");
    assert_eq!(learned["remaining"], 27, "{status:#}");
    assert_eq!(learned["headroom"], 0.05, "{status:#}");
    assert_eq!(learned["advertised"], 3, "{status:#}");
    // Genesys says no window: it is the longest reset seen, whole seconds rounded up.
    assert_eq!(learned["window_ms"], 6000, "{status:#}");
    let rate = learned["rate"].as_f64().unwrap();
    assert!((rate - 4.75).abs() < 1e-9, "{rate}");
    let metrics = get(&client, &format!("http://{admin}/metrics")).await.2;
    let metrics = String::from_utf8_lossy(&metrics);
    for line in [
        "pacer_learned_quota{limit=\"per-token\"} 30",
        "pacer_learned_remaining{limit=\"per-token\"} 27",
        "pacer_learned_window_seconds{limit=\"per-token\"} 6",
        "pacer_learned_rate{limit=\"per-token\"} 4.75",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}
