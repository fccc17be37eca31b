//! The binary's contract: `check` validates without starting anything, exit codes, help text.

use std::process::Command;

mod ca;

fn pacer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the pacer binary runs")
}

fn example(name: &str) -> String {
    format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A directory of this test's own (`tag` keeps tests apart, the pid keeps runs apart).
fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pacer-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to a file `name` in the test's scratch directory and returns its path.
fn scratch_file(tag: &str, name: &str, text: &str) -> std::path::PathBuf {
    let path = scratch_dir(tag).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_the_shipped_examples_and_exits_0() {
    for name in ["genesys.yaml", "quickstart.yaml"] {
        let out = pacer(&["check", "--config", &example(name)]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("is valid"), "{stdout}");
        assert!(stdout.contains("upstream"), "{stdout}");
    }
}

#[test]
fn check_says_what_a_bucket_can_release_in_one_window() {
    let path = scratch_file(
        "window",
        "pacer.yaml",
        "upstreams:\n  g: {base_url: 'https://x.example'}\nlimits:\n  a: {rate: 300/min, burst: 10}\n  b: {quota: 30/6s}\n",
    );
    let out = pacer(&["check", "--config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("at most 310 in one window of 60s"),
        "{stdout}"
    );
    assert!(stdout.contains("quota 30 per 6s"), "{stdout}");
}

#[test]
fn check_reports_field_and_line_and_exits_2() {
    let path = scratch_file(
        "check",
        "bad.yaml",
        "listen: 127.0.0.1:8080\nupstreams:\n  genesys:\n    region: us-east-1\n    hostz: [x]\n",
    );
    let out = pacer(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("upstreams.genesys.hostz, line 5"),
        "{stderr}"
    );
    // Nothing was bound: the same check twice cannot collide on a port.
    let again = pacer(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn a_missing_config_file_exits_2() {
    let out = pacer(&["check", "--config", "/nonexistent/pacer.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn usage_errors_exit_2_and_help_explains_the_commands() {
    let out = pacer(&["proxy"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --config is a usage error"
    );
    let help = pacer(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["proxy", "check", "mock", "generate", "demo"] {
        assert!(text.contains(cmd), "{text}");
    }
}

#[test]
fn every_config_option_is_explained_and_global_options_stand_apart() {
    for cmd in [
        &["proxy", "--help"][..],
        &["check", "--help"],
        &["mock", "--help"],
        &["ca", "init", "--help"],
        &["ca", "show", "--help"],
    ] {
        let out = pacer(cmd);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("-c, --config"))
            .unwrap();
        let explained = line.split("--config <CONFIG>").nth(1).unwrap().trim();
        assert!(!explained.is_empty(), "{cmd:?}: {text}");
        let global = text
            .find("Global options:")
            .expect("a heading of their own");
        assert!(text[global..].contains("--log <LOG>"), "{cmd:?}: {text}");
        assert!(!text[..global].contains("--log"), "{cmd:?}: {text}");
    }
}

#[test]
fn proxy_without_a_config_says_which_file_to_start_from() {
    let out = pacer(&["proxy"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config/genesys.yaml"), "{stderr}");
}

#[test]
fn a_zero_demo_duration_is_a_usage_error() {
    let out = pacer(&["demo", "--duration", "0s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than 0"));
}

#[test]
fn check_describes_the_config_in_its_own_words() {
    let out = pacer(&["check", "--config", &example("genesys.yaml")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "limit per-token: quota 300 per 60s (margin 600ms; no window of 60s holds more than 300), \
         key token, mode queue",
        "limit analytics-query: no rate, concurrency 5, key global, mode queue",
        "upstream login: https://login.mypurecloud.com/, hosts login.mypurecloud.com, CONNECT \
         tunnelled",
    ] {
        assert!(stdout.contains(line), "{line}\nnot in:\n{stdout}");
    }
    for debug in ["None", "Some(", "Token", "Queue", "[\""] {
        assert!(!stdout.contains(debug), "{debug} in {stdout}");
    }
}

#[test]
fn a_taken_port_is_a_runtime_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = pacer(&["mock", "--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot bind"));
}

#[test]
fn generate_refuses_a_bad_scenario_with_field_line_and_exit_2() {
    let path = scratch_file(
        "gen",
        "bad.yaml",
        "target: http://127.0.0.1:9\nrequests: [{ path: /a }]\nphases:\n  - { duration: 1s, rate: fast }\n",
    );
    let out = pacer(&["generate", "--scenario", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("phases[0].rate, line 4"), "{stderr}");
    let out = pacer(&["generate", "--scenario", "/nonexistent/scenario.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn generate_runs_a_scenario_and_writes_reports() {
    let dir = scratch_dir("run");
    // The mock runs on a thread of this test; its socket listens before the thread starts.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let config = pacer::mock::MockConfig::default();
            let _ = pacer::mock::serve(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });
    });
    let scenario = dir.join("s.yaml");
    std::fs::write(
        &scenario,
        format!(
            "target: http://127.0.0.1:{port}\nauth: {{ token_url: 'http://127.0.0.1:{port}/oauth/token', client_id: a, client_secret: b }}\n\
             phases: [{{ name: quick, duration: 500ms, rate: 20/s }}]\nrequests: [{{ name: users, path: /api/v2/users }}]\n"
        ),
    )
    .unwrap();
    let (json, html) = (dir.join("r.json"), dir.join("r.html"));
    let out = pacer(&[
        "generate",
        "--scenario",
        scenario.to_str().unwrap(),
        "--out",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let _ = stop.send(());
    server.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("request users"), "{stdout}");
    assert!(stdout.contains("total"), "{stdout}");
    for (what, file) in [("JSON report", &json), ("HTML report", &html)] {
        let line = format!("{what} written to {}", file.display());
        assert!(stdout.contains(&line), "{stdout}");
    }
    assert!(std::fs::read_to_string(&json)
        .unwrap()
        .contains("\"latency_ms\""));
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sigterm_stops_worker_threads_and_exits_0() {
    use std::io::{BufRead, BufReader};
    let path = scratch_file(
        "term",
        "proxy.yaml",
        "listen: 127.0.0.1:0\nupstreams:\n  api: { base_url: 'http://127.0.0.1:9' }\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args([
            "proxy",
            "--config",
            path.to_str().unwrap(),
            "--workers",
            "2",
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the pacer binary runs");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The start line is logged once the listener is bound and the workers are about to start.
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("pacer proxy started") && l.contains("workers=2"));
    assert!(started, "pacer never said it started");
    // SAFETY: kill takes plain integers; the pid is our own child's.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    // Bounded: a process that does not drain fails the test instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("pacer did not exit within 30 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let rest = rest.join().unwrap();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        rest.join("\n")
    );
    assert!(
        rest.iter().any(|l| l.contains("drain finished")),
        "{}",
        rest.join("\n")
    );
}

#[test]
fn check_describes_learning_and_its_ceiling() {
    let path = scratch_file(
        "check-learn",
        "learn.yaml",
        "upstreams: {genesys: {region: us-east-1}}\nlimits:\n  a: {learn: true, key: token}\n  b: {rate: 5/s, learn: {headroom: 7%}}\n",
    );
    let out = pacer(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for part in [
        "limit a: no rate, learns from the API's rate-limit headers (quota / window less 5% headroom; no ceiling",
        "less 7% headroom; the rate stays a ceiling",
    ] {
        assert!(stdout.contains(part), "{part:?} not in {stdout}");
    }
}
