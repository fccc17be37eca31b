//! Request bodies kept for replay, within a size bound.
//!
//! A retried request must send the very bytes the first attempt sent, so the body is read into
//! memory before the first attempt. Memory stays bounded by `retry.max_body`:
//!
//! - a body whose declared length (`Content-Length`, or the body's size hint) is at most `max` is
//!   collected into one [`Bytes`], and every attempt replays it;
//! - a body declared larger than `max` is not touched at all: it streams through once, and the
//!   request is never retried ([`super::GiveUp::BodyNotReplayable`]);
//! - a body of unknown length (chunked) is collected until it ends or passes `max`. If it passes
//!   `max`, the bytes already read are not lost: the one attempt sends the collected prefix and then
//!   the rest of the original stream, in order. The same holds for a body that turns out longer than
//!   it declared.
//!
//! Trailers of a buffered body are kept and replayed too.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// Reads `body` for replay, as the module docs describe.
///
/// `content_length` is the request's parsed `Content-Length` header, if any; the body's own size
/// hint is consulted as well, so either is enough to stream a large body untouched. An error from
/// `body` while collecting is returned as is: the request cannot be sent then anyway.
///
/// `B: Unpin` because the untouched body may be handed back; pin a `!Unpin` body in a `Box` first.
/// Hyper's `Incoming` is `Unpin`.
pub async fn buffer_for_replay<B>(
    body: B,
    max: usize,
    content_length: Option<u64>,
) -> Result<Replay<B>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    // Most requests (GETs) have no body at all: nothing to read, nothing to copy.
    if body.is_end_stream() {
        return Ok(Replay::buffered(Bytes::new(), None));
    }
    let max64 = u64::try_from(max).unwrap_or(u64::MAX);
    let declared_too_large =
        content_length.is_some_and(|n| n > max64) || body.size_hint().lower() > max64;
    if declared_too_large {
        return Ok(Replay::once(ReplayBody::streaming(VecDeque::new(), body)));
    }
    // Even when a small length was declared, never trust it for memory: collection stops past
    // `max` whatever the declaration said.
    collect(body, max).await
}

/// Reads frames until the body ends (buffered) or more than `max` bytes arrived (one attempt).
async fn collect<B>(mut body: B, max: usize) -> Result<Replay<B>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut chunks = VecDeque::new();
    let mut len = 0usize;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => {
                len = len.saturating_add(data.len());
                chunks.push_back(data);
                if len > max {
                    return Ok(Replay::once(ReplayBody::streaming(chunks, body)));
                }
            }
            // Trailers are the last frame; frame kinds unknown to us are dropped.
            Err(frame) => trailers = frame.into_trailers().ok().or(trailers),
        }
    }
    Ok(Replay::buffered(concat(chunks, len), trailers))
}

/// Joins the chunks, without copying in the common single-chunk case.
fn concat(mut chunks: VecDeque<Bytes>, len: usize) -> Bytes {
    if chunks.len() <= 1 {
        return chunks.pop_front().unwrap_or_default();
    }
    let mut all = BytesMut::with_capacity(len);
    for chunk in chunks {
        all.extend_from_slice(&chunk);
    }
    all.freeze()
}

/// A request body ready for one or more attempts.
pub struct Replay<B> {
    kind: Kind<B>,
}

enum Kind<B> {
    Buffered {
        data: Bytes,
        trailers: Option<HeaderMap>,
    },
    /// Taken by the first attempt.
    Once(Option<ReplayBody<B>>),
}

/// The body one attempt sends: buffered bytes, or a collected prefix followed by the rest of the
/// original stream.
pub struct ReplayBody<B> {
    /// Sent first, in order.
    chunks: VecDeque<Bytes>,
    /// The unread remainder of the original body, sent after `chunks`.
    rest: Option<B>,
    /// Sent last; only a buffered body has them here (a streaming one sends its own).
    trailers: Option<HeaderMap>,
}

// === impl Replay ===

impl<B> Replay<B> {
    /// A replayable body of these bytes.
    pub fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        Replay {
            kind: Kind::Buffered { data, trailers },
        }
    }

    fn once(body: ReplayBody<B>) -> Self {
        Replay {
            kind: Kind::Once(Some(body)),
        }
    }

    /// Whether every attempt can send the body (false: it streams through once).
    pub fn is_replayable(&self) -> bool {
        matches!(self.kind, Kind::Buffered { .. })
    }

    /// The buffered bytes, when the body is replayable.
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Buffered { data, .. } => Some(data),
            Kind::Once(_) => None,
        }
    }

    /// The body for the next attempt. Always `Some` for a replayable body (cloning [`Bytes`] is a
    /// reference count, not a copy); for a streaming one, `Some` the first time and `None` after,
    /// which the retry layer reports as [`super::GiveUp::BodyNotReplayable`].
    pub fn next_body(&mut self) -> Option<ReplayBody<B>> {
        match &mut self.kind {
            Kind::Buffered { data, trailers } => Some(ReplayBody {
                // No empty data frame for an empty body: it would only cost a write.
                chunks: (!data.is_empty())
                    .then(|| data.clone())
                    .into_iter()
                    .collect(),
                rest: None,
                trailers: trailers.clone(),
            }),
            Kind::Once(body) => body.take(),
        }
    }
}

impl<B> std::fmt::Debug for Replay<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Buffered { data, trailers } => f
                .debug_struct("Replay::Buffered")
                .field("len", &data.len())
                .field("trailers", &trailers.is_some())
                .finish(),
            Kind::Once(body) => f
                .debug_struct("Replay::Once")
                .field("taken", &body.is_none())
                .finish(),
        }
    }
}

// === impl ReplayBody ===

impl<B> ReplayBody<B> {
    fn streaming(prefix: VecDeque<Bytes>, rest: B) -> Self {
        ReplayBody {
            chunks: prefix,
            rest: Some(rest),
            trailers: None,
        }
    }

    fn buffered_len(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if let Some(chunk) = this.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(rest) = &mut this.rest {
            return Pin::new(rest).poll_frame(cx);
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.buffered_len();
        let Some(rest) = &self.rest else {
            return SizeHint::with_exact(prefix);
        };
        let inner = rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(prefix));
        if let Some(upper) = inner.upper().and_then(|u| u.checked_add(prefix)) {
            hint.set_upper(upper);
        }
        hint
    }
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayBody")
            .field("buffered", &self.buffered_len())
            .field("streaming", &self.rest.is_some())
            .field("trailers", &self.trailers.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::stream;
    use http_body_util::{Empty, Full, StreamBody};

    use super::*;

    type Chunked = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    /// A body of these chunks with no length known up front, like `Transfer-Encoding: chunked`.
    fn chunked(chunks: &[&'static str]) -> Chunked {
        let frames: Vec<_> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from(*c))))
            .collect();
        StreamBody::new(stream::iter(frames))
    }

    async fn read_all<B: Body<Data = Bytes> + Unpin>(body: B) -> (Bytes, Option<HeaderMap>)
    where
        B::Error: std::fmt::Debug,
    {
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes(), trailers)
    }

    /// Counts polls, to prove a body was handed back untouched.
    struct Untouched<B>(B, usize);

    impl<B: Body + Unpin> Body for Untouched<B> {
        type Data = B::Data;
        type Error = B::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
            self.1 += 1;
            Pin::new(&mut self.0).poll_frame(cx)
        }
        fn size_hint(&self) -> SizeHint {
            self.0.size_hint()
        }
    }

    #[tokio::test]
    async fn small_body_is_buffered_and_identical_on_every_attempt() {
        let mut replay = buffer_for_replay(chunked(&["hello ", "wor", "ld"]), 64, None)
            .await
            .unwrap();
        assert!(replay.is_replayable());
        assert_eq!(replay.bytes().unwrap(), "hello world");
        for _ in 0..3 {
            let body = replay.next_body().unwrap();
            assert_eq!(body.size_hint().exact(), Some(11));
            assert_eq!(read_all(body).await.0, "hello world");
        }
    }

    #[tokio::test]
    async fn declared_length_at_the_limit_is_buffered() {
        let body = Full::new(Bytes::from_static(b"12345678"));
        let replay = buffer_for_replay(body, 8, Some(8)).await.unwrap();
        assert_eq!(replay.bytes().unwrap(), "12345678");
    }

    #[tokio::test]
    async fn large_content_length_streams_untouched_once() {
        let body = Untouched(Full::new(Bytes::from(vec![7u8; 1000])), 0);
        let mut replay = buffer_for_replay(body, 100, Some(1000)).await.unwrap();
        assert!(!replay.is_replayable());
        let once = replay.next_body().unwrap();
        assert_eq!(
            once.rest.as_ref().unwrap().1,
            0,
            "polled before the attempt"
        );
        assert_eq!(once.size_hint().exact(), Some(1000));
        assert_eq!(read_all(once).await.0, vec![7u8; 1000]);
        assert!(replay.next_body().is_none());
    }

    #[tokio::test]
    async fn large_size_hint_without_content_length_streams_untouched() {
        let body = Untouched(Full::new(Bytes::from(vec![1u8; 500])), 0);
        let mut replay = buffer_for_replay(body, 100, None).await.unwrap();
        assert!(!replay.is_replayable());
        assert_eq!(replay.next_body().unwrap().rest.unwrap().1, 0);
    }

    #[tokio::test]
    async fn chunked_body_over_max_keeps_every_byte_in_order() {
        let chunks = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];
        let mut replay = buffer_for_replay(chunked(&chunks), 6, None).await.unwrap();
        assert!(!replay.is_replayable());
        let once = replay.next_body().unwrap();
        assert_eq!(
            once.buffered_len(),
            8,
            "collection stops at the chunk that passes max"
        );
        assert!(once.size_hint().lower() >= 8);
        assert_eq!(read_all(once).await.0, chunks.concat());
        assert!(replay.next_body().is_none());
    }

    #[tokio::test]
    async fn body_longer_than_declared_is_not_trusted() {
        let chunks = ["0123456789", "abcdefghij"];
        let mut replay = buffer_for_replay(chunked(&chunks), 12, Some(5))
            .await
            .unwrap();
        assert!(!replay.is_replayable());
        assert_eq!(
            read_all(replay.next_body().unwrap()).await.0,
            chunks.concat()
        );
    }

    #[tokio::test]
    async fn empty_body_is_replayable() {
        for max in [0, 10] {
            let mut replay = buffer_for_replay(Empty::<Bytes>::new(), max, None)
                .await
                .unwrap();
            assert!(replay.is_replayable());
            let body = replay.next_body().unwrap();
            assert!(body.is_end_stream());
            assert_eq!(body.size_hint().exact(), Some(0));
            assert_eq!(read_all(body).await.0, "");
        }
        let replay = buffer_for_replay(chunked(&["", ""]), 0, Some(0))
            .await
            .unwrap();
        assert_eq!(replay.bytes().unwrap(), "");
    }

    #[tokio::test]
    async fn trailers_are_replayed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        let frames: Vec<Result<_, Infallible>> = vec![
            Ok(Frame::data(Bytes::from("data"))),
            Ok(Frame::trailers(trailers.clone())),
        ];
        let body = StreamBody::new(stream::iter(frames));
        let mut replay = buffer_for_replay(body, 64, None).await.unwrap();
        for _ in 0..2 {
            let (data, got) = read_all(replay.next_body().unwrap()).await;
            assert_eq!(data, "data");
            assert_eq!(got.as_ref(), Some(&trailers));
        }
    }

    #[tokio::test]
    async fn error_while_collecting_is_returned() {
        let frames: Vec<Result<Frame<Bytes>, &str>> =
            vec![Ok(Frame::data(Bytes::from("part"))), Err("reset")];
        let body = StreamBody::new(stream::iter(frames));
        assert_eq!(
            buffer_for_replay(body, 64, None).await.unwrap_err(),
            "reset"
        );
    }
}
