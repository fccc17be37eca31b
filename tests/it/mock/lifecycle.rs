//! Serving HTTPS, and ending `serve` gracefully.

use std::time::Duration;

use http::StatusCode;
use pacer::mock::{MockConfig, MockTls};

use crate::support::mock::{https_get, route, Mock};

#[tokio::test]
async fn tls_mode_serves_https_with_a_trustable_self_signed_cert() {
    let cert_out = std::env::temp_dir().join(format!("pacer-mock-{}.pem", uuid::Uuid::new_v4()));
    let mut tls = MockTls::self_signed().unwrap();
    tls.cert_out = Some(cert_out.clone());
    let config = MockConfig {
        tls: Some(tls),
        ..MockConfig::default()
    };
    let pem = config.tls.as_ref().unwrap().cert_pem.clone();
    let mock = Mock::start(config).await;
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/api/v2/users", mock.addr.port());
        let reply = https_get(&pem, &url).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        assert!(reply.json()["entities"].is_array());
    }
    // Written before the first accept, so it is there once a request was answered.
    let written = std::fs::read_to_string(&cert_out).expect("serve writes cert_out");
    std::fs::remove_file(&cert_out).unwrap();
    assert_eq!(written, pem);
    mock.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_ends_serve() {
    let mut slow = route("GET /api/v2/slow");
    slow.latency = Some(Duration::from_millis(300));
    let config = MockConfig {
        routes: vec![slow],
        ..MockConfig::default()
    };
    let mock = Mock::start(config).await;
    mock.get("/api/v2/users", None).await; // leaves an idle keep-alive connection
    let client = mock.clone_client();
    let slow = tokio::spawn(async move { client.get("/api/v2/slow", None).await });
    mock.wait_for_in_flight(1).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), mock.stop()).await;
    ended.expect("serve ends after shutdown").unwrap();
    assert_eq!(
        slow.await.unwrap().status,
        StatusCode::OK,
        "in-flight request finished"
    );
}
