//! The request-body deadline: a client must send its whole body within `server.body_timeout`.
//!
//! Without it a client dripping one byte a second holds a connection, a buffer and (once the
//! request is under way) a concurrency slot for as long as it likes. The clock starts the first
//! time the body is not there yet, not when the request arrives: a request may wait in a limit's
//! queue before its body is read, and a body that arrives with its head never starts it (so it
//! costs nothing: no clock read, no timer).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::exchange::{BodyReadTimeout, BoxError};

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyReadTimeout`] once its deadline passes.
    pub struct BodyDeadline<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        // Boxed: a tokio `Sleep` is large and most bodies never need one.
        timer: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> BodyDeadline<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        BodyDeadline {
            inner,
            timeout,
            timer: None,
        }
    }
}

// === impl BodyDeadline ===

impl<B> Body for BodyDeadline<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let timeout = *this.timeout;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimeout(timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn dripping() -> impl Body<Data = Bytes, Error = BoxError> {
        let frames = futures_util::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"x"))),
                n + 1,
            ))
        });
        StreamBody::new(frames)
    }

    #[tokio::test(start_paused = true)]
    async fn a_dripping_body_fails_at_the_deadline_whatever_its_pace() {
        let started = tokio::time::Instant::now();
        let mut body = std::pin::pin!(BodyDeadline::new(dripping(), Duration::from_secs(5)));
        let mut got = 0;
        let err = loop {
            match body.frame().await {
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => break e,
                None => panic!("the drip never ends"),
            }
        };
        assert!(err.is::<BodyReadTimeout>(), "{err}");
        assert_eq!(got, 5, "the bytes up to the deadline pass through");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_already_there_never_starts_the_clock() {
        let full = http_body_util::Full::new(Bytes::from_static(b"abc")).map_err(|e| match e {});
        let mut body = BodyDeadline::new(full, Duration::from_secs(1));
        let data = (&mut body).collect().await.unwrap().to_bytes();
        assert_eq!(data, "abc");
        assert!(body.timer.is_none());
    }
}
