//! The generator as a CI step: HTTPS through pacer's interception with `tls.ca_file`, errors
//! that name their cause, thresholds and exit codes.

use std::path::Path;
use std::time::Duration;

use pacer::generate::{self, Options, Report, Scenario};
use pacer::mock::MockConfig;

use crate::support::generator::{run, scenario};
use crate::support::tunnel::pacer_with_ca;
use crate::support::*;

/// Writes `yaml` as `dir/scenario.yaml` and loads it the way `pacer generate` does.
fn scenario_file(dir: &Path, yaml: &str) -> Scenario {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, yaml).unwrap();
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"))
}

/// pacer intercepting `api.test` (TLS with its own CA) and forwarding to the plain-HTTP mock.
async fn intercepting_pacer(dir: &Path, mock: &Running) -> Running {
    let yaml = format!(
        "upstreams:\n  mock: {{ base_url: 'http://{}', hosts: [api.test] }}\n",
        mock.addr
    );
    let (pacer, ca) = pacer_with_ca(&yaml, dir).await;
    assert_eq!(ca, dir.join("trusted-ca.pem"));
    pacer
}

const HTTPS_LOAD: &str = "target: https://api.test
auth: { token_url: 'https://api.test/oauth/token', client_id: a, client_secret: b }
phases: [{ duration: 1s, rate: 20/s }]
requests: [{ path: /api/v2/users }]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_through_pacers_interception_with_tls_ca_file() {
    let mock = open_mock().await;
    let dir = temp_dir("gen-tls");
    let pacer = intercepting_pacer(&dir, &mock).await;
    // Relative to the scenario file, as a user keeps the CA next to it.
    let s = scenario_file(
        &dir,
        &format!("{HTTPS_LOAD}tls: {{ ca_file: trusted-ca.pem }}\n"),
    );
    let report = run(s, Some(format!("http://{}", pacer.addr))).await;
    assert_eq!(report.total.status_count(200), 20, "{}", report.table());
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["routes"]["GET /api/v2/users"]["requests"], 20);
    assert_eq!(
        stats["tokens_issued"], 1,
        "the token came through pacer too"
    );
}

#[test]
fn a_missing_ca_file_is_a_scenario_error_with_its_line() {
    let dir = temp_dir("gen-tls-missing");
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, format!("{HTTPS_LOAD}tls:\n  ca_file: nope.pem\n")).unwrap();
    let e = Scenario::load(&path).unwrap_err().to_string();
    assert!(e.starts_with("tls.ca_file, line 6: cannot read"), "{e}");
    assert!(e.contains("nope.pem"), "{e}");
}

/// The causes named in the report, one line each.
fn causes(report: &Report) -> String {
    let lines: Vec<String> = report
        .error_causes
        .iter()
        .map(|c| format!("{} {} {}", c.kind, c.count, c.cause))
        .collect();
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_says_to_add_tls_ca_file() {
    let mock = open_mock().await;
    let dir = temp_dir("gen-tls-untrusted");
    let pacer = intercepting_pacer(&dir, &mock).await;
    let proxy = Some(format!("http://{}", pacer.addr));
    // The token request is the first to fail, and stops the run before any load.
    let options = Options {
        proxy: proxy.clone(),
        progress: false,
    };
    let err = generate::run(scenario_file(&dir, HTTPS_LOAD), &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("certificate of api.test:443 not trusted: add tls.ca_file"),
        "{err}"
    );
    let without_auth = HTTPS_LOAD.replace("auth:", "#");
    let report = run(scenario_file(&dir, &without_auth), proxy).await;
    let causes = causes(&report);
    assert!(
        causes.starts_with("connect 20 certificate of api.test:443 not trusted"),
        "{causes}"
    );
    assert!(report.table().contains("not trusted: add tls.ca_file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_the_address() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let s = scenario(
        "target: http://{target}\nphases: [{ duration: 500ms, rate: 10/s }]\n\
         requests: [{ path: /a }]\n",
        &addr.to_string(),
    );
    let report = run(s, None).await;
    assert_eq!(
        causes(&report),
        format!("connect 5 connection refused to {addr}")
    );
}

/// An `https://` target through a proxy goes through a `CONNECT` tunnel. The stand-in proxy
/// here records what it is asked and refuses, so the requests fail to connect; what matters is
/// the tunnel request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_are_tunnelled_with_connect() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = proxy.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = proxy.accept().await {
            let mut buf = vec![0u8; 4096];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = conn
                .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let s = scenario(
        "target: https://api.test\nphases: [{ duration: 200ms, rate: 10/s }]\nrequests: [{ path: /api/v2/users }]\n",
        "",
    );
    let report = run(s, Some(format!("http://{addr}"))).await;
    assert_eq!(
        report.total.error_kinds.get("connect"),
        Some(&2),
        "{}",
        report.table()
    );
    let asked = rx.recv().await.unwrap();
    assert!(
        asked.starts_with("CONNECT api.test:443 HTTP/1.1\r\n"),
        "{asked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_refused_by_pacer_says_its_code() {
    let mock = open_mock().await;
    let pacer = start_pacer(
        "upstreams:\n  mock: { base_url: 'http://{mock}', hosts: [api.test] }\n",
        mock.addr,
    )
    .await;
    let s = scenario(
        "target: https://other.test\nphases: [{ duration: 500ms, rate: 10/s }]\n\
         requests: [{ path: /a }]\n",
        "",
    );
    let report = run(s, Some(format!("http://{}", pacer.addr))).await;
    let causes = causes(&report);
    assert!(
        causes.starts_with(
            "connect 5 the proxy refused CONNECT other.test:443 with 403 pacer.host.forbidden"
        ),
        "{causes}"
    );
}

/// Runs the `pacer generate` binary on `yaml` (written to `dir/scenario.yaml`) with `args`
/// and `env`; returns (exit code, stdout, stderr).
async fn pacer_generate(
    dir: &Path,
    yaml: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["generate", "--scenario", path.to_str().unwrap()])
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .envs(env.iter().copied())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("pacer generate ends within 60 s")
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

fn load_at(target: &str, thresholds: &str) -> String {
    format!(
        "target: {target}\nphases: [{{ duration: 500ms, rate: 20/s }}]\n\
         requests: [{{ path: /api/v2/users }}]\n{thresholds}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_set_the_exit_code() {
    let mock = start_mock(MockConfig {
        default_limit: None,
        latency: Duration::from_millis(40),
        ..Default::default()
    })
    .await;
    let target = format!("http://{}", mock.addr);
    let dir = temp_dir("gen-thresholds");
    let (out, html) = (dir.join("r.json"), dir.join("r.html"));
    let (out, html) = (out.to_str().unwrap(), html.to_str().unwrap());
    let args = ["--out", out, "--html", html];

    let met = "thresholds: { p99: 5s, error_rate: 1%, rate_achieved: 90% }\n";
    let (code, stdout, stderr) = pacer_generate(&dir, &load_at(&target, met), &args, &[]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("JSON report written to {out}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("HTML report written to {html}")),
        "{stdout}"
    );
    assert!(stdout.contains("p99 <= 5000 ms"), "{stdout}");
    let report = json(&std::fs::read(out).unwrap());
    assert_eq!(
        report["thresholds"].as_array().unwrap().len(),
        3,
        "{report}"
    );
    assert!(report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["passed"] == true));

    // Every answer takes 40 ms: a 10 ms p99 is crossed.
    let crossed = "thresholds: { p99: 10ms, error_rate: 1% }\n";
    let (code, stdout, stderr) = pacer_generate(&dir, &load_at(&target, crossed), &[], &[]).await;
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stderr.contains("thresholds crossed: p99 <= 10 ms (measured "),
        "{stderr}"
    );
    assert!(
        !stderr.contains("error_rate"),
        "only the crossed ones: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_failing_exits_1_with_the_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let dir = temp_dir("gen-all-failed");
    let yaml = load_at(&format!("http://{addr}"), "");
    let (code, stdout, stderr) = pacer_generate(&dir, &yaml, &[], &[]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("connection refused to {addr}")),
        "{stdout}"
    );
    assert!(
        stderr.contains("every request failed (10 of 10)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_file_is_honoured() {
    let mock = open_mock().await;
    let dir = temp_dir("gen-ssl-cert-file");
    let pacer = intercepting_pacer(&dir, &mock).await;
    let proxy = format!("http://{}", pacer.addr);
    let args = ["--proxy", proxy.as_str()];
    let ca = dir.join("trusted-ca.pem");
    let env = [("SSL_CERT_FILE", ca.to_str().unwrap())];
    let (code, stdout, stderr) = pacer_generate(&dir, HTTPS_LOAD, &args, &env).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // Without it, the same run cannot trust pacer's certificate.
    let (code, _, stderr) = pacer_generate(&dir, HTTPS_LOAD, &args, &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not trusted: add tls.ca_file"), "{stderr}");
}

/// Every shipped scenario, as written (no environment set), runs through pacer with the
/// shipped config/throttling-demo.yaml (its upstream moved to the test's mock): the hosts
/// the scenarios target are hosts that config forwards. Phases are cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_scenarios_fit_the_throttling_demo_config() {
    let mock = open_mock().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join("config/throttling-demo.yaml")).unwrap();
    assert!(
        config.contains("http://127.0.0.1:9000"),
        "the mock's address moved"
    );
    let config = config.replace("http://127.0.0.1:9000", "http://{mock}");
    let pacer = start_pacer(&config, mock.addr).await;
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("examples/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut s = Scenario::parse_with_env(&text, |_| None).unwrap();
        for phase in &mut s.phases {
            phase.duration = Duration::from_millis(300);
            if let pacer::generate::Load::Closed { users, .. } = &mut phase.load {
                *users = (*users).min(3);
            }
        }
        let report = run(s, Some(format!("http://{}", pacer.addr))).await;
        let t = &report.total;
        assert!(t.requests > 0, "{}", path.display());
        assert_eq!(
            t.status_count(200),
            t.requests,
            "{}\n{}",
            path.display(),
            report.table()
        );
        seen += 1;
    }
    assert!(seen >= 4);
}

/// examples/scenarios/analytics-queries.yaml straight at the mock run with config/mock.yaml
/// (plain HTTP, the analytics limits), with the environment its comment gives. Phases are cut
/// short. (`tests/it/docs.rs` runs it through pacer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_scenario_runs_against_the_mock_config_it_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = MockConfig::load(&root.join("config/mock.yaml")).unwrap();
    assert!(config.tls.is_none(), "config/mock.yaml serves plain HTTP");
    let mock = start_mock(config).await;
    let port = mock.addr.port();
    let env = move |name: &str| match name {
        "PACER_TARGET" => Some(format!("http://localhost:{port}")),
        "GC_TOKEN_URL" => Some(format!("http://localhost:{port}/oauth/token")),
        _ => None,
    };
    let text = std::fs::read_to_string(root.join("examples/scenarios/analytics-queries.yaml"));
    let mut s = Scenario::parse_with_env(&text.unwrap(), env).unwrap();
    s.phases[0].duration = Duration::from_millis(500);
    s.phases[0].load = pacer::generate::Load::Closed {
        users: 2,
        think: Duration::ZERO,
    };
    let report = run(s, None).await;
    let t = &report.total;
    assert!(t.requests > 0);
    assert_eq!(t.status_count(200), t.requests, "{}", report.table());
    assert!(
        report.target.starts_with("http://localhost:"),
        "{}",
        report.target
    );
    drop(mock);
}
