//! Thread-per-core: one single-threaded runtime per core, each with its own event loop, that the
//! users and lanes are spread over.
//!
//! A multi-threaded runtime shares one I/O driver between its workers: readiness events are
//! handed from the thread that polled them to the others, and under a closed loop of small
//! requests that hand-over, not the HTTP work, limits throughput. With a runtime per core every
//! connection is polled, parsed and answered on one thread, as wrk's threads each own their
//! connections. The scheduler and the ticker stay on the caller's runtime.

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub(super) struct Workers {
    handles: Vec<Handle>,
    /// Dropping these ends the threads' runtimes. The runtimes have no work left by then
    /// (every user and lane has ended), so the threads end at once; they are not joined.
    _stops: Vec<oneshot::Sender<()>>,
}

// === impl Workers ===

impl Workers {
    /// One runtime per available core.
    pub fn start() -> std::io::Result<Workers> {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (mut handles, mut stops) = (Vec::new(), Vec::new());
        for i in 0..n {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("pacer-gen-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })?;
        }
        Ok(Workers {
            handles,
            _stops: stops,
        })
    }

    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The runtime for the `i`th user or scheduler.
    pub fn handle(&self, i: usize) -> &Handle {
        &self.handles[i % self.handles.len()]
    }
}
