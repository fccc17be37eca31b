//! Wake-ups more precise than tokio's timer, for queue heads waiting for their token.
//!
//! tokio's timer works in whole milliseconds: a sleep is rounded up to the next tick, and the
//! driver then parks for the ticks left counted from the *start* of the current one, so a sleep
//! ends up to 2 ms after its instant. A queued request must leave within 1 ms of its slot, so the
//! head of a queue also asks this timer for a wake-up: one thread, parked on a condition variable
//! with a nanosecond timeout until the earliest instant asked for, which wakes the waker and so
//! has the head's task polled (and granted) at its instant, give or take the OS's timer slack.
//!
//! The head keeps its tokio sleep as well. That one drives paused-time tests (this thread runs on
//! the real clock, where it only adds a harmless extra poll) and backs this timer up. A wake-up is
//! only a hint to look again: waking a finished or re-timed task does no harm, so nothing is ever
//! taken out of the heap; stale entries just fire and go.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::task::Waker;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The pending wake-ups and the thread's wake-up call.
struct FineTimer {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    changed: Condvar,
}

struct Entry {
    at: Instant,
    waker: Waker,
}

static TIMER: FineTimer = FineTimer {
    heap: Mutex::new(BinaryHeap::new()),
    changed: Condvar::new(),
};

/// Whether the thread runs; it is started on first use.
static RUNNING: OnceLock<bool> = OnceLock::new();

/// Wakes `waker` once `delay` has passed. Without the thread (it could not be started) the
/// caller's tokio sleep still wakes it, only less precisely.
pub(super) fn wake_after(delay: Duration, waker: &Waker) {
    if !RUNNING.get_or_init(start) {
        return;
    }
    let timer = &TIMER;
    let at = Instant::now() + delay;
    let mut heap = timer.heap.lock();
    let sooner = heap.peek().is_none_or(|Reverse(first)| at < first.at);
    heap.push(Reverse(Entry {
        at,
        waker: waker.clone(),
    }));
    drop(heap);
    if sooner {
        timer.changed.notify_one();
    }
}

fn start() -> bool {
    std::thread::Builder::new()
        .name("pacer-fine-timer".into())
        .spawn(|| {
            precise_sleeps();
            run(&TIMER)
        })
        .is_ok()
}

/// Linux lets a sleeping thread wake up to its "timer slack" (50 µs by default) late, so that
/// wake-ups can be batched. This thread exists to be punctual, so it asks for none.
fn precise_sleeps() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes plain integers and only changes this thread's slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0);
    }
}

/// The thread: wake whatever is due, then park until the earliest instant or a sooner entry.
fn run(timer: &FineTimer) {
    let mut due = Vec::new();
    let mut heap = timer.heap.lock();
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(first)| first.at <= now) {
            due.extend(heap.pop().map(|Reverse(e)| e.waker));
        }
        if !due.is_empty() {
            // Wake outside the lock: a wake can run scheduler code that may call back in.
            drop(heap);
            due.drain(..).for_each(Waker::wake);
            heap = timer.heap.lock();
            continue;
        }
        match heap.peek() {
            Some(Reverse(first)) => {
                let left = first.at - now;
                timer.changed.wait_for(&mut heap, left);
            }
            None => timer.changed.wait(&mut heap),
        }
    }
}

// === impl Entry ===

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.at == other.at
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        self.at.cmp(&other.at)
    }
}
