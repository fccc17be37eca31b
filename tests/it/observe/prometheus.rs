//! The shipped Grafana dashboard and Prometheus scrape config, checked against a real pacer:
//! every series the dashboard queries exists, `promtool` accepts the scrape and the config, and
//! a real Prometheus scrapes pacer and answers every dashboard query.
//!
//! `promtool` and `prometheus` come from Debian's `prometheus` package; without them those tests
//! skip loudly (or fail under `PACER_REQUIRE_EXTERNAL=1`, see `support/external.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::*;
use crate::support::external::{tool, PROMETHEUS_INSTALL};

/// Two shaped routes (one limit queues, one rejects) and the rest unshaped.
const SHAPED: &str = "\
upstreams:
  mock:
    base_url: http://{mock}
limits:
  per-token:
    rate: 300/min
    burst: 10
    key: token
    adaptive: true
  scripts:
    concurrency: 4
  strict:
    rate: 1/min
    mode: reject
routes:
  - match: GET /api/v2/scripts/**
    limits: [scripts, per-token]
  - match: POST /api/v2/analytics/**
    limits: [strict]
  - match: \"* /api/v2/**\"
    limits: [per-token]
";

/// pacer in front of the mock, after traffic that touches every kind of series: successes on
/// shaped and unshaped routes, an upstream 429 pacer gives up on, and a limit's rejection.
async fn pacer_after_traffic() -> (Running, Running, SocketAddr) {
    let mock = start_mock_default().await;
    let (pacer, admin) = start_pacer_admin(SHAPED, mock.addr).await;
    let c = client();
    for path in ["/api/v2/scripts/7", "/api/v2/users", "/elsewhere"] {
        get(&c, &pacer.url(path)).await;
    }
    let throttled = get(&c, &pacer.url("/__mock/status/429?retry_after=3600")).await;
    assert_eq!(throttled.0, 429);
    for expected in [200, 429] {
        let req = request("POST", &pacer.url("/api/v2/analytics/query"));
        let res = send(&c, req.body(Full::default()).unwrap()).await;
        assert_eq!(res.0, expected);
    }
    (mock, pacer, admin)
}

/// Every PromQL expression in the dashboard: panel targets and template variable queries.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(repo("examples/grafana/pacer-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    exprs
}

/// The `pacer_*` names an expression uses.
fn series_names(expr: &str) -> Vec<String> {
    expr.match_indices("pacer_")
        .map(|(at, _)| {
            let rest = &expr[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn every_series_the_dashboard_queries_exists_after_traffic() {
    let used: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|e| series_names(e))
        .collect();
    // The panels the dashboard must have, by the series they show.
    for needed in [
        "pacer_requests_total",
        "pacer_upstream_throttled_total",
        "pacer_retries_total",
        "pacer_rejected_total",
        "pacer_queue_depth",
        "pacer_queue_wait_seconds_bucket",
        "pacer_request_duration_seconds_bucket",
        "pacer_limit_rate",
        "pacer_limit_paused",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard has no panel on {needed}"
        );
    }
    let (_mock, _pacer, admin) = pacer_after_traffic().await;
    let exported: BTreeSet<String> = parse_exposition(&scrape(admin).await)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}");
}

/// The README's walkthrough: the demo config's admin listener is where the shipped scrape
/// config looks, and the provisioned dashboard directory holds the dashboard.
#[test]
fn the_demo_config_and_the_scrape_config_agree() {
    let demo = pacer::Config::load(&repo("config/throttling-demo.yaml")).unwrap();
    let admin = demo
        .admin
        .expect("the demo turns the admin listener on")
        .to_string();
    let scrape = std::fs::read_to_string(repo("examples/prometheus/prometheus.yml")).unwrap();
    assert!(
        scrape.contains(&format!("\"{admin}\"")),
        "{admin} not in the scrape config"
    );
    let provider =
        std::fs::read_to_string(repo("examples/grafana/provisioning/dashboards/pacer.yaml"))
            .unwrap();
    assert!(provider.contains("path: /var/lib/grafana/dashboards/pacer"));
}

#[tokio::test]
async fn promtool_accepts_a_live_scrape() {
    let Some(promtool) = tool("promtool", PROMETHEUS_INSTALL) else {
        return;
    };
    let (_mock, _pacer, admin) = pacer_after_traffic().await;
    let text = scrape(admin).await;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn promtool_accepts_the_shipped_scrape_config() {
    let Some(promtool) = tool("promtool", PROMETHEUS_INSTALL) else {
        return;
    };
    let config = repo("examples/prometheus/prometheus.yml");
    let out = Command::new(promtool)
        .args(["check", "config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check config: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_real_prometheus_scrapes_pacer_and_answers_the_dashboard_queries() {
    let Some(binary) = tool("prometheus", PROMETHEUS_INSTALL) else {
        return;
    };
    let (_mock, _pacer, admin) = pacer_after_traffic().await;
    let prom = Prometheus::start(&binary, admin).await;
    // Wait for a scrape to land: the first one happens within a second of the start.
    let query = "pacer_requests_total{job=\"pacer\",route=\"GET /api/v2/scripts/**\"}";
    let result = prom
        .poll(query, |r| !r.as_array().unwrap().is_empty())
        .await;
    assert_eq!(
        result[0]["metric"]["env"], "loadtest",
        "the shipped target labels apply"
    );
    assert_eq!(result[0]["value"][1], "1");
    // Every dashboard query parses and runs against the real series.
    for expr in dashboard_queries() {
        if expr.starts_with("label_values") {
            continue; // Grafana's own function, not PromQL
        }
        let expr = expr.replace("$__rate_interval", "1m").replace("$job", ".*");
        let doc = prom.query(&expr).await;
        assert_eq!(doc["status"], "success", "{expr}: {doc}");
    }
    prom.stop().await;
}

/// A Prometheus server on loopback with its storage in a temp dir, scraping with the shipped
/// config pointed at `admin` every second.
struct Prometheus {
    child: tokio::process::Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    async fn start(binary: &Path, admin: SocketAddr) -> Prometheus {
        let dir = crate::support::temp_dir("prom");
        let shipped = std::fs::read_to_string(repo("examples/prometheus/prometheus.yml"))
            .unwrap()
            .replace("127.0.0.1:9091", &admin.to_string())
            .replace("_interval: 5s", "_interval: 1s")
            .replace("scrape_timeout: 4s", "scrape_timeout: 1s");
        std::fs::write(dir.join("prometheus.yml"), shipped).unwrap();
        // Prometheus cannot report a port it picked, so take a free one and hand it over.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        let prom = Prometheus { child, addr, dir };
        prom.wait_ready().await;
        prom
    }

    /// Polls `/-/ready` (Prometheus has no other readiness signal), at most 30 s.
    async fn wait_ready(&self) {
        let url = format!("http://{}/-/ready", self.addr);
        for _ in 0..300 {
            let res = client().get(url.parse().unwrap()).await;
            if res.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("prometheus not ready within 30s:\n{}", self.log());
    }

    async fn query(&self, expr: &str) -> serde_json::Value {
        let q: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        let url = format!("http://{}/api/v1/query?query={q}", self.addr);
        json(&get(&client(), &url).await.2)
    }

    /// Queries until the result satisfies `done`, at most 30 s; returns the result.
    async fn poll(
        &self,
        expr: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..300 {
            let doc = self.query(expr).await;
            assert_eq!(doc["status"], "success", "{expr}: {doc}");
            if done(&doc["data"]["result"]) {
                return doc["data"]["result"].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{expr} never had a result within 30s:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
