//! Retry: how pacer absorbs upstream 429s and replays requests.
//!
//! The Genesys Cloud API answers a request over its limits with `429 Too Many Requests` and a
//! `Retry-After` header. pacer waits as asked and sends the request again, so the load tool sees the
//! slower success instead of the 429. The decisions ([`retry_after`], [`backoff`], [`policy`]) are
//! free of I/O and clocks (time comes in as an argument, randomness as an `Rng`), so they can be
//! tested exhaustively; [`body`] reads the request body to keep it, and the [`layer`] that loops
//! over attempts composes them all and is the part that sleeps and reads the clock.
//!
//! - [`retry_after`]: how long the upstream asked us to wait (`Retry-After`, then the legacy
//!   Genesys `inin-ratelimit-reset`, then `X-RateLimit-Reset`), with strict garbage rules.
//! - [`backoff`]: full-jitter exponential backoff for a 429 that did not say how long to wait.
//! - [`policy`]: which responses may be retried ([`RetryReason`]) and why a retry loop stopped
//!   ([`GiveUp`], sent to the client in the `x-pacer-gave-up` header).
//! - [`body`]: request bodies kept so every attempt sends identical bytes, within a size bound.

pub mod backoff;
pub mod body;
pub mod layer;
pub mod policy;
pub use crate::ratelimit::retry_after;

pub use self::backoff::full_jitter;
pub use self::body::{buffer_for_replay, Replay, ReplayBody};
pub use self::policy::{retryable_status, GiveUp, RetryReason, GAVE_UP_HEADER};
pub use self::retry_after::{retry_after, retry_after_in, RETRY_AFTER_CAP};
