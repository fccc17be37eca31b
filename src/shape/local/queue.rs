//! The waiters of one key: two FIFO lanes over a slab.
//!
//! Retries are served before normal requests (they already waited once). A waiter that gives up
//! (its client disconnected) leaves from the middle of its lane in O(1), and its slot is reused by
//! the next arrival, so memory follows the live depth rather than the history of arrivals: a
//! tombstone scheme would grow without bound while the head is paused and clients come and go.
//!
//! A slot outlives its place in a lane: when the dispatcher grants or rejects a waiter it only
//! unlinks it and leaves the outcome in the slot; the waiting future frees the slot when it takes
//! the outcome (or is dropped). Indices are therefore stable for a future's whole life.

use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::bucket::Nanos;
use super::gate::Grant;

const NIL: u32 = u32::MAX;

/// Which lane a waiter queues in; lanes are served in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Retry = 0,
    Normal = 1,
}

/// Where a waiter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitState {
    Queued,
    /// It may go, with what it took (a slot the permit must give back, the probe).
    Granted {
        at: Instant,
        grant: Grant,
    },
    /// It cannot start in time; answer QueueTimeout with this hint.
    Rejected {
        retry_after: Option<Duration>,
    },
}

/// One queued request.
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) enqueued: Instant,
    pub(super) deadline: Instant,
    pub(super) state: WaitState,
    pub(super) waker: Option<Waker>,
    /// For the head only: when it should look again (its token time or the end of a pause).
    pub(super) wake_at: Option<Instant>,
    /// For the head only: the reading at which its token became available, so that a timer
    /// firing slightly late does not push every later token back by the lateness.
    pub(super) due: Option<Nanos>,
}

#[derive(Debug)]
enum Slot {
    Free {
        next: u32,
    },
    Used {
        prev: u32,
        next: u32,
        lane: Option<Lane>,
        waiter: Waiter,
    },
}

#[derive(Debug, Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
    len: usize,
}

#[derive(Debug)]
pub(super) struct WaitQueue {
    slots: Vec<Slot>,
    free: u32,
    lanes: [Ends; 2],
    used: usize,
}

// === impl Waiter ===

impl Waiter {
    pub(super) fn new(now: Instant, deadline: Instant) -> Waiter {
        Waiter {
            enqueued: now,
            deadline,
            state: WaitState::Queued,
            waker: None,
            wake_at: None,
            due: None,
        }
    }
}

// === impl WaitQueue ===

impl WaitQueue {
    pub(super) fn new() -> WaitQueue {
        let empty = Ends {
            head: NIL,
            tail: NIL,
            len: 0,
        };
        WaitQueue {
            slots: Vec::new(),
            free: NIL,
            lanes: [empty; 2],
            used: 0,
        }
    }

    /// Waiters still queued (in a lane).
    pub(super) fn len(&self) -> usize {
        self.lanes[0].len + self.lanes[1].len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many queued waiters a newcomer in `lane` would have ahead of it.
    pub(super) fn ahead_of(&self, lane: Lane) -> usize {
        match lane {
            Lane::Retry => self.lanes[0].len,
            Lane::Normal => self.len(),
        }
    }

    /// Slots in use, queued or holding an outcome not yet taken.
    pub(super) fn allocated(&self) -> usize {
        self.used
    }

    /// The next waiter to serve.
    pub(super) fn head(&self) -> Option<u32> {
        self.lanes.iter().map(|l| l.head).find(|&h| h != NIL)
    }

    /// The waiter served after `idx`, across lanes.
    pub(super) fn after(&self, idx: u32) -> Option<u32> {
        match &self.slots[idx as usize] {
            Slot::Used {
                next,
                lane: Some(l),
                ..
            } if *next == NIL && *l == Lane::Retry => Some(self.lanes[1].head),
            Slot::Used { next, .. } => Some(*next),
            Slot::Free { .. } => None,
        }
        .filter(|&n| n != NIL)
    }

    pub(super) fn get(&self, idx: u32) -> &Waiter {
        match &self.slots[idx as usize] {
            Slot::Used { waiter, .. } => waiter,
            Slot::Free { .. } => panic!("waiter slot {idx} is free"),
        }
    }

    pub(super) fn get_mut(&mut self, idx: u32) -> &mut Waiter {
        match &mut self.slots[idx as usize] {
            Slot::Used { waiter, .. } => waiter,
            Slot::Free { .. } => panic!("waiter slot {idx} is free"),
        }
    }

    /// Appends a waiter to the back of `lane` and returns its index.
    pub(super) fn push(&mut self, lane: Lane, waiter: Waiter) -> u32 {
        let ends = self.lanes[lane as usize];
        let slot = Slot::Used {
            prev: ends.tail,
            next: NIL,
            lane: Some(lane),
            waiter,
        };
        let idx = if self.free != NIL {
            let idx = self.free;
            if let Slot::Free { next } = self.slots[idx as usize] {
                self.free = next;
            }
            self.slots[idx as usize] = slot;
            idx
        } else {
            self.slots.push(slot);
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 waiters")
        };
        match ends.tail {
            NIL => self.lanes[lane as usize].head = idx,
            tail => self.set_next(tail, idx),
        }
        let ends = &mut self.lanes[lane as usize];
        ends.tail = idx;
        ends.len += 1;
        self.used += 1;
        idx
    }

    /// Takes a waiter out of its lane; its slot (and outcome) stays until [`WaitQueue::free`].
    /// Returns whether it was queued.
    pub(super) fn unlink(&mut self, idx: u32) -> bool {
        let Slot::Used {
            prev, next, lane, ..
        } = &mut self.slots[idx as usize]
        else {
            return false;
        };
        let Some(l) = lane.take() else {
            return false;
        };
        let (prev, next) = (*prev, *next);
        match prev {
            NIL => self.lanes[l as usize].head = next,
            p => self.set_next(p, next),
        }
        match next {
            NIL => self.lanes[l as usize].tail = prev,
            n => self.set_prev(n, prev),
        }
        self.lanes[l as usize].len -= 1;
        true
    }

    /// Unlinks (if needed) and frees the slot, returning the waiter.
    pub(super) fn free(&mut self, idx: u32) -> Waiter {
        self.unlink(idx);
        let slot = std::mem::replace(
            &mut self.slots[idx as usize],
            Slot::Free { next: self.free },
        );
        let Slot::Used { waiter, .. } = slot else {
            panic!("waiter slot {idx} freed twice");
        };
        self.free = idx;
        self.used -= 1;
        if self.used == 0 && self.slots.capacity() > 64 {
            // A burst of waiters is over: give the memory back.
            self.slots = Vec::new();
            self.free = NIL;
        }
        waiter
    }

    fn set_next(&mut self, idx: u32, to: u32) {
        if let Slot::Used { next, .. } = &mut self.slots[idx as usize] {
            *next = to;
        }
    }

    fn set_prev(&mut self, idx: u32, to: u32) {
        if let Slot::Used { prev, .. } = &mut self.slots[idx as usize] {
            *prev = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(q: &WaitQueue) -> Vec<u32> {
        std::iter::successors(q.head(), |&i| q.after(i)).collect()
    }

    fn waiter() -> Waiter {
        let now = Instant::now();
        Waiter::new(now, now)
    }

    #[test]
    fn retries_are_served_first_then_fifo() {
        let mut q = WaitQueue::new();
        let a = q.push(Lane::Normal, waiter());
        let b = q.push(Lane::Normal, waiter());
        let r = q.push(Lane::Retry, waiter());
        assert_eq!(order(&q), vec![r, a, b]);
        assert_eq!(q.ahead_of(Lane::Retry), 1);
        assert_eq!(q.ahead_of(Lane::Normal), 3);
    }

    #[test]
    fn unlink_from_the_middle_and_reuse_the_slot() {
        let mut q = WaitQueue::new();
        let ids: Vec<u32> = (0..4).map(|_| q.push(Lane::Normal, waiter())).collect();
        assert!(q.unlink(ids[1]));
        assert!(!q.unlink(ids[1]), "a second unlink is a no-op");
        assert_eq!(order(&q), vec![ids[0], ids[2], ids[3]]);
        assert_eq!((q.len(), q.allocated()), (3, 4));
        q.free(ids[1]);
        q.free(ids[3]);
        assert_eq!(order(&q), vec![ids[0], ids[2]]);
        let c = q.push(Lane::Normal, waiter());
        assert!(c == ids[1] || c == ids[3], "a freed slot is reused");
        assert_eq!(order(&q), vec![ids[0], ids[2], c]);
        assert_eq!(q.allocated(), 3);
    }

    #[test]
    fn emptying_a_lane_resets_its_ends() {
        let mut q = WaitQueue::new();
        let r = q.push(Lane::Retry, waiter());
        let n = q.push(Lane::Normal, waiter());
        q.free(r);
        assert_eq!(q.head(), Some(n));
        q.free(n);
        assert_eq!(q.head(), None);
        assert!(q.is_empty());
        let again = q.push(Lane::Retry, waiter());
        assert_eq!(order(&q), vec![again]);
    }
}
