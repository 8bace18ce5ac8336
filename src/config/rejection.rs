//! A refusal: which catalogue error answers a request, and the values of its placeholders.
//!
//! Every check, the fault injector and the demo provider return a `Rejection`; only
//! `error_catalog` turns one into a response.

use std::borrow::Cow;
use std::fmt;

/// A value that can be put into an error template, written `{name}` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// The target URL the consumer asked the SSP for.
    TargetUrl,
    /// The service root SDS holds for the receiver and interaction.
    Endpoint,
    CpaId,
    FromAsid,
    ToAsid,
    Interaction,
    /// Free text telling the consumer what to fix.
    Diagnostics,
}

impl Placeholder {
    pub const ALL: [Placeholder; 7] = [
        Placeholder::TargetUrl,
        Placeholder::Endpoint,
        Placeholder::CpaId,
        Placeholder::FromAsid,
        Placeholder::ToAsid,
        Placeholder::Interaction,
        Placeholder::Diagnostics,
    ];

    /// The name written between braces in a template.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::TargetUrl => "target_url",
            Placeholder::Endpoint => "endpoint",
            Placeholder::CpaId => "cpa_id",
            Placeholder::FromAsid => "from_asid",
            Placeholder::ToAsid => "to_asid",
            Placeholder::Interaction => "interaction",
            Placeholder::Diagnostics => "diagnostics",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The catalogue ids the code itself answers with; `error_catalog` refuses to start without them.
pub mod ids {
    pub const ENDPOINT_VARIES: &str = "endpoint-varies";
    pub const SENDER_NOT_AUTHORISED: &str = "sender-asid-not-authorised";
    pub const RECEIVER_NOT_AUTHORISED: &str = "receiver-asid-not-authorised";
    pub const SENDER_TO_RECEIVER_NOT_AUTHORISED: &str = "sender-to-receiver-not-authorised";
    pub const METHOD_NOT_ALLOWED: &str = "method-not-allowed";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported-media-type";
    pub const ERROR_COMMUNICATING: &str = "error-communicating";
    pub const BAD_REQUEST: &str = "bad-request";
    pub const INTERNAL_SERVER_ERROR: &str = "internal-server-error";
    pub const INVALID_RESOURCE: &str = "invalid-resource";

    pub const REQUIRED: [&str; 10] = [
        ENDPOINT_VARIES,
        SENDER_NOT_AUTHORISED,
        RECEIVER_NOT_AUTHORISED,
        SENDER_TO_RECEIVER_NOT_AUTHORISED,
        METHOD_NOT_ALLOWED,
        UNSUPPORTED_MEDIA_TYPE,
        ERROR_COMMUNICATING,
        BAD_REQUEST,
        INTERNAL_SERVER_ERROR,
        INVALID_RESOURCE,
    ];
}

/// Which catalogue error answers a request, and with what values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The catalogue id, e.g. `endpoint-varies`.
    pub error: Cow<'static, str>,
    pub values: Vec<(Placeholder, String)>,
}

impl Rejection {
    pub fn new(error: impl Into<Cow<'static, str>>) -> Self {
        Self {
            error: error.into(),
            values: Vec::new(),
        }
    }

    /// A GP Connect `BAD_REQUEST` naming what was wrong.
    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(ids::BAD_REQUEST).with(Placeholder::Diagnostics, diagnostics)
    }

    pub fn with(mut self, placeholder: Placeholder, value: impl Into<String>) -> Self {
        self.values.push((placeholder, value.into()));
        self
    }

    /// The value given for a placeholder, if any.
    pub fn value(&self, placeholder: Placeholder) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(p, _)| *p == placeholder)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = self.value(Placeholder::Diagnostics) {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}
