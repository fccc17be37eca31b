//! Running the phases: the open-model schedulers, the closed-model users, and the once-a-second
//! ticker that feeds the progress line and the timeline. Users and schedulers run on the
//! per-core runtimes of [`Workers`]; the phase sequence and the ticker on the caller's.
//!
//! Phases follow each other on the clock: the next one starts when the previous one's time is
//! up, while requests still in flight from it finish in the background (and count for it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::auth::Tokens;
use super::client::Connector;
use super::lanes::{Job, Lanes};
use super::link::{exchange, Link, Prepared};
use super::mix::Mix;
use super::progress::Progress;
use super::record::{ErrorKind, Outcome, Recorder};
use super::report::{PhaseRun, Second};
use super::scenario::{Load, Phase, Scenario};
use super::schedule::Arrivals;
use super::workers::Workers;

mod timeline;

/// A scheduler yields to its runtime after this many back-to-back sends, so that catching up
/// after a stall cannot starve the lanes on the same thread.
const SEND_BATCH: u32 = 256;

/// Everything the tasks of one run share.
pub(super) struct Engine {
    scenario: Scenario,
    connector: Connector,
    /// The scenario's requests, ready to send.
    prepared: Vec<Prepared>,
    tokens: Option<Tokens>,
    mix: Mix,
    pub recorder: Recorder,
    /// Open-model connections, one set per worker thread (fewer when `max_in_flight` is
    /// smaller than the threads), `max_in_flight` split between them; an arrival that finds
    /// all of its thread's busy is dropped.
    lanes: Vec<Lanes>,
    /// Where users and lanes run.
    workers: Workers,
    /// Requests started since the last tick.
    sent: AtomicU64,
    /// Closed-model users running now.
    users: AtomicU64,
}

/// What [`Engine::run`] hands back besides the recorder's counts.
pub(super) struct Run {
    pub elapsed: Duration,
    pub phases: Vec<PhaseRun>,
    pub timeline: Vec<Second>,
}

// === impl Engine ===

impl Engine {
    pub fn new(
        scenario: Scenario,
        connector: Connector,
        tokens: Option<Tokens>,
        workers: Workers,
    ) -> Engine {
        let weights: Vec<u32> = scenario.requests.iter().map(|r| r.weight).collect();
        let recorder = Recorder::new(scenario.requests.len(), scenario.phases.len());
        Engine {
            mix: Mix::new(&weights),
            recorder,
            prepared: scenario.requests.iter().map(Prepared::new).collect(),
            lanes: split(scenario.max_in_flight, workers.count())
                .into_iter()
                .map(Lanes::new)
                .collect(),
            sent: AtomicU64::new(0),
            users: AtomicU64::new(0),
            scenario,
            connector,
            tokens,
            workers,
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Runs every phase, then waits for the requests still in flight (each is bounded by the
    /// scenario's timeout).
    pub async fn run(self: &Arc<Self>, progress: Progress) -> Run {
        let start = Instant::now();
        let (stop, stopped) = oneshot::channel();
        let ticker = tokio::spawn(self.clone().tick(start, progress, stopped));
        let mut users = JoinSet::new();
        let mut phases = Vec::with_capacity(self.scenario.phases.len());
        let mut phase_start = start;
        for (index, phase) in self.scenario.phases.iter().enumerate() {
            let run = match phase.load {
                Load::Open { rate, to } => self.open(index, phase, rate, to, phase_start).await,
                Load::Closed { users: n, think } => {
                    self.closed(index, phase, n, think, phase_start, &mut users)
                        .await
                }
            };
            phase_start += run.elapsed;
            phases.push(run);
        }
        let elapsed = phase_start - start;
        while users.join_next().await.is_some() {}
        for lanes in &self.lanes {
            lanes.close().await;
        }
        let _ = stop.send(());
        let timeline = ticker.await.unwrap_or_default();
        Run {
            elapsed,
            phases,
            timeline,
        }
    }

    /// The open model: sends each arrival at its time, whatever the responses do. Every
    /// worker thread schedules its share of the arrivals (every n-th, so together they are the
    /// whole sequence) and hands them to its own lanes: no arrival crosses threads.
    async fn open(
        self: &Arc<Self>,
        phase: usize,
        spec: &Phase,
        rate: f64,
        to: f64,
        start: Instant,
    ) -> PhaseRun {
        let arrivals = Arrivals::new(rate, to, spec.duration);
        let shards = self.lanes.len();
        let mut schedulers = JoinSet::new();
        for shard in 0..shards {
            let run = self.clone().schedule(phase, arrivals, start, shard, shards);
            schedulers.spawn_on(run, self.workers.handle(shard));
        }
        let mut lag = Histogram::<u64>::new(3).expect("3 significant figures is valid");
        while let Some(done) = schedulers.join_next().await {
            if let Ok(shard_lag) = done {
                let _ = lag.add(&shard_lag);
            }
        }
        // Late sends stretch the phase, so a scheduler that fell behind shows a lower rate.
        let late = Instant::now().saturating_duration_since(start + spec.duration);
        tokio::time::sleep_until(start + spec.duration).await;
        PhaseRun {
            elapsed: spec.duration + late,
            arrivals_sent: arrivals.count(),
            lag_us: Some(lag),
        }
    }

    /// One worker's share of an open phase: arrivals `shard`, `shard + shards`, ... Sleeps until
    /// the next is due, then sends every one that is; returns how late each was sent.
    async fn schedule(
        self: Arc<Self>,
        phase: usize,
        arrivals: Arrivals,
        start: Instant,
        shard: usize,
        shards: usize,
    ) -> Histogram<u64> {
        let mut lag = Histogram::<u64>::new(3).expect("3 significant figures is valid");
        let (count, step) = (arrivals.count(), shards as u64);
        let mut k = shard as u64;
        while k < count {
            let due = start + arrivals.offset(k);
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            let now = Instant::now();
            let mut batch = 0;
            while k < count && batch < SEND_BATCH {
                let due = start + arrivals.offset(k);
                if due > now {
                    break;
                }
                let _ = lag.record((now - due).as_micros() as u64);
                self.dispatch(phase, shard, k as usize, due);
                (k, batch) = (k + step, batch + 1);
            }
            if batch == SEND_BATCH {
                tokio::task::yield_now().await;
            }
        }
        lag
    }

    /// Hands one open-model arrival to a lane, or counts it dropped when every lane is busy.
    fn dispatch(self: &Arc<Self>, phase: usize, shard: usize, seq: usize, due: Instant) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let request = self.mix.pick();
        let job = Job {
            request,
            phase,
            seq,
            due,
        };
        if let Err(job) = self.lanes[shard].dispatch(self, job) {
            let dropped = Outcome::Error(ErrorKind::Dropped);
            self.recorder
                .record(job.seq, job.request, job.phase, dropped, Duration::ZERO);
            let cause = format!(
                "max_in_flight ({}) requests were already in flight when it was due",
                self.scenario.max_in_flight
            );
            self.recorder.record_cause(ErrorKind::Dropped, cause);
        }
    }

    /// The closed model: `users` loops of request, answer, think. Starts are spread over one
    /// think time, so users do not march in lockstep from the first second.
    async fn closed(
        self: &Arc<Self>,
        phase: usize,
        spec: &Phase,
        users: u32,
        think: Duration,
        start: Instant,
        tasks: &mut JoinSet<()>,
    ) -> PhaseRun {
        let end = start + spec.duration;
        for user in 0..users {
            let first = start + think.mul_f64(f64::from(user) / f64::from(users));
            let handle = self.workers.handle(user as usize);
            tasks.spawn_on(
                self.clone().user(user as usize, phase, first, end, think),
                handle,
            );
        }
        tokio::time::sleep_until(end).await;
        PhaseRun {
            elapsed: spec.duration,
            arrivals_sent: 0,
            lag_us: None,
        }
    }

    async fn user(
        self: Arc<Self>,
        user: usize,
        phase: usize,
        first: Instant,
        end: Instant,
        think: Duration,
    ) {
        tokio::time::sleep_until(first).await;
        self.users.fetch_add(1, Ordering::Relaxed);
        // One user, one keep-alive connection, like one of wrk's connections.
        let mut link: Option<Link> = None;
        while Instant::now() < end {
            let request = self.mix.pick();
            self.sent.fetch_add(1, Ordering::Relaxed);
            self.send(&mut link, request, phase, user, Instant::now())
                .await;
            if !think.is_zero() {
                let rest = tokio::time::sleep_until((Instant::now() + think).min(end));
                match &mut link {
                    Some(l) => l.idle(rest).await,
                    None => rest.await,
                }
            }
        }
        self.users.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sends request `index` on `link` and records the outcome, with latency counted from
    /// `since`.
    pub async fn send(
        &self,
        link: &mut Option<Link>,
        index: usize,
        phase: usize,
        shard: usize,
        since: Instant,
    ) {
        let auth = self.tokens.as_ref().map(Tokens::header);
        let prepared = &self.prepared[index];
        let timeout = self.scenario.timeout;
        let result = exchange(link, &self.connector, prepared, auth.as_ref(), timeout).await;
        let latency = Instant::now().saturating_duration_since(since);
        let outcome = match result {
            Ok(status) => Outcome::Status(status),
            Err(failed) => {
                self.recorder.record_cause(failed.kind, failed.cause);
                Outcome::Error(failed.kind)
            }
        };
        self.recorder.record(shard, index, phase, outcome, latency);
    }
}

/// `total` split into at most `parts` shares that differ by at most one, none of them zero.
fn split(total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.min(total).max(1);
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_flight_splits_without_empty_shares() {
        assert_eq!(super::split(1000, 2), [500, 500]);
        assert_eq!(super::split(5, 2), [3, 2]);
        assert_eq!(super::split(1, 2), [1]);
    }
}
