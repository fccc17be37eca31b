//! The retry layer: absorbs upstream 429s (and, where allowed, 5xx and connect failures) by
//! waiting and sending the request again, so the client sees a slower success.
//!
//! It sits above shaping, so every attempt passes the limits again. On a 429 it pauses the limit
//! keys the request went through (those the route's `pause:` names, by default all) for the
//! Retry-After (or backoff) time, at most `retry.max_pause`; the retried request then waits in
//! those queues ahead of newer ones (and is usually the probe that ends the pause), and queued
//! siblings wait with it instead of each collecting its own 429. When it gives up, the client gets
//! the upstream's last answer as it came, marked with `x-pacer-gave-up`.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::policy::{retryable_status, GiveUp, RetryReason, GAVE_UP_HEADER};
use super::{buffer_for_replay, full_jitter, Replay};
use crate::config;
use crate::error::Error;
use crate::exchange::body::{self, Body};
use crate::exchange::half_close::ClientConn;
use crate::exchange::{BodyLimitExceeded, BodyReadTimeout, BoxResponse, Downstream, Target};
use crate::exchange::{IsRetry, Passed, RequestStart};
use crate::metrics::{Metrics, Rejection};
use crate::shape::limits::{Limits, RouteLimits};

mod throttle;

pub use crate::exchange::{QUEUED_HEADER, RETRIES_HEADER};

/// A 429 body is read (to keep the pooled connection) only up to this size and time.
const DRAIN_LIMIT: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// What every request of one route's retry layer reads.
struct Shared {
    cfg: config::Retry,
    limits: Arc<Limits>,
    /// The route's limits: those a 429 pauses, and its budget (`max_wait`).
    route: Arc<RouteLimits>,
    metrics: Arc<Metrics>,
}

/// Builds the retry layer of one route's stack.
#[derive(Clone)]
pub struct RetryLayer {
    shared: Arc<Shared>,
}

impl RetryLayer {
    pub fn new(
        cfg: config::Retry,
        limits: Arc<Limits>,
        route: Arc<RouteLimits>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let shared = Arc::new(Shared {
            cfg,
            limits,
            route,
            metrics,
        });
        RetryLayer { shared }
    }
}

impl<S> tower::Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            shared: self.shared.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Retry<S> {
    shared: Arc<Shared>,
    inner: S,
}

// === impl Retry ===

impl<S> tower::Service<Request<Body>> for Retry<S>
where
    S: Downstream,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = BoxResponse;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (mut attempts, body, content_length) = Attempts::new(self.shared.clone(), req, inner);
        let max = attempts.shared.cfg.max_body;
        // `attempts` lives in the boxed future once, and buffering and the attempt loop use it
        // in place. As an `async fn` taking it by value, the future kept it twice, plus the
        // request it was made from: 2.2 KiB per request instead of under 1 KiB, for every
        // request that waits in a queue.
        Box::pin(async move {
            attempts.replay = buffer_for_replay(body, max, content_length)
                .await
                .map_err(body_error)?;
            if let (Some(conn), true) = (&attempts.conn, attempts.replay.is_replayable()) {
                conn.body_done();
            }
            attempts.run().await
        })
    }
}

/// One request's retry loop.
struct Attempts<S> {
    shared: Arc<Shared>,
    inner: S,
    /// The request head. Until the first attempt, the client's own, extensions and all; from
    /// then on a copy without extensions (they are in `target`) for re-sends.
    parts: http::request::Parts,
    /// For an upgrade request, a copy of the client's extensions for every retry: its hand-over
    /// to the client's connection cannot be rebuilt from parts.
    upgrade: Option<http::Extensions>,
    target: Option<Target>,
    /// The client's connection, so a re-sent request waiting in a limit still notices a
    /// client that left (`exchange/half_close.rs`).
    conn: Option<ClientConn>,
    replay: Replay<Body>,
    start: Instant,
    deadline: Instant,
    /// Attempts made so far.
    made: u32,
    /// Time spent queued in limits and paused here, for `x-pacer-queued-ms`.
    waited: Duration,
}

/// What to do after one attempt.
enum Next {
    Done(Response<Body>),
    Again(Duration, RetryReason),
}

// === impl Attempts ===

impl<S> Attempts<S>
where
    S: Downstream,
{
    /// Everything but the body's replay copy, which the caller buffers next; also returns the
    /// body and its declared length.
    fn new(shared: Arc<Shared>, req: Request<Body>, inner: S) -> (Self, Body, Option<u64>) {
        let start = Instant::now();
        let (parts, body) = req.into_parts();
        // No `RequestStart` on the first attempt: the shaping layer takes its own arrival time,
        // which is this one to within the call between, and an extension is an allocation per
        // request. Re-sent requests carry it (`retry_extensions`), so their queue deadlines
        // still count from the client's arrival.
        let target = parts.extensions.get::<Target>().copied();
        let conn = parts.extensions.get::<ClientConn>().cloned();
        let budget = shared
            .route
            .max_wait()
            .unwrap_or(shared.cfg.max_retry_after);
        let upgrade = crate::exchange::is_upgrade(&parts.headers).then(|| parts.extensions.clone());
        let content_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let attempts = Attempts {
            shared,
            inner,
            parts,
            upgrade,
            target,
            conn,
            replay: Replay::buffered(Bytes::new(), None),
            start,
            deadline: start + budget,
            made: 0,
            waited: Duration::ZERO,
        };
        (attempts, body, content_length)
    }

    async fn run(&mut self) -> Result<Response<Body>, Error> {
        loop {
            let outcome = self.attempt().await;
            let (wait, reason) = match self.judge(outcome)? {
                Next::Done(res) => return Ok(self.finish(res)),
                Next::Again(wait, reason) => (wait, reason),
            };
            self.shared
                .metrics
                .retry(self.shared.route.id, reason.as_str());
            self.wait(wait).await;
        }
    }

    async fn attempt(&mut self) -> Result<Response<Body>, Error> {
        let body = self
            .replay
            .next_body()
            .map_or_else(body::empty, body::boxed_unless_ended);
        let req = if self.made == 0 {
            // The first attempt sends the client's head and keeps a copy. Not the other way
            // round: hyper parses the response into the header map of the request it wrote, and
            // an exact-size copy would have to grow there (a reallocation per request).
            let extensions = std::mem::take(&mut self.parts.extensions);
            let copy = self.parts.clone();
            let mut client = std::mem::replace(&mut self.parts, copy);
            client.extensions = extensions;
            Request::from_parts(client, body)
        } else {
            // `parts` holds no extensions now (cloning it copies the head only).
            let mut req = Request::from_parts(self.parts.clone(), body);
            *req.extensions_mut() = self.retry_extensions();
            req.extensions_mut().insert(IsRetry);
            req
        };
        self.made += 1;
        // The layer below is always ready (limits wait inside its call), so this is `oneshot`
        // without re-boxing a future that is boxed already.
        let mut inner = self.inner.clone();
        std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
        inner.call(req).await
    }

    /// Decides whether an attempt's outcome goes to the client or is tried again.
    fn judge(&mut self, outcome: Result<Response<Body>, Error>) -> Result<Next, Error> {
        let mut res = match outcome {
            Ok(res) => res,
            Err(e) if e.retryable() => {
                let wait = self.backoff();
                // A refused connect is retried only while the whole exchange stays within the
                // upstream's connect timeout: a dead upstream must answer 502 promptly, not
                // after a round of backoffs.
                let within = Instant::now() + wait <= self.start + self.connect_timeout();
                return match self.give_up_reason(wait, None) {
                    None if within => Ok(Next::Again(wait, RetryReason::Connect)),
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        // Taken, not cloned: it is only for this layer, and every response carries one.
        let passed = res.extensions_mut().remove::<Passed>().unwrap_or_default();
        self.waited += passed.waited;
        let Some(reason) =
            retryable_status(res.status(), &self.parts.method, self.shared.cfg.on_5xx)
        else {
            return Ok(Next::Done(res));
        };
        let throttled = reason == RetryReason::Throttled;
        let asked = match throttled {
            true => self.asked_wait(res.headers()),
            false => None,
        };
        let mut wait = asked.unwrap_or_else(|| self.backoff());
        if throttled {
            // One Retry-After pauses a key at most `max_pause`; then a probe finds out whether
            // the API accepts again, rather than the key standing still for all 1000 s asked.
            wait = wait.min(self.shared.cfg.max_pause);
            self.pause(&passed, wait);
        }
        match self.give_up_reason(wait, asked) {
            Some(why) => Ok(Next::Done(self.gave_up(res, why, &passed))),
            None => {
                tokio::spawn(drain(res));
                Ok(Next::Again(wait, reason))
            }
        }
    }

    /// Extensions for a re-sent request. The client's went with the first attempt (not cloning
    /// them per request saves an allocation per extension); the layers below read only these.
    fn retry_extensions(&self) -> http::Extensions {
        if let Some(all) = &self.upgrade {
            return all.clone();
        }
        let mut ext = http::Extensions::new();
        if let Some(target) = &self.target {
            ext.insert(*target);
        }
        ext.insert(RequestStart(self.start));
        if let Some(conn) = &self.conn {
            ext.insert(conn.clone());
        }
        ext
    }

    fn connect_timeout(&self) -> Duration {
        self.target
            .as_ref()
            .map_or(Duration::ZERO, |t| t.connect_timeout)
    }

    fn backoff(&self) -> Duration {
        let cfg = &self.shared.cfg;
        full_jitter(
            self.made.saturating_sub(1),
            cfg.backoff_base,
            cfg.backoff_max,
            &mut rand::rng(),
        )
    }

    /// Why to stop instead of waiting `wait`; `asked` is the wait a 429 asked for, and one
    /// longer than `max_retry_after` goes back to the client at once (its platform's 429).
    fn give_up_reason(&self, wait: Duration, asked: Option<Duration>) -> Option<GiveUp> {
        if asked.is_some_and(|a| a > self.shared.cfg.max_retry_after) {
            Some(GiveUp::RetryAfterTooLong)
        } else if self.made >= self.shared.cfg.max_attempts {
            Some(GiveUp::AttemptsExhausted)
        } else if !self.replay.is_replayable() {
            Some(GiveUp::BodyNotReplayable)
        } else if Instant::now() + wait > self.deadline {
            Some(GiveUp::Deadline)
        } else {
            None
        }
    }

    fn gave_up(&self, mut res: Response<Body>, why: GiveUp, passed: &Passed) -> Response<Body> {
        for &(i, _) in &passed.keys {
            self.shared.metrics.rejected(i, Rejection::GaveUp);
        }
        tracing::warn!(
            status = res.status().as_u16(),
            attempts = self.made,
            reason = why.as_str(),
            "giving up; passing the upstream's answer to the client"
        );
        res.headers_mut().insert(GAVE_UP_HEADER, why.header_value());
        res
    }

    /// Waits before the next attempt. When a limit key the request passed is paused at least as
    /// long, the limit's queue does the waiting (and puts the retry first); otherwise sleep here.
    async fn wait(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        if !self.paused_through(until) {
            // Waiting like a queued request: a client that leaves meanwhile is not re-sent for.
            let _waiting = self.conn.as_ref().map(ClientConn::waiting);
            tokio::time::sleep_until(until).await;
            self.waited += wait;
        }
    }

    /// Marks a response that waited or was retried.
    fn finish(&self, mut res: Response<Body>) -> Response<Body> {
        let retries = self.made.saturating_sub(1);
        let headers = res.headers_mut();
        if retries > 0 {
            headers.insert(RETRIES_HEADER, HeaderValue::from(retries));
        }
        let ms = self.waited.as_millis() as u64;
        if ms > 0 {
            headers.insert(QUEUED_HEADER, HeaderValue::from(ms));
        }
        res
    }
}

/// Reads a discarded response's body so its pooled connection can be reused.
async fn drain(res: Response<Body>) {
    let mut body = res.into_body();
    let read_out = async move {
        let mut read = 0;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read_out).await;
}

/// A failure while reading the client's body for replay.
fn body_error(err: crate::BoxError) -> Error {
    if let Some(limit) = err.downcast_ref::<BodyLimitExceeded>() {
        return Error::BodyTooLarge { limit: limit.0 };
    }
    if let Some(late) = err.downcast_ref::<BodyReadTimeout>() {
        return Error::BodyTimeout { timeout: late.0 };
    }
    Error::BodyRead { cause: err }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::testing::Never;
    use crate::shape::limits::testing::limits_and_metrics;

    /// A body that broke off keeps its cause as an error, for the one place that renders it.
    #[test]
    fn a_broken_body_keeps_its_cause() {
        let cause: crate::BoxError = "connection reset by peer".into();
        let err = body_error(cause);
        assert!(matches!(err, Error::BodyRead { .. }), "{err:?}");
        assert_eq!(err.code(), "pacer.request.malformed");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection reset by peer"));
    }

    /// Every queued request holds this layer's future, so its size is memory per queued
    /// request (bench/shaping.sh). Storing the request state twice made it 2.2 KiB.
    #[test]
    fn the_retry_future_stays_small() {
        let (config, limits, metrics) = limits_and_metrics();
        let route = Arc::new(RouteLimits::default());
        let layer = RetryLayer::new(config.retry, limits, route, metrics);
        let mut retry = tower::Layer::layer(&layer, Never);
        let fut = tower::Service::call(&mut retry, Request::new(body::empty()));
        let size = std::mem::size_of_val(&*fut);
        assert!(size <= 1280, "the retry future takes {size} bytes");
    }
}
