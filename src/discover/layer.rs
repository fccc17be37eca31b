//! The discovery layer: between the shaping layer and the upstream client, so it counts what
//! the API receives (each attempt) and reads each answer's head.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::time::Instant;

use super::tally::Answer;
use super::{Discovery, Group};
use crate::error::Error;
use crate::exchange::body::Body;
use crate::exchange::{BoxResponse, Downstream, RouteId, Target};

/// Builds the discovery layer of one route's stack (None: the requests on no route).
#[derive(Clone)]
pub struct DiscoverLayer {
    discovery: Option<Arc<Discovery>>,
    route: Option<RouteId>,
}

impl DiscoverLayer {
    pub fn new(discovery: Option<Arc<Discovery>>, route: Option<RouteId>) -> Self {
        DiscoverLayer { discovery, route }
    }
}

impl<S> tower::Layer<S> for DiscoverLayer {
    type Service = Discover<S>;

    fn layer(&self, inner: S) -> Discover<S> {
        // A configured route's requests all count in the route's group, found here once.
        let route = self.route;
        let group = self.discovery.as_ref().and_then(|d| d.route_group(route?));
        Discover {
            discovery: self.discovery.clone(),
            group,
            inner,
        }
    }
}

/// Records each attempt in its group when discovery is on; passes through when it is off.
#[derive(Clone)]
pub struct Discover<S> {
    discovery: Option<Arc<Discovery>>,
    /// The route's group; None on the stack of requests on no route, grouped by path.
    group: Option<Group>,
    inner: S,
}

/// Counts the attempt out of its group's in-flight requests however it ends: answered, failed,
/// or dropped with the client.
struct InFlight(Group);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().done();
    }
}

// === impl Discover ===

impl<S> tower::Service<Request<Body>> for Discover<S>
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
        let Some(discovery) = &self.discovery else {
            return self.inner.call(req);
        };
        let target = req.extensions().get::<Target>();
        let unit = target.map(|t| t.retry_after_unit).unwrap_or_default();
        let group = match &self.group {
            Some(g) => g.clone(),
            None => discovery.unmatched_group(req.method(), req.uri().path()),
        };
        let token = req.headers().contains_key(http::header::AUTHORIZATION);
        let level = group.lock().sent(Instant::now(), token);
        let in_flight = InFlight(group);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let res = answer.await?;
            let read = Answer::read(res.status(), res.headers(), unit);
            let mut tally = in_flight.0.lock();
            tally.answered(&read, level, Instant::now());
            drop(tally);
            Ok(res)
        })
    }
}
