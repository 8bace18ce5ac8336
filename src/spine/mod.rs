//! Checks 2-9: what Spine's SSP checks, one file each, in the order of DESIGN.md section 4.
//!
//! Each check is a small function that either hands the next check what it established
//! or returns the `Rejection` that answers the request. The gateway runs them in this order
//! and records each result on the request's context. Each check's doc states its contract in
//! the same three parts: what it reads, what it hands on, and what it refuses with which
//! catalogue entry.
//!
//! | # | module | reads | refuses with |
//! |---|---|---|---|
//! | 2 | [`method`] | the method | 405 `method-not-allowed` |
//! | 3 | [`target`] | the absolute target URL in the path | 400 `bad-request` |
//! | 4 | [`headers`] | `Ssp-TraceID`, `Ssp-From`, `Ssp-To`, `Ssp-InteractionID` | 400 `bad-request` |
//! | 5 | [`sender`] | `Ssp-From` against the consumers | 403 `sender-asid-not-authorised` |
//! | 5b | [`certificate`] | the client certificate's names against the consumer's `fqdn` | 403 `sender-asid-not-authorised` |
//! | – | [`throttle`] | the sender's and the global `rate_limit` | 429 `too-many-requests`, 503 `service-unavailable` |
//! | 6 | [`receiver`] | `Ssp-To` against the providers' endpoints | 403 `receiver-asid-not-authorised` |
//! | 7 | [`fot`] | the sender's `may_send_to` | 403 `sender-to-receiver-not-authorised` |
//! | 8 | [`endpoint`] | the target URL against the registered service root | 400 `endpoint-varies` |
//! | 9 | [`media_type`] | `Content-Type`, `Accept`, `_format` | 415 `unsupported-media-type` |
//!
//! Beside the checks, [`browser`] answers CORS preflights and adds the CORS and HSTS headers
//! every response carries.
//!
//! Check 10 (what a provider checks) is [`crate::provider`]; check 11 (forwarding) is
//! [`crate::proxy::forwarder`].

pub mod browser;
pub mod certificate;
pub mod endpoint;
pub mod fot;
pub mod headers;
pub mod media_type;
pub mod method;
pub mod receiver;
pub mod sender;
pub mod target;
pub mod throttle;

/// Building request headers for the checks' unit tests.
#[cfg(test)]
mod test_headers {
    use http::HeaderMap;

    /// A header map of `(name, value)` pairs.
    pub fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }
}
