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
//! 4. [`Retry`]: buffers the body for replay and re-sends on 429 (and allowed failures). Above
//!    shaping, so every attempt passes the limits again and the API never sees more than the
//!    limits allow; below rescue, so a give-up or a limit's refusal still becomes one answer.
//! 5. [`Shape`]: waits for each of the route's limits in order, holding concurrency slots until
//!    the response body is done.
//! 6. [`Discover`]: with discovery on, records each attempt the API receives and its answer's
//!    head (rate-limit headers, 429s, in-flight counts). Below shaping and retry, so it sees
//!    what the API sees.
//! 7. [`Forward`]: the pooled upstream client.

use std::sync::Arc;

use super::forward::Forward;
use super::frontdoor::{Admission, FrontDoor};
use super::observe::Observe;
use super::rescue::Rescue;
use crate::config;
use crate::discover::layer::Discover;
use crate::discover::Discovery;
use crate::metrics::Metrics;
use crate::retry::layer::Retry;
use crate::shape::layer::{Limits, Shape};
use crate::shutdown::DrainDeadline;

pub use crate::exchange::{BoxResponse, Downstream};

/// The assembled stack: cheap to clone (it holds `Arc`s), infallible to call.
pub type Stack = Observe<Rescue<FrontDoor<Retry<Shape<Discover<Forward>>>>>>;

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
    let forward = Discover::new(
        discovery,
        Forward::new(metrics.clone(), admission.upstreams.clients()),
    );
    let shape = Shape::new(limits.clone(), metrics.clone(), forward).with_drain_deadline(deadline);
    let retry = Retry::new(retry, limits, metrics.clone(), shape);
    let front = FrontDoor::new(admission, retry);
    let rescue = tower::Layer::layer(&super::rescue::RescueLayer, front);
    Observe::new(rescue, metrics, routes)
}
