//! The drain signal: SIGTERM or Ctrl-C in the binary, any future in tests.

use std::future::Future;

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed by this call, not when the future
/// is first polled: a signal that arrives after startup is logged but before serving begins
/// still drains instead of killing the process.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(int.take()) => tracing::info!("Ctrl-C received; draining"),
                _ = wait(term.take()) => tracing::info!("SIGTERM received; draining"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received; draining");
    }
}

/// Marks the end of the drain: once `server.drain_timeout` has passed, requests still waiting in
/// a limit's queue are answered 503 `pacer.shutting_down` (with `Retry-After`) instead of being
/// cut off with the connection. Requests already sent upstream are left to finish or be cut:
/// answering them could hide a request the API did receive.
///
/// Cheap to clone; every clone sees the same deadline, from any thread.
#[derive(Clone, Debug, Default)]
pub struct DrainDeadline {
    passed: tokio_util::sync::CancellationToken,
}

// === impl DrainDeadline ===

impl DrainDeadline {
    /// Says the deadline has passed; idempotent.
    pub fn pass(&self) {
        self.passed.cancel();
    }

    /// Resolves once the deadline has passed (at once if it already has).
    pub async fn passed(&self) {
        self.passed.cancelled().await;
    }
}
