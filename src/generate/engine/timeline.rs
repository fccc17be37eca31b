//! The once-a-second ticker: one timeline entry per second (rate, status mix, latency, per
//! request, active users) and the progress line.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Engine;
use crate::generate::progress::Progress;
use crate::generate::record::{ErrorKind, Stats};
use crate::generate::report::{Named, RequestSecond, Second};

impl Engine {
    /// Once a second: one timeline entry and a progress update; a last one when stopped.
    pub(super) async fn tick(
        self: Arc<Self>,
        start: Instant,
        progress: Progress,
        mut stopped: oneshot::Receiver<()>,
    ) -> Vec<Second> {
        let second = Duration::from_secs(1);
        let mut every = tokio::time::interval_at(start + second, second);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut timeline, mut by_request, mut cumulative) =
            (Vec::new(), Vec::new(), Stats::default());
        let mut last = start;
        loop {
            let done = tokio::select! {
                _ = every.tick() => false,
                _ = &mut stopped => true,
            };
            let now = Instant::now();
            self.recorder.take_interval(&mut by_request);
            let mut interval = Stats::default();
            by_request.iter().for_each(|r| interval.add(r));
            let span = now.saturating_duration_since(last);
            let entry = self.second(&interval, &by_request, now - start, span);
            cumulative.add(&interval);
            let phase = self.phase_at(now - start);
            progress.update(
                now - start,
                phase,
                entry.completed as f64 / span.as_secs_f64().max(1e-3),
                &cumulative,
            );
            // The stop usually lands just after a tick: a sliver of a second would chart as a
            // dip or a spike, so it joins the second before.
            match timeline.last_mut() {
                Some(last) if done && span < Duration::from_millis(500) => merge(last, entry),
                _ => timeline.push(entry),
            }
            last = now;
            if done {
                progress.finish();
                return timeline;
            }
        }
    }

    fn second(
        &self,
        interval: &Stats,
        by_request: &[Stats],
        at: Duration,
        span: Duration,
    ) -> Second {
        let names = self.scenario.requests.iter().map(|r| r.name.clone());
        let by_request = names
            .zip(by_request)
            .map(|(name, stats)| {
                let second = RequestSecond {
                    completed: stats.requests(),
                    errors: stats.error_count(),
                    p50_ms: stats.quantile_ms(0.5),
                    p99_ms: stats.quantile_ms(0.99),
                };
                (name, second)
            })
            .collect();
        Second {
            t: at.as_secs_f64(),
            span_s: span.as_secs_f64(),
            sent: self.sent.swap(0, Ordering::Relaxed),
            completed: interval.requests(),
            status: interval.status.clone(),
            errors: interval.error_count(),
            dropped: interval
                .errors
                .get(&ErrorKind::Dropped)
                .copied()
                .unwrap_or(0),
            users: self.users.load(Ordering::Relaxed),
            p50_ms: interval.quantile_ms(0.5),
            p99_ms: interval.quantile_ms(0.99),
            max_ms: interval.max_ms(),
            by_request: Named(by_request),
        }
    }

    /// The name of the phase running `elapsed` into the run.
    fn phase_at(&self, elapsed: Duration) -> &str {
        let mut end = Duration::ZERO;
        for phase in &self.scenario.phases {
            end += phase.duration;
            if elapsed < end {
                return &phase.name;
            }
        }
        "finishing"
    }
}

/// Adds a short last interval's counts to the second before it.
fn merge(into: &mut Second, sliver: Second) {
    into.t = sliver.t;
    into.span_s += sliver.span_s;
    into.sent += sliver.sent;
    into.completed += sliver.completed;
    into.errors += sliver.errors;
    into.dropped += sliver.dropped;
    into.max_ms = into.max_ms.max(sliver.max_ms);
    for (code, n) in sliver.status {
        *into.status.entry(code).or_default() += n;
    }
    for ((_, into), (_, sliver)) in into.by_request.0.iter_mut().zip(sliver.by_request.0) {
        into.completed += sliver.completed;
        into.errors += sliver.errors;
    }
}
