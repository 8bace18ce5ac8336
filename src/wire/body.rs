//! The one response body type every part of the pipeline returns: streamed from a backend
//! or built in memory, behind the same box.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// Errors a body can fail with while streaming.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: a streamed backend body or an in-memory one.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A request body on its way through the pipeline: the consumer's, or a replay of it after a
/// fault rule has read it. hyper's own error type, so no conversion happens per frame.
pub type RequestBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body with nothing in it.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Boxes any streamed body, e.g. a backend's `hyper::body::Incoming`.
pub fn stream<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}
