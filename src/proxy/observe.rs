//! Counts and times every answer the client sees, and writes the one debug line per request.
//!
//! This layer sits outside [`Rescue`](super::rescue::Rescue), so pacer's own errors (403, 407,
//! 413, 429 give-ups, 502) are counted exactly as the client receives them. Being outermost, it
//! matches the route itself, and hands the match down in [`Routed`] so the front door does not
//! match the path a second time.
//!
//! Layers below can add to the debug line through [`RequestNotes`] (queue waits, retries). The
//! notes exist only while that line is enabled, so the request path pays nothing for them
//! otherwise. The line names the route by its pattern and never carries the raw path, query or
//! any header but the upstream's correlation id: queries and headers can hold credentials.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{Extensions, Method, Request, Response};
use tokio::time::Instant;

use super::body::Body;
use super::rescue::ErrorCode;
use crate::metrics::Metrics;
use crate::route::RouteTable;

/// The log target of the per-request line: `RUST_LOG=pacer::request=debug` shows only these.
pub const TARGET: &str = "pacer::request";

/// The upstream's request id, echoed in the log line so a slow or failed request can be found in
/// the platform's own logs.
const CORRELATION_HEADER: &str = "inin-correlation-id";

/// The route a request matched (None: no route), found once at the edge of the stack.
#[derive(Clone, Copy, Debug)]
pub struct Routed(pub Option<usize>);

/// What happened to a request on its way, for the debug line. Present in the request's
/// extensions (as `Arc<RequestNotes>`) only when that line is enabled; retries clone the
/// extensions, so every attempt adds to the same notes.
#[derive(Debug, Default)]
pub struct RequestNotes {
    waited_us: AtomicU64,
    retries: AtomicU32,
}

// === impl RequestNotes ===

impl RequestNotes {
    /// The notes of the request these extensions belong to, if the debug line is enabled.
    pub fn of(extensions: &Extensions) -> Option<&RequestNotes> {
        extensions.get::<Arc<RequestNotes>>().map(|n| &**n)
    }

    /// Time spent waiting for a limit (adds up over limits and attempts).
    pub fn add_wait(&self, waited: Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.waited_us.fetch_add(us, Ordering::Relaxed);
    }

    /// One more upstream attempt after the first.
    pub fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// Wraps the rescued stack: see the module docs.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
    routes: RouteTable,
}

impl<S> Observe<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>, routes: RouteTable) -> Observe<S> {
        Observe {
            inner,
            metrics,
            routes,
        }
    }
}

// === impl Observe ===

impl<S, B> tower::Service<Request<B>> for Observe<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let route = self
            .routes
            .find(req.method(), req.uri().path())
            .map(|(i, _)| i);
        req.extensions_mut().insert(Routed(route));
        let notes = tracing::enabled!(target: TARGET, tracing::Level::DEBUG).then(|| {
            let notes = Arc::new(RequestNotes::default());
            req.extensions_mut().insert(notes.clone());
            notes
        });
        let method = req.method().clone();
        ObserveFuture {
            inner: self.inner.call(req),
            done: Some(Done {
                metrics: self.metrics.clone(),
                route,
                method,
                start,
                notes,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner future plus what is needed to record its answer; a named future rather than a
    /// boxed one, so this layer adds no allocation per request.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        done: Option<Done>,
    }
}

struct Done {
    metrics: Arc<Metrics>,
    route: Option<usize>,
    method: Method,
    start: Instant,
    notes: Option<Arc<RequestNotes>>,
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(res) = ready!(this.inner.poll(cx));
        if let Some(done) = this.done.take() {
            done.record(&res);
        }
        Poll::Ready(Ok(res))
    }
}

// === impl Done ===

impl Done {
    fn record(self, res: &Response<Body>) {
        let took = self.start.elapsed();
        let status = res.status().as_u16();
        self.metrics.request(self.route, &self.method, status, took);
        if let Some(notes) = &self.notes {
            self.log(notes, res, took);
        }
    }

    fn log(&self, notes: &RequestNotes, res: &Response<Body>, took: Duration) {
        let correlation = res
            .headers()
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok());
        let waited_us = notes.waited_us.load(Ordering::Relaxed);
        tracing::debug!(
            target: TARGET,
            method = %self.method,
            route = self.metrics.route_label(self.route),
            status = res.status().as_u16(),
            took_ms = millis(took.as_micros()),
            wait_ms = millis(u128::from(waited_us)),
            retries = notes.retries.load(Ordering::Relaxed),
            correlation,
            code = res.extensions().get::<ErrorCode>().map(|c| c.0),
            "request"
        );
    }
}

/// Milliseconds with microsecond precision, which reads better than raw microseconds.
fn millis(us: u128) -> f64 {
    us as f64 / 1000.0
}
