//! Client-side helpers for CONNECT: open a tunnel, speak TLS in it, run pacer's `ca` commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::Running;

/// Sends `CONNECT target` (with `extra` header lines, each ending in CRLF) and reads the
/// response head. Returns the stream, positioned after the head, and the head.
pub async fn connect(proxy: SocketAddr, target: &str, extra: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("CONNECT answered within 10s")
            .unwrap();
        assert!(
            n == 1,
            "connection closed before the CONNECT response head ended"
        );
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// A TLS client over `io` for `name`, trusting only the certificates in `ca_pem`.
pub async fn tls<S>(io: S, name: &str, ca_pem: &str) -> std::io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(Arc::new(trusting(ca_pem)));
    let name = ServerName::try_from(name.to_owned()).unwrap();
    connector.connect(name, io).await
}

/// A TLS client configuration trusting only the certificates in `ca_pem`.
pub fn trusting(ca_pem: &str) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// An HTTP/1.1 client connection over `io` (keep-alive: send as many requests as you like).
pub async fn http1<S>(io: S) -> hyper::client::conn::http1::SendRequest<Full<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    send
}

/// Runs the real `pacer` binary with `args`; returns (success, stdout, stderr).
pub fn pacer_bin(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// pacer with TLS interception, set up the way a user would: `yaml` is written to `dir/pacer.yaml` with an `intercept:` section,
/// `pacer ca init` creates the CA, and `pacer ca show` gives the PEM the clients trust, which
/// is also written to the returned path.
pub async fn pacer_with_ca(yaml: &str, dir: &Path) -> (Running, PathBuf) {
    let config = dir.join("pacer.yaml");
    let yaml = format!("{yaml}intercept:\n  ca_cert: pacer-ca.pem\n  ca_key: pacer-ca-key.pem\n");
    std::fs::write(&config, yaml).unwrap();
    let config_arg = config.to_str().unwrap();
    let (ok, out, err) = pacer_bin(&["ca", "init", "--config", config_arg]);
    assert!(ok, "pacer ca init failed: {err}");
    assert!(out.contains("pacer-ca.pem"), "{out}");
    let (ok, pem, err) = pacer_bin(&["ca", "show", "--config", config_arg]);
    assert!(
        ok && pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{pem}{err}"
    );
    let ca_file = dir.join("trusted-ca.pem");
    std::fs::write(&ca_file, &pem).unwrap();
    let config = pacer::Config::load(&config).unwrap();
    (super::start_pacer_with(config).await, ca_file)
}

/// curl through `proxy` with `args`; returns (exit code, stdout, stderr).
pub async fn curl(proxy: SocketAddr, args: &[&str]) -> (i32, String, String) {
    let proxy = format!("http://{proxy}");
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--proxy", &proxy])
        .args(args)
        .output()
        .await
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}
