//! Clients that half-close: send a whole request, then shut their sending side, and wait for
//! the answer (HTTP/1.1 allows it).
//!
//! The end of a client's stream cannot tell a half-close from a client that left: both are one
//! FIN. hyper takes it for a client that left, and drops the request in flight; pacer tells the
//! two apart by where the request is, as HAProxy's `abortonclose` does:
//!
//! - while the request waits for its limits, the client has left: hyper sees the end of the
//!   stream, the request is dropped and never sent (the shaping layer marks the wait);
//! - at any other time it is a half-close: [`HalfClose`] hides the end of the stream from hyper
//!   and flags it, and the connection loop then asks hyper to finish the request in flight (if
//!   any), answer it, and close. One seen before the request reached a limit stays a half-close
//!   when the request waits later.
//!
//! A half-close in the middle of a request body leaves a request that cannot complete: the
//! connection is then closed if the body has not been read whole within
//! [`HALF_CLOSED_BODY`] (a large body streamed upstream is never known to be whole, so a client
//! that half-closes after one gets its answer only within that time).
//!
//! A client that really left while its request was upstream is then noticed when its answer is
//! written; until then its request holds what it holds, as the API is still working on it.
//!
//! The same per-connection state carries the deadline of a streamed answer being written
//! ([`ClientConn::answer_due`]): a client that stops reading makes hyper wait for the socket and
//! stop pulling the body, so the body's own clocks (`body/timed.rs`) are never looked at. The
//! connection loop watches that deadline instead ([`Watch::poll_answer_overdue`]) and ends the
//! connection when it passes, which drops the body and the slots it holds.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How long a connection half-closed before its request was read whole may live on: as long as
/// a client has to send a request head.
pub const HALF_CLOSED_BODY: std::time::Duration = std::time::Duration::from_secs(30);

/// One client connection's half-close state, shared by its I/O and its requests (which carry it
/// as an extension).
#[derive(Clone, Default, Debug)]
pub struct ClientConn(Arc<State>);

#[derive(Default, Debug)]
struct State {
    /// A request of this connection is waiting for its limits.
    waiting: AtomicBool,
    /// The client closed its sending side at a time that means "answer, then close".
    half_closed: AtomicBool,
    /// The request in flight has been read whole (it had no body, or the body was buffered).
    body_done: AtomicBool,
    /// The stream carries (or may come to carry) a tunnel or an upgraded protocol, whose end
    /// is passed on as it is.
    raw: AtomicBool,
    /// A streamed answer is being written; its deadline is in `answer_deadline`. A flag beside
    /// the lock, so the connection loop's check on every wake-up is a plain load.
    answering: AtomicBool,
    answer_deadline: Mutex<Option<Instant>>,
}

// === impl ClientConn ===

impl ClientConn {
    /// Marks the request as waiting for its limits until the guard is dropped: an end of the
    /// stream meanwhile means the client left.
    pub fn waiting(&self) -> Waiting<'_> {
        self.0.waiting.store(true, Relaxed);
        Waiting(self)
    }

    /// A new request arrived; `body_ended` when it has no body to read.
    pub fn request(&self, body_ended: bool) {
        self.0.body_done.store(body_ended, Relaxed);
    }

    /// The request's body has been read whole.
    pub fn body_done(&self) {
        self.0.body_done.store(true, Relaxed);
    }

    /// Whether the request in flight has been read whole. A half-close before that leaves a
    /// request that can never be completed, and the connection gets a bound on its life.
    pub fn request_complete(&self) -> bool {
        self.0.body_done.load(Relaxed)
    }

    /// From now on the end of the stream is passed on as it is: for CONNECT and upgrades,
    /// whose pipes forward a half-close themselves.
    pub fn pass_end(&self) {
        self.0.raw.store(true, Relaxed);
    }

    /// Whether the client has half-closed; the connection should finish and close.
    pub fn half_closed(&self) -> bool {
        self.0.half_closed.load(Relaxed)
    }

    /// A streamed answer is being written, and must be written whole by `deadline`.
    pub fn answer_due(&self, deadline: Instant) {
        *self.0.answer_deadline.lock() = Some(deadline);
        self.0.answering.store(true, Relaxed);
    }

    /// The streamed answer has ended (or was cut): no deadline any more.
    pub fn answer_done(&self) {
        self.0.answering.store(false, Relaxed);
        *self.0.answer_deadline.lock() = None;
    }

    /// The deadline of the streamed answer being written, if one is.
    fn answer_deadline(&self) -> Option<Instant> {
        if !self.0.answering.load(Relaxed) {
            return None;
        }
        *self.0.answer_deadline.lock()
    }

    /// Wraps the client's stream.
    pub fn wrap<S>(&self, io: S) -> HalfClose<S> {
        HalfClose {
            inner: io,
            state: self.0.clone(),
        }
    }
}

/// See [`ClientConn::waiting`].
pub struct Waiting<'a>(&'a ClientConn);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0 .0.waiting.store(false, Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// A client's stream that hides its end from hyper unless a request is waiting.
    pub struct HalfClose<S> {
        #[pin]
        inner: S,
        state: Arc<State>,
    }
}

impl<S: AsyncRead> AsyncRead for HalfClose<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        ready!(this.inner.poll_read(cx, buf))?;
        let ended = buf.filled().len() == before && buf.remaining() > 0;
        let state = &this.state;
        // Once taken for a half-close, the end stays one: the request may wait later (a retry
        // queues again), and its client is still waiting for the answer.
        let hide = state.half_closed.load(Relaxed) || !state.waiting.load(Relaxed);
        if ended && hide && !state.raw.load(Relaxed) {
            // No waker is kept: the stream has ended and will not wake anyone again. The
            // connection loop sees the flag once hyper's poll returns, and has hyper answer
            // what is in flight and close.
            this.state.half_closed.store(true, Relaxed);
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite> AsyncWrite for HalfClose<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// What the connection loop keeps to watch a client's half-close.
pub(crate) struct Watch {
    client: Option<ClientConn>,
    /// Set once the half-close has been acted on.
    seen: bool,
    /// Armed when the client half-closed before its request was read whole.
    cut_off: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Armed at the deadline of the streamed answer being written; made on the first one.
    answer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Watch {
    pub(crate) fn new(client: Option<ClientConn>) -> Watch {
        Watch {
            client,
            seen: false,
            cut_off: None,
            answer: None,
        }
    }

    /// True once, when the client has half-closed: the loop then asks hyper to answer what is
    /// in flight and close (at once when idle).
    pub(crate) fn half_closed(&mut self) -> bool {
        let Some(c) = self
            .client
            .as_ref()
            .filter(|c| !self.seen && c.half_closed())
        else {
            return false;
        };
        if !c.request_complete() {
            self.cut_off = Some(Box::pin(tokio::time::sleep(HALF_CLOSED_BODY)));
        }
        self.seen = true;
        true
    }

    /// Whether the connection should end now: the client half-closed in the middle of a
    /// request, which has still not been read whole (module docs).
    pub(crate) fn poll_cut_off(&mut self, cx: &mut Context<'_>) -> bool {
        use std::future::Future;
        let (Some(sleep), Some(c)) = (self.cut_off.as_mut(), &self.client) else {
            return false;
        };
        sleep.as_mut().poll(cx).is_ready() && !c.request_complete()
    }

    /// Whether the connection should end now: the streamed answer being written has passed
    /// its deadline (the client reads it too slowly, or not at all; module docs).
    pub(crate) fn poll_answer_overdue(&mut self, cx: &mut Context<'_>) -> bool {
        use std::future::Future;
        let Some(due) = self.client.as_ref().and_then(ClientConn::answer_deadline) else {
            return false;
        };
        let sleep = self
            .answer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if sleep.deadline() != due {
            sleep.as_mut().reset(due);
        }
        sleep.as_mut().poll(cx).is_ready()
    }
}
