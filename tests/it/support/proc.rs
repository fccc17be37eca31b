//! The pacer binary as a child process, its stderr collected line by line, as the README's
//! commands run it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::repo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `pacer` subcommand (killed when dropped).
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Proc {
    /// Starts `pacer ARGS` with `env` added to the environment.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pacer"))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the pacer binary starts");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = tokio::spawn({
            let lines = lines.clone();
            async move {
                let mut stderr = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = stderr.next_line().await {
                    lines.lock().unwrap().push(line);
                }
            }
        });
        Proc {
            child,
            lines,
            reader,
        }
    }

    /// Waits (20 s at most) for a line containing `needle`, and returns the value of its
    /// `key=` field (the address or URL a start line names).
    pub async fn field_of_line(&self, needle: &str, key: &str) -> String {
        let line = self.line(needle).await;
        let value = line
            .split_once(needle)
            .unwrap()
            .1
            .split_once(&format!("{key}="));
        let value = value.and_then(|(_, v)| v.split_whitespace().next());
        let value = value.unwrap_or_else(|| panic!("no {key}= in {line:?}"));
        value.trim_matches('"').to_owned()
    }

    /// Waits (20 s at most) for a line containing `needle`, and returns it.
    pub async fn line(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no line with {needle:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything written to stderr so far.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM, as `kill -TERM` does (pacer drains and ends), and waits (30 s at most)
    /// for the exit; returns whether it exited 0.
    pub async fn terminate(&mut self) -> bool {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill takes plain integers and touches no memory of ours.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit within 30 s of SIGTERM:\n{}", self.output()))
            .expect("waiting for the child");
        let _ = (&mut self.reader).await;
        status.success()
    }

    /// Stops the process and returns everything it wrote to stderr.
    pub async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        let _ = (&mut self.reader).await;
        self.output()
    }
}

/// `pacer mock` as documented, on a free port: returns it and its base URL.
pub async fn mock(config: Option<&Path>) -> (Proc, String) {
    let mut args = vec!["mock", "--listen", "127.0.0.1:0"];
    let config = config.map(|c| c.to_str().unwrap().to_owned());
    if let Some(c) = &config {
        args.extend(["--config", c]);
    }
    let mock = Proc::spawn(&args, &[]);
    let url = mock.field_of_line("pacer mock started", "url").await;
    (mock, url)
}

/// `pacer proxy --config FILE` as documented, on free ports: returns it and its address.
pub async fn proxy(config: &Path) -> (Proc, String) {
    let proxy = Proc::spawn(&["proxy", "--config", config.to_str().unwrap()], &[]);
    let addr = proxy.field_of_line("pacer proxy started", "listen").await;
    (proxy, addr)
}

/// A shipped config or scenario with the documented fixed addresses moved: `from` to `to` in
/// each pair, written into `dir` under its own name.
pub fn moved(path: &str, pairs: &[(&str, &str)], dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(repo(path)).unwrap();
    for (from, to) in pairs {
        text = text.replace(from, to);
    }
    let out = dir.join(Path::new(path).file_name().unwrap());
    std::fs::write(&out, text).unwrap();
    out
}

/// The shipped config with its listeners on free ports and its upstream on `mock` (host:port).
pub fn config_for_mock(path: &str, mock: &str, dir: &Path) -> PathBuf {
    let admin = format!("admin: {}", free_port());
    let pairs = [
        ("listen: 127.0.0.1:8080", "listen: 127.0.0.1:0"),
        ("admin: 127.0.0.1:9091", admin.as_str()),
        ("127.0.0.1:9000", mock),
    ];
    moved(path, &pairs, dir)
}

/// A shipped scenario, shortened for a test: every phase lasts 1 s, with at most 5 users or 5
/// arrivals a second (10 at the end of a ramp), so a run takes seconds, not minutes.
pub fn shortened(path: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = set_number(line, "duration: ", "1");
        let line = set_number(&line, "users: ", "5");
        let line = set_number(&line, "rate: ", "5");
        let line = set_number(&line, "to: ", "10");
        out.push_str(&line);
        out.push('\n');
    }
    let file = dir.join(Path::new(path).file_name().unwrap());
    std::fs::write(&file, out).unwrap();
    file
}

/// `line` with the number after each `key` replaced by `value` (its unit kept).
fn set_number(line: &str, key: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(key) {
        let (head, tail) = rest.split_at(at + key.len());
        out.push_str(head);
        let digits = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        if digits > 0 {
            out.push_str(value);
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// A loopback address with a port free right now (for a second listener in one config, where
/// port 0 twice would be refused as the same address).
pub fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
