//! Header names ssp-sim reads or writes in more than one place, and the one way free text
//! becomes a header value.

use http::{HeaderMap, HeaderName, HeaderValue};

// Names, not strings: a lookup by `&str` parses and lower-cases the name on every request.

/// The header that carries the consumer's trace id, echoed on every error.
pub const TRACE_ID: HeaderName = HeaderName::from_static("ssp-traceid");

/// The sending consumer's ASID.
pub const FROM: HeaderName = HeaderName::from_static("ssp-from");

/// The receiving provider's ASID.
pub const TO: HeaderName = HeaderName::from_static("ssp-to");

/// The interaction the request is.
pub const INTERACTION_ID: HeaderName = HeaderName::from_static("ssp-interactionid");

/// The four SSP headers as sent, looked up once per request: check 4 reads them, the journal
/// keeps them and every error echoes the trace id.
#[derive(Debug, Clone, Default)]
pub struct SspValues {
    /// `Ssp-TraceID`.
    pub trace_id: Option<HeaderValue>,
    /// `Ssp-From`.
    pub from: Option<HeaderValue>,
    /// `Ssp-To`.
    pub to: Option<HeaderValue>,
    /// `Ssp-InteractionID`.
    pub interaction: Option<HeaderValue>,
}

impl SspValues {
    /// The SSP headers of `headers`; of a repeated one, the first.
    pub fn of(headers: &HeaderMap) -> Self {
        let get = |name: HeaderName| headers.get(name).cloned();
        Self {
            trace_id: get(TRACE_ID),
            from: get(FROM),
            to: get(TO),
            interaction: get(INTERACTION_ID),
        }
    }
}

/// Carries the reason for errors whose payload is fixed text.
pub const DIAGNOSTICS_HEADER: HeaderName = HeaderName::from_static("ssp-sim-diagnostics");

/// A header value carrying free text, such as a consumer's own input quoted in a message:
/// anything but visible ASCII and space becomes `?`, so the value is always valid.
pub fn header_text(text: &str) -> HeaderValue {
    let printable: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&printable).unwrap_or_else(|_| HeaderValue::from_static("?"))
}
