//! In-process harness: the mock and pacer on port 0, a client, and small assertions.

pub mod external;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server that stops when told (or when dropped).
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signals shutdown and waits for the server's `run` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.signal_stop();
        self.task.take().unwrap().await?
    }

    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// The server task, to await after `signal_stop`.
    pub fn task(&mut self) -> JoinHandle<anyhow::Result<()>> {
        self.task.take().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn stop_pair() -> (
    oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

pub async fn start_mock(config: pacer::mock::MockConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, stop) = stop_pair();
    let task = tokio::spawn(pacer::mock::serve(listener, config, stop));
    Running {
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

pub async fn start_mock_default() -> Running {
    start_mock(pacer::mock::MockConfig::default()).await
}

/// A mock without its default limit: every request answered, so only pacer shapes.
pub async fn open_mock() -> Running {
    start_mock(pacer::mock::MockConfig {
        default_limit: None,
        ..Default::default()
    })
    .await
}

/// Starts pacer with `yaml`, in which `{mock}` stands for the mock's `host:port`.
pub async fn start_pacer(yaml: &str, mock: SocketAddr) -> Running {
    let yaml = yaml.replace("{mock}", &mock.to_string());
    let config = pacer::Config::parse(&yaml, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n---\n{yaml}"));
    start_pacer_with(config).await
}

pub async fn start_pacer_with(config: pacer::Config) -> Running {
    start_app(pacer::app::App::new(config).unwrap()).await.0
}

/// Starts pacer serving on `workers` threads of its own (thread-per-core), as the binary does.
pub async fn start_pacer_workers(yaml: &str, mock: SocketAddr, workers: usize) -> Running {
    let yaml = yaml.replace("{mock}", &mock.to_string());
    let config = pacer::Config::parse(&yaml, std::path::Path::new(".")).unwrap();
    start_app(pacer::app::App::new(config).unwrap().with_workers(workers))
        .await
        .0
}

/// Starts pacer and keeps a handle on its limits, for tests that watch queues.
pub async fn start_pacer_limits(
    yaml: &str,
    mock: SocketAddr,
) -> (Running, Arc<pacer::shape::layer::Limits>) {
    let yaml = yaml.replace("{mock}", &mock.to_string());
    let config = pacer::Config::parse(&yaml, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n---\n{yaml}"));
    start_app(pacer::app::App::new(config).unwrap()).await
}

async fn start_app(app: pacer::app::App) -> (Running, Arc<pacer::shape::layer::Limits>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, stop) = stop_pair();
    let limits = app.limits().clone();
    let listeners = pacer::app::Listeners {
        proxy: listener,
        admin: None,
    };
    let task = tokio::spawn(app.serve(listeners, stop));
    let running = Running {
        addr,
        stop: Some(tx),
        task: Some(task),
    };
    (running, limits)
}

/// Starts a built app with an admin listener too: the proxy, its limits and the admin address.
pub async fn start_app_admin(
    app: pacer::app::App,
) -> (Running, Arc<pacer::shape::layer::Limits>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, admin_addr) = (listener.local_addr().unwrap(), admin.local_addr().unwrap());
    let (tx, stop) = stop_pair();
    let limits = app.limits().clone();
    let listeners = pacer::app::Listeners {
        proxy: listener,
        admin: Some(admin),
    };
    let task = tokio::spawn(app.serve(listeners, stop));
    let running = Running {
        addr,
        stop: Some(tx),
        task: Some(task),
    };
    (running, limits, admin_addr)
}

/// Waits (bounded) until a limit's state satisfies `cond`; the limiter has no event to await.
pub async fn wait_for_limit(
    limits: &pacer::shape::layer::Limits,
    name: &str,
    cond: impl Fn(&pacer::shape::LimitState) -> bool,
) {
    let limiter = limits.by_name(name).expect("limit exists");
    for _ in 0..1000 {
        if cond(&limiter.state()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "limit {name} never reached the expected state: {:?}",
        limiter.state()
    );
}

/// Starts pacer with `yaml` (`{mock}` as in [`start_pacer`]) and an admin listener on port 0;
/// returns the running proxy and the admin listener's address.
pub async fn start_pacer_admin(yaml: &str, mock: SocketAddr) -> (Running, SocketAddr) {
    let yaml = yaml.replace("{mock}", &mock.to_string());
    let config = pacer::Config::parse(&yaml, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n---\n{yaml}"));
    start_pacer_with_admin(config).await
}

pub async fn start_pacer_with_admin(config: pacer::Config) -> (Running, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, admin_addr) = (listener.local_addr().unwrap(), admin.local_addr().unwrap());
    let (tx, stop) = stop_pair();
    let listeners = pacer::app::Listeners {
        proxy: listener,
        admin: Some(admin),
    };
    let task = tokio::spawn(pacer::app::run(listeners, config, stop));
    let running = Running {
        addr,
        stop: Some(tx),
        task: Some(task),
    };
    (running, admin_addr)
}

/// The simplest config: one upstream, the mock, as the default.
pub fn basic_config() -> &'static str {
    "upstreams:\n  mock:\n    base_url: http://{mock}\n    hosts: [api.test]\n"
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn request(method: &str, uri: &str) -> http::request::Builder {
    http::Request::builder().method(method).uri(uri)
}

/// Sends and collects: (status, headers, body).
pub async fn send(
    client: &TestClient,
    req: http::Request<Full<Bytes>>,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let res = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("response within 30s")
        .expect("request succeeds at the HTTP level");
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, bytes)
}

pub async fn get(client: &TestClient, uri: &str) -> (http::StatusCode, http::HeaderMap, Bytes) {
    send(client, request("GET", uri).body(Full::default()).unwrap()).await
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The mock's counters.
pub async fn mock_stats(mock: &Running) -> serde_json::Value {
    let (status, _, body) = get(&client(), &mock.url("/__mock/stats")).await;
    assert_eq!(status, 200);
    json(&body)
}

/// Writes raw bytes on a fresh connection and reads until the server closes or `until` is seen.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                // One complete response is enough: stop at the end of its body.
                if response_complete(&out) {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response_complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some(head_end) = text.find("\r\n\r\n") else {
        return false;
    };
    let head = text[..head_end].to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match len {
        Some(n) => bytes.len() >= head_end + 4 + n,
        None => false,
    }
}

pub mod counting;
pub mod faulty;
pub mod generator;
pub mod limited;
pub mod limiter;
pub mod mock;
pub mod proc;
pub mod redis;
pub mod tunnel;
pub mod upstream;

/// Serves HTTP/1.1 on `listener` until the returned task is aborted, each request answered by
/// `answer` (the test upstreams' accept loop, written once).
pub fn serve_http1<F, Fut>(listener: tokio::net::TcpListener, answer: F) -> JoinHandle<()>
where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<
            Output = Result<http::Response<http_body_util::Full<Bytes>>, std::convert::Infallible>,
        > + Send
        + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// A file of the repository.
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Lower-case hex, for digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls a condition that has no event to wait on (another component's or process's counters),
/// for at most 10 s.
pub async fn wait_until<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1000 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 10s");
}

/// A fresh directory under the system temp dir, unique to the caller.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pacer-test-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
