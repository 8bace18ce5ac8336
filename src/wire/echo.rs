//! Consumer text as ssp-sim repeats it, in answers, logs and the journal: cut to a bound and
//! with control characters replaced, so a hostile request can neither grow a record without
//! limit nor forge a log line. What logs and the journal keep also has its NHS numbers masked
//! (README, "Personal data").

use std::borrow::Cow;

/// A value quoted inside a message (a header value, a path segment, a target in a sentence).
pub const SHORT: usize = 120;

/// A whole message, a target URL, or one check's detail in the journal.
pub const LONG: usize = 2048;

/// A placeholder value of an answer: the diagnostics of check 10 list every broken rule.
pub const VALUE: usize = 8192;

/// What stands for an NHS number in logs and the journal.
pub const MASKED_NHS_NUMBER: &str = "**********";

/// `text` cut to at most `max` characters (an ellipsis marks the cut) with every control
/// character replaced by `?`. Borrowed when nothing needed changing.
pub fn clean(text: &str, max: usize) -> Cow<'_, str> {
    // Most of what is cleaned is short printable ASCII (ASIDs, trace ids, paths): one pass
    // over the bytes says so without decoding characters.
    if text.len() <= max && text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Cow::Borrowed(text);
    }
    let cut = text.char_indices().nth(max).map(|(at, _)| at);
    let kept = &text[..cut.unwrap_or(text.len())];
    if cut.is_none() && !kept.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out: String = kept
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cut.is_some() {
        out.push('…');
    }
    Cow::Owned(out)
}

/// As `clean`, and every NHS number masked: for what logs and the journal keep.
pub fn redact(text: &str, max: usize) -> String {
    let mut out = String::new();
    redact_into(&mut out, text, max);
    out
}

/// [`redact`], written onto the end of `out`.
pub fn redact_into(out: &mut String, text: &str, max: usize) {
    out.push_str(&clean(&mask_nhs_numbers(text), max));
}

/// Whether `bytes` hold a run of ten or more ASCII digits. Any ten bytes in a row include one
/// at a multiple of ten, so only those are looked at until one is a digit: a tenth of the
/// bytes of most text, which runs on every request (the journal, the trail, the log).
fn has_long_digit_run(bytes: &[u8]) -> bool {
    let digit = |b: &&u8| b.is_ascii_digit();
    (0..bytes.len())
        .step_by(10)
        .filter(|&at| bytes[at].is_ascii_digit())
        .any(|at| {
            let before = bytes[..at].iter().rev().take_while(digit).count();
            let from = bytes[at..].iter().take_while(digit).count();
            before + from >= 10
        })
}

/// `text` with every NHS number replaced by [`MASKED_NHS_NUMBER`]. An NHS number is taken to
/// be any run of exactly ten ASCII digits, whether or not its check digit is right (a mistyped
/// one is still somebody's); a percent-escape (`%7C`) ends a run as any other non-digit does,
/// so `nhs-number%7C9434765870` is masked too. A UUID (a trace id, a document id) is left
/// whole: its last group can hold ten digits in a row, and it names no one.
pub fn mask_nhs_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // Escapes and UUIDs only shorten runs of digits: without a run of ten or more there is
    // nothing to mask, and most text has none.
    if !has_long_digit_run(bytes) {
        return Cow::Borrowed(text);
    }
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if is_uuid(&bytes[i..]) {
            i += UUID_LEN;
            continue;
        }
        if is_escape(&bytes[i..]) {
            // Its hex digits (`%20`) belong to the escape, not to a run.
            i += 3;
            continue;
        }
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i - start == 10 {
            runs.push(start..i);
        }
    }
    if runs.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for run in runs {
        out.push_str(&text[at..run.start]);
        out.push_str(MASKED_NHS_NUMBER);
        at = run.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

const UUID_LEN: usize = 36;

/// Whether `bytes` starts with a UUID's shape: 8-4-4-4-12 hex digits.
fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() >= UUID_LEN
        && bytes[..UUID_LEN]
            .iter()
            .enumerate()
            .all(|(at, b)| match at {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
}

/// Whether `bytes` starts with a percent-escape, `%` and two hex digits.
fn is_escape(bytes: &[u8]) -> bool {
    bytes.len() >= 3
        && bytes[0] == b'%'
        && bytes[1].is_ascii_hexdigit()
        && bytes[2].is_ascii_hexdigit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The probe at every tenth byte finds what a scan of every byte finds.
        #[test]
        fn the_digit_run_probe_agrees_with_a_full_scan(text in "[0-9a-]{0,40}") {
            let mut run = 0;
            let scanned = text.bytes().any(|b| {
                run = if b.is_ascii_digit() { run + 1 } else { 0 };
                run >= 10
            });
            prop_assert_eq!(has_long_digit_run(text.as_bytes()), scanned);
        }
    }

    #[test]
    fn clean_cuts_at_a_character_boundary_and_replaces_controls() {
        assert!(matches!(
            clean("plain text", 20),
            Cow::Borrowed("plain text")
        ));
        assert_eq!(clean("a\nb\u{1b}[31m", 20), "a?b?[31m");
        assert_eq!(clean("ééééé", 3), "ééé…");
        assert_eq!(clean(&"x".repeat(10_000), LONG).chars().count(), LONG + 1);
    }

    #[test]
    fn ten_digit_runs_are_masked_wherever_they_stand() {
        assert_eq!(
            mask_nhs_numbers("identifier=https://fhir.nhs.uk/Id/nhs-number%7C9434765870&x=1"),
            "identifier=https://fhir.nhs.uk/Id/nhs-number%7C**********&x=1"
        );
        assert_eq!(mask_nhs_numbers("|9434765870"), "|**********");
        assert_eq!(
            mask_nhs_numbers("NHS number 9434765870."),
            "NHS number **********."
        );
        // After an escape ending in a digit (`%20`), the run starts after the escape.
        assert_eq!(mask_nhs_numbers("a%209434765870"), "a%20**********");
        // A UUID's last group may hold ten digits in a row; it is left whole.
        let trace = "45d9bd5c-64c5-48da-891c-4749215861a9";
        assert!(matches!(mask_nhs_numbers(trace), Cow::Borrowed(t) if t == trace));
        assert_eq!(
            mask_nhs_numbers("Binary/45d9bd5c-64c5-48da-891c-4749215861a9?n=9434765870"),
            "Binary/45d9bd5c-64c5-48da-891c-4749215861a9?n=**********"
        );
        // ASIDs (12 digits) and short ids are not NHS numbers.
        assert_eq!(
            mask_nhs_numbers("200000000359 /Patient/2"),
            "200000000359 /Patient/2"
        );
        assert!(matches!(mask_nhs_numbers("no digits"), Cow::Borrowed(_)));
        assert_eq!(redact("x\t9434765870", 100), "x?**********");
    }
}
