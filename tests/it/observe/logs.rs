//! Logs of the real binary: credentials never appear at any level, and both formats work.
//!
//! These run `target/debug/pacer` as a child process, because what matters is everything the
//! process writes, including what dependencies (hyper, rustls) log at `trace`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;
use crate::support::proc::Proc;

/// `pacer proxy` as a child process, its stderr collected line by line.
struct Pacer {
    proc: Proc,
    addr: SocketAddr,
}

impl Pacer {
    /// Starts `pacer proxy` and waits for the line that names the bound address.
    async fn start(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Pacer {
        let mut argv = args.to_vec();
        argv.extend(["proxy", "--config", config.to_str().unwrap()]);
        let proc = Proc::spawn(&argv, env);
        let line = proc.line("pacer proxy started").await;
        Pacer {
            addr: listen_addr(&line),
            proc,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the process and returns everything it wrote to stderr.
    async fn stop(self) -> String {
        self.proc.stop().await
    }
}

/// The address in `listen=127.0.0.1:N` (text) or `"listen":"127.0.0.1:N"` (JSON).
fn listen_addr(line: &str) -> SocketAddr {
    let at = line
        .find("127.0.0.1:")
        .expect("a loopback address in the start line");
    let rest = &line[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

/// Writes a config for an HTTPS mock (so rustls has a handshake to trace), proxy auth, and an
/// interception CA; returns its path and the CA key's PEM.
fn secret_config(dir: &Path, mock: SocketAddr, mock_ca: &str) -> (PathBuf, String) {
    std::fs::write(dir.join("mock-ca.pem"), mock_ca).unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["pacer test ca".to_owned()]).unwrap();
    let key_pem = ca.signing_key.serialize_pem();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join("ca-key.pem"), &key_pem).unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\n\
         upstreams:\n  mock:\n    base_url: https://localhost:{port}\n    hosts: [api.test]\n    \
         tls: {{ ca_file: mock-ca.pem }}\n\
         routes:\n  - match: \"* /api/v2/**\"\n\
         intercept:\n  ca_cert: ca.pem\n  ca_key: ca-key.pem\n\
         proxy_auth:\n  username: jmeter\n  password: MARK-proxy-password\n",
        port = mock.port()
    );
    let path = dir.join("pacer.yaml");
    std::fs::write(&path, yaml).unwrap();
    (path, key_pem)
}

#[tokio::test]
async fn credentials_never_reach_the_logs_even_at_trace() {
    let tls = pacer::mock::MockTls::self_signed().unwrap();
    let mock_ca = tls.cert_pem.clone();
    let mock = start_mock(pacer::mock::MockConfig {
        tls: Some(tls),
        ..Default::default()
    })
    .await;
    let dir = temp_dir("logs");
    let (config, ca_key) = secret_config(&dir, mock.addr, &mock_ca);
    let pacer = Pacer::start(&config, &[("RUST_LOG", "trace")], &[]).await;
    let proxy_auth = basic("jmeter", "MARK-proxy-password");
    let c = client();

    let req = request("GET", &pacer.url("/api/v2/users?page=1"))
        .header("proxy-authorization", &proxy_auth)
        .header("authorization", "Bearer MARK-bearer-token")
        .header("cookie", "session=MARK-cookie-value; other=MARK-cookie-two")
        .body(Full::default())
        .unwrap();
    assert_eq!(send(&c, req).await.0, 200);
    let req = request("POST", &pacer.url("/oauth/token"))
        .header("proxy-authorization", &proxy_auth)
        .header("authorization", basic("my-client", "MARK-client-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(
            "grant_type=client_credentials&client_secret=MARK-form-secret",
        )))
        .unwrap();
    assert_eq!(send(&c, req).await.0, 200);
    let req = request("GET", &pacer.url("/api/v2/users"))
        .header(
            "proxy-authorization",
            basic("jmeter", "MARK-wrong-password"),
        )
        .body(Full::default())
        .unwrap();
    assert_eq!(send(&c, req).await.0, 407);
    let raw = format!(
        "GET http://api.test/api/v2/users HTTP/1.1\r\nHost: api.test\r\n\
         Proxy-Authorization: {proxy_auth}\r\nAuthorization: Bearer MARK-absolute-token\r\n\
         Cookie: MARK-absolute-cookie\r\nConnection: close\r\n\r\n"
    );
    let res = raw_exchange(pacer.addr, raw.as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let logs = pacer.stop().await;

    // The run really logged at trace, pacer's request lines and a dependency's included.
    assert!(logs.contains("pacer::request"), "no request lines:\n{logs}");
    assert!(logs.contains("TRACE"), "nothing at trace:\n{logs}");
    let mut secrets: Vec<String> = [
        "MARK-proxy-password",
        "MARK-bearer-token",
        "MARK-cookie-value",
        "MARK-cookie-two",
        "MARK-client-secret",
        "MARK-form-secret",
        "MARK-wrong-password",
        "MARK-absolute-token",
        "MARK-absolute-cookie",
        &proxy_auth["Basic ".len()..],
        &basic("my-client", "MARK-client-secret")["Basic ".len()..],
        &basic("jmeter", "MARK-wrong-password")["Basic ".len()..],
    ]
    .map(str::to_owned)
    .to_vec();
    // Every base64 line of the CA's private key.
    secrets.extend(
        ca_key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned),
    );
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret:?} is in the logs");
    }
}

#[tokio::test]
async fn json_format_writes_one_object_per_line_with_the_request_line() {
    let mock = start_mock_default().await;
    let dir = temp_dir("logs");
    let yaml = format!(
        "listen: 127.0.0.1:0\nupstreams:\n  mock:\n    base_url: http://{}\n",
        mock.addr
    );
    std::fs::write(dir.join("pacer.yaml"), yaml).unwrap();
    let env = [("RUST_LOG", "info,pacer::request=debug")];
    let pacer = Pacer::start(&dir.join("pacer.yaml"), &env, &["--log-format", "json"]).await;
    let (status, headers, _) = get(&client(), &pacer.url("/api/v2/users")).await;
    assert_eq!(status, 200);
    let correlation = headers["inin-correlation-id"].to_str().unwrap().to_owned();
    let logs = pacer.stop().await;

    let events: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let line = events
        .iter()
        .find(|e| e["target"] == "pacer::request")
        .unwrap_or_else(|| panic!("no request line in {events:?}"));
    assert_eq!(line["level"], "DEBUG");
    assert_eq!(line["message"], "request");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "unmatched");
    assert_eq!(line["status"], 200);
    assert_eq!(line["retries"], 0);
    assert_eq!(line["queued_ms"], 0);
    assert_eq!(line["correlation"], correlation.as_str());
    assert!(line["took_ms"].as_f64().unwrap() > 0.0, "{line}");
}
