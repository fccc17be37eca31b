//! The body type used inside the stack, on both requests and responses.
//!
//! One boxed type keeps the layers' signatures simple: a request body may be the client's stream,
//! a buffered copy for replay, or empty; a response body may be the upstream's stream or an error
//! document. Boxing costs one allocation per body, which the benchmarks show is noise next to the
//! socket work.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

use crate::BoxError;

pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
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
