//! Interception benchmark (run through `bench/intercept.sh`): what terminating TLS costs.
//!
//! In one process: the mock (limits off, plain HTTP) and pacer with `intercept:`, no limits.
//! Measured, each for BENCH_SECONDS (default 5):
//!
//! - requests per second over one keep-alive connection, absolute-form vs intercepted;
//! - new connections per second (one request each), absolute-form vs intercepted, with
//!   BENCH_CONNS (default 4) clients in parallel; intercepted with full handshakes (the leaf is
//!   cached after the first) and with TLS session resumption.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = Duration::from_secs(env_num("BENCH_SECONDS", 5));
    let conns = env_num("BENCH_CONNS", 4) as usize;
    let (pacer, ca_pem) = start().await?;
    let tls = Tls::new(&ca_pem);

    let plain = keep_alive(secs, || async move { plain_conn(pacer).await }).await;
    let inter = keep_alive(secs, || {
        let tls = tls.full.clone();
        async move { intercepted_conn(pacer, tls).await }
    })
    .await;
    println!("one keep-alive connection, requests/s:");
    println!("  absolute-form {plain:>9.0}");
    println!(
        "  intercepted   {inter:>9.0}   ({:.0}%)",
        inter / plain * 100.0
    );

    let plain = new_conns(secs, conns, move || plain_conn(pacer)).await;
    let full_tls = tls.full.clone();
    let full = new_conns(secs, conns, move || {
        intercepted_conn(pacer, full_tls.clone())
    })
    .await;
    let resuming = tls.resuming.clone();
    let resumed = new_conns(secs, conns, move || {
        intercepted_conn(pacer, resuming.clone())
    })
    .await;
    println!("new connections/s (one request each, {conns} clients):");
    println!("  absolute-form           {plain:>7.0}");
    println!(
        "  intercepted, full TLS   {full:>7.0}   ({:.0}%)",
        full / plain * 100.0
    );
    println!(
        "  intercepted, resumed    {resumed:>7.0}   ({:.0}%)",
        resumed / plain * 100.0
    );
    Ok(())
}

/// Starts the mock and pacer (interception on, a fresh CA in a temp dir).
async fn start() -> anyhow::Result<(SocketAddr, String)> {
    let mock = TcpListener::bind("127.0.0.1:0").await?;
    let mock_addr = mock.local_addr()?;
    let mock_config = pacer::mock::MockConfig {
        default_limit: None,
        ..Default::default()
    };
    tokio::spawn(pacer::mock::serve(
        mock,
        mock_config,
        std::future::pending(),
    ));
    let dir = std::env::temp_dir().join(format!("pacer-bench-{}", uuid::Uuid::new_v4()));
    let yaml = format!(
        "upstreams:\n  api:\n    base_url: http://{mock_addr}\n    hosts: [api.test]\n\
         intercept:\n  ca_cert: {0}/ca.pem\n  ca_key: {0}/ca-key.pem\n",
        dir.display()
    );
    let config = pacer::Config::parse(&yaml, &dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listeners = pacer::app::Listeners {
        proxy: listener,
        admin: None,
    };
    tokio::spawn(pacer::app::run(listeners, config, std::future::pending()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok((addr, std::fs::read_to_string(dir.join("ca.pem"))?))
}

struct Tls {
    full: Arc<rustls::ClientConfig>,
    resuming: Arc<rustls::ClientConfig>,
}

impl Tls {
    fn new(ca_pem: &str) -> Tls {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resuming = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut full = resuming.clone();
        full.resumption = rustls::client::Resumption::disabled();
        Tls {
            full: Arc::new(full),
            resuming: Arc::new(resuming),
        }
    }
}

/// A connection that sends absolute-form requests through pacer.
async fn plain_conn(pacer: SocketAddr) -> (SendRequest<Empty<Bytes>>, &'static str) {
    let tcp = TcpStream::connect(pacer).await.unwrap();
    let _ = tcp.set_nodelay(true);
    (http1(tcp).await, "http://api.test/api/v2/users")
}

/// CONNECT, TLS with pacer's leaf, then origin-form requests inside.
async fn intercepted_conn(
    pacer: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> (SendRequest<Empty<Bytes>>, &'static str) {
    let mut tcp = TcpStream::connect(pacer).await.unwrap();
    let _ = tcp.set_nodelay(true);
    tcp.write_all(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let name = ServerName::try_from("api.test").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    (http1(stream).await, "/api/v2/users")
}

async fn http1<S>(io: S) -> SendRequest<Empty<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn get(send: &mut SendRequest<Empty<Bytes>>, uri: &str) {
    send.ready().await.unwrap();
    let req = http::Request::get(uri)
        .header("host", "api.test")
        .body(Empty::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
}

/// Requests per second, one after another over one connection.
async fn keep_alive<F, Fut>(secs: Duration, open: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (SendRequest<Empty<Bytes>>, &'static str)>,
{
    let (mut send, uri) = open().await;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < secs {
        get(&mut send, uri).await;
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// New connections per second, `clients` loops in parallel, one request per connection.
async fn new_conns<F, Fut>(secs: Duration, clients: usize, open: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (SendRequest<Empty<Bytes>>, &'static str)> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let open = open.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < secs {
                    let (mut send, uri) = open().await;
                    get(&mut send, uri).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}
