//! `pacer mock` in-process ([`super::start_mock`]) and the crate's client aimed at it: paths
//! instead of URLs, whole [`Reply`]s.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pacer::mock::{MockConfig, MockRoute, WindowLimit};
use pacer::route::PathPattern;
use serde_json::Value;

use super::{Running, TestClient};

/// A running mock (stopped when dropped, as every [`Running`] server).
pub struct Mock {
    pub addr: SocketAddr,
    server: Running,
    client: MockClient,
}

/// The crate's one [`TestClient`] (pooled HTTP/1.1), bound to one mock's address.
#[derive(Clone)]
pub struct MockClient {
    addr: SocketAddr,
    inner: TestClient,
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

// === impl Mock ===

impl Mock {
    pub async fn start(config: MockConfig) -> Mock {
        let server = super::start_mock(config).await;
        let addr = server.addr;
        let client = MockClient {
            addr,
            inner: super::client(),
        };
        Mock {
            addr,
            server,
            client,
        }
    }

    pub fn clone_client(&self) -> MockClient {
        self.client.clone()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.client.send(method, path, headers, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.client.get(path, token).await
    }

    pub async fn stats(&self) -> Value {
        let reply = self.get("/__mock/stats", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()
    }

    /// Polls the stats until exactly `n` API requests are in flight (each poll is a round trip
    /// to the mock, so this waits on the mock's own report, not on a guessed duration).
    pub async fn wait_for_in_flight(&self, n: u64) {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while self.stats().await["in_flight"].as_u64() != Some(n) {
            assert!(
                std::time::Instant::now() < give_up,
                "never saw {n} requests in flight"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Resolves the shutdown future and waits for `serve` to return.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}

// === impl MockClient ===

impl MockClient {
    /// Sends and reads the whole answer. No timeout, unlike [`super::send`]: these tests run on
    /// tokio's paused clock, which would jump past any timeout while the socket is waited on.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        let response = self.inner.request(req).await.expect("the mock answers");
        Reply::read(response).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        self.send(Method::GET, path, &headers, Bytes::new()).await
    }
}

// === impl Reply ===

impl Reply {
    async fn read<B>(response: http::Response<B>) -> Reply
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("whole body").to_bytes(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// GETs `url` over HTTPS, trusting only the certificate in `pem`.
pub async fn https_get(pem: &str, url: &str) -> Reply {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(super::tunnel::trusting(pem))
        .https_only()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    Reply::read(
        client
            .request(req)
            .await
            .expect("the mock answers over TLS"),
    )
    .await
}

/// `requests` per `secs` seconds.
pub fn limit(requests: u32, secs: u64) -> Option<WindowLimit> {
    Some(WindowLimit {
        requests,
        window: Duration::from_secs(secs),
    })
}

/// A route for `METHOD /path` with no limits yet.
pub fn route(pattern: &str) -> MockRoute {
    let (method, path) = pattern.split_once(' ').unwrap();
    MockRoute {
        pattern: pattern.into(),
        method: Some(method.parse().unwrap()),
        path: PathPattern::parse(path).unwrap(),
        rate: None,
        concurrency: None,
        latency: None,
    }
}
