//! The one place an [`Error`] becomes an HTTP response.
//!
//! Every layer below returns typed errors; this layer, outermost in the stack, turns each into a
//! response with the error's status, a `Retry-After` where a retry could succeed, and a JSON body
//! `{"code": "pacer.<what>", "message": "...", "status": N}` that says what happened and why. No
//! other code turns an [`Error`] into a response, and the admin API's own errors use the same
//! [`ErrorBody`], so every error a client sees has the same shape.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{header, HeaderValue, Request, Response};
use serde::Serialize;

use super::body::{self, Body};
use crate::error::Error;

/// The JSON body of every error pacer answers, the admin API's included (it writes its own
/// errors, `pacer.admin.<what>`, with this type), so every error document has one shape.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub code: &'a str,
    pub message: String,
    pub status: u16,
}

/// The `code` of an error response, in its extensions, so the request log line can say which
/// of pacer's errors the client got without parsing the body.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// An error as words: its own message, then what caused it. The one place an error's cause
/// chain becomes text: the outermost cause and, when the chain goes deeper, its root, which
/// together say what failed and why (`connecting to host:443: connection refused`) without
/// every layer in between.
pub fn message(err: &Error) -> String {
    let Some(cause) = std::error::Error::source(err) else {
        return err.to_string();
    };
    let mut root = cause;
    while let Some(next) = root.source() {
        root = next;
    }
    let (outer, inner) = (cause.to_string(), root.to_string());
    if outer == inner {
        format!("{err}: {outer}")
    } else {
        format!("{err}: {outer}: {inner}")
    }
}

/// Renders an error as the response the client sees.
pub fn response(err: &Error) -> Response<Body> {
    let message = message(err);
    super::refusals::note(err, &message);
    let status = err.status();
    let doc = ErrorBody {
        code: err.code(),
        message,
        status: status.as_u16(),
    };
    let json = serde_json::to_vec(&doc).expect("an error body always serialises");
    let mut res = Response::new(body::full(json));
    *res.status_mut() = status;
    res.extensions_mut().insert(ErrorCode(err.code()));
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(wait) = err.retry_after() {
        headers.insert(header::RETRY_AFTER, whole_seconds(wait).into());
    }
    if matches!(err, Error::ProxyAuthRequired) {
        headers.insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"pacer\""),
        );
    }
    res
}

/// Retry-After in whole seconds, rounded up (waiting less than asked would only earn another
/// 429), and at least 1 so a client never reads "retry now".
pub fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The layer that makes the stack infallible.
#[derive(Clone, Debug, Default)]
pub struct RescueLayer;

impl<S> tower::Layer<S> for RescueLayer {
    type Service = Rescue<S>;
    fn layer(&self, inner: S) -> Rescue<S> {
        Rescue { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Rescue<S> {
    inner: S,
}

// === impl Rescue ===

impl<S, B> tower::Service<Request<B>> for Rescue<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>, Error = Error>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RescueFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => {
                // The layers below are always ready; should one fail, the request still gets
                // an answer from `call`, which sees the same failure.
                tracing::warn!(error = %e, "service not ready");
                Poll::Ready(Ok(()))
            }
            other => other.map(|_| Ok(())),
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        RescueFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner future, its error turned into a response. Named rather than boxed: every
    /// request passes here, and a box would cost an allocation and a copy of the future each.
    pub struct RescueFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> Future for RescueFuture<F>
where
    F: Future<Output = Result<Response<Body>, Error>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(match std::task::ready!(self.project().inner.poll(cx)) {
            Ok(res) => res,
            Err(err) => {
                tracing::debug!(code = err.code(), error = %message(&err), "request failed");
                response(&err)
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn rounds_retry_after_up_and_never_zero() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }

    #[tokio::test]
    async fn queue_full_is_429_with_retry_after_and_json() {
        let err = Error::QueueFull {
            limit: "scripts".into(),
            retry_after: Some(Duration::from_millis(1500)),
        };
        let res = response(&err);
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()["retry-after"], "2");
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["code"], "pacer.queue.full");
        assert_eq!(v["status"], 429);
        assert!(v["message"].as_str().unwrap().contains("scripts"));
    }

    /// A limit that cannot tell the wait (a shared limit's full queue) still says when to
    /// come back: every 429 pacer makes has a Retry-After of at least 1.
    #[test]
    fn every_429_has_retry_after_even_when_the_wait_is_unknown() {
        let limit = || "scripts".to_owned();
        for err in [
            Error::QueueFull {
                limit: limit(),
                retry_after: None,
            },
            Error::QueueTimeout {
                limit: limit(),
                retry_after: None,
            },
            Error::RateLimited {
                limit: limit(),
                retry_after: None,
            },
        ] {
            let res = response(&err);
            assert_eq!(res.status(), 429);
            assert_eq!(
                res.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap()),
                Some("1"),
                "{err}"
            );
        }
    }

    #[test]
    fn proxy_auth_carries_challenge() {
        let res = response(&Error::ProxyAuthRequired);
        assert_eq!(res.status(), 407);
        assert!(res.headers().contains_key("proxy-authenticate"));
    }
}
