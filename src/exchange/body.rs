//! The body type used inside the stack, on both requests and responses.
//!
//! One boxed type keeps the layers' signatures simple: a request body may be the client's stream,
//! a buffered copy for replay, or empty; a response body may be the upstream's stream or an error
//! document. Boxing costs one allocation per body; a body that has ended already (a GET's, an
//! empty answer's) becomes the zero-size empty body instead, through [`boxed_unless_ended`].

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

use super::BoxError;

pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of `bytes`; no bytes make the empty body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    boxed_unless_ended(Full::new(bytes.into()))
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Boxes any body whose errors can be boxed.
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Boxes `body`, or, when it has nothing left to send (most requests and many answers), gives
/// the empty body, which is zero-sized and boxes without an allocation.
///
/// Not what [`boxed`] does for every body: a wrapper whose drop means something (shaping's
/// `Holding`, which releases permits once hyper has written the answer) must be kept even
/// when its body has ended.
pub fn boxed_unless_ended<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return empty();
    }
    boxed(body)
}
