//! The limiter registry: every limit of a config, its limiter (in memory or shared through
//! Redis), and which limits each route passes, in order.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::key::{key_for, SharedKeys};
use super::shared::{SharedLimiter, Store};
use super::{LimitKey, Limiter, LocalLimiter};
use crate::config::{Config, Limit};

/// The limiters of a config, and which of them each route passes.
pub struct Limits {
    limiters: Vec<Arc<dyn Limiter>>,
    configs: Vec<Limit>,
    /// Per route index, the limit indices in acquisition order.
    routes: Vec<Vec<usize>>,
    /// Per route index, the limit indices whose keys an upstream 429 pauses.
    pauses: Vec<Vec<usize>>,
    /// Per limit index, whether it is shared through Redis.
    shared: Vec<bool>,
    /// The Redis of the `shared:` section and its key HMAC, when a limit is shared.
    store: Option<(Arc<Store>, SharedKeys)>,
}

// === impl Limits ===

impl Limits {
    /// Limits with `shared: true` go through one Redis store, connected in the background.
    pub fn new(config: &Config) -> Limits {
        let store = config
            .shared
            .as_ref()
            .filter(|s| !s.limits.is_empty())
            .map(|s| (Store::new(s.clone()), SharedKeys::new(&s.key_secret)));
        let limiters = config
            .limits
            .iter()
            .map(|l| match &store {
                Some((store, _)) if config.is_shared(&l.name) => {
                    SharedLimiter::new(l.clone(), store.clone()) as Arc<dyn Limiter>
                }
                _ => Arc::new(LocalLimiter::learning(l.clone(), config.learn_for(&l.name)))
                    as Arc<dyn Limiter>,
            })
            .collect();
        Limits {
            limiters,
            configs: config.limits.clone(),
            routes: config.routes.iter().map(|r| r.limits.clone()).collect(),
            pauses: config.routes.iter().map(|r| r.pause.clone()).collect(),
            shared: config
                .limits
                .iter()
                .map(|l| config.is_shared(&l.name))
                .collect(),
            store,
        }
    }

    /// Whether an upstream 429 on `route` pauses the keys of limit `index`.
    pub fn pauses(&self, route: Option<usize>, index: usize) -> bool {
        route
            .and_then(|r| self.pauses.get(r))
            .is_some_and(|p| p.contains(&index))
    }

    /// The key a request counts against for limit `index`: an HMAC equal in every instance for
    /// shared limits, the process's own hash for local ones.
    pub fn key_for(&self, index: usize, headers: &http::HeaderMap, ip: IpAddr) -> LimitKey {
        let cfg = &self.configs[index];
        match &self.store {
            Some((_, keys)) if self.shared[index] => keys.key_for(&cfg.key, headers, ip),
            _ => key_for(&cfg.key, headers, ip),
        }
    }

    /// The Redis store of shared limits, if any limit is shared.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref().map(|(s, _)| s)
    }

    pub fn limiters(&self) -> &[Arc<dyn Limiter>] {
        &self.limiters
    }

    /// The limiter with this name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<dyn Limiter>> {
        self.configs
            .iter()
            .position(|c| c.name == name)
            .map(|i| &self.limiters[i])
    }

    pub fn limiter(&self, index: usize) -> &Arc<dyn Limiter> {
        &self.limiters[index]
    }

    pub fn config(&self, index: usize) -> &Limit {
        &self.configs[index]
    }

    /// The limit indices a route passes, in acquisition order.
    pub fn for_route(&self, route: Option<usize>) -> &[usize] {
        route.and_then(|r| self.routes.get(r)).map_or(&[], |v| v)
    }

    /// The tightest `queue.max_wait` among the route's queueing limits: how long a request of
    /// that route may take to start, retries included.
    pub fn max_wait(&self, route: Option<usize>) -> Option<Duration> {
        self.for_route(route)
            .iter()
            .map(|&i| &self.configs[i])
            .filter(|c| c.mode == crate::config::Mode::Queue)
            .map(|c| c.queue.max_wait)
            .min()
    }
}

/// Helpers for the layers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::Limits;
    use crate::config::Config;
    use crate::metrics::Metrics;

    /// A one-upstream config with no limits, and its limits and metrics.
    pub(crate) fn limits_and_metrics() -> (Config, Arc<Limits>, Arc<Metrics>) {
        let text = "upstreams: { a: { base_url: 'http://127.0.0.1:1' } }";
        let config = Config::parse(text, std::path::Path::new(".")).unwrap();
        let limits = Arc::new(Limits::new(&config));
        let metrics = Arc::new(Metrics::new(&config));
        (config, limits, metrics)
    }
}
