//! Counts and times every answer the client sees, and writes the one debug line per request.
//!
//! This layer sits outside [`Rescue`](super::rescue::Rescue), so pacer's own errors (403, 407,
//! 413, 429 give-ups, 502) are counted exactly as the client receives them. Being outermost, it
//! matches the route itself, and hands the match down in [`Routed`] for the dispatch to the
//! route's stack, which then need not match the path a second time.
//!
//! The debug line takes waits, retries and give-ups from the headers the retry layer puts on
//! the answer (`x-pacer-queued-ms`, `x-pacer-retries`, `x-pacer-gave-up`), so no layer needs a
//! side channel to it. It names the route by its pattern and never carries the raw path, query
//! or any other header: queries and headers can hold credentials.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response};
use tokio::time::Instant;

use super::body::Body;
use super::rescue::ErrorCode;
use crate::exchange::{RouteId, GAVE_UP_HEADER, QUEUED_HEADER, RETRIES_HEADER};
use crate::metrics::Metrics;
use crate::route::RouteTable;

/// The log target of the per-request line: `RUST_LOG=pacer::request=debug` shows only these.
pub const TARGET: &str = "pacer::request";

/// The upstream's request id, echoed in the log line so a slow or failed request can be found in
/// the platform's own logs.
const CORRELATION_HEADER: &str = "inin-correlation-id";

/// The route a request matched (None: no route), found once at the edge of the stack.
#[derive(Clone, Copy, Debug)]
pub struct Routed(pub Option<RouteId>);

/// Builds the observe layer.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    routes: RouteTable,
}

impl ObserveLayer {
    pub fn new(metrics: Arc<Metrics>, routes: RouteTable) -> Self {
        ObserveLayer { metrics, routes }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe::new(inner, self.metrics.clone(), self.routes.clone())
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
        let route = self.routes.find(req.method(), req.uri().path());
        req.extensions_mut().insert(Routed(route));
        let method = req.method().clone();
        ObserveFuture {
            inner: self.inner.call(req),
            done: Some(Done {
                metrics: self.metrics.clone(),
                route,
                method,
                start,
            }),
        }
    }
}

impl<S> Observe<S> {
    /// Counts and logs an answer made outside the stack (CONNECT's), on no route, as the stack's
    /// own answers are.
    pub fn watch<F>(&self, method: Method, answer: F) -> ObserveFuture<F> {
        ObserveFuture {
            inner: answer,
            done: Some(Done {
                metrics: self.metrics.clone(),
                route: None,
                method,
                start: Instant::now(),
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
    route: Option<RouteId>,
    method: Method,
    start: Instant,
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
        if tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
            self.log(res, took);
        }
    }

    fn log(&self, res: &Response<Body>, took: Duration) {
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| {
            header(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        tracing::debug!(
            target: TARGET,
            method = %self.method,
            route = self.metrics.route_label(self.route),
            status = res.status().as_u16(),
            took_ms = took.as_micros() as f64 / 1000.0,
            queued_ms = number(QUEUED_HEADER),
            retries = number(RETRIES_HEADER),
            gave_up = header(GAVE_UP_HEADER),
            correlation = header(CORRELATION_HEADER),
            code = res.extensions().get::<ErrorCode>().map(|c| c.0),
            "request"
        );
    }
}
