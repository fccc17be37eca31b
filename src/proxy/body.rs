//! The stack's body type and its helpers (defined in [`crate::exchange::body`]), and
//! `body/timed.rs`, which cuts a stalled upstream body.

mod timed;

pub use self::timed::{CutCounter, Stalled, Timed};
pub use crate::exchange::body::*;
