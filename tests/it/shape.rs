//! The in-memory limiter on its own, on paused tokio time.
//!
//! Every timing assertion runs on a paused clock (`start_paused`), so instants are exact and a
//! test never sleeps for real. Futures are created in arrival order before they are spawned,
//! because the limiter decides (and queues) when `acquire` is called.

mod bench;
mod keys;
mod modes;
mod pause;
mod queue;
mod quota;
mod rate;
mod stress;
mod update;
