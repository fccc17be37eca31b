//! Byte pipes: blind CONNECT tunnels and upgraded (WebSocket) connections.
//!
//! A pipe copies bytes both ways and sees no requests, so nothing in it is shaped: a blind
//! tunnel to an upstream with `intercept: false` bypasses every limit, by design (the README
//! says so). Pipes outlive the request that opened them, so each holds a [`Tracker`]: the
//! listener's drain waits for it, and it closes itself once draining and quiet.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::{TaskTracker, TaskTrackerToken};

use crate::error::Error;

/// While draining, a pipe that moved no byte for this long is closed: between two requests or
/// messages, so nothing in flight is cut. A busy pipe lasts until `server.drain_timeout`.
const DRAIN_QUIET: Duration = Duration::from_millis(300);

/// Ties a task that outlives its request (a connection, a tunnel, an upgraded or intercepted
/// connection) to the listener's drain. Every clone holds a token of the listener's
/// [`TaskTracker`], so the listener's `wait` ends once every clone has dropped; clones see
/// drain start through the listener's [`CancellationToken`].
#[derive(Clone, Debug)]
pub struct Tracker {
    drain: CancellationToken,
    _task: TaskTrackerToken,
    drain_timeout: Duration,
}

// === impl Tracker ===

impl Tracker {
    /// A tracker counted by `tasks` that sees drain start when `drain` is cancelled.
    pub fn new(drain: CancellationToken, tasks: &TaskTracker, timeout: Duration) -> Self {
        Tracker {
            drain,
            _task: tasks.token(),
            drain_timeout: timeout,
        }
    }

    /// Whether drain has started: one atomic load, for code that must check on every poll.
    pub fn drain_started(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Resolves once drain has started.
    pub fn draining(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.drain.cancelled()
    }
}

/// Opens the TCP connection a blind tunnel forwards to. Opened before the client hears 200, so
/// an unreachable upstream is a 502 rather than a tunnel that closes at once.
pub async fn dial(upstream: &str, addr: &str, timeout: Duration) -> Result<TcpStream, Error> {
    let unreachable = |cause: Dial| Error::UpstreamUnreachable {
        upstream: upstream.to_owned(),
        cause: Box::new(cause),
        sent: false,
    };
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(unreachable(Dial::Failed {
            addr: addr.to_owned(),
            source: e,
        })),
        Err(_) => Err(unreachable(Dial::TimedOut {
            addr: addr.to_owned(),
            timeout,
        })),
    }
}

/// Why a blind tunnel's connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum Dial {
    #[error("connecting to {addr}")]
    Failed {
        addr: String,
        source: std::io::Error,
    },
    #[error("connecting to {addr} took longer than {}s", timeout.as_secs_f64())]
    TimedOut { addr: String, timeout: Duration },
}

/// Waits for the client side of a CONNECT to be handed over, then pipes it to `upstream`.
pub async fn blind(client: OnUpgrade, upstream: TcpStream, tracker: Tracker, name: String) {
    let client = match client.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(upstream = %name, error = %e, "CONNECT was not upgraded");
            return;
        }
    };
    match pipe(TokioIo::new(client), upstream, &tracker).await {
        Ok((up, down)) => tracing::debug!(upstream = %name, up, down, "tunnel closed"),
        Err(e) => tracing::debug!(upstream = %name, error = %e, "tunnel ended with an error"),
    }
}

/// Copies bytes both ways until either side closes; returns (a to b, b to a) byte counts.
/// Once drain starts, it closes after [`DRAIN_QUIET`] without traffic, or at the drain timeout.
pub async fn pipe<A, B>(a: A, mut b: B, tracker: &Tracker) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let moved = Arc::new(AtomicU64::new(0));
    let mut a = Counting {
        inner: a,
        moved: moved.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    tokio::select! {
        res = &mut copy => return res,
        _ = tracker.draining() => {}
    }
    let deadline = tokio::time::sleep(tracker.drain_timeout);
    tokio::pin!(deadline);
    loop {
        let before = moved.load(Ordering::Relaxed);
        tokio::select! {
            res = &mut copy => return res,
            _ = &mut deadline => break,
            _ = tokio::time::sleep(DRAIN_QUIET) => {
                if moved.load(Ordering::Relaxed) == before {
                    break;
                }
            }
        }
    }
    // Dropping the copy closes both ends.
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        "closed for shutdown",
    ))
}

/// Counts the bytes that pass through, both ways, so a draining pipe can tell it is quiet.
struct Counting<T> {
    inner: T,
    moved: Arc<AtomicU64>,
}

// === impl Counting ===

impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.moved.fetch_add(n as u64, Ordering::Relaxed);
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.moved.fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn tracker() -> (CancellationToken, TaskTracker, Tracker) {
        let drain = CancellationToken::new();
        let tasks = TaskTracker::new();
        let t = Tracker::new(drain.clone(), &tasks, Duration::from_secs(30));
        tasks.close();
        (drain, tasks, t)
    }

    #[tokio::test]
    async fn pipes_both_ways_and_closes_when_quiet_during_drain() {
        let (drain, done, tracker) = tracker();
        let (mut client, a) = tokio::io::duplex(64);
        let (b, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move { pipe(a, b, &tracker).await });
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        server.write_all(b"pong").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        drain.cancel();
        let res = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert!(res.expect("closes once quiet").unwrap().is_err());
        // Every tracker clone is gone, so the listener's drain would finish.
        tokio::time::timeout(Duration::from_secs(5), done.wait())
            .await
            .expect("a tracker outlived its pipe");
    }
}
