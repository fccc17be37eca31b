//! The future of a queued request, and the slot a permit holds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::fine;
use super::gate::{Grant, KeyState, Step};
use super::pause::ProbeGuard;
use crate::error::Error;
use crate::shape::Permit;

pin_project! {
    /// A request waiting in its key's queue. Resolves when the gate grants or refuses it;
    /// dropping it (the client went away) leaves the queue at once.
    pub(super) struct Wait {
        key: Arc<KeyState>,
        idx: u32,
        // What `sleep` is set to: the deadline, or the head's token time or pause end.
        timer: Instant,
        done: bool,
        #[pin]
        sleep: Sleep,
    }

    impl PinnedDrop for Wait {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.done {
                this.key.cancel(*this.idx);
            }
        }
    }
}

/// A concurrency slot held by a permit; dropping it gives the slot back to the key.
struct SlotGuard(Arc<KeyState>);

// === impl Wait ===

impl Wait {
    pub(super) fn new(key: Arc<KeyState>, idx: u32, deadline: Instant) -> Wait {
        Wait {
            key,
            idx,
            timer: deadline,
            done: false,
            sleep: tokio::time::sleep_until(deadline),
        }
    }
}

impl Future for Wait {
    type Output = Result<Permit, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        assert!(!*this.done, "a limiter wait polled after it completed");
        let now = Instant::now();
        let key = this.key;
        let step = key
            .lock()
            .poll_waiter(&key.shared, *this.idx, now, cx.waker());
        match step {
            Step::Granted { waited, grant } => {
                *this.done = true;
                Poll::Ready(Ok(permit(key, waited, grant)))
            }
            Step::Rejected(retry_after) => {
                *this.done = true;
                Poll::Ready(Err(key.shared.queue_timeout(retry_after)))
            }
            Step::Waiting { until, exact } => {
                if *this.timer != until {
                    *this.timer = until;
                    this.sleep.as_mut().reset(until);
                    if exact {
                        // tokio's sleep may end up to 2 ms late; this one ends on time.
                        fine::wake_after(until.saturating_duration_since(now), cx.waker());
                    }
                }
                if this.sleep.poll(cx).is_ready() {
                    // The instant came between the look and the timer: look again.
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

// === impl SlotGuard ===

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.release_slot();
    }
}

/// The permit for a request that may go; it holds the slot it took, if any, and the probe.
pub(super) fn permit(key: &Arc<KeyState>, waited: Duration, grant: Grant) -> Permit {
    let permit = if grant.slot {
        Permit::new(waited, Some(Box::new(SlotGuard(Arc::clone(key)))))
    } else {
        Permit::free(waited)
    };
    match grant.probe {
        Some(id) => permit.with_probe(Box::new(ProbeGuard::new(Arc::clone(key), id))),
        None => permit,
    }
}
