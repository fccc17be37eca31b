//! The future of a queued request, what it learns when it looks at its place, and the slot a
//! permit holds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::fine;
use super::gate::{Grant, KeyInner, KeyState, Step};
use super::horizon::hint;
use super::pause::ProbeGuard;
use super::queue::WaitState;
use super::Shared;
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

// === impl KeyInner ===

impl KeyInner {
    /// Looks at a waiter for its future: serves the queue if it is the head (or its deadline
    /// is up, so that it is only refused if it really cannot go), then reports where it stands.
    pub(super) fn poll_waiter(
        &mut self,
        sh: &Shared,
        idx: u32,
        now: Instant,
        waker: &Waker,
    ) -> Step {
        let queued = self.queue.get(idx).state == WaitState::Queued;
        if queued && (self.queue.head() == Some(idx) || self.queue.get(idx).deadline <= now) {
            self.dispatch(sh, now, Some(idx));
        }
        let w = self.queue.get(idx);
        if w.state == WaitState::Queued && w.deadline <= now {
            let retry_after = self
                .position(idx)
                .and_then(|p| hint(self.horizon(sh, now).start(&self.log, p), now));
            self.settle(sh, idx, WaitState::Rejected { retry_after }, Some(idx));
        }
        match self.queue.get(idx).state {
            WaitState::Granted { at, grant } => {
                let w = self.queue.free(idx);
                let waited = at.saturating_duration_since(w.enqueued);
                Step::Granted { waited, grant }
            }
            WaitState::Rejected { retry_after } => {
                self.queue.free(idx);
                Step::Rejected(retry_after)
            }
            WaitState::Queued => {
                let is_head = self.queue.head() == Some(idx);
                let w = self.queue.get_mut(idx);
                if !w.waker.as_ref().is_some_and(|old| old.will_wake(waker)) {
                    w.waker = Some(waker.clone());
                }
                if !is_head {
                    // A retry went ahead of it: its timer goes back to the deadline, so forget
                    // the head's wake-up; when it is head again it gets a fresh one (and a wake).
                    w.wake_at = None;
                    w.due = None;
                }
                let exact = w.wake_at.is_some_and(|t| t < w.deadline);
                let until = w.wake_at.map_or(w.deadline, |t| t.min(w.deadline));
                Step::Waiting { until, exact }
            }
        }
    }

    /// How many queued waiters are ahead of `idx`.
    fn position(&self, idx: u32) -> Option<usize> {
        std::iter::successors(self.queue.head(), |&i| self.queue.after(i)).position(|i| i == idx)
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
