//! The two FHIR serialisations and their content types.

/// The serialisation a response is wanted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/fhir+json`.
    Json,
    /// `application/fhir+xml`.
    Xml,
}

/// `Content-Type` of every error response in JSON.
pub const FHIR_JSON_UTF8: &str = "application/fhir+json;charset=utf-8";

/// `Content-Type` of a provider error answered in XML.
pub const FHIR_XML_UTF8: &str = "application/fhir+xml;charset=utf-8";
