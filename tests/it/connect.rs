//! CONNECT end to end: interception with pacer's CA, blind tunnels, refusals, bad input, drain.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::external;
use crate::support::tunnel::{connect, curl, http1, pacer_with_ca, tls};
use crate::support::upstream::{start_upstream, TestUpstream};
use crate::support::*;

/// `api` is intercepted (and shaped: `/limited` allows one request a minute); `blind` is
/// tunnelled. Both reach the test upstreams, never the names the client uses.
fn yaml(api: &TestUpstream, blind: &TestUpstream) -> String {
    let api_tls = match &api.cert_file {
        Some(f) => format!("    tls: {{ ca_file: \"{}\" }}\n", f.display()),
        None => String::new(),
    };
    format!(
        "upstreams:
  api:
    base_url: {api_url}
    hosts: [api.test, alias.test, 127.0.0.1]
{api_tls}  blind:
    base_url: {blind_url}
    hosts: [tunnel.test]
    intercept: false
default_upstream: api
server: {{ drain_timeout: 20s }}
limits:
  once: {{ rate: 1/min, burst: 1, mode: reject }}
routes:
  - match: GET /limited
    limits: [once]
",
        api_url = api.base_url(),
        blind_url = blind.base_url(),
    )
}

struct Setup {
    pacer: Running,
    api: TestUpstream,
    blind: TestUpstream,
    ca: std::path::PathBuf,
    ca_pem: String,
}

async fn setup() -> Setup {
    let api = start_upstream(true).await;
    let blind = start_upstream(true).await;
    let dir = temp_dir("connect");
    let (pacer, ca) = pacer_with_ca(&yaml(&api, &blind), &dir).await;
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    Setup {
        pacer,
        api,
        blind,
        ca,
        ca_pem,
    }
}

/// GET `path` over an intercepted connection opened with `CONNECT target`, TLS for `sni`.
async fn intercepted_get(s: &Setup, target: &str, sni: &str, path: &str) -> serde_json::Value {
    let (stream, head) = connect(s.pacer.addr, target, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let stream = tls(stream, sni, &s.ca_pem)
        .await
        .expect("pacer's leaf verifies");
    let mut send = http1(stream).await;
    let req = request("GET", path)
        .header("host", "x")
        .body(Full::default());
    let res = send.send_request(req.unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    json(&res.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_https_is_intercepted_shaped_and_reaches_the_upstream() {
    if !external::require_or_skip("curl", external::available("curl")) {
        return;
    }
    let s = setup().await;
    let ca = s.ca.to_str().unwrap();
    let url = "https://api.test/api/v2/users?page=1";
    let (code, out, err) = curl(s.pacer.addr, &["--cacert", ca, url]).await;
    assert_eq!(code, 0, "curl failed: {err}");
    let echo = json(out.as_bytes());
    assert_eq!(echo["path"], "/api/v2/users");
    // pacer forwarded to base_url (it never resolved api.test) with the upstream's own Host.
    assert_eq!(echo["headers"]["host"][0], s.api.addr.to_string());

    // Inside the tunnel, requests pass the same limits as any other: the second is refused.
    let limited = "https://api.test/limited";
    let args = ["--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}\n"];
    let (code, out, err) = curl(s.pacer.addr, &[&args[..], &[limited, limited]].concat()).await;
    assert_eq!(code, 0, "{err}");
    // (`-o` covers the first URL only, so the second's body is printed: pacer's own 429.)
    assert!(out.starts_with("200\n") && out.ends_with("429\n"), "{out}");
    assert!(out.contains("\"code\":\"pacer.rate.limited\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reaches_the_mock_over_tls_through_an_intercepted_connect() {
    if !external::require_or_skip("curl", external::available("curl")) {
        return;
    }
    let dir = temp_dir("connect-mock");
    let mock_tls = pacer::mock::MockTls::self_signed().unwrap();
    let mock_ca = dir.join("mock-ca.pem");
    std::fs::write(&mock_ca, &mock_tls.cert_pem).unwrap();
    let mock = start_mock(pacer::mock::MockConfig {
        tls: Some(mock_tls),
        ..Default::default()
    })
    .await;
    let yaml = format!(
        "upstreams:\n  genesys:\n    base_url: https://{}\n    hosts: [api.mypurecloud.test]\n    tls: {{ ca_file: \"{}\" }}\n",
        mock.addr,
        mock_ca.display()
    );
    let (pacer, ca) = pacer_with_ca(&yaml, &dir).await;
    let url = "https://api.mypurecloud.test/api/v2/users";
    let args = ["--cacert", ca.to_str().unwrap(), "-i", url];
    let (code, out, err) = curl(pacer.addr, &args).await;
    assert_eq!(code, 0, "{err}");
    // With -i, curl prints the CONNECT's 200 first, then the API's response.
    assert!(
        out.to_ascii_lowercase().contains("inin-correlation-id"),
        "{out}"
    );
    let body = &out[out.rfind("\r\n\r\n").unwrap() + 4..];
    assert!(json(body.as_bytes())["entities"].is_array(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_ca_refuses_and_nothing_else_is_affected() {
    if !external::require_or_skip("curl", external::available("curl")) {
        return;
    }
    let s = setup().await;
    // Trusting only the upstream's own certificate, curl rejects pacer's leaf: proof that the
    // connection is intercepted rather than passed through.
    let other_ca = s.api.cert_file.as_ref().unwrap().to_str().unwrap();
    let (code, _, err) = curl(s.pacer.addr, &["--cacert", other_ca, "https://api.test/"]).await;
    assert_eq!(code, 60, "expected a certificate error: {err}");
    let ca = s.ca.to_str().unwrap();
    let (code, _, err) = curl(s.pacer.addr, &["--cacert", ca, "https://api.test/"]).await;
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_tunnel_keeps_the_upstreams_own_certificate() {
    if !external::require_or_skip("curl", external::available("curl")) {
        return;
    }
    let s = setup().await;
    let upstream_ca = s.blind.cert_file.as_ref().unwrap().to_str().unwrap();
    let url = "https://tunnel.test/raw/path";
    let (code, out, err) = curl(s.pacer.addr, &["--cacert", upstream_ca, url]).await;
    assert_eq!(code, 0, "{err}");
    let echo = json(out.as_bytes());
    // Untouched by pacer: the Host curl wrote arrives as is.
    assert_eq!(echo["path"], "/raw/path");
    assert_eq!(echo["headers"]["host"][0], "tunnel.test");
    let ca = s.ca.to_str().unwrap();
    let (code, _, err) = curl(s.pacer.addr, &["--cacert", ca, url]).await;
    assert_eq!(code, 60, "pacer's CA must not verify a blind tunnel: {err}");
}

#[tokio::test]
async fn keep_alive_sni_and_the_connect_host_fallback() {
    let s = setup().await;
    // Several requests over one intercepted connection.
    let (stream, head) = connect(s.pacer.addr, "api.test:443", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut send = http1(tls(stream, "api.test", &s.ca_pem).await.unwrap()).await;
    for i in 0..3 {
        let req = request("GET", &format!("/n/{i}")).header("host", "api.test");
        let res = send.send_request(req.body(Full::default()).unwrap()).await;
        let body = res.unwrap().into_body().collect().await.unwrap().to_bytes();
        assert_eq!(json(&body)["path"], format!("/n/{i}"));
    }
    // The SNI name wins over the CONNECT host: the leaf is for alias.test.
    let echo = intercepted_get(&s, "api.test:443", "alias.test", "/sni").await;
    assert_eq!(echo["path"], "/sni");
    // No SNI (an IP address): the leaf is for the CONNECT host.
    let echo = intercepted_get(&s, "127.0.0.1:443", "127.0.0.1", "/ip").await;
    assert_eq!(echo["path"], "/ip");
}

#[tokio::test]
async fn other_hosts_and_ports_are_refused_with_403() {
    let s = setup().await;
    for (target, code) in [
        ("evil.example:443", "pacer.host.forbidden"),
        ("127.0.0.2:443", "pacer.host.forbidden"),
        ("api.test:8443", "pacer.connect.port_forbidden"),
        ("tunnel.test:22", "pacer.connect.port_forbidden"),
    ] {
        let raw = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        let res = raw_exchange(s.pacer.addr, raw.as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 403"), "{target}: {res}");
        assert!(res.contains(&format!("\"code\":\"{code}\"")), "{res}");
    }
}

#[tokio::test]
async fn without_an_intercept_section_intercepted_hosts_get_403_and_tunnels_work() {
    let api = start_upstream(false).await;
    let blind = start_upstream(true).await;
    let pacer = start_pacer(&yaml(&api, &blind), api.addr).await;
    let raw = b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n";
    let res = raw_exchange(pacer.addr, raw).await;
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    assert!(
        res.contains("pacer.connect.intercept_unconfigured"),
        "{res}"
    );
    assert!(res.contains("intercept"), "{res}");
    let (stream, head) = connect(pacer.addr, "tunnel.test:443", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let stream = tls(stream, "tunnel.test", blind.cert_pem.as_ref().unwrap()).await;
    let mut send = http1(stream.unwrap()).await;
    let req = request("GET", "/t").header("host", "tunnel.test");
    let res = send.send_request(req.body(Full::default()).unwrap()).await;
    assert_eq!(res.unwrap().status(), 200);
}

#[tokio::test]
async fn bad_input_ends_only_its_own_connection() {
    let s = setup().await;
    // Plain HTTP inside an intercepted CONNECT: the handshake fails and the tunnel closes.
    let (mut stream, _) = connect(s.pacer.addr, "api.test:443", "").await;
    stream
        .write_all(b"GET /api/v2/users HTTP/1.1\r\nHost: api.test\r\n\r\n")
        .await
        .unwrap();
    assert_closed(&mut stream).await;
    // Bytes that are not TLS either.
    let (mut stream, _) = connect(s.pacer.addr, "api.test:443", "").await;
    stream
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0])
        .await
        .unwrap();
    assert_closed(&mut stream).await;
    // Malformed CONNECT targets: 400, and the connection is closed.
    for target in ["api.test", "user:secret@api.test:443", "/api/v2/users"] {
        let raw = format!("CONNECT {target} HTTP/1.1\r\nHost: api.test\r\n\r\n");
        let res = raw_exchange(s.pacer.addr, raw.as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 400"), "{target}: {res}");
        assert!(res.contains("connection: close"), "{res}");
    }
    // Everything else still works.
    let echo = intercepted_get(&s, "api.test:443", "api.test", "/after").await;
    assert_eq!(echo["path"], "/after");
    let (status, _, _) = get(&client(), &s.pacer.url("/plain")).await;
    assert_eq!(status, 200);
}

async fn assert_closed(stream: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("connection still open after 15s"),
        }
    }
    // Whatever came back (a TLS alert at most), it was not an HTTP response.
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn shutdown_closes_idle_intercepted_and_tunnelled_connections() {
    let mut s = setup().await;
    // An intercepted keep-alive connection, idle after one request.
    let (stream, _) = connect(s.pacer.addr, "api.test:443", "").await;
    let mut send = http1(tls(stream, "api.test", &s.ca_pem).await.unwrap()).await;
    let req = request("GET", "/x").header("host", "api.test");
    let res = send
        .send_request(req.body(Full::<Bytes>::default()).unwrap())
        .await;
    assert_eq!(res.unwrap().status(), 200);
    // A blind tunnel, idle.
    let (tunnel, head) = connect(s.pacer.addr, "tunnel.test:443", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let blind_pem = s.blind.cert_pem.clone().unwrap();
    let _tunnel = tls(tunnel, "tunnel.test", &blind_pem).await.unwrap();

    s.pacer.signal_stop();
    // drain_timeout is 20s: finishing well before proves both were closed, not waited out.
    let done = tokio::time::timeout(Duration::from_secs(8), s.pacer.task()).await;
    done.expect("drained within 8s").unwrap().unwrap();
}

#[tokio::test]
async fn ca_commands_and_creation_on_first_start() {
    use crate::support::tunnel::pacer_bin;
    let dir = temp_dir("ca-cli");
    let config = dir.join("pacer.yaml");
    let base = "upstreams:\n  api:\n    base_url: http://127.0.0.1:9\n    hosts: [api.test]\n";
    std::fs::write(&config, base).unwrap();
    let arg = config.to_str().unwrap();
    // Without an intercept section, and no state directory for pacer's own CA, there is no CA
    // to manage: a usage error (exit 2).
    for cmd in ["init", "show"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
            .args(["ca", cmd, "--config", arg])
            .envs([("PACER_STATE_DIR", ""), ("XDG_DATA_HOME", ""), ("HOME", "")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("intercept"));
    }
    let intercept = "intercept:\n  ca_cert: ca/pacer-ca.pem\n  ca_key: ca/pacer-ca-key.pem\n";
    std::fs::write(&config, format!("{base}{intercept}")).unwrap();
    let (ok, _, err) = pacer_bin(&["ca", "show", "--config", arg]);
    assert!(!ok && err.contains("pacer ca init"), "{err}");
    let (ok, out, _) = pacer_bin(&["ca", "init", "--config", arg]);
    assert!(ok && out.contains("(created)"), "{out}");
    let (ok, out, _) = pacer_bin(&["ca", "init", "--config", arg]);
    assert!(ok && out.contains("(already present)"), "{out}");
    let (ok, shown, _) = pacer_bin(&["ca", "show", "--config", arg]);
    assert!(ok);
    assert_eq!(
        shown,
        std::fs::read_to_string(dir.join("ca/pacer-ca.pem")).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.join("ca/pacer-ca-key.pem")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    // The proxy creates the CA itself on first start when the files are absent.
    let fresh = temp_dir("ca-start");
    let yaml = format!(
        "{base}intercept:\n  ca_cert: {0}/c.pem\n  ca_key: {0}/k.pem\n",
        fresh.display()
    );
    let pacer = start_pacer(&yaml, "127.0.0.1:9".parse().unwrap()).await;
    let (status, _, _) = get(&client(), &pacer.url("/__never")).await;
    assert_eq!(status, 502, "pacer is up (and the upstream is not)");
    assert!(fresh.join("c.pem").exists() && fresh.join("k.pem").exists());
}

#[tokio::test]
async fn sni_names_the_upstream_does_not_list_are_refused_at_the_handshake() {
    let s = setup().await;
    for sni in [
        "www.google.com",
        "login.microsoftonline.com",
        "xn--80ak6aa92e.com",
        "tunnel.test",
    ] {
        let (stream, head) = connect(s.pacer.addr, "api.test:443", "").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let refused = tls(stream, sni, &s.ca_pem).await;
        assert!(refused.is_err(), "pacer's CA signed {sni}");
    }
    // The CONNECT host and the other names of its upstream still get their leaf.
    let echo = intercepted_get(&s, "api.test:443", "API.test", "/ok").await;
    assert_eq!(echo["path"], "/ok");
    let echo = intercepted_get(&s, "127.0.0.1:443", "alias.test", "/alias").await;
    assert_eq!(echo["path"], "/alias");
}
