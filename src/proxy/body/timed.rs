//! A streamed response body on two clocks: the whole response must end by the upstream's
//! `timeouts.request`, and no pause between two pieces may last `timeouts.body_idle`.
//!
//! When either runs out the body ends in an error. The answer's head is already on its way to
//! the client, so there is no error document to send: hyper closes the client's connection,
//! which tells the client the body is incomplete, and dropping the body drops what it holds (the
//! concurrency permits around it, the upstream connection, which is then not reused).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::metrics::{BodyCut, Metrics};
use crate::BoxError;

/// The error a cut body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the upstream's response body was cut: {}", match .0 {
    BodyCut::Timeout => "the response took longer than timeouts.request",
    BodyCut::Idle => "the upstream sent nothing for timeouts.body_idle",
})]
pub struct Stalled(pub BodyCut);

/// Who to count a cut for: the metrics and the upstream's index in them.
pub struct CutCounter {
    pub metrics: Arc<Metrics>,
    pub upstream: usize,
}

pin_project_lite::pin_project! {
    pub struct Timed<B> {
        #[pin]
        inner: B,
        deadline: Instant,
        idle: Duration,
        // When the last piece (or the head) arrived.
        last: Instant,
        // Made on the first wait: a body whose pieces are always ready never needs a timer.
        sleep: Option<Pin<Box<Sleep>>>,
        counter: CutCounter,
        cut: bool,
    }
}

impl<B> Timed<B> {
    /// `deadline` is when the whole response must have ended; the idle clock starts now.
    pub fn new(inner: B, deadline: Instant, idle: Duration, counter: CutCounter) -> Timed<B> {
        Timed {
            inner,
            deadline,
            idle,
            last: Instant::now(),
            sleep: None,
            counter,
            cut: false,
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
        let this = self.project();
        if *this.cut {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                *this.last = Instant::now();
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(other) => return Poll::Ready(other.map(|r| r.map_err(Into::into))),
            Poll::Pending => {}
        }
        // The timer moves only when a wait starts after progress: once per pause, not per piece.
        let due = (*this.last + *this.idle).min(*this.deadline);
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if sleep.deadline() != due {
            sleep.as_mut().reset(due);
        }
        ready!(sleep.as_mut().poll(cx));
        let why = if due >= *this.deadline {
            BodyCut::Timeout
        } else {
            BodyCut::Idle
        };
        *this.cut = true;
        this.counter.metrics.body_cut(this.counter.upstream, why);
        Poll::Ready(Some(Err(Box::new(Stalled(why)))))
    }

    fn is_end_stream(&self) -> bool {
        self.cut || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
