//! `pacer demo` in process: the side-by-side numbers tell the story they are meant to.

use std::time::Duration;

use pacer::demo::{self, DemoOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_pacer_turning_429s_into_waits() {
    let options = DemoOptions {
        duration: Duration::from_secs(2),
        ..DemoOptions::default()
    };
    let started = std::time::Instant::now();
    let demo = tokio::time::timeout(Duration::from_secs(60), demo::run(&options))
        .await
        .expect("the demo finishes within 60 s")
        .expect("the demo runs");
    let table = demo.table();
    let (direct, paced) = (&demo.direct.report.total, &demo.through_pacer.report.total);
    let sent = u64::from(options.rate) * 2;

    // Straight at the mock: one window's worth gets through, the rest is refused.
    assert_eq!(direct.requests, sent, "{table}");
    assert_eq!(direct.status_count(200), 30, "{table}");
    assert_eq!(direct.status_count(429), sent - 30, "{table}");
    assert_eq!(demo.direct.upstream_429, sent - 30, "{table}");

    // Through pacer: the same load, every request answered 200, none refused anywhere.
    assert_eq!(paced.requests, sent, "{table}");
    assert_eq!(paced.status_count(200), sent, "{table}");
    assert_eq!(paced.status_count(429), 0, "{table}");
    assert_eq!(demo.through_pacer.upstream_requests, sent, "{table}");
    assert_eq!(demo.through_pacer.upstream_429, 0, "{table}");
    assert!(paced.latency_ms.p99 > direct.latency_ms.p99, "{table}");

    for line in [
        "429 seen by the client",
        "429s from the API",
        "p99 latency ms",
    ] {
        assert!(table.contains(line), "{table}");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "{table}");
}
