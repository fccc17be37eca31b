//! The one place the request stack is assembled, outermost first.
//!
//! 1. [`Rescue`]: every error below becomes exactly one JSON response. It is outermost so that
//!    nothing (admission, limits, upstream failures, give-ups) can escape without an answer.
//! 2. [`FrontDoor`]: proxy auth, size checks, target and route resolution. Before shaping, so a
//!    request pacer would refuse anyway never takes a place in a queue.
//! 3. [`Shape`]: waits for each of the route's limits in order. Innermost but for the client, so
//!    every upstream attempt (retries included, once retry sits above it) passes the limits
//!    again and the API never sees more than the limits allow.
//! 4. [`Forward`]: the pooled upstream client.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use super::body::Body;
use super::forward::Forward;
use super::frontdoor::{Admission, FrontDoor};
use super::rescue::Rescue;
use crate::shape::layer::{Limits, Shape};

/// The assembled stack: cheap to clone (it holds `Arc`s), infallible to call.
pub type Stack = Rescue<FrontDoor<Shape<Forward>>>;

pub fn build(admission: Arc<Admission>, limits: Arc<Limits>) -> Stack {
    let shape = Shape::new(limits, Forward);
    let front = FrontDoor::new(admission, shape);
    tower::Layer::layer(&super::rescue::RescueLayer, front)
}

/// Calls the stack once; the form hyper's `service_fn` wants.
pub async fn call(mut stack: Stack, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    use tower::Service;
    stack.call(req).await
}
