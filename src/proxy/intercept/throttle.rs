//! At most one log line per reason per minute, with how many events it stands for.
//!
//! Failed TLS handshakes are logged as WARN, but their number is the client's to choose: a
//! client that does not trust pacer's CA fails every connection it opens, and a scanner can open
//! thousands. One line per reason per [`WINDOW`] keeps the log readable and bounded; its `count`
//! says how many failures of that reason happened since the previous line.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// How often each reason may be logged.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Per reason: when its last line was written, and the events since (that line's included).
#[derive(Default)]
pub struct LogThrottle {
    reasons: Mutex<HashMap<&'static str, Window>>,
}

struct Window {
    logged_at: Instant,
    count: u64,
}

// === impl LogThrottle ===

impl LogThrottle {
    /// Counts one event of `reason`. Returns how many events the line to write now stands for
    /// (this one and those not logged since the last line), or None while the reason is quiet.
    /// Reasons are a handful of literals, so the map stays that small.
    pub fn event(&self, reason: &'static str) -> Option<u64> {
        let now = Instant::now();
        let mut reasons = self.reasons.lock();
        match reasons.get_mut(reason) {
            Some(w) if now.duration_since(w.logged_at) < WINDOW => {
                w.count += 1;
                None
            }
            Some(w) => {
                let count = w.count + 1;
                *w = Window {
                    logged_at: now,
                    count: 0,
                };
                Some(count)
            }
            None => {
                let first = Window {
                    logged_at: now,
                    count: 0,
                };
                reasons.insert(reason, first);
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_reason_per_window_with_the_count() {
        let t = LogThrottle::default();
        assert_eq!(t.event("a"), Some(1));
        for _ in 0..500 {
            assert_eq!(t.event("a"), None);
        }
        assert_eq!(t.event("b"), Some(1), "reasons are counted apart");
        tokio::time::advance(WINDOW).await;
        assert_eq!(
            t.event("a"),
            Some(501),
            "the next line counts the quiet ones"
        );
        assert_eq!(t.event("a"), None);
        tokio::time::advance(WINDOW).await;
        assert_eq!(t.event("a"), Some(2));
    }
}
