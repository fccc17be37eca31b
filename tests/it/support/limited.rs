//! An API with three endpoints limited three ways, for discovery:
//!
//! - `/api/v2/users/{id}`: 30 requests per 6 s per token (fixed windows, each opened by the
//!   token's first request after the last one ended), advertised on every answer with
//!   `inin-ratelimit-allowed/count/reset`;
//! - `/api/v2/analytics/{id}`: 4 in flight at once across tokens, each held 200 ms; a fifth gets
//!   429 `Retry-After: 1`, no rate-limit headers;
//! - `/api/v2/scripts/{id}`: 12 requests per 6 s in all (fixed windows as above), said only by
//!   the `Retry-After` of its 429s.
//!
//! Time is tokio's, so the tests run it on paused time.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const USERS: (u32, Duration) = (30, Duration::from_secs(6));
pub const ANALYTICS_CAP: u32 = 4;
pub const ANALYTICS_HOLD: Duration = Duration::from_millis(200);
pub const SCRIPTS: (u32, Duration) = (12, Duration::from_secs(6));

/// What one endpoint answered.
#[derive(Debug, Default, Clone)]
pub struct Answered {
    pub ok: u64,
    pub throttled: u64,
    /// The Retry-After values sent, in seconds: (min, max).
    pub retry_after: Option<(u64, u64)>,
}

#[derive(Default)]
struct State {
    /// Per token, the users window: (start, count).
    users: HashMap<String, (Instant, u32)>,
    scripts: Option<(Instant, u32)>,
    analytics_in_flight: u32,
    answered: HashMap<&'static str, Answered>,
}

pub struct Limited {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for Limited {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Limited {
    /// What `endpoint` (`users`, `analytics`, `scripts`) answered so far.
    pub fn answered(&self, endpoint: &str) -> Answered {
        let s = self.state.lock().unwrap();
        s.answered.get(endpoint).cloned().unwrap_or_default()
    }

    /// Forgets counts and windows, for a second run.
    pub fn reset(&self) {
        let mut s = self.state.lock().unwrap();
        let in_flight = s.analytics_in_flight;
        *s = State::default();
        s.analytics_in_flight = in_flight;
    }
}

pub async fn start_limited() -> Limited {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(State::default()));
    let s = state.clone();
    let task = super::serve_http1(listener, move |req| answer(s.clone(), req));
    Limited { addr, state, task }
}

type Res = Response<Full<Bytes>>;

async fn answer(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Res, Infallible> {
    let path = req.uri().path().to_owned();
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let now = Instant::now();
    let res = if path.starts_with("/api/v2/users/") {
        users(&mut state.lock().unwrap(), token, now)
    } else if path.starts_with("/api/v2/analytics/") {
        return Ok(analytics(&state).await);
    } else if path.starts_with("/api/v2/scripts/") {
        scripts(&mut state.lock().unwrap(), now)
    } else {
        Response::builder()
            .status(404)
            .body(Full::default())
            .unwrap()
    };
    Ok(res)
}

/// Counts a request in a fixed window of `(quota, length)`: Ok(count after it), or Err(time
/// until the window ends).
fn count(
    window: &mut Option<(Instant, u32)>,
    limit: (u32, Duration),
    now: Instant,
) -> Result<u32, Duration> {
    let (start, n) = match *window {
        Some((start, n)) if now < start + limit.1 => (start, n),
        _ => (now, 0),
    };
    if n >= limit.0 {
        *window = Some((start, n));
        return Err(start + limit.1 - now);
    }
    *window = Some((start, n + 1));
    Ok(n + 1)
}

fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

fn record(s: &mut State, endpoint: &'static str, retry_after: Option<u64>) {
    let a = s.answered.entry(endpoint).or_default();
    match retry_after {
        None => a.ok += 1,
        Some(secs) => {
            a.throttled += 1;
            a.retry_after = Some(match a.retry_after {
                Some((lo, hi)) => (lo.min(secs), hi.max(secs)),
                None => (secs, secs),
            });
        }
    }
}

fn users(s: &mut State, token: String, now: Instant) -> Res {
    let mut window = s.users.get(&token).copied();
    let counted = count(&mut window, USERS, now);
    let (start, n) = window.unwrap();
    s.users.insert(token, (start, n));
    let reset = ceil_secs(start + USERS.1 - now);
    let builder = Response::builder()
        .header("inin-ratelimit-allowed", USERS.0.to_string())
        .header("inin-ratelimit-count", n.to_string())
        .header("inin-ratelimit-reset", reset.to_string());
    match counted {
        Ok(_) => {
            record(s, "users", None);
            builder.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
        }
        Err(wait) => {
            let secs = ceil_secs(wait);
            record(s, "users", Some(secs));
            too_many(builder, secs)
        }
    }
}

fn scripts(s: &mut State, now: Instant) -> Res {
    let mut window = s.scripts;
    let counted = count(&mut window, SCRIPTS, now);
    s.scripts = window;
    match counted {
        Ok(_) => {
            record(s, "scripts", None);
            Response::new(Full::new(Bytes::from_static(b"{}")))
        }
        Err(wait) => {
            let secs = ceil_secs(wait);
            record(s, "scripts", Some(secs));
            too_many(Response::builder(), secs)
        }
    }
}

async fn analytics(state: &Mutex<State>) -> Res {
    {
        let mut s = state.lock().unwrap();
        if s.analytics_in_flight >= ANALYTICS_CAP {
            record(&mut s, "analytics", Some(1));
            return too_many(Response::builder(), 1);
        }
        s.analytics_in_flight += 1;
    }
    tokio::time::sleep(ANALYTICS_HOLD).await;
    let mut s = state.lock().unwrap();
    s.analytics_in_flight -= 1;
    record(&mut s, "analytics", None);
    Response::new(Full::new(Bytes::from_static(b"{}")))
}

fn too_many(builder: http::response::Builder, secs: u64) -> Res {
    builder
        .status(429)
        .header("retry-after", secs.to_string())
        .body(Full::new(Bytes::from_static(b"{\"status\":429}")))
        .unwrap()
}
