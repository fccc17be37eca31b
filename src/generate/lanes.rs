//! Open-model lanes: up to `max_in_flight` tasks, each owning one keep-alive connection, that
//! the scheduler hands due arrivals to.
//!
//! An arrival goes to an idle lane (the most recently freed, whose connection is warmest), or
//! to a new lane while there are fewer than `max_in_flight`; with every lane busy it is
//! dropped and counted. So what the generator holds is bounded by `max_in_flight` connections,
//! never by how far behind the target falls.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::engine::Engine;
use super::link::Link;

/// One arrival, due at `due`.
pub(super) struct Job {
    pub request: usize,
    pub phase: usize,
    pub seq: usize,
    pub due: Instant,
}

pub(super) struct Lanes {
    max: usize,
    /// Only the scheduler touches these; the lock is never contended.
    senders: Mutex<Vec<mpsc::Sender<Job>>>,
    /// Lanes waiting for work, by index into `senders`; the last one freed is used first.
    idle: Arc<Mutex<Vec<usize>>>,
    tasks: Mutex<JoinSet<()>>,
}

// === impl Lanes ===

impl Lanes {
    pub fn new(max: usize) -> Lanes {
        Lanes {
            max,
            senders: Mutex::new(Vec::new()),
            idle: Arc::new(Mutex::new(Vec::new())),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    /// Hands `job` to a lane; gives it back when every lane is busy.
    pub fn dispatch(&self, engine: &Arc<Engine>, job: Job) -> Result<(), Job> {
        let free = self.idle.lock().pop();
        let mut senders = self.senders.lock();
        if let Some(lane) = free {
            // An idle lane's channel is empty, and it is waiting on it.
            return senders[lane].try_send(job).map_err(|e| match e {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job
                }
            });
        }
        if senders.len() >= self.max {
            return Err(job);
        }
        let (tx, rx) = mpsc::channel(1);
        let lane = senders.len();
        senders.push(tx);
        let run = lane_loop(engine.clone(), lane, self.idle.clone(), job, rx);
        // On the caller's runtime: the scheduler of this thread's share of arrivals.
        self.tasks.lock().spawn(run);
        Ok(())
    }

    /// Lets every lane finish its request and end.
    pub async fn close(&self) {
        self.senders.lock().clear();
        let mut tasks = std::mem::take(&mut *self.tasks.lock());
        while tasks.join_next().await.is_some() {}
    }
}

/// One lane: send, record, mark idle, wait for the next job while keeping the connection alive.
async fn lane_loop(
    engine: Arc<Engine>,
    lane: usize,
    idle: Arc<Mutex<Vec<usize>>>,
    first: Job,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut link: Option<Link> = None;
    let mut job = first;
    loop {
        engine
            .send(&mut link, job.request, job.phase, job.seq, job.due)
            .await;
        idle.lock().push(lane);
        let next = match &mut link {
            Some(l) => l.idle(jobs.recv()).await,
            None => jobs.recv().await,
        };
        match next {
            Some(next) => job = next,
            None => return,
        }
    }
}
