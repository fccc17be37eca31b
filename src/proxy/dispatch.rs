//! Dispatch: hands each request to its route's stack.
//!
//! Routes are static for a config, so every route's stack (and one for requests on no route)
//! is built once, with what the route passes already resolved: nothing below looks a route up
//! per request or carries its index. A config reload builds a new set and swaps it whole.
//!
//! The route was matched by the observe layer above, which hands it down in [`Routed`]; the
//! extension is taken out, not read, so a request's extensions stay within the size their table
//! starts at (a fourth entry made it grow: an allocation per request).

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};

use super::observe::Routed;
use crate::error::Error;
use crate::exchange::body::Body;
use crate::exchange::{BoxResponse, RouteId};
use crate::route::RouteTable;

/// The stacks of one config: one per route in `routes:` order, then the one for requests on no
/// route.
pub struct RouteStacks<S> {
    stacks: Box<[S]>,
    routes: RouteTable,
}

// === impl RouteStacks ===

impl<S> RouteStacks<S> {
    /// `make` builds the stack of a route (None: of requests on no route).
    pub fn build(routes: RouteTable, mut make: impl FnMut(Option<RouteId>) -> S) -> Self {
        let ids = (0..routes.routes().len()).map(|i| Some(RouteId::new(i)));
        let stacks = ids.chain([None]).map(&mut make).collect();
        RouteStacks { stacks, routes }
    }

    fn get(&self, route: Option<RouteId>) -> &S {
        let unmatched = self.stacks.len() - 1;
        let slot = route.map_or(unmatched, RouteId::index);
        &self.stacks[slot.min(unmatched)]
    }
}

/// The dispatching service: cheap to clone (one `Arc`), as the listener clones the stack per
/// request.
pub struct Dispatch<S> {
    stacks: Arc<RouteStacks<S>>,
}

impl<S> Dispatch<S> {
    pub fn new(stacks: RouteStacks<S>) -> Self {
        Dispatch {
            stacks: Arc::new(stacks),
        }
    }
}

impl<S> Clone for Dispatch<S> {
    fn clone(&self) -> Self {
        Dispatch {
            stacks: self.stacks.clone(),
        }
    }
}

// === impl Dispatch ===

impl<S, B> tower::Service<Request<B>> for Dispatch<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>, Error = Error, Future = BoxResponse>
        + Clone
        + Send
        + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = BoxResponse;

    /// Ready: which stack a request needs is known only in `call`, which readies it there.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> BoxResponse {
        let route = match req.extensions_mut().remove::<Routed>() {
            Some(Routed(route)) => route,
            None => self.stacks.routes.find(req.method(), req.uri().path()),
        };
        let mut stack = self.stacks.get(route).clone();
        // A route's stack is always ready (its limits wait inside `call`), so this check
        // passes and the request goes in without another boxed future; the slow path is
        // `oneshot` for a stack that one day is not.
        match stack.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => stack.call(req),
            Poll::Ready(Err(e)) => Box::pin(std::future::ready(Err(e))),
            Poll::Pending => Box::pin(tower::ServiceExt::oneshot(stack, req)),
        }
    }
}
