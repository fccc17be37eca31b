//! pacer's own CA: made in the state directory when the config has no `intercept:` section,
//! `ca show` and `ca init` as documented, and `check` warning about refusals to come.

use std::path::Path;

use super::{pacer, scratch_dir, scratch_file};
use crate::support::proc::Proc;

/// An upstream that intercepts (the default) and no `intercept:` section.
const NO_SECTION: &str = "listen: 127.0.0.1:0\nupstreams:\n  api: { base_url: 'http://127.0.0.1:9', hosts: [api.test] }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_intercept_section_the_ca_is_made_in_the_state_directory() {
    let config = scratch_file("state", "pacer.yaml", NO_SECTION);
    let state = scratch_dir("state").join("state");
    let env = [("PACER_STATE_DIR", state.to_str().unwrap())];
    let args = ["proxy", "--config", config.to_str().unwrap()];
    let pacer_proc = Proc::spawn(&args, &env);
    let addr = pacer_proc
        .field_of_line("pacer proxy started", "listen")
        .await;
    let log = pacer_proc.output();
    let cert = state.join("ca.pem");
    assert!(log.contains(&cert.display().to_string()), "{log}");
    assert!(log.contains("pacer ca show"), "says how to trust it: {log}");
    assert_eq!(mode(&state.join("ca-key.pem")), 0o600);
    assert_eq!(mode(&state), 0o700);
    // A CONNECT to the intercepted host is answered 200, not 403 intercept_unconfigured.
    let answer = connect(&addr, "api.test:443").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    pacer_proc.stop().await;
    // `ca show` prints the same certificate, from the same place.
    let show = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["ca", "show", "--config", config.to_str().unwrap()])
        .envs(env)
        .output()
        .unwrap();
    assert!(show.status.success(), "{show:?}");
    assert_eq!(
        String::from_utf8_lossy(&show.stdout),
        std::fs::read_to_string(&cert).unwrap()
    );
}

#[test]
fn ca_show_needs_only_the_certificate_and_ca_init_prints_no_log_line() {
    let dir = scratch_dir("show");
    let yaml = "upstreams:\n  api: { base_url: 'http://127.0.0.1:9' }\nintercept: { ca_cert: ca.pem, ca_key: ca-key.pem }\n";
    let config = scratch_file("show", "pacer.yaml", yaml);
    let config = config.to_str().unwrap();
    let init = pacer(&["ca", "init", "--config", config, "--log", "info"]);
    assert!(init.status.success(), "{init:?}");
    assert_eq!(
        String::from_utf8_lossy(&init.stderr),
        "",
        "no log over the output"
    );
    assert!(String::from_utf8_lossy(&init.stdout).contains("(created)"));
    std::fs::remove_file(dir.join("ca-key.pem")).unwrap();
    let show = pacer(&["ca", "show", "--config", config]);
    assert!(show.status.success(), "{show:?}");
    assert!(String::from_utf8_lossy(&show.stdout).starts_with("-----BEGIN CERTIFICATE-----"));
}

#[test]
fn check_warns_about_what_will_refuse_traffic() {
    let yaml = NO_SECTION.replace("127.0.0.1:0", "0.0.0.0:0");
    let config = scratch_file("warn", "pacer.yaml", &yaml);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["check", "--config", config.to_str().unwrap()])
        .env_remove("PACER_STATE_DIR")
        .env_remove("XDG_DATA_HOME")
        .env_remove("HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "warnings do not fail the check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pacer.connect.intercept_unconfigured"),
        "{stderr}"
    );
    assert!(stderr.contains("no proxy_auth"), "{stderr}");
    // With a state directory, the same config intercepts with pacer's own CA: no refusal.
    let out = pacer(&["check", "--config", config.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("intercept_unconfigured"));
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Sends a CONNECT and returns the answer's head.
async fn connect(proxy_addr: &str, target: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(proxy_addr).await.unwrap();
    let head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
