//! The record of one request's way through the checks: each check's name and result, for
//! the logs and the journal, so a consumer can see exactly why a request was refused.

use serde::Serialize;

use crate::config::rejection::Rejection;

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
    /// Records a check's outcome and passes it on, so `?` still answers with the rejection.
    pub fn check<T>(
        &mut self,
        name: &'static str,
        result: Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        self.checks.push(CheckRecord {
            name,
            ok: result.is_ok(),
            detail: result.as_ref().err().map(ToString::to_string),
        });
        result
    }

    /// Records a passed check with a note (e.g. report-mode warnings).
    pub fn note(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) {
        self.checks.push(CheckRecord {
            name,
            ok,
            detail: Some(detail.into()),
        });
    }
}
