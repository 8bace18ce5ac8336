//! One request's context, as pingora's phases share one `CTX`: created when the request
//! arrives, filled in by each phase of the gateway (what the checks resolved, the negotiated
//! format, the report-mode warnings) and read at the end by the answer and the recording.

use std::time::{Instant, SystemTime};

use http::HeaderValue;

use crate::config::interactions::Interaction;
use crate::config::rejection::Rejection;
use crate::control::journal::{Details, Head};
use crate::control::trail::Trail;
use crate::provider::Warnings;
use crate::proxy::forwarder::Peer;
use crate::proxy::gateway::Routes;
use crate::wire::format::Format;

/// Everything one request's phases learn, borrowing from the routes it started with (a
/// reload mid-request does not change them).
pub struct Context<'r> {
    /// The routes and backend clients this request runs against.
    pub routes: &'r Routes,
    /// How the consumer reached ssp-sim.
    pub peer: Peer,
    /// Wall-clock arrival, for the journal.
    pub received: SystemTime,
    /// Monotonic arrival, for durations.
    pub started: Instant,
    /// The request line and SSP headers as sent, for the journal and the error's trace id.
    pub head: Head,
    /// Each phase's result, in order.
    pub trail: Trail,
    /// The catalogue interaction `Ssp-InteractionID` names, from arrival on.
    pub interaction: Option<&'r Interaction>,
    /// The format check 9 negotiated; errors are rendered in it (JSON until then).
    pub format: Format,
    /// What check 10 found broken in report mode, added to any answer.
    pub warnings: Warnings,
    /// The ids of the check-10 rules the request broke, for the coverage report.
    pub broken: Vec<&'static str>,
    /// What the journal keeps beside the entry, when `journal_details` is on.
    pub details: Option<Details>,
    /// The request's `Origin`, which the answer allows (CORS).
    pub origin: Option<HeaderValue>,
}

impl<'r> Context<'r> {
    /// The context of a request that has just arrived.
    pub fn new(
        routes: &'r Routes,
        peer: Peer,
        head: Head,
        interaction: Option<&'r Interaction>,
    ) -> Self {
        Self {
            routes,
            peer,
            received: SystemTime::now(),
            started: Instant::now(),
            head,
            trail: Trail::new(),
            interaction,
            format: Format::Json,
            warnings: Warnings::default(),
            broken: Vec::new(),
            details: None,
            origin: None,
        }
    }

    /// Records a phase's result on the trail and passes it on, so `?` answers a refusal.
    pub fn check<T>(
        &mut self,
        phase: &'static str,
        result: Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        self.trail.check(phase, result)
    }

    /// Like `check`, with a note for a passed phase that has something to say.
    pub fn check_noted<T>(
        &mut self,
        phase: &'static str,
        result: Result<T, Rejection>,
        note: impl FnOnce(&T) -> Option<String>,
    ) -> Result<T, Rejection> {
        match result.as_ref().ok().and_then(note) {
            Some(detail) => {
                self.trail.note(phase, true, detail);
                result
            }
            None => self.trail.check(phase, result),
        }
    }
}
