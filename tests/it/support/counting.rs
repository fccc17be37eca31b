//! An upstream that records when each request arrived and how many ran at once: `/slow/{ms}`
//! holds the answer that long; a token listed in `throttle` gets one 429 with `Retry-After`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct Seen {
    /// Arrival times of every request.
    pub arrivals: Mutex<Vec<Instant>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// `Bearer` tokens to answer 429 once (then removed), with this Retry-After in seconds.
    pub throttle: Mutex<HashSet<String>>,
    pub retry_after_secs: AtomicUsize,
}

pub struct Counting {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Counting {
    pub fn arrivals(&self) -> Vec<Instant> {
        self.seen.arrivals.lock().unwrap().clone()
    }

    /// The most arrivals in any window of `len` (windows start at an arrival).
    pub fn max_in_window(&self, len: Duration) -> usize {
        let a = self.arrivals();
        (0..a.len())
            .map(|i| a[i..].iter().take_while(|t| **t < a[i] + len).count())
            .max()
            .unwrap_or(0)
    }
}

pub async fn start_counting() -> Counting {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let task = super::serve_http1(listener, move |req| answer(s.clone(), req));
    Counting { addr, seen, task }
}

async fn answer(
    seen: Arc<Seen>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    seen.arrivals.lock().unwrap().push(Instant::now());
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    if seen.throttle.lock().unwrap().remove(&token) {
        let secs = seen.retry_after_secs.load(Ordering::SeqCst);
        let res = Response::builder()
            .status(429)
            .header("retry-after", secs.to_string())
            .body(Full::default())
            .unwrap();
        return Ok(res);
    }
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    if let Some(ms) = req.uri().path().strip_prefix("/slow/") {
        let ms = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}
