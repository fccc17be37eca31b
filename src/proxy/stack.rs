//! The one place the request stack is assembled, outermost first.
//!
//! 1. [`Observe`]: counts and times every answer the client gets and writes the per-request
//!    debug line. Outside `Rescue`, so pacer's own error answers are counted as sent; it matches
//!    the route itself (the front door reuses the match) because it runs before admission.
//! 2. [`Rescue`]: every error below becomes exactly one JSON response. Outermost but for
//!    `Observe` (which cannot fail), so nothing (admission, limits, upstream failures, give-ups)
//!    can escape without an answer.
//! 3. [`FrontDoor`]: proxy auth, size checks, target and route resolution. Before shaping, so a
//!    request pacer would refuse anyway never takes a place in a queue.
//! 4. [`Shape`]: waits for each of the route's limits in order. Innermost but for the client, so
//!    every upstream attempt (retries included, once retry sits above it) passes the limits
//!    again and the API never sees more than the limits allow.
//! 5. [`Forward`]: the pooled upstream client.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use super::body::Body;
use super::forward::Forward;
use super::frontdoor::{Admission, FrontDoor};
use super::observe::Observe;
use super::rescue::Rescue;
use crate::metrics::Metrics;
use crate::shape::layer::{Limits, Shape};

/// The assembled stack: cheap to clone (it holds `Arc`s), infallible to call.
pub type Stack = Observe<Rescue<FrontDoor<Shape<Forward>>>>;

pub fn build(admission: Arc<Admission>, limits: Arc<Limits>, metrics: Arc<Metrics>) -> Stack {
    let routes = admission.routes.clone();
    let shape = Shape::new(limits, Forward);
    let front = FrontDoor::new(admission, shape);
    let rescue = tower::Layer::layer(&super::rescue::RescueLayer, front);
    Observe::new(rescue, metrics, routes)
}

/// Calls the stack once; the form hyper's `service_fn` wants.
pub async fn call(mut stack: Stack, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    use tower::Service;
    stack.call(req).await
}
