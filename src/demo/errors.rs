//! The errors the demo provider answers with: the catalogue ids it uses, and helpers that
//! build their rejections.

use crate::config::rejection::{Placeholder, Rejection};

pub use crate::config::rejection::ids::{
    ACCESS_DENIED, BAD_REQUEST, DUPLICATE_REJECTED, FHIR_CONSTRAINT_VIOLATION,
    INTERNAL_SERVER_ERROR, INVALID_IDENTIFIER_SYSTEM, INVALID_NHS_NUMBER, INVALID_PARAMETER,
    INVALID_PATIENT_DEMOGRAPHICS, INVALID_RESOURCE, NOT_IMPLEMENTED, NO_RECORD_FOUND,
    ORGANISATION_NOT_FOUND, PATIENT_NOT_FOUND, PRACTITIONER_NOT_FOUND, REFERENCE_NOT_FOUND,
};

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
