//! Faults: rules that make a chosen answer happen on demand, so consumers can prove their
//! error handling. A rule matches on what the Spine checks identified (sender and receiver
//! ASID, interaction, the FHIR request, an NHS number) and answers with any catalogue error,
//! a delay (then the request goes on), a dropped connection, or a given status and body; a
//! number of times or until removed.
//!
//! Rules come from `[[fault]]` tables in routes.toml (replaced on every reload) and from the
//! admin API (kept until removed). They are validated once, into `Rule`; the gateway only
//! asks `Faults::take` at two points of a request's life (see `Stage`).
//!
//! The path of a rule: `rule` (as declared, validated), `matching` (does it fit a request),
//! `nhs_number` (finding the patient in the URL or the body), `store` (installed rules and
//! their remaining counts), `effect` (what firing does to the request).

mod effect;
mod matching;
mod nhs_number;
mod rule;
mod store;

pub use effect::Effect;
pub use matching::Subject;
pub use rule::{
    declared, FaultSpec, FieldError, MatchSpec, RespondSpec, Rule, Stage, CONNECT_FAILURE,
};
pub use store::{
    AddError, Claim, Fault, Faults, Full, Ledger, LedgerError, Origin, Pending, SharedRule,
};
