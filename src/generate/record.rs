//! Counting what happened: status codes, errors and HDR latency histograms, overall, per request
//! name, per phase, and per second.
//!
//! Recording happens on every request, from many tasks, so the counters are split into shards,
//! each behind its own lock: a task records into the shard its number picks, and two threads
//! rarely meet on one lock. Once a second the ticker takes each shard's interval counts (for the
//! progress line and the timeline); at the end the shards are merged for the report.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Why a request produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No connection could be made (refused, DNS, TLS handshake, proxy refused the tunnel).
    Connect,
    /// No complete response within the scenario's `timeout`.
    Timeout,
    /// The connection broke during the exchange.
    Io,
    /// Open model: every `max_in_flight` slot was busy when the request was due, so it was not
    /// sent. Counted so the arrival rate always adds up.
    Dropped,
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    Error(ErrorKind),
}

/// Counts and latencies of a set of requests.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency in microseconds of requests that got a response.
    pub latency_us: Histogram<u64>,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
}

/// One shard: everything recorded by the tasks that picked it.
struct Shard {
    /// One cell per request and phase (`request * phases + phase`): each request is recorded
    /// once here, and the totals per request, per phase and overall are sums of cells.
    cells: Vec<Stats>,
    /// Since the last tick, one per request.
    interval: Vec<Stats>,
}

/// The merged counts.
pub struct Totals {
    pub total: Stats,
    pub by_request: Vec<Stats>,
    pub by_phase: Vec<Stats>,
}

/// Every shard; shared by all tasks of a run.
pub struct Recorder {
    shards: Box<[Mutex<Shard>]>,
    requests: usize,
    phases: usize,
    /// Failures by kind and cause in words; only failures take this lock.
    causes: Mutex<BTreeMap<(ErrorKind, String), u64>>,
}

/// Distinct causes named in a report; more are counted under [`OTHER_CAUSES`].
const MAX_CAUSES: usize = 20;
const OTHER_CAUSES: &str = "other causes (only the first 20 distinct ones are named)";

// === impl ErrorKind ===

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Dropped => "dropped",
        }
    }
}

// === impl Stats ===

impl Default for Stats {
    fn default() -> Self {
        Stats {
            // Auto-resizing from a tiny range: memory follows the largest latency seen, not
            // the largest possible, so many small histograms stay cheap.
            latency_us: Histogram::new(3).expect("3 significant figures is valid"),
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl Stats {
    fn record(&mut self, outcome: Outcome, latency_us: u64) {
        match outcome {
            Outcome::Status(code) => {
                *self.status.entry(code).or_default() += 1;
                // Auto-resize makes every value recordable; a failure is impossible.
                let _ = self.latency_us.record(latency_us.max(1));
            }
            Outcome::Error(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    pub fn add(&mut self, other: &Stats) {
        let _ = self.latency_us.add(&other.latency_us);
        for (&code, &n) in &other.status {
            *self.status.entry(code).or_default() += n;
        }
        for (&kind, &n) in &other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    fn clear(&mut self) {
        self.latency_us.reset();
        self.status.clear();
        self.errors.clear();
    }

    pub fn responses(&self) -> u64 {
        self.status.values().sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Every request, answered or not.
    pub fn requests(&self) -> u64 {
        self.responses() + self.error_count()
    }

    pub fn status_count(&self, code: u16) -> u64 {
        self.status.get(&code).copied().unwrap_or(0)
    }

    /// A latency quantile in milliseconds; 0 with no responses.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        match self.latency_us.is_empty() {
            true => 0.0,
            false => self.latency_us.value_at_quantile(q) as f64 / 1000.0,
        }
    }

    pub fn max_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }
}

// === impl Recorder ===

impl Recorder {
    pub fn new(requests: usize, phases: usize) -> Recorder {
        let shards = std::thread::available_parallelism().map_or(4, |n| n.get() * 4);
        let shards = (0..shards)
            .map(|_| {
                Mutex::new(Shard {
                    cells: vec![Stats::default(); requests * phases],
                    interval: vec![Stats::default(); requests],
                })
            })
            .collect();
        Recorder {
            shards,
            requests,
            phases,
            causes: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts why a request of `kind` failed.
    pub fn record_cause(&self, kind: ErrorKind, cause: String) {
        let mut causes = self.causes.lock();
        let key = match causes.len() < MAX_CAUSES || causes.contains_key(&(kind, cause.clone())) {
            true => (kind, cause),
            false => (kind, OTHER_CAUSES.to_owned()),
        };
        *causes.entry(key).or_default() += 1;
    }

    /// Failures by kind and cause, the most frequent first.
    pub fn causes(&self) -> Vec<(ErrorKind, String, u64)> {
        let causes = self.causes.lock();
        let mut out: Vec<_> = causes
            .iter()
            .map(|((k, c), &n)| (*k, c.clone(), n))
            .collect();
        out.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        out
    }

    /// Records one request. `shard` is any number that tends to differ between tasks.
    pub fn record(
        &self,
        shard: usize,
        request: usize,
        phase: usize,
        outcome: Outcome,
        latency: Duration,
    ) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut s = self.shards[shard % self.shards.len()].lock();
        s.cells[request * self.phases + phase].record(outcome, us);
        s.interval[request].record(outcome, us);
    }

    /// Adds every shard's counts since the last call into `into` (one per request), and
    /// starts new intervals.
    pub fn take_interval(&self, into: &mut Vec<Stats>) {
        into.resize_with(self.requests, Stats::default);
        into.iter_mut().for_each(Stats::clear);
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            for (into, from) in into.iter_mut().zip(&mut s.interval) {
                into.add(from);
                from.clear();
            }
        }
    }

    /// Everything recorded, merged.
    pub fn totals(&self) -> Totals {
        let mut cells = vec![Stats::default(); self.requests * self.phases];
        for shard in self.shards.iter() {
            let s = shard.lock();
            cells.iter_mut().zip(&s.cells).for_each(|(a, b)| a.add(b));
        }
        let mut totals = Totals {
            total: Stats::default(),
            by_request: vec![Stats::default(); self.requests],
            by_phase: vec![Stats::default(); self.phases],
        };
        for (i, cell) in cells.iter().enumerate() {
            totals.total.add(cell);
            totals.by_request[i / self.phases].add(cell);
            totals.by_phase[i % self.phases].add(cell);
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_by_name_phase_and_interval() {
        let r = Recorder::new(2, 2);
        let ms = Duration::from_millis;
        r.record(0, 0, 0, Outcome::Status(200), ms(10));
        r.record(1, 1, 0, Outcome::Status(429), ms(20));
        r.record(2, 1, 1, Outcome::Error(ErrorKind::Dropped), ms(0));
        let mut tick = Vec::new();
        r.take_interval(&mut tick);
        assert_eq!((tick[1].requests(), tick[1].error_count()), (2, 1));
        assert_eq!(tick[0].requests(), 1);
        r.take_interval(&mut tick);
        assert_eq!(tick[1].requests(), 0, "an interval is taken once");
        let t = r.totals();
        assert_eq!(t.total.requests(), 3);
        assert_eq!(t.total.status_count(429), 1);
        assert_eq!(t.by_request[1].requests(), 2);
        assert_eq!(t.by_phase[0].responses(), 2);
        assert_eq!(t.by_phase[1].errors[&ErrorKind::Dropped], 1);
        let p99 = t.total.quantile_ms(0.99);
        assert!((19.9..20.1).contains(&p99), "{p99}");
    }
}
