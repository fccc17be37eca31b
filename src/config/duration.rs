//! Durations as written in the config: `500ms`, `5s`, `2m`, `1h`.
use std::time::Duration;

/// Parses `500ms`, `5s`, `1.5s`, `2m`, `1h`. (Stub: to be completed.)
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let _ = text;
    Err("not implemented".into())
}
