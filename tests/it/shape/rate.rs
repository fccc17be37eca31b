//! Rate precision: the B + R·t bound, the sustained rate, release at the token time.

use std::time::Duration;

use pacer::config::{Limit, Rate};
use pacer::shape::Limiter;
use tokio::time::{sleep_until, Instant};

use crate::support::limiter::*;

fn rated(rate: Rate, burst: u32) -> &'static pacer::shape::LocalLimiter {
    leak(Limit {
        rate: Some(rate),
        burst,
        ..limit()
    })
}

#[tokio::test(start_paused = true)]
async fn burst_then_steady_rate_within_the_bound() {
    let l = rated(per_second(10), 5);
    let start = Instant::now();
    let times = release_times(l, 605).await;
    // The burst leaves at once, then one every 100 ms, each exactly at its token time.
    assert!(times[..5].iter().all(|&t| t == start));
    for (i, &t) in times.iter().enumerate().skip(5) {
        assert_eq!(t - start, 100 * MS * (i as u32 - 4), "request {i}");
    }
    let excess = max_excess(&times, 10.0);
    assert!(
        excess <= 5.0 + 1e-9,
        "{excess} above R·t in some window, burst is 5"
    );
    // 600 s-worth of requests after the burst: the sustained rate is R.
    let last = *times.last().unwrap() - start;
    assert_eq!(last, Duration::from_secs(60));
}

/// Arrivals at twice the rate for `secs`; returns the release instants.
async fn overload(l: &'static pacer::shape::LocalLimiter, rate: f64, secs: u64) -> Vec<Instant> {
    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / (2.0 * rate));
    let arrivals = (2.0 * rate * secs as f64) as u32;
    let mut handles = Vec::new();
    for i in 0..arrivals {
        sleep_until(start + gap * i).await;
        handles.push(spawn(l, req(7)));
    }
    let mut times = Vec::new();
    for h in handles {
        let (at, p) = h.await.unwrap();
        p.unwrap();
        if at - start <= Duration::from_secs(secs) {
            times.push(at);
        }
    }
    times
}

/// Releases within [from, to) after `start`, per second.
fn rate_between(times: &[Instant], start: Instant, from: u64, to: u64) -> f64 {
    let (from, to) = (Duration::from_secs(from), Duration::from_secs(to));
    let n = times
        .iter()
        .filter(|&&t| t - start >= from && t - start < to)
        .count();
    n as f64 / (to - from).as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn sustained_overload_gets_the_rate_within_one_percent() {
    // 7/s: a token every 142.857 ms, not a whole number of timer ticks.
    for (rate, burst) in [
        (per_second(7), 1),
        (per_second(50), 3),
        (per_second(300), 1),
    ] {
        let l = rated(rate, burst);
        let r = rate.per_second();
        let start = Instant::now();
        let times = overload(l, r, 20).await;
        let got = rate_between(&times, start, 5, 20);
        assert!((got - r).abs() <= 0.01 * r, "{rate}: {got}/s sustained");
        // Releases stay within one timer tick (1 ms) of the token schedule.
        let excess = max_excess(&times, r);
        let slack = r * 0.001;
        assert!(
            excess <= burst as f64 + slack + 1e-9,
            "{rate}: {excess} over R·t"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn per_minute_rates_are_exact_over_a_long_window() {
    // Genesys-style 300/min over an hour of simulated overload.
    let rate = Rate {
        count: 300,
        per: Duration::from_secs(60),
    };
    let l = rated(rate, 10);
    let start = Instant::now();
    let times = release_times(l, 18_010).await;
    let excess = max_excess(&times, rate.per_second());
    assert!(excess <= 10.0 + 1e-9, "{excess}");
    assert_eq!(*times.last().unwrap() - start, Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn a_lone_request_after_a_quiet_spell_goes_at_once() {
    let l = rated(per_second(2), 1);
    at_once(l, req(1)).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    at_once(l, req(1)).unwrap();
    assert_eq!(l.state().queue_depth, 0);
}

#[tokio::test(start_paused = true)]
async fn a_late_wake_up_does_not_push_later_slots_back() {
    // 500/s, burst 1: slots at 0, 2, 4, 6 ms.
    let l = rated(per_second(500), 1);
    let start = Instant::now();
    let handles: Vec<_> = (0..4).map(|_| spawn(l, req(7))).collect();
    // The head sets its timer for 2 ms.
    tokio::task::yield_now().await;
    // The runtime is held up past two slots, as a busy machine would: the head wakes at 5 ms.
    tokio::time::advance(5 * MS).await;
    let mut offsets = Vec::new();
    for h in handles {
        let (at, p) = h.await.unwrap();
        p.unwrap();
        offsets.push(at - start);
    }
    // Both missed slots go at the wake-up; the next keeps its place at 6 ms, not 5 + 2.
    assert_eq!(offsets, [Duration::ZERO, 5 * MS, 5 * MS, 6 * MS]);
}
