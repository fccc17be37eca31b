//! A coarse timer for hyper's header-read timeout: deadlines checked once a [`TICK`].
//!
//! hyper arms the header-read timer for every request head it waits for, kept-alive
//! connections included, and drops it when the head arrives. With tokio's timer that is a
//! timer-wheel insertion and removal, an allocation and a clock read per request: about 4% of
//! a proxied request's instructions. The timeout is 30 s and guards against slow clients, so
//! a second's slack costs nothing, and this timer trades precision for cost: a sleep only puts
//! its waker in a slot of a per-server table, and one task per table wakes the sleeps whose
//! deadlines have passed once a tick. The task stops when the table empties, so an idle
//! server does not wake at all.
//!
//! A sleep ends between its deadline and one [`TICK`] later. It uses tokio's clock, so tests
//! with paused time see it as they see tokio's timers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::rt::{Sleep, Timer};
use tokio::time::Instant;

/// How often deadlines are checked, and so how late a sleep may end.
pub const TICK: Duration = Duration::from_millis(500);

/// The timer one server's connections share. Cheap to clone.
#[derive(Clone, Default)]
pub struct CoarseTimer {
    table: Arc<Mutex<Table>>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    /// Slots no sleep holds; the ticking task stops when every slot is free.
    free: Vec<usize>,
    ticking: bool,
}

struct Slot {
    deadline: Instant,
    /// Taken when the deadline passes: a held slot without a waker has fired.
    waker: Option<Waker>,
}

struct CoarseSleep {
    table: Arc<Mutex<Table>>,
    deadline: Instant,
    /// The sleep's slot once it has been polled.
    slot: Option<usize>,
}

// === impl CoarseTimer ===

impl Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until((Instant::now() + duration).into_std())
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(CoarseSleep {
            table: self.table.clone(),
            deadline: deadline.into(),
            slot: None,
        })
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

// === impl Table ===

impl Table {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> usize {
        let slot = Slot {
            deadline,
            waker: Some(waker),
        };
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) {
        self.slots[i].waker = None;
        self.free.push(i);
    }

    fn is_empty(&self) -> bool {
        self.free.len() == self.slots.len()
    }

    /// Wakes the sleeps whose deadlines have passed; says whether any sleep is left.
    fn fire(&mut self, now: Instant) -> bool {
        for slot in &mut self.slots {
            if slot.deadline <= now {
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        }
        !self.is_empty()
    }
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // A panic while holding the lock leaves the table consistent (every step is one store).
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks the table once a tick until it is empty.
async fn tick(table: Arc<Mutex<Table>>) {
    loop {
        tokio::time::sleep(TICK).await;
        let mut t = lock(&table);
        if !t.fire(Instant::now()) {
            t.ticking = false;
            return;
        }
    }
}

// === impl CoarseSleep ===

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut t = lock(&this.table);
        let Some(i) = this.slot else {
            if this.deadline <= Instant::now() {
                return Poll::Ready(());
            }
            this.slot = Some(t.insert(this.deadline, cx.waker().clone()));
            if !t.ticking {
                t.ticking = true;
                tokio::spawn(tick(this.table.clone()));
            }
            return Poll::Pending;
        };
        match &mut t.slots[i].waker {
            None => Poll::Ready(()),
            Some(w) => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
                Poll::Pending
            }
        }
    }
}

impl Sleep for CoarseSleep {}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            lock(&self.table).remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleep_for(timer: &CoarseTimer, d: Duration) -> Pin<Box<dyn Sleep>> {
        timer.sleep_until((Instant::now() + d).into_std())
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_within_a_tick_after_its_deadline() {
        let timer = CoarseTimer::default();
        for secs in [1, 30] {
            let start = Instant::now();
            let sleep = sleep_for(&timer, Duration::from_secs(secs));
            tokio::time::timeout(Duration::from_secs(120), sleep)
                .await
                .expect("the sleep never ended");
            let took = start.elapsed();
            let deadline = Duration::from_secs(secs);
            assert!(took >= deadline && took <= deadline + TICK, "{took:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_sleeps_free_their_slots_and_the_ticking_stops() {
        let timer = CoarseTimer::default();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            let mut s = sleep_for(&timer, Duration::from_secs(30));
            assert!(s.as_mut().poll(&mut cx).is_pending());
        }
        {
            let t = lock(&timer.table);
            assert_eq!((t.is_empty(), t.slots.len(), t.ticking), (true, 1, true));
        }
        tokio::time::sleep(TICK * 3).await;
        assert!(
            !lock(&timer.table).ticking,
            "still ticking with nothing to time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_past_its_deadline_ends_at_once() {
        let timer = CoarseTimer::default();
        let s = timer.sleep_until(Instant::now().into_std());
        tokio::time::timeout(Duration::from_millis(1), s)
            .await
            .expect("a sleep whose deadline had passed waited");
    }
}
