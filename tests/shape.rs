//! The in-memory limiter on its own, on paused tokio time.
//!
//! Every timing assertion runs on a paused clock (`start_paused`), so instants are exact and a
//! test never sleeps for real. Futures are created in arrival order before they are spawned,
//! because the limiter decides (and queues) when `acquire` is called.

#[path = "shape/support.rs"]
mod support;

#[path = "shape/bench.rs"]
mod bench;
#[path = "shape/keys.rs"]
mod keys;
#[path = "shape/modes.rs"]
mod modes;
#[path = "shape/pause.rs"]
mod pause;
#[path = "shape/queue.rs"]
mod queue;
#[path = "shape/quota.rs"]
mod quota;
#[path = "shape/rate.rs"]
mod rate;
#[path = "shape/stress.rs"]
mod stress;
#[path = "shape/update.rs"]
mod update;
