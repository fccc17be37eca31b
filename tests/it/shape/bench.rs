//! Rough figures, not pass/fail:
//! `cargo test --release --test it shape::bench -- --ignored --nocapture`.
//!
//! The wall clock here only measures the benchmark; the limiter runs on tokio time as always.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use futures_util::FutureExt;
use pacer::config::{KeyKind, Limit, Rate};
use pacer::shape::{Acquire, LimitKey, Limiter, LocalLimiter, Priority};
use tokio::time::Instant;

use crate::support::limiter::*;

/// Counts live heap bytes, to weigh queued waiters. It is the allocator of the whole test
/// crate, whose other tests run on other threads meanwhile, so each thread keeps its own count:
/// the benchmark allocates and reads on one thread only.
struct Counting;

thread_local! {
    // `const` and without a destructor: reading it never allocates, which an allocator must not.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    // `try_with`: a thread being torn down has lost its count, and still allocates.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

/// This thread's live heap bytes.
fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn never_binding(key: KeyKind, concurrency: Option<u32>) -> LocalLimiter {
    LocalLimiter::new(Limit {
        rate: Some(Rate {
            count: u32::MAX,
            per: Duration::from_secs(1),
        }),
        burst: u32::MAX,
        concurrency,
        key,
        max_keys: 100_000,
        ..limit()
    })
}

fn ns_per_acquire(l: &LocalLimiter, keys: u64) -> f64 {
    let deadline = Instant::now() + DAY;
    let n = 1_000_000u64;
    let wall = std::time::Instant::now();
    for i in 0..n {
        let req = Acquire {
            key: LimitKey(2 + (i % keys) * 0x9E37_79B9_7F4A_7C15),
            deadline,
            priority: Priority::Normal,
        };
        let permit = l.acquire(req).now_or_never().unwrap().unwrap();
        drop(permit);
    }
    wall.elapsed().as_nanos() as f64 / n as f64
}

#[tokio::test]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
async fn uncontended_acquire_cost() {
    let cases = [
        ("global, rate only", KeyKind::Global, None, 1),
        (
            "global, rate + concurrency",
            KeyKind::Global,
            Some(u32::MAX),
            1,
        ),
        ("token, 1 key", KeyKind::Token, None, 1),
        ("token, 10k keys", KeyKind::Token, None, 10_000),
    ];
    // Context: what the clock alone costs here (tests build tokio with test-util, whose
    // clock checks for a paused runtime on every read; production builds read the OS clock).
    let n = 1_000_000;
    let wall = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(Instant::now());
    }
    let clock = wall.elapsed().as_nanos() as f64 / n as f64;
    println!("tokio Instant::now(): {clock:.0} ns/op");
    for (name, kind, concurrency, keys) in cases {
        let l = never_binding(kind, concurrency);
        ns_per_acquire(&l, keys); // warm up: keys created, caches filled
        println!("acquire, {name}: {:.0} ns/op", ns_per_acquire(&l, keys));
    }
}

#[tokio::test(start_paused = true)]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
async fn queued_waiter_footprint() {
    // Slot-bound, so the queue holds them all (a rate would refuse the hopeless ones early).
    let l = LocalLimiter::new(Limit {
        concurrency: Some(1),
        ..limit()
    });
    let _held = at_once(&l, req(1)).unwrap();
    let before = live();
    let mut waiting: Vec<_> = Vec::with_capacity(10_000);
    let vec_bytes = live() - before;
    for _ in 0..10_000 {
        let mut f = l.acquire(req(1));
        assert!((&mut f).now_or_never().is_none());
        waiting.push(f);
    }
    let bytes = live() - before - vec_bytes;
    println!(
        "10,000 queued waiters: {} KiB on the heap, {} bytes each (future {} B + queue slot)",
        bytes / 1024,
        bytes / 10_000,
        std::mem::size_of_val(&*waiting[0]),
    );
    assert_eq!(l.state().queue_depth, 10_000);
    drop(waiting);
    assert_eq!(l.state().queue_depth, 0);
}

/// How late queued requests leave after their slot, on the real clock: 500 waiters at 500/s
/// (one slot every 2 ms), each compared with its ideal instant `start + i × 2 ms`. Two figures:
/// when the limiter granted it (its acquire instant plus the permit's `waited`, taken after the
/// call so that it can only overstate) and when its task saw the permit.
///
/// Plain threads sleeping to the same instants run alongside, as the baseline: on a shared VM
/// the OS itself sometimes wakes a thread a millisecond or more late, and pacer cannot be more
/// punctual than that. Run at the same time, a stall of the whole machine shows in all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
async fn release_lateness() {
    let l = leak(Limit {
        rate: Some(per_second(500)),
        ..limit()
    });
    let (n, every) = (500usize, Duration::from_millis(2));
    let os = std::thread::spawn(move || os_wake_times(n, every, false));
    let os2 = std::thread::spawn(move || os_wake_times(n, every, true));
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let acquire = l.acquire(req(2));
            let asked = Instant::now();
            tokio::spawn(async move {
                let permit = acquire.await.unwrap();
                (asked + permit.waited, Instant::now())
            })
        })
        .collect();
    let (mut granted, mut observed) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for t in tasks {
        let (g, o) = t.await.unwrap();
        granted.push(g);
        observed.push(o);
    }
    let (os_start, os_times) = os.join().unwrap();
    let (os2_start, os2_times) = os2.join().unwrap();
    println!("release lateness over {n} queued requests at 500/s:");
    let runs = [
        ("OS alone", os_times, os_start),
        ("OS 2 hops", os2_times, os2_start),
        ("granted", granted, start),
        ("observed", observed, start),
    ];
    for (what, times, start) in runs {
        print_lateness(what, lateness(times, start, every), every);
    }
}

/// One line of the figures above: percentiles, the worst grant, and every one over 1 ms, with
/// the instant (from the run's start) it was due.
fn print_lateness(what: &str, late: Vec<(usize, f64)>, every: Duration) {
    let due_ms = |slot: usize| (every * slot as u32).as_millis();
    let pct = |p: f64| late[((late.len() - 1) as f64 * p) as usize];
    let over: Vec<String> = late
        .iter()
        .filter(|(_, ms)| *ms > 1.0)
        .map(|&(slot, ms)| format!("{ms:.2} ms at {} ms", due_ms(slot)))
        .collect();
    println!(
        "  {what:>9}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms at {} ms; within 1 ms: {} of {}; later: [{}]",
        pct(0.5).1,
        pct(0.99).1,
        pct(1.0).1,
        due_ms(pct(1.0).0),
        late.len() - over.len(),
        late.len(),
        over.join(", "),
    );
}

/// The baselines for the figures above: a plain thread sleeping until `start + i × interval`
/// for each i, as the fine timer's thread does, and the instants it woke. With `hand_off`, the
/// instants a second, blocked thread learned of each wake-up: the same two hops pacer makes
/// (its timer thread wakes a runtime worker, which grants).
fn os_wake_times(n: usize, interval: Duration, hand_off: bool) -> (Instant, Vec<Instant>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let second =
        hand_off.then(|| std::thread::spawn(move || rx.iter().map(|()| Instant::now()).collect()));
    let start = Instant::now();
    let woke: Vec<Instant> = (0..n)
        .map(|i| {
            let at = start + interval * i as u32;
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let now = Instant::now();
            if hand_off {
                tx.send(()).unwrap();
            }
            now
        })
        .collect();
    drop(tx);
    (start, second.map_or(woke, |t| t.join().unwrap()))
}

/// The lateness in ms of each of `times`, the i-th earliest of which was due at
/// `start + i × interval`: (i, lateness), sorted by lateness.
fn lateness(mut times: Vec<Instant>, start: Instant, interval: Duration) -> Vec<(usize, f64)> {
    times.sort();
    let mut late: Vec<(usize, f64)> = times
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            let ideal = start + interval * i as u32;
            (i, at.saturating_duration_since(ideal).as_secs_f64() * 1e3)
        })
        .collect();
    late.sort_by(|a, b| a.1.total_cmp(&b.1));
    late
}
