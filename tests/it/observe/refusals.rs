//! Refusals reach the log at the default level, once per host or upstream and minute, with the
//! fix: 403 host.forbidden, 403 intercept_unconfigured, 502 upstream.unreachable.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::proc::Proc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_once_per_host_at_warn_with_the_fix() {
    let dir = crate::support::temp_dir("refusals");
    // Port 9 on loopback: nothing listens there, so every attempt is refused at connect.
    let yaml = "listen: 127.0.0.1:0\nupstreams:\n  api: { base_url: 'http://127.0.0.1:9', hosts: [api.test] }\nretry: { max_attempts: 1 }\n";
    let config = dir.join("pacer.yaml");
    std::fs::write(&config, yaml).unwrap();
    // No state directory: pacer has no CA of its own, so CONNECTs to api.test are refused.
    let no_state = [("PACER_STATE_DIR", ""), ("XDG_DATA_HOME", ""), ("HOME", "")];
    let args = ["proxy", "--config", config.to_str().unwrap()];
    let pacer = Proc::spawn(&args, &no_state);
    let addr = pacer.field_of_line("pacer proxy started", "listen").await;
    for _ in 0..3 {
        let forbidden = exchange(
            &addr,
            "GET http://elsewhere.test/ HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n",
        )
        .await;
        assert!(forbidden.starts_with("HTTP/1.1 403"), "{forbidden}");
        let unreachable = exchange(
            &addr,
            "GET http://api.test/x HTTP/1.1\r\nHost: api.test\r\n\r\n",
        )
        .await;
        assert!(unreachable.starts_with("HTTP/1.1 502"), "{unreachable}");
        let connect = exchange(
            &addr,
            "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n",
        )
        .await;
        assert!(connect.contains("intercept_unconfigured"), "{connect}");
    }
    let log = pacer.stop().await;
    for (code, subject, fix) in [
        (
            "pacer.host.forbidden",
            "elsewhere.test",
            "add it to an upstream's hosts",
        ),
        (
            "pacer.connect.intercept_unconfigured",
            "api.test",
            "add an intercept section",
        ),
        (
            "pacer.upstream.unreachable",
            "upstream api",
            "check the upstream's base_url",
        ),
    ] {
        let refusals = log.lines().filter(|l| l.contains("pacer::proxy::refusals"));
        let lines: Vec<&str> = refusals.filter(|l| l.contains(code)).collect();
        assert_eq!(lines.len(), 1, "{code} once, not per request:\n{log}");
        let line = lines[0];
        assert!(
            line.contains("WARN") && line.contains(subject) && line.contains(fix),
            "{line}"
        );
    }
}

/// Sends `request` on a fresh connection and returns the start of the answer.
async fn exchange(addr: &str, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
