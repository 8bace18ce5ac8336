//! The error catalogue ids the demo provider answers with (each one an `error-catalog/*.json`
//! file). `error_catalog` refuses to start without every one of them.

use crate::config::rejection::{Placeholder, Rejection};

pub use crate::config::rejection::ids::{BAD_REQUEST, INTERNAL_SERVER_ERROR};

pub const ACCESS_DENIED: &str = "access-denied";
pub const DUPLICATE_REJECTED: &str = "duplicate-rejected";
pub const INVALID_IDENTIFIER_SYSTEM: &str = "invalid-identifier-system";
pub const INVALID_IDENTIFIER_VALUE: &str = "invalid-identifier-value";
pub const INVALID_NHS_NUMBER: &str = "invalid-nhs-number";
pub const INVALID_PARAMETER: &str = "invalid-parameter";
pub const INVALID_RESOURCE: &str = "invalid-resource";
pub const NO_RECORD_FOUND: &str = "no-record-found";
pub const NOT_IMPLEMENTED: &str = "not-implemented";
pub const ORGANISATION_NOT_FOUND: &str = "organisation-not-found";
pub const PATIENT_NOT_FOUND: &str = "patient-not-found";
pub const PRACTITIONER_NOT_FOUND: &str = "practitioner-not-found";
pub const REFERENCE_NOT_FOUND: &str = "reference-not-found";

/// Every id above, for the catalogue's start-up check.
pub const ALL: [&str; 15] = [
    BAD_REQUEST,
    INTERNAL_SERVER_ERROR,
    ACCESS_DENIED,
    DUPLICATE_REJECTED,
    INVALID_IDENTIFIER_SYSTEM,
    INVALID_IDENTIFIER_VALUE,
    INVALID_NHS_NUMBER,
    INVALID_PARAMETER,
    INVALID_RESOURCE,
    NO_RECORD_FOUND,
    NOT_IMPLEMENTED,
    ORGANISATION_NOT_FOUND,
    PATIENT_NOT_FOUND,
    PRACTITIONER_NOT_FOUND,
    REFERENCE_NOT_FOUND,
];

/// 422 INVALID_RESOURCE: the request's resource fails the use case's rules.
pub fn invalid_resource(diagnostics: impl Into<String>) -> Rejection {
    reject(INVALID_RESOURCE, diagnostics)
}

/// 422 INVALID_PARAMETER: a search or operation parameter is not valid.
pub fn invalid_parameter(diagnostics: impl Into<String>) -> Rejection {
    reject(INVALID_PARAMETER, diagnostics)
}

/// A rejection with catalogue error `id` and diagnostics telling the consumer what to fix.
pub fn reject(id: &'static str, diagnostics: impl Into<String>) -> Rejection {
    Rejection::new(id).with(Placeholder::Diagnostics, diagnostics)
}
