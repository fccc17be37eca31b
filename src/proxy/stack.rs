//! The one place the request stack is assembled, outermost first.
//!
//! 1. [`Observe`]: counts and times every answer the client gets and writes the per-request
//!    debug line. Outside `Rescue`, so pacer's own error answers are counted as sent; it matches
//!    the route itself (and hands the match down) because it runs before admission.
//! 2. [`Rescue`]: every error below becomes exactly one JSON response. Outermost but for
//!    `Observe` (which cannot fail), so nothing (admission, limits, upstream failures, give-ups)
//!    can escape without an answer.
//! 3. [`Dispatch`]: hands the request to its route's stack. Every route (and requests on no
//!    route) has a stack of its own, layers 4 to 8, built here once with what the route passes,
//!    so nothing below looks a route up per request. A reload builds a new set and swaps it.
//! 4. [`FrontDoor`]: proxy auth, size checks, target resolution. Before shaping, so a request
//!    pacer would refuse anyway never takes a place in a queue.
//! 5. [`Retry`]: buffers the body for replay and re-sends on 429 (and allowed failures). Above
//!    shaping, so every attempt passes the limits again and the API never sees more than the
//!    limits allow; below rescue, so a give-up or a limit's refusal still becomes one answer.
//! 6. [`Shape`]: waits for each of the route's limits in order, holding concurrency slots until
//!    the response body is done.
//! 7. [`Discover`]: with discovery on, records each attempt the API receives and its answer's
//!    head (rate-limit headers, 429s, in-flight counts). Below shaping and retry, so it sees
//!    what the API sees.
//! 8. [`Forward`]: the pooled upstream client.

use std::sync::Arc;

use tower::ServiceBuilder;

use super::dispatch::{Dispatch, RouteStacks};
use super::forward::Forward;
use super::frontdoor::{Admission, FrontDoor, FrontDoorLayer};
use super::observe::{Observe, ObserveLayer};
use super::rescue::{Rescue, RescueLayer};
use crate::config;
use crate::discover::layer::{Discover, DiscoverLayer};
use crate::discover::Discovery;
use crate::exchange::RouteId;
use crate::metrics::Metrics;
use crate::retry::layer::{Retry, RetryLayer};
use crate::shape::layer::{Limits, RouteLimits, Shape, ShapeLayer};
use crate::shutdown::DrainDeadline;

pub use crate::exchange::{BoxResponse, Downstream};

/// One route's stack: layers 4 to 8 above.
pub type RouteStack = FrontDoor<Retry<Shape<Discover<Forward>>>>;

/// The assembled stack: cheap to clone (it holds `Arc`s), infallible to call.
pub type Stack = Observe<Rescue<Dispatch<RouteStack>>>;

/// `deadline` is the end of the drain, past which requests still queued in a limit are answered
/// 503 `pacer.shutting_down`; `discovery`, when on, records what the API receives and answers.
pub fn build(
    admission: Arc<Admission>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    retry: config::Retry,
    deadline: DrainDeadline,
    discovery: Option<Arc<Discovery>>,
) -> Stack {
    let routes = admission.routes.clone();
    let clients = admission.upstreams.clients();
    let route_stack = |id: Option<RouteId>| -> RouteStack {
        let passes = Arc::new(match id {
            Some(r) => limits.route(r, routes.get(r)),
            None => RouteLimits::default(),
        });
        ServiceBuilder::new()
            .layer(FrontDoorLayer::new(admission.clone()))
            .layer(RetryLayer::new(
                retry,
                limits.clone(),
                passes.clone(),
                metrics.clone(),
            ))
            .layer(ShapeLayer::new(
                limits.clone(),
                passes,
                metrics.clone(),
                deadline.clone(),
            ))
            .layer(DiscoverLayer::new(discovery.clone(), id))
            .service(Forward::new(metrics.clone(), clients.clone(), id))
    };
    let stacks = RouteStacks::build(routes.clone(), route_stack);
    ServiceBuilder::new()
        .layer(ObserveLayer::new(metrics.clone(), routes))
        .layer(RescueLayer)
        .service(Dispatch::new(stacks))
}
