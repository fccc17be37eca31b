//! A streamed response body on two clocks: the whole response must end by the upstream's
//! `timeouts.request`, and no pause between two pieces may last `timeouts.body_idle`.
//!
//! When either runs out the body ends in an error. The answer's head is already on its way to
//! the client, so there is no error document to send: hyper closes the client's connection,
//! which tells the client the body is incomplete, and dropping the body drops what it holds (the
//! concurrency permits around it, the upstream connection, which is then not reused).
//!
//! These clocks are looked at only when hyper pulls the body, which it stops doing while the
//! client does not read what it has been sent. So the whole-response deadline is also given to
//! the client's connection ([`ClientConn::answer_due`]), whose loop ends the connection when it
//! passes; the body is then dropped unfinished, and counts the cut as a timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::exchange::UpstreamId;
use crate::metrics::{BodyCut, Metrics};
use crate::proxy::half_close::ClientConn;
use crate::BoxError;

/// The error a cut body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the upstream's response body was cut: {}", match .0 {
    BodyCut::Timeout => "the response took longer than timeouts.request",
    BodyCut::Idle => "the upstream sent nothing for timeouts.body_idle",
})]
pub struct Stalled(pub BodyCut);

/// Who to count a cut for: the metrics and the upstream in them.
pub struct CutCounter {
    pub metrics: Arc<Metrics>,
    pub upstream: UpstreamId,
}

pin_project_lite::pin_project! {
    pub struct Timed<B> {
        #[pin]
        inner: B,
        idle: Duration,
        // When the last piece (or the head) arrived.
        last: Instant,
        // Made on the first wait: a body whose pieces are always ready never needs a timer.
        sleep: Option<Pin<Box<Sleep>>>,
        due: Due,
    }
}

/// What outlives the body's last poll: the connection's copy of the deadline, cleared when the
/// body ends or is dropped, and the count of a cut made by the connection rather than the body.
struct Due {
    conn: Option<ClientConn>,
    deadline: Instant,
    counter: CutCounter,
    /// The body ended, or was cut and counted already.
    over: bool,
}

impl Due {
    fn end(&mut self) {
        if !self.over {
            self.over = true;
            if let Some(conn) = &self.conn {
                conn.answer_done();
            }
        }
    }
}

impl Drop for Due {
    fn drop(&mut self) {
        // Dropped unfinished once the deadline has passed: the connection was ended for it.
        if !self.over && Instant::now() >= self.deadline {
            let counter = &self.counter;
            counter.metrics.body_cut(counter.upstream, BodyCut::Timeout);
        }
        self.end();
    }
}

impl<B> Timed<B> {
    /// `deadline` is when the whole response must have ended; the idle clock starts now.
    /// `conn`, the client's connection, is told the deadline too (module docs).
    pub fn new(
        inner: B,
        deadline: Instant,
        idle: Duration,
        counter: CutCounter,
        conn: Option<ClientConn>,
    ) -> Timed<B> {
        if let Some(conn) = &conn {
            conn.answer_due(deadline);
        }
        Timed {
            inner,
            idle,
            last: Instant::now(),
            sleep: None,
            due: Due {
                conn,
                deadline,
                counter,
                over: false,
            },
        }
    }
}

impl<B> http_body::Body for Timed<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if this.due.over {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                *this.last = Instant::now();
                if this.inner.is_end_stream() {
                    this.due.end();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(other) => {
                this.due.end();
                return Poll::Ready(other.map(|r| r.map_err(Into::into)));
            }
            Poll::Pending => {}
        }
        // The timer moves only when a wait starts after progress: once per pause, not per piece.
        let due = (*this.last + *this.idle).min(this.due.deadline);
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if sleep.deadline() != due {
            sleep.as_mut().reset(due);
        }
        ready!(sleep.as_mut().poll(cx));
        let why = if due >= this.due.deadline {
            BodyCut::Timeout
        } else {
            BodyCut::Idle
        };
        this.due.end();
        let counter = &this.due.counter;
        counter.metrics.body_cut(counter.upstream, why);
        Poll::Ready(Some(Err(Box::new(Stalled(why)))))
    }

    fn is_end_stream(&self) -> bool {
        self.due.over || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
