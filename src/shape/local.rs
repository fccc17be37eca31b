//! The in-memory limiter. (Stub: to be completed.)
use std::time::Duration;

use tokio::time::Instant;

use super::{Acquire, AcquireFuture, LimitKey, LimitState, LimitUpdate, Limiter};
use crate::config::Limit;

pub struct LocalLimiter {
    config: Limit,
}

impl LocalLimiter {
    pub fn new(config: Limit) -> LocalLimiter {
        LocalLimiter { config }
    }
}

impl Limiter for LocalLimiter {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn acquire(&self, _req: Acquire) -> AcquireFuture<'_> {
        todo!()
    }
    fn on_throttled(&self, _key: LimitKey, _retry_after: Duration) {}
    fn paused_until(&self, _key: LimitKey) -> Option<Instant> {
        None
    }
    fn state(&self) -> LimitState {
        todo!()
    }
    fn update(&self, _update: LimitUpdate) -> Result<LimitState, String> {
        todo!()
    }
}
