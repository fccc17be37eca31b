//! The route table: `(method, path)` to the route a request belongs to.
//!
//! A route names the limits a request passes and gives the metrics their bounded `route` label
//! (the pattern as written, never the raw path).
//!
//! - [`pattern`] (a config value, in [`crate::config`]): path patterns, matched in time linear
//!   in the path whatever the pattern.
//! - `normalize.rs`: RFC 3986 normalisation of request paths, so that `%73cripts` or
//!   `x/../scripts` cannot pass a route's limits unshaped.

use std::sync::Arc;

use http::Method;

use crate::config::{Config, Route};
use crate::exchange::RouteId;

pub mod normalize;

pub use self::normalize::{normalize_path, normalize_uri};
pub use crate::config::pattern;
pub use crate::config::{PathPattern, PatternError};

/// The routes of a config, ready to match requests.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Arc<[Route]>,
}

// === impl RouteTable ===

impl RouteTable {
    pub fn new(config: &Config) -> RouteTable {
        RouteTable {
            routes: config.routes.clone().into(),
        }
    }

    /// The first route matching the request, or None (the request passes unshaped under the
    /// `unmatched` label).
    pub fn find(&self, method: &Method, path: &str) -> Option<RouteId> {
        self.routes
            .iter()
            .position(|r| r.method.as_ref().is_none_or(|m| m == method) && r.path.matches(path))
            .map(RouteId::new)
    }

    pub fn get(&self, id: RouteId) -> &Route {
        &self.routes[id.index()]
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}
