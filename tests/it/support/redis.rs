//! A private `redis-server` per test: a free port on loopback, a temp dir, no persistence. It is
//! killed when dropped. Found on PATH (or in `../shared/tools`); missing, the test is skipped
//! loudly, or fails under `PACER_REQUIRE_EXTERNAL=1` (see `external.rs`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::external;

/// How Debian and Ubuntu install it (`.ci/run` does).
pub const REDIS_INSTALL: &str = "apt-get install -y redis-server";

pub struct Redis {
    pub port: u16,
    server: PathBuf,
    cli: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    /// With TLS only (`--tls-port`): the self-signed certificate (PEM), also the CA to trust.
    pub tls_cert: Option<PathBuf>,
}

impl Redis {
    /// Starts a server, or returns None after saying loudly why the test is skipped.
    pub fn start() -> Option<Redis> {
        Redis::start_with(false)
    }

    /// A server that speaks TLS only, with a self-signed certificate for 127.0.0.1 made here.
    pub fn start_tls() -> Option<Redis> {
        Redis::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Redis> {
        let server = find("redis-server")?;
        let cli = find("redis-cli")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut redis = Redis {
            port,
            server,
            cli,
            dir: super::temp_dir("redis"),
            child: None,
            tls_cert: None,
        };
        if tls {
            redis.tls_cert = Some(redis.make_cert());
        }
        redis.restart();
        Some(redis)
    }

    pub fn url(&self) -> String {
        match self.tls_cert {
            Some(_) => format!("rediss://127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Writes `cert.pem` and `key.pem` into the server's directory; returns the certificate.
    fn make_cert(&self) -> PathBuf {
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).unwrap();
        let (cert, key) = (self.dir.join("cert.pem"), self.dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        cert
    }

    /// `--port P`, or for TLS `--port 0 --tls-port P` with the certificate.
    fn port_args(&self) -> Vec<String> {
        let port = self.port.to_string();
        let Some(cert) = &self.tls_cert else {
            return vec!["--port".into(), port];
        };
        let key = self.dir.join("key.pem");
        [
            "--port",
            "0",
            "--tls-port",
            &port,
            "--tls-cert-file",
            &cert.to_string_lossy(),
            "--tls-key-file",
            &key.to_string_lossy(),
            "--tls-auth-clients",
            "no",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Starts the server again on the same port (after [`Redis::kill`]) and waits for it.
    pub fn restart(&mut self) {
        let child = Command::new(&self.server)
            .args(self.port_args())
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let start = Instant::now();
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not answer within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `redis-cli` against this server and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.cli);
        if let Some(cert) = &self.tls_cert {
            cmd.arg("--tls").arg("--cacert").arg(cert);
        }
        let out = cmd
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every key (`--scan`) and every value in the database, as text, for looking for leaks.
    pub fn dump_all(&self) -> String {
        let mut text = String::new();
        for key in self.cli(&["--scan"]).lines().filter(|l| !l.is_empty()) {
            text.push_str(key);
            text.push('\n');
            let kind = self.cli(&["TYPE", key]);
            let value = match kind.trim() {
                "hash" => self.cli(&["HGETALL", key]),
                "zset" => self.cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
                _ => self.cli(&["DUMP", key]),
            };
            text.push_str(&value);
        }
        text
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find(name: &str) -> Option<PathBuf> {
    let shared = PathBuf::from("../shared/tools").join(name);
    if external::available(shared.to_str()?) {
        return Some(shared);
    }
    external::tool(name, REDIS_INSTALL)
}
