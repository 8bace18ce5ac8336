//! What goes on the wire, below every other part: response and request bodies, the FHIR
//! formats and their content types, the FHIR XML writer, the identifier systems, and how
//! consumer text is echoed.

pub mod body;
pub mod echo;
pub mod format;
pub mod headers;
pub mod systems;
pub mod xml;
