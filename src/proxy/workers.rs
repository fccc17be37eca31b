//! Thread-per-core serving: one acceptor hands connections round-robin to worker threads, each
//! running a single-threaded tokio runtime that serves its connections start to finish.
//!
//! Why: on the shared multi-threaded runtime a proxied request wakes up to four tasks (the client
//! connection, the pooled upstream connection, and the hand-offs between them), often on
//! different threads, and each cross-thread wake-up costs a futex call and a context switch. On
//! a worker's own runtime those tasks live on one thread, and the upstream client keeps its idle
//! connections per thread (`pool.rs`), so a request never leaves the thread that accepted it.
//! The pass-through benchmark (bench/passthrough.sh) measures the gain.
//!
//! Round-robin hand-off rather than every worker accepting on its own: with a few long-lived
//! keep-alive connections (a load tool's usual pattern) whichever thread wins the accept races
//! could end up with most of them, and a single-threaded runtime cannot steal work back.
//!
//! Limits, metrics and the CA are shared by all workers (they are `Arc`s and locks that are
//! held for nanoseconds), so shaping is the same whatever thread a request lands on.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::task::task_tracker::{TaskTracker, TaskTrackerToken};

use super::connect::Connect;
use super::stack::Stack;
use super::Connections;
use crate::config::Server;
use crate::shutdown::DrainDeadline;

/// A connection on its way to a worker: the std socket, re-registered on the worker's runtime.
type Handoff = (std::net::TcpStream, SocketAddr);

/// Serves like [`super::serve`], on `workers` threads of their own. With one worker or fewer it
/// *is* [`super::serve`], on the caller's runtime, which is what tests use.
pub async fn serve(
    listener: TcpListener,
    stack: Stack,
    connect: Arc<Connect>,
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
    deadline: DrainDeadline,
    workers: usize,
) -> anyhow::Result<()> {
    if workers <= 1 {
        return super::serve(listener, stack, connect, server, shutdown, deadline).await;
    }
    let mut inboxes = Vec::with_capacity(workers);
    // Each worker thread holds a token until it has drained (or ended any other way).
    let running = TaskTracker::new();
    for index in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel::<Handoff>();
        let worker = (stack.clone(), connect.clone(), server, deadline.clone());
        spawn_worker(index, rx, worker, running.token())?;
        inboxes.push(tx);
    }
    running.close();
    accept(listener, &inboxes, shutdown).await;
    // Closing the inboxes is the workers' signal to stop taking connections and drain.
    drop(inboxes);
    running.wait().await;
    tracing::info!("drain finished");
    Ok(())
}

/// Accepts until `shutdown`, handing each connection to the next worker in turn.
async fn accept(
    listener: TcpListener,
    inboxes: &[mpsc::UnboundedSender<Handoff>],
    shutdown: impl Future<Output = ()>,
) {
    let mut accepting = super::Accepting::new(listener, shutdown);
    let mut turn = 0usize;
    while let Some((stream, peer)) = accepting.next().await {
        // into_std deregisters the socket from this runtime; it stays non-blocking.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        turn = (turn + 1) % inboxes.len();
        // A worker whose thread died has dropped its inbox; the connection then closes (the
        // client sees a reset, as from any crashed proxy) and the next one goes elsewhere.
        let _ = inboxes[turn].send((stream, peer));
    }
}

/// What every worker serves with: the stack, CONNECT handling, settings, the drain deadline.
type Worker = (Stack, Arc<Connect>, Server, DrainDeadline);

/// Starts worker `index` on a thread of its own, which drops `running` when it has drained (or
/// when its thread ends any other way, a panic included: the token drops with the closure).
fn spawn_worker(
    index: usize,
    inbox: mpsc::UnboundedReceiver<Handoff>,
    (stack, connect, server, deadline): Worker,
    running: TaskTrackerToken,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("pacer-worker-{index}"))
        .spawn(move || {
            let connections =
                super::run_connections(Inbox(inbox), stack, connect, server, deadline);
            runtime.block_on(connections);
            // Dropping the runtime here ends whatever outlived the drain timeout.
            drop(runtime);
            drop(running);
        })?;
    Ok(())
}

/// A worker's connections, as the acceptor hands them over; ends when the acceptor stops.
struct Inbox(mpsc::UnboundedReceiver<Handoff>);

impl Connections for Inbox {
    async fn next(&mut self) -> Option<(TcpStream, SocketAddr)> {
        loop {
            let (stream, peer) = self.0.recv().await?;
            // Registering needs this runtime's I/O driver, so it happens here, not in the acceptor.
            match TcpStream::from_std(stream) {
                Ok(stream) => return Some((stream, peer)),
                Err(e) => tracing::warn!(%peer, error = %e, "cannot register a connection"),
            }
        }
    }
}
