//! The innermost service: sends the request to the upstream its [`Target`] names, and counts
//! the answer under its route (each route's stack has a `Forward` of its own).

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};

use super::client::UpstreamClient;
use crate::error::Error;
use crate::exchange::{Body, BoxResponse, RouteId, Target};
use crate::metrics::Metrics;

/// One `Arc` inside, as the layers above clone it for every request.
#[derive(Clone)]
pub struct Forward(Arc<Shared>);

struct Shared {
    metrics: Arc<Metrics>,
    /// Indexed by [`Target::upstream`].
    upstreams: Arc<[Arc<UpstreamClient>]>,
    route: Option<RouteId>,
}

impl Forward {
    pub fn new(
        metrics: Arc<Metrics>,
        upstreams: Arc<[Arc<UpstreamClient>]>,
        route: Option<RouteId>,
    ) -> Self {
        Forward(Arc::new(Shared {
            metrics,
            upstreams,
            route,
        }))
    }
}

// === impl Forward ===

impl tower::Service<Request<Body>> for Forward {
    type Response = Response<Body>;
    type Error = Error;
    type Future = BoxResponse;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let target = req.extensions().get::<Target>().copied();
        let Some(target) = target.filter(|t| t.upstream.index() < self.0.upstreams.len()) else {
            // The front door always sets a target; a request without one is a wiring bug,
            // answered rather than panicking on a live connection.
            return Box::pin(std::future::ready(Err(Error::Internal(
                "request has no resolved upstream",
            ))));
        };
        // One counter bumped for the upstream, the metrics and the route together.
        let shared = self.0.clone();
        Box::pin(async move {
            let upstream = &shared.upstreams[target.upstream.index()];
            let started = tokio::time::Instant::now();
            let res = upstream.send(req, &shared.metrics).await;
            // Failures that produced no upstream status are counted by the client-facing
            // series; this one is about what the API answered.
            if let Ok(res) = &res {
                let status = res.status().as_u16();
                let took = started.elapsed();
                shared
                    .metrics
                    .upstream(target.upstream, shared.route, status, took);
            }
            res
        })
    }
}
