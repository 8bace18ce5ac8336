//! A refusal: which catalogue error answers a request, and the values of its placeholders.
//!
//! Every check, the fault injector and the demo provider return a `Rejection`; only
//! `error_catalog` turns one into a response.

use std::borrow::Cow;
use std::fmt;

use http::{HeaderName, HeaderValue};

use crate::wire::echo;

/// A value that can be put into an error template, written `{name}` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// The target URL the consumer asked the SSP for.
    TargetUrl,
    /// The service root SDS holds for the receiver and interaction.
    Endpoint,
    /// The CPA id SDS holds for that endpoint.
    CpaId,
    /// The sender's ASID, from `Ssp-From`.
    FromAsid,
    /// The receiver's ASID, from `Ssp-To`.
    ToAsid,
    /// The interaction ID, from `Ssp-InteractionID`.
    Interaction,
    /// Free text telling the consumer what to fix.
    Diagnostics,
}

impl Placeholder {
    /// Every placeholder: a template's `{name}` must be one of these, checked at start-up.
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

    /// The placeholder a template's `{name}` stands for, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Declares the catalogue ids the code answers with, and `ALL`, the list of them derived from
/// the same declarations, so the start-up check cannot miss one.
macro_rules! catalogue_ids {
    ($($(#[$doc:meta])* $name:ident = $id:literal,)*) => {
        $($(#[$doc])* pub const $name: &str = $id;)*
        /// Every id above; the error catalogue refuses to start without each one.
        pub const ALL: &[&str] = &[$($name),*];
    };
}

/// The catalogue ids the code itself answers with (each one an `error-catalog/*.json` file).
pub mod ids {
    catalogue_ids! {
        /// 400, check 8: the target URL is not the registered service root.
        ENDPOINT_VARIES = "endpoint-varies",
        /// 403, check 5.
        SENDER_NOT_AUTHORISED = "sender-asid-not-authorised",
        /// 403, check 6.
        RECEIVER_NOT_AUTHORISED = "receiver-asid-not-authorised",
        /// 403, check 7.
        SENDER_TO_RECEIVER_NOT_AUTHORISED = "sender-to-receiver-not-authorised",
        /// 405, check 2.
        METHOD_NOT_ALLOWED = "method-not-allowed",
        /// 415, check 9.
        UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type",
        /// 502, check 11: the backend could not be reached or sent a broken response.
        ERROR_COMMUNICATING = "error-communicating",
        /// 504, check 11: the backend did not answer within the backend timeout.
        GATEWAY_TIMEOUT = "gateway-timeout",
        /// 429, the throttle: the sender is over its own rate limit.
        TOO_MANY_REQUESTS = "too-many-requests",
        /// 503, the throttle: the simulator is over its global rate limit.
        SERVICE_UNAVAILABLE = "service-unavailable",
        /// 400 BAD_REQUEST.
        BAD_REQUEST = "bad-request",
        /// 500 INTERNAL_SERVER_ERROR.
        INTERNAL_SERVER_ERROR = "internal-server-error",
        /// 422 INVALID_RESOURCE.
        INVALID_RESOURCE = "invalid-resource",
        /// 400 BAD_REQUEST in GP Connect 0.7 (DSTU2) form, for Access Record HTML.
        DSTU2_BAD_REQUEST = "dstu2-bad-request",
        /// 422 INVALID_RESOURCE in GP Connect 0.7 (DSTU2) form, for Access Record HTML.
        DSTU2_INVALID_RESOURCE = "dstu2-invalid-resource",
        /// 404 PATIENT_NOT_FOUND in GP Connect 0.7 (DSTU2) form.
        DSTU2_PATIENT_NOT_FOUND = "dstu2-patient-not-found",
        /// 400 INVALID_NHS_NUMBER in GP Connect 0.7 (DSTU2) form.
        DSTU2_INVALID_NHS_NUMBER = "dstu2-invalid-nhs-number",
        /// 400 INVALID_IDENTIFIER_SYSTEM in GP Connect 0.7 (DSTU2) form.
        DSTU2_INVALID_IDENTIFIER_SYSTEM = "dstu2-invalid-identifier-system",
        /// 422 INVALID_PARAMETER in GP Connect 0.7 (DSTU2) form.
        DSTU2_INVALID_PARAMETER = "dstu2-invalid-parameter",
        /// 403 ACCESS_DENIED.
        ACCESS_DENIED = "access-denied",
        /// 409 DUPLICATE_REJECTED.
        DUPLICATE_REJECTED = "duplicate-rejected",
        /// 409 FHIR_CONSTRAINT_VIOLATION: an update's If-Match names another version.
        FHIR_CONSTRAINT_VIOLATION = "fhir-constraint-violation",
        /// 400 INVALID_IDENTIFIER_SYSTEM.
        INVALID_IDENTIFIER_SYSTEM = "invalid-identifier-system",
        /// 400 INVALID_IDENTIFIER_VALUE.
        INVALID_IDENTIFIER_VALUE = "invalid-identifier-value",
        /// 400 INVALID_NHS_NUMBER.
        INVALID_NHS_NUMBER = "invalid-nhs-number",
        /// 422 INVALID_PARAMETER.
        INVALID_PARAMETER = "invalid-parameter",
        /// 400 INVALID_PATIENT_DEMOGRAPHICS: PDS does not know or verify the patient.
        INVALID_PATIENT_DEMOGRAPHICS = "invalid-patient-demographics",
        /// 404 NO_RECORD_FOUND.
        NO_RECORD_FOUND = "no-record-found",
        /// 501 NOT_IMPLEMENTED.
        NOT_IMPLEMENTED = "not-implemented",
        /// 404 ORGANISATION_NOT_FOUND.
        ORGANISATION_NOT_FOUND = "organisation-not-found",
        /// 404 PATIENT_NOT_FOUND.
        PATIENT_NOT_FOUND = "patient-not-found",
        /// 404 PRACTITIONER_NOT_FOUND.
        PRACTITIONER_NOT_FOUND = "practitioner-not-found",
        /// 404 REFERENCE_NOT_FOUND.
        REFERENCE_NOT_FOUND = "reference-not-found",
    }
}

/// Which catalogue error answers a request, and with what values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The catalogue id, e.g. `endpoint-varies`.
    pub error: Cow<'static, str>,
    /// The placeholder values to fill in; one that is not given renders as empty text.
    pub values: Vec<(Placeholder, String)>,
    /// What the trail, the journal and the logs say of this refusal instead of `error:
    /// diagnostics`, when the diagnostics may quote personal data (check 10's claim values).
    pub record: Option<String>,
    /// Response headers the error carries beside the catalogue's (the throttle's
    /// `X-Rate-Limit-*`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    /// A rejection with the catalogue error `error` and no values yet.
    pub fn new(error: impl Into<Cow<'static, str>>) -> Self {
        Self {
            error: error.into(),
            values: Vec::new(),
            record: None,
            headers: Vec::new(),
        }
    }

    /// A GP Connect `BAD_REQUEST` naming what was wrong.
    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(ids::BAD_REQUEST).with(Placeholder::Diagnostics, diagnostics)
    }

    /// Gives a placeholder its value. Values often carry consumer text (the target URL, a
    /// header quoted in the diagnostics), so each is bounded and its control characters
    /// replaced: an answer never grows with what a consumer sends.
    pub fn with(mut self, placeholder: Placeholder, value: impl Into<String>) -> Self {
        let value = value.into();
        let value = match echo::clean(&value, echo::VALUE) {
            Cow::Borrowed(_) => value,
            Cow::Owned(cleaned) => cleaned,
        };
        self.values.push((placeholder, value));
        self
    }

    /// Adds a response header to the error.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets what the trail and the logs record of this refusal (see `record`).
    pub fn recorded_as(mut self, record: impl Into<String>) -> Self {
        self.record = Some(record.into());
        self
    }

    /// What the trail and the logs may say of this refusal: its `record`, else the catalogue
    /// id and the diagnostics.
    pub fn recorded(&self) -> Cow<'_, str> {
        match &self.record {
            Some(record) => Cow::Borrowed(record),
            None => Cow::Owned(self.to_string()),
        }
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
