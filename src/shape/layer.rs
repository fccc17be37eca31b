//! The shaping layer: makes each request pass its route's limits before it goes upstream.
//!
//! Each route's stack has a shaping layer of its own, built with what the route passes
//! ([`RouteLimits`]); limits are acquired in the order the route lists them. Permits are held until the response
//! body is finished (or dropped, when the client goes away), so a concurrency cap counts requests
//! truly in flight upstream, streaming included.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::time::Instant;

use super::answers::Answers;
use super::{Acquire, Permit, Priority};
use crate::error::Error;
use crate::exchange::body::{self, Body};
use crate::exchange::half_close::ClientConn;
use crate::exchange::{BoxResponse, Downstream, Target};
use crate::metrics::{Metrics, Rejection};
use crate::shutdown::DrainDeadline;

pub use super::limits::{Limits, RouteLimits};
pub use crate::exchange::{IsRetry, Passed, RequestStart};

/// Builds the shaping layer of one route's stack. One `Arc` inside: the service is cloned for
/// every request (tower's rule for services called after an await), and each `Arc` cloned is an
/// atomic counter that the worker threads pass between them.
#[derive(Clone)]
pub struct ShapeLayer(Arc<Shared>);

struct Shared {
    limits: Arc<Limits>,
    route: Arc<RouteLimits>,
    metrics: Arc<Metrics>,
    deadline: DrainDeadline,
}

impl ShapeLayer {
    /// `deadline`: past it, requests still queued are answered 503 `pacer.shutting_down`.
    pub fn new(
        limits: Arc<Limits>,
        route: Arc<RouteLimits>,
        metrics: Arc<Metrics>,
        deadline: DrainDeadline,
    ) -> Self {
        ShapeLayer(Arc::new(Shared {
            limits,
            route,
            metrics,
            deadline,
        }))
    }
}

impl<S> tower::Layer<S> for ShapeLayer {
    type Service = Shape<S>;

    fn layer(&self, inner: S) -> Shape<S> {
        Shape {
            layer: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Shape<S> {
    layer: ShapeLayer,
    inner: S,
}

// === impl Shape ===

impl<S> tower::Service<Request<Body>> for Shape<S>
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
        if self.layer.0.route.order().is_empty() {
            return self.inner.call(req);
        }
        // The inner service was made ready for this call; take it and leave a clone behind
        // (tower's rule for services that call their inner one after an await).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(shape(self.layer.clone(), req, inner))
    }
}

/// Not an `async fn`: a queued request waits in this future, and an `async fn` would hold the
/// request twice (its argument and the local it moves to). The `async` block uses what it
/// captures in place.
fn shape<S>(
    layer: ShapeLayer,
    req: Request<Body>,
    mut inner: S,
) -> impl Future<Output = Result<Response<Body>, Error>> + Send
where
    S: Downstream,
{
    let start = match req.extensions().get::<RequestStart>() {
        Some(s) => s.0,
        None => Instant::now(),
    };
    let priority = match req.extensions().get::<IsRetry>() {
        Some(_) => Priority::Retry,
        None => Priority::Normal,
    };
    let client_ip = Target::client_ip(req.extensions());
    let conn = req.extensions().get::<ClientConn>().cloned();
    async move {
        let Shared {
            limits,
            route,
            metrics,
            deadline,
        } = &*layer.0;
        // While it waits, the end of the client's stream means the client left (see
        // `exchange/half_close.rs`).
        let waiting = conn.as_ref().map(ClientConn::waiting);
        let mut permits = Vec::new();
        // What the request passed, reported to the limits that learn when its answer comes
        // (or, dropped unanswered, as no answer).
        let mut answers = Answers::new(limits);
        for &i in route.order() {
            let cfg = limits.config(i);
            let key = limits.key_for(i, req.headers(), client_ip);
            let acquire = Acquire {
                key,
                deadline: start + cfg.queue.max_wait,
                priority,
            };
            let acquired = until_drain_deadline(limits.limiter(i).acquire(acquire), deadline);
            let permit = match acquired.await {
                Ok(p) => p,
                Err(e) => {
                    if let Some(reason) = Rejection::of(&e) {
                        metrics.rejected(i, reason);
                    }
                    return Err(e);
                }
            };
            metrics.queue_wait(i, permit.waited);
            answers.passed(i, key, permit.waited);
            permits.push(permit);
        }
        if !answers.waited().is_zero() {
            client_left_check().await;
        }
        drop(waiting);
        let mut res = inner.call(req).await?;
        let passed = answers.answer(res.headers());
        if res.status() == http::StatusCode::TOO_MANY_REQUESTS {
            // The retry layer pauses these keys next; a probe among them must not resume its
            // key in between (the permits go when this future ends).
            for (permit, &(i, _)) in permits.iter().zip(&passed.keys) {
                if route.pauses(i) {
                    permit.throttled();
                }
            }
        }
        res.extensions_mut().insert(passed);
        Ok(hold_until_done(res, permits))
    }
}

/// `acquire`, or [`Error::ShuttingDown`] once the drain deadline passes while it waits. The
/// deadline's future is made (and boxed) only when the permit is not granted at once, so a
/// request that does not queue pays nothing for it and one that does keeps the shape future
/// (memory per queued request) at its size.
fn until_drain_deadline<'a>(
    mut acquire: super::AcquireFuture<'a>,
    deadline: &'a DrainDeadline,
) -> impl Future<Output = Result<Permit, Error>> + Send + 'a {
    let mut passed: Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>> = None;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(acquired) = acquire.as_mut().poll(cx) {
            return Poll::Ready(acquired);
        }
        let passed = passed.get_or_insert_with(|| Box::pin(deadline.passed()));
        match passed.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Error::ShuttingDown)),
            Poll::Pending => Poll::Pending,
        }
    })
}

/// Lets the connection notice a client that left while its request waited, before the request
/// goes upstream.
///
/// A client that closes its connection while queued drops its request: the connection task
/// reads the end of the stream and drops the request's future. But the runtime learns of the
/// close only when it next polls the I/O driver, and a slot that frees (a release on another
/// connection, a live limit change) wakes the waiting request first: without this yield the
/// request would go upstream before its connection is looked at. `yield_now` resumes only after
/// the driver has been polled, so a close that had arrived by now is seen first. Only a request
/// that waited pays for it; one that went straight through had no time to be abandoned.
async fn client_left_check() {
    tokio::task::yield_now().await;
}

/// Keeps the permits alive as long as the response body is, so slots free when the client has
/// the whole response or goes away, not when the headers arrive.
fn hold_until_done(res: Response<Body>, permits: Vec<Permit>) -> Response<Body> {
    if !permits.iter().any(Permit::holds_slot) {
        return res;
    }
    res.map(|b| {
        body::boxed(Holding {
            inner: b,
            _permits: permits,
        })
    })
}

pin_project_lite::pin_project! {
    struct Holding {
        #[pin]
        inner: Body,
        _permits: Vec<Permit>,
    }
}

impl http_body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::testing::Never;
    use crate::shape::limits::testing::limits_and_metrics;

    /// A queued request waits in this future, so its size is memory per queued request
    /// (bench/shaping.sh). As an `async fn` holding the request twice it was 696 bytes.
    #[test]
    fn the_shape_future_holds_the_request_once() {
        let (_, limits, metrics) = limits_and_metrics();
        let route = Arc::new(RouteLimits::default());
        let layer = ShapeLayer::new(limits, route, metrics, DrainDeadline::default());
        let fut = shape(layer, Request::new(body::empty()), Never);
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 560, "the shape future takes {size} bytes");
    }
}
