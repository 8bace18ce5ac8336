//! The record of one request's way through the checks: each check's name and result, for
//! the logs and the journal, so a consumer can see exactly why a request was refused.
//!
//! What the trail keeps follows the data-handling rule of the README: a detail is bounded,
//! free of control characters and NHS numbers, and callers record what a rule found, never a
//! JWT claim's or a body's value (check 10 records its rules and claims by name).

use serde::Serialize;

use crate::config::rejection::Rejection;
use crate::wire::echo;

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRecord {
    /// The check's name, e.g. `fot` or `endpoint`, as the journal shows it.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed (or what it noted), when there is something to say.
    pub detail: Option<String>,
}

/// The checks a request went through, in order.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Trail {
    /// Every check run, in the order run.
    pub checks: Vec<CheckRecord>,
}

impl Trail {
    /// An empty trail with room for every phase a request can pass, so recording them never
    /// grows it.
    pub fn new() -> Self {
        Self {
            checks: Vec::with_capacity(16),
        }
    }

    /// Records a check's outcome and passes it on, so `?` still answers with the rejection.
    pub fn check<T>(
        &mut self,
        name: &'static str,
        result: Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        self.checks.push(CheckRecord {
            name,
            ok: result.is_ok(),
            detail: result
                .as_ref()
                .err()
                .map(|r| echo::redact(&r.recorded(), echo::LONG)),
        });
        result
    }

    /// Records a check with a note (e.g. report-mode warnings, or why it failed).
    pub fn note(&mut self, name: &'static str, ok: bool, detail: impl AsRef<str>) {
        self.checks.push(CheckRecord {
            name,
            ok,
            detail: Some(echo::redact(detail.as_ref(), echo::LONG)),
        });
    }

    /// The check that failed, if one did: the last one recorded as not ok.
    pub fn failed(&self) -> Option<&CheckRecord> {
        self.checks.iter().rev().find(|c| !c.ok)
    }
}
