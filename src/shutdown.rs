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
