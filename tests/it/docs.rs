//! The documented command paths, run as the README and examples/ write them: the shipped
//! configs and scenarios, the real binary, loopback only. The fixed ports the documents use
//! (9000, 8080, 9091) are moved to free ones; scenarios are shortened to seconds.

use std::time::Duration;

use crate::support::proc::{config_for_mock, mock, proxy, shortened};

use crate::support::external;
use crate::support::proc;
use crate::support::repo;

/// `pacer generate --scenario FILE [--proxy URL] --out report.json --html report.html` with
/// the scenario's `${PACER_TARGET}` and `${GC_TOKEN_URL}` pointed at `mock`; returns the JSON
/// report, after checking the HTML one was written.
async fn generate(
    scenario: &std::path::Path,
    proxy: Option<&str>,
    mock: &str,
) -> serde_json::Value {
    let out = scenario.with_extension("report.json");
    let html = scenario.with_extension("report.html");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pacer"));
    command.arg("generate").arg("--scenario").arg(scenario);
    if let Some(proxy) = proxy {
        command.args(["--proxy", &format!("http://{proxy}")]);
    }
    let run = command
        .arg("--out")
        .arg(&out)
        .arg("--html")
        .arg(&html)
        .env("PACER_TARGET", mock)
        .env("GC_TOKEN_URL", format!("{mock}/oauth/token"))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("generate finishes within a minute")
        .expect("generate runs");
    let said = format!(
        "exit {:?}\n{}{}",
        run.status.code(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap_or_else(|e| panic!("no page ({e}): {said}"));
    assert!(page.contains("<svg"), "{said}");
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("no report ({e}): {said}"));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let status = &report["status"];
    assert!(
        status["200"].as_u64().unwrap_or(0) > 0,
        "no 200s: {status}\n{said}"
    );
    assert_eq!(status.as_object().unwrap().len(), 1, "only 200s: {said}");
    assert_eq!(report["errors"], 0, "{said}");
    report
}

/// README, "Load generator": the mock, pacer with config/throttling-demo.yaml, and each
/// scenario the README pairs with them (the scenarios address 127.0.0.1, which that config lists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_through_pacer_with_the_shipped_config_and_scenarios() {
    let dir = tempdir("generate");
    let (_mock, mock_url) = mock(None).await;
    let mock_addr = mock_url.trim_start_matches("http://");
    let config = config_for_mock("config/throttling-demo.yaml", mock_addr, &dir);
    let (_pacer, pacer_addr) = proxy(&config).await;
    for name in ["mixed", "agents-polling-scripts", "flow-updates"] {
        let scenario = shortened(&format!("examples/scenarios/{name}.yaml"), &dir);
        generate(&scenario, Some(&pacer_addr), &mock_url).await;
    }
}

/// The scenarios' headers, "Straight at the mock": `pacer mock`, then `pacer generate
/// --scenario examples/scenarios/mixed.yaml --html report.html`, no pacer in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_straight_at_the_mock() {
    let dir = tempdir("straight");
    let (_mock, mock_url) = mock(None).await;
    let scenario = shortened("examples/scenarios/mixed.yaml", &dir);
    generate(&scenario, None, &mock_url).await;
}

/// README, "See throttling in Grafana in five minutes": the mock and pacer with
/// config/throttling-demo.yaml, its metrics on the admin listener, a live limit change, and
/// undoing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_walkthrough_commands() {
    let dir = tempdir("grafana");
    let (_mock, mock_url) = mock(None).await;
    let config = config_for_mock(
        "config/throttling-demo.yaml",
        mock_url.trim_start_matches("http://"),
        &dir,
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let admin = text
        .lines()
        .find_map(|l| l.strip_prefix("admin: "))
        .unwrap()
        .to_owned();
    let (_pacer, _) = proxy(&config).await;
    let (status, metrics) = http(&admin, "GET /metrics", "").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("pacer_limit_rate{limit=\"per-token\"} 10"),
        "{metrics}"
    );
    let change = r#"{"rate": "4/s"}"#;
    let (status, body) = http(&admin, "PUT /limits/per-token", change).await;
    assert_eq!(status, 200, "{body}");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["changed_live"], serde_json::json!(["rate"]), "{body}");
    let (status, body) = http(&admin, "DELETE /limits/per-token", "").await;
    assert_eq!(status, 200, "{body}");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["changed_live"], serde_json::json!([]), "{body}");
}

/// README, "Running it": `pacer check` and `pacer proxy` with config/genesys.yaml start as
/// shipped, intercepting with pacer's own CA (no intercept section) and saying where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_config_checks_and_starts() {
    let dir = tempdir("genesys");
    let config = config_for_mock("config/genesys.yaml", "unused", &dir);
    let state = dir.join("state");
    let env = [("PACER_STATE_DIR", state.to_str().unwrap())];
    let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["check", "--config", config.to_str().unwrap()])
        .envs(env)
        .output()
        .await
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(check.stderr.is_empty(), "no warnings: {check:?}");
    let pacer = proc::Proc::spawn(&["proxy", "--config", config.to_str().unwrap()], &env);
    pacer.field_of_line("pacer proxy started", "listen").await;
    let log = pacer.stop().await;
    assert!(
        log.contains(&state.join("ca.pem").display().to_string()),
        "{log}"
    );
}

/// examples/scenarios/analytics-queries.yaml: the mock with the config/mock.yaml it names
/// (plain HTTP, the analytics route's own limit), pacer with config/throttling-demo.yaml.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_scenario_with_the_mock_config_it_names() {
    let dir = tempdir("analytics");
    let scenario_file = repo("examples/scenarios/analytics-queries.yaml");
    let text = std::fs::read_to_string(&scenario_file).unwrap();
    assert!(text.contains("config/mock.yaml") && text.contains("config/throttling-demo.yaml"));
    let (_mock, mock_url) = mock(Some(&repo("config/mock.yaml"))).await;
    assert!(mock_url.starts_with("http://"), "{mock_url}");
    let mock_addr = mock_url.trim_start_matches("http://");
    let config = config_for_mock("config/throttling-demo.yaml", mock_addr, &dir);
    let (_pacer, pacer_addr) = proxy(&config).await;
    let scenario = shortened("examples/scenarios/analytics-queries.yaml", &dir);
    generate(&scenario, Some(&pacer_addr), &mock_url).await;
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pacer-docs-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The mock's start line names the scheme it serves: with `tls:` only https:// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_start_line_says_https_when_it_serves_tls() {
    let dir = tempdir("mock-tls");
    let config = dir.join("mock.yaml");
    std::fs::write(&config, "tls: { cert_out: mock-ca.pem }\n").unwrap();
    let (_mock, url) = mock(Some(&config)).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
}

/// `bash examples/quickstart.sh`, with the binary under test: free ports, no python3, and the
/// limit shows shaping (every one of six requests a 200, the later ones queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_script_runs_and_shows_shaping() {
    let curl = external::tool("curl", "apt-get install -y curl");
    let Some(curl) = curl else { return };
    let path = format!(
        "{}:{}",
        curl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = tokio::process::Command::new("bash")
        .arg(repo("examples/quickstart.sh"))
        .env("PACER_BIN", env!("CARGO_BIN_EXE_pacer"))
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the quickstart finishes within a minute")
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!out.contains(":9000") && !out.contains(":8080"), "{out}");
    assert!(out.contains("-> HTTP 403"), "{out}");
    let answers: Vec<&str> = out
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some("after"))
        .collect();
    assert_eq!(answers.len(), 6, "{out}");
    assert!(answers.iter().all(|l| l.starts_with("200 after")), "{out}");
    // At 2 a second, the last of six leaves at least 1.5 s after the first.
    let seconds = |l: &&str| {
        l.split(' ')
            .nth(2)?
            .trim_end_matches('s')
            .parse::<f64>()
            .ok()
    };
    let slowest = answers.iter().filter_map(seconds).fold(0.0, f64::max);
    assert!(slowest >= 1.4, "{out}");
    assert!(out.contains("\"throttled_total\":0"), "{out}");
}

/// One HTTP/1.1 exchange as curl would make it (`request` is "METHOD /path"): status and body.
async fn http(addr: &str, request: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{request} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// README, "Install": `pacer --version` names the binary and the crate's version.
#[test]
fn the_installed_binary_says_its_version() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.trim(), concat!("pacer ", env!("CARGO_PKG_VERSION")));
}

/// README, "Fresh machine": `cargo run --release -- demo`, the binary's `demo` (shortened with
/// `--duration`): the side-by-side table, with no 429 reaching the client through pacer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_command_prints_the_side_by_side_table() {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["demo", "--duration", "2s"])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the demo finishes within a minute")
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("direct  through pacer"), "{out}");
    let seen: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("429 seen by the client"))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(seen.last(), Some(&"0"), "{out}");
    assert_ne!(seen[seen.len() - 2], "0", "{out}");
}
