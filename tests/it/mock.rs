//! `pacer mock` end to end: the mock served on 127.0.0.1:0, driven by a real HTTP client.
//!
//! Tests whose outcome depends on windows run on tokio's paused clock, so Retry-After values are
//! exact and a window reopens only when the test advances time.

mod config;
mod lifecycle;

use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use pacer::mock::{MockConfig, RetryAfterMode};
use sha2::{Digest, Sha256};

use crate::support::basic;
use crate::support::mock::{limit, route, Mock, Reply};

#[tokio::test(start_paused = true)]
async fn issues_tokens_for_client_credentials() {
    let mock = Mock::start(MockConfig::default()).await;
    let form = "grant_type=client_credentials";
    let auth = basic("my-client", "my-secret");
    let ok = mock
        .send(
            Method::POST,
            "/oauth/token",
            &[("authorization", &auth)],
            form,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let body = ok.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86400);
    assert!(body["access_token"].as_str().unwrap().len() >= 32);
    assert!(ok.header("inin-correlation-id").is_some());

    let no_auth = mock.send(Method::POST, "/oauth/token", &[], form).await;
    assert_eq!(no_auth.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_auth.json()["error"], "invalid_client");
    let bad_auth = [("authorization", "Basic !!not-base64!!")];
    let refused = mock
        .send(Method::POST, "/oauth/token", &bad_auth, form)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let auth_only = [("authorization", auth.as_str())];
    let bad_grant = mock
        .send(
            Method::POST,
            "/oauth/token",
            &auth_only,
            "grant_type=password",
        )
        .await;
    assert_eq!(bad_grant.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_grant.json()["error"], "unsupported_grant_type");
    let no_grant = mock
        .send(Method::POST, "/oauth/token", &auth_only, "")
        .await;
    assert_eq!(no_grant.status, StatusCode::BAD_REQUEST);
    assert_eq!(mock.stats().await["tokens_issued"], 1);
}

#[tokio::test(start_paused = true)]
async fn api_answers_an_entity_list_with_platform_headers() {
    let mock = Mock::start(MockConfig::default()).await;
    let reply = mock.get("/api/v2/users?pageSize=25", Some("t1")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let id = body["entities"][0]["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(body["pageSize"], 25);
    assert!(uuid::Uuid::parse_str(reply.header("inin-correlation-id").unwrap()).is_ok());
    assert_eq!(reply.header("inin-ratelimit-count"), Some("1"));
    assert_eq!(reply.header("inin-ratelimit-allowed"), Some("300"));
    assert_eq!(reply.header("inin-ratelimit-reset"), Some("60"));
    assert!(
        reply.header("x-mock-received-sha256").is_none(),
        "a GET has no body"
    );

    let unknown = mock.get("/nothing/here", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["code"], "not.found");
}

#[tokio::test(start_paused = true)]
async fn per_token_limit_answers_the_platforms_429() {
    let config = MockConfig {
        default_limit: limit(5, 60),
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    for _ in 0..5 {
        assert_eq!(
            mock.get("/api/v2/users", Some("alice")).await.status,
            StatusCode::OK
        );
    }
    tokio::time::advance(Duration::from_millis(20_500)).await;
    let throttled = mock.get("/api/v2/users", Some("alice")).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.header("retry-after"), Some("40"));
    assert_eq!(throttled.header("content-type"), Some("application/json"));
    let correlation = throttled.header("inin-correlation-id").unwrap();
    assert!(uuid::Uuid::parse_str(correlation).is_ok());
    let body = throttled.json();
    let context = body["contextId"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&context).is_ok());
    let expected = serde_json::json!({
        "message": "Rate limit exceeded the maximum. Retry the request in [40] seconds",
        "code": "too.many.requests.retry.after",
        "status": 429,
        "contextId": context,
        "details": [],
        "errors": [],
    });
    assert_eq!(body, expected);

    assert_eq!(
        mock.get("/api/v2/users", Some("bob")).await.status,
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_secs(40)).await;
    let reopened = mock.get("/api/v2/users", Some("alice")).await;
    assert_eq!(reopened.status, StatusCode::OK);
    assert_eq!(reopened.header("inin-ratelimit-count"), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn per_route_rate_is_per_token_and_only_for_its_route() {
    let mut analytics = route("POST /api/v2/analytics/**");
    analytics.rate = limit(2, 1);
    let config = MockConfig {
        routes: vec![analytics],
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    let path = "/api/v2/analytics/conversations/details/query";
    let bearer = [("authorization", "Bearer t1")];
    for _ in 0..2 {
        assert_eq!(
            mock.send(Method::POST, path, &bearer, "{}").await.status,
            StatusCode::OK
        );
    }
    let throttled = mock.send(Method::POST, path, &bearer, "{}").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.header("retry-after"), Some("1"));
    assert_eq!(
        mock.get(path, Some("t1")).await.status,
        StatusCode::OK,
        "GET is another route"
    );
    assert_eq!(
        mock.get("/api/v2/users", Some("t1")).await.status,
        StatusCode::OK
    );
    let other = [("authorization", "Bearer t2")];
    assert_eq!(
        mock.send(Method::POST, path, &other, "{}").await.status,
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        mock.send(Method::POST, path, &bearer, "{}").await.status,
        StatusCode::OK
    );
}

/// Real time: the two slow requests must stay in flight while the third arrives.
#[tokio::test]
async fn per_route_concurrency_cap_refuses_with_retry_after_1() {
    let mut slow = route("GET /api/v2/slow");
    slow.concurrency = Some(2);
    slow.latency = Some(Duration::from_secs(60));
    let config = MockConfig {
        routes: vec![slow],
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    let held: Vec<_> = (0..2)
        .map(|i| {
            let client = mock.clone_client();
            tokio::spawn(async move { client.get("/api/v2/slow", Some(&format!("t{i}"))).await })
        })
        .collect();
    mock.wait_for_in_flight(2).await;
    let refused = mock.get("/api/v2/slow", Some("t9")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .contains("[1] seconds"));
    assert_eq!(
        mock.get("/api/v2/users", Some("t9")).await.status,
        StatusCode::OK
    );
    let stats = mock.stats().await;
    assert_eq!(stats["in_flight"], 2, "the held requests");
    assert_eq!(
        stats["max_in_flight"], 3,
        "the held ones and the refused one, briefly"
    );
    assert_eq!(stats["routes"]["GET /api/v2/slow"]["throttled"], 1);
    held.iter().for_each(|h| h.abort());
}

/// Real time, like the test above. A client that hangs up frees its slot at once.
#[tokio::test]
async fn a_disconnecting_client_frees_its_concurrency_slot() {
    use tokio::io::AsyncWriteExt;
    let mut slow = route("GET /api/v2/slow");
    slow.concurrency = Some(1);
    slow.latency = Some(Duration::from_secs(60));
    let config = MockConfig {
        routes: vec![slow],
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    let mut raw = tokio::net::TcpStream::connect(mock.addr).await.unwrap();
    let request = b"GET /api/v2/slow HTTP/1.1\r\nhost: mock\r\n\r\n";
    raw.write_all(request).await.unwrap();
    mock.wait_for_in_flight(1).await;
    drop(raw);
    mock.wait_for_in_flight(0).await;
    let client = mock.clone_client();
    let next = tokio::spawn(async move { client.get("/api/v2/slow", None).await });
    mock.wait_for_in_flight(1).await;
    assert_eq!(
        mock.stats().await["throttled_total"],
        0,
        "the freed slot was taken"
    );
    next.abort();
}

#[tokio::test(start_paused = true)]
async fn retry_after_modes_misbehave_as_configured() {
    let cases = [
        (RetryAfterMode::Normal, Some("60"), 60),
        (RetryAfterMode::Omit, None, 60),
        (
            RetryAfterMode::Garbage,
            Some(pacer::mock::GARBAGE_RETRY_AFTER),
            60,
        ),
        (RetryAfterMode::Huge, Some("3600"), 3600),
    ];
    for (mode, header, in_message) in cases {
        let throttled = throttled_reply(mode).await;
        assert_eq!(throttled.header("retry-after"), header, "{mode:?}");
        let message = throttled.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&format!("[{in_message}] seconds")),
            "{mode:?}: {message}"
        );
    }
    let dated = throttled_reply(RetryAfterMode::HttpDate).await;
    let at = httpdate::parse_http_date(dated.header("retry-after").unwrap()).unwrap();
    let ahead = at
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .as_secs();
    assert!((55..=61).contains(&ahead), "{ahead} s ahead");
}

/// The second request of a token under a 1-per-60s limit, with `mode`.
async fn throttled_reply(mode: RetryAfterMode) -> Reply {
    let config = MockConfig {
        default_limit: limit(1, 60),
        retry_after: mode,
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    assert_eq!(mock.get("/api/v2/users", None).await.status, StatusCode::OK);
    let throttled = mock.get("/api/v2/users", None).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    throttled
}

#[tokio::test(start_paused = true)]
async fn require_auth_wants_any_bearer_token() {
    let config = MockConfig {
        require_auth: true,
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    let refused = mock.get("/api/v2/users", None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let body = refused.json();
    let message = "No authentication bearer token specified in authorization header.";
    assert_eq!(body["message"], message);
    assert_eq!(body["code"], "bad.credentials");
    assert_eq!(body["status"], 401);
    assert_eq!(
        mock.get("/api/v2/users", Some("made-up")).await.status,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn echo_and_api_report_what_arrived() {
    let mock = Mock::start(MockConfig::default()).await;
    let body = "x".repeat(100_000);
    let sha = format!("{:x}", Sha256::digest(body.as_bytes()));
    let headers = [("authorization", "Bearer secret"), ("x-a", "1")];
    let echo = mock
        .send(Method::PUT, "/__mock/echo?q=1", &headers, body.clone())
        .await;
    let echoed = echo.json();
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["uri"], "/__mock/echo?q=1");
    assert_eq!(echoed["headers"]["authorization"][0], "Bearer secret");
    assert_eq!(echoed["headers"]["x-a"], serde_json::json!(["1"]));
    assert_eq!(echoed["body_bytes"], 100_000);
    assert_eq!(echoed["body_sha256"], sha);

    let api = mock
        .send(Method::POST, "/api/v2/things", &headers, body)
        .await;
    assert_eq!(api.header("x-mock-received-bytes"), Some("100000"));
    assert_eq!(api.header("x-mock-received-sha256"), Some(sha.as_str()));
}

#[tokio::test(start_paused = true)]
async fn status_and_delay_helpers() {
    let mock = Mock::start(MockConfig::default()).await;
    let status = mock.get("/__mock/status/503?retry_after=7", None).await;
    assert_eq!(status.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(status.header("retry-after"), Some("7"));
    assert_eq!(status.json()["status"], 503);
    assert_eq!(
        mock.get("/__mock/status/42", None).await.status,
        StatusCode::BAD_REQUEST
    );

    let started = tokio::time::Instant::now();
    let delayed = mock.get("/__mock/delay/1500", None).await;
    assert_eq!(delayed.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(
        mock.stats().await["requests_total"],
        0,
        "helpers are not counted"
    );
}

#[tokio::test(start_paused = true)]
async fn stats_count_and_reset_clears_counters_and_windows() {
    let config = MockConfig {
        default_limit: limit(2, 60),
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    for _ in 0..3 {
        mock.get("/api/v2/users", Some("t")).await;
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    mock.send(Method::POST, "/api/v2/users", &[], "{}").await;
    let stats = mock.stats().await;
    assert_eq!(stats["requests_total"], 4);
    assert_eq!(stats["throttled_total"], 1);
    assert_eq!(
        stats["routes"]["GET /api/v2/users"],
        serde_json::json!({"requests": 3, "throttled": 1})
    );
    assert_eq!(stats["routes"]["POST /api/v2/users"]["requests"], 1);
    let seconds = serde_json::json!([
        {"second": 0, "requests": 3, "throttled": 1},
        {"second": 2, "requests": 1, "throttled": 0},
    ]);
    assert_eq!(stats["per_second"], seconds);
    assert_eq!(stats["in_flight"], 0);
    assert_eq!(stats["max_in_flight"], 1);

    let reset = mock.send(Method::POST, "/__mock/reset", &[], "").await;
    assert_eq!(reset.status, StatusCode::OK);
    let stats = mock.stats().await;
    assert_eq!(stats["requests_total"], 0);
    assert_eq!(stats["routes"], serde_json::json!({}));
    assert_eq!(
        mock.get("/api/v2/users", Some("t")).await.status,
        StatusCode::OK
    );
}
