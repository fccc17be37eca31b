//! The limiter registry: every limit of a config, its limiter (in memory or shared through
//! Redis), and for each route what it passes ([`RouteLimits`], resolved once per route stack).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::key::{key_for, SharedKeys};
use super::shared::{SharedLimiter, Store};
use super::{LimitKey, Limiter, LocalLimiter};
use crate::config::{self, Config, Limit};
use crate::exchange::{LimitId, RouteId};

/// The limiters of a config, by [`LimitId`].
pub struct Limits {
    limiters: Vec<Arc<dyn Limiter>>,
    configs: Vec<Limit>,
    /// Per limit, whether it is shared through Redis.
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
            shared: config
                .limits
                .iter()
                .map(|l| config.is_shared(&l.name))
                .collect(),
            store,
        }
    }

    /// What a request of route `id` passes (requests on no route pass nothing:
    /// [`RouteLimits::default`]).
    pub fn route(&self, id: RouteId, route: &config::Route) -> RouteLimits {
        let max_wait = route
            .limits
            .iter()
            .map(|&i| self.config(i))
            .filter(|c| c.mode == config::Mode::Queue)
            .map(|c| c.queue.max_wait)
            .min();
        RouteLimits {
            id: Some(id),
            order: route.limits.clone(),
            pauses: route.pause.clone(),
            max_wait,
        }
    }

    /// The key a request counts against for limit `id`: an HMAC equal in every instance for
    /// shared limits, the process's own hash for local ones.
    pub fn key_for(&self, id: LimitId, headers: &http::HeaderMap, ip: IpAddr) -> LimitKey {
        let cfg = self.config(id);
        match &self.store {
            Some((_, keys)) if self.shared[id.index()] => keys.key_for(&cfg.key, headers, ip),
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

    pub fn limiter(&self, id: LimitId) -> &Arc<dyn Limiter> {
        &self.limiters[id.index()]
    }

    pub fn config(&self, id: LimitId) -> &Limit {
        &self.configs[id.index()]
    }
}

/// What one route passes, resolved when its stack is built rather than looked up per request:
/// its limits in acquisition order, those an upstream 429 pauses, and its queue budget.
#[derive(Debug, Default)]
pub struct RouteLimits {
    /// The route, for its metrics series; None for requests on no route, which pass nothing.
    pub id: Option<RouteId>,
    order: Vec<LimitId>,
    pauses: Vec<LimitId>,
    max_wait: Option<Duration>,
}

// === impl RouteLimits ===

impl RouteLimits {
    /// The limits a request passes, in acquisition order.
    pub fn order(&self) -> &[LimitId] {
        &self.order
    }

    /// Whether an upstream 429 on this route pauses the keys of limit `id`.
    pub fn pauses(&self, id: LimitId) -> bool {
        self.pauses.contains(&id)
    }

    /// The tightest `queue.max_wait` among the route's queueing limits: how long a request of
    /// the route may take to start, retries included.
    pub fn max_wait(&self) -> Option<Duration> {
        self.max_wait
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
