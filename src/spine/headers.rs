//! Check 4: the SSP headers are present and well formed.

use http::HeaderValue;

use crate::config::interactions::{Interaction, InteractionKey, Interactions};
use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::Asid;
use crate::wire::echo;
use crate::wire::headers::SspValues;

/// What the SSP headers declare, once checked.
#[derive(Debug, Clone)]
pub struct SspHeaders {
    /// `Ssp-From`: the sending consumer's ASID (checks 5 and 7).
    pub from: Asid,
    /// `Ssp-To`: the receiving provider's ASID (checks 6 and 7).
    pub to: Asid,
    /// `Ssp-InteractionID`, as the catalogue interaction it names.
    pub interaction: InteractionKey,
}

/// The catalogue interaction `Ssp-InteractionID` names, if it names one. Looked up once, when
/// the request arrives, so that even a request refused before check 4 is counted under it.
pub fn declared<'i>(sent: &SspValues, interactions: &'i Interactions) -> Option<&'i Interaction> {
    sent.interaction
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|id| interactions.get(id.trim()))
}

/// Check 4: the four SSP headers are present and well formed.
///
/// - Reads: `Ssp-TraceID` (a UUID), `Ssp-From` and `Ssp-To` (ASIDs: digits), and
///   `Ssp-InteractionID`, through `declared`: what [`declared()`] found for it in the catalogue.
/// - Hands on: the [`SspHeaders`], for checks 5 to 7 and the trail.
/// - Refuses: a missing, non-ASCII or malformed header with 400
///   [`bad-request`](ids::BAD_REQUEST), the `diagnostics` naming every bad header (an unknown
///   interaction ID among them); well-formed headers whose interaction ID the catalogue does not
///   hold with the SSP's 415 [`unsupported-media-type`](ids::UNSUPPORTED_MEDIA_TYPE), as the
///   real SSP answers it (provider-testing#178), the reason in the diagnostics.
pub fn parse(sent: &SspValues, declared: Option<InteractionKey>) -> Result<SspHeaders, Rejection> {
    let mut problems = Vec::new();
    let trace = text("Ssp-TraceID", &sent.trace_id, &mut problems);
    let from = text("Ssp-From", &sent.from, &mut problems);
    let to = text("Ssp-To", &sent.to, &mut problems);
    let interaction = text("Ssp-InteractionID", &sent.interaction, &mut problems);

    // Only checked: answers echo the header itself, from the request's head.
    let trace_ok = trace.and_then(|t| match uuid::Uuid::try_parse(t) {
        Ok(_) => Some(()),
        Err(_) => {
            problems.push(format!("Ssp-TraceID header must be a UUID (e.g. 5a7a1f1e-2b8a-4f4c-9a0e-3c2f1d0b9e71), got `{}`", echo::clean(t, echo::SHORT)));
            None
        }
    });
    let mut asid = |name: &str, v: Option<&str>| {
        v.and_then(|v| {
            let asid = Asid::parse(v);
            if asid.is_none() {
                problems.push(format!(
                    "{name} header must be an ASID (digits only), got `{}`",
                    echo::clean(v, echo::SHORT)
                ));
            }
            asid
        })
    };
    let from = asid("Ssp-From", from);
    let to = asid("Ssp-To", to);
    let mut unknown = None;
    let interaction = interaction.and_then(|id| match declared {
        Some(key) => Some(key),
        None => {
            unknown = Some(format!(
                "Ssp-InteractionID header `{}` is not a GP Connect interaction ID (e.g. urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1)",
                echo::clean(id, echo::SHORT)
            ));
            None
        }
    });
    match (trace_ok, from, to, interaction) {
        (Some(()), Some(from), Some(to), Some(interaction)) => Ok(SspHeaders {
            from,
            to,
            interaction,
        }),
        // Only the interaction is unknown: the SSP answers its 415 (provider-testing#178).
        _ if problems.is_empty() => Err(Rejection::new(ids::UNSUPPORTED_MEDIA_TYPE)
            .with(Placeholder::Diagnostics, unknown.unwrap_or_default())),
        _ => {
            problems.extend(unknown);
            Err(Rejection::bad_request(problems.join("; ")))
        }
    }
}

/// Header `name`'s value as text, or `None` after saying in `problems` why it has none.
fn text<'v>(
    name: &str,
    sent: &'v Option<HeaderValue>,
    problems: &mut Vec<String>,
) -> Option<&'v str> {
    match sent.as_ref().map(HeaderValue::to_str) {
        None => {
            problems.push(format!("{name} header is missing"));
            None
        }
        Some(Err(_)) => {
            problems.push(format!("{name} header is not visible ASCII"));
            None
        }
        Some(Ok(v)) => Some(v.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::interactions::EMBEDDED;
    use crate::spine::test_headers::headers;

    fn catalog() -> Interactions {
        Interactions::parse("interactions.toml", EMBEDDED).unwrap()
    }

    /// Check 4 as the gateway runs it: the interaction looked up first.
    fn check(h: &http::HeaderMap) -> Result<SspHeaders, Rejection> {
        let sent = SspValues::of(h);
        parse(&sent, declared(&sent, &catalog()).map(|i| i.key))
    }

    #[test]
    fn well_formed_headers_pass() {
        let h = headers(&[
            ("ssp-traceid", "5a7a1f1e-2b8a-4f4c-9a0e-3c2f1d0b9e71"),
            ("ssp-from", "200000000359"),
            ("ssp-to", "918999198738"),
            (
                "ssp-interactionid",
                "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
            ),
        ]);
        let ssp = check(&h).unwrap();
        assert_eq!(ssp.from.as_str(), "200000000359");
    }

    #[test]
    fn every_bad_header_is_named() {
        let h = headers(&[
            ("ssp-traceid", "nope"),
            ("ssp-from", "20000000035x"),
            ("ssp-interactionid", "urn:x"),
        ]);
        let err = check(&h).unwrap_err();
        let d = err.value(Placeholder::Diagnostics).unwrap();
        assert!(d.contains("Ssp-TraceID header must be a UUID"), "{d}");
        assert!(d.contains("Ssp-From header must be an ASID"), "{d}");
        assert!(d.contains("Ssp-To header is missing"), "{d}");
        assert!(d.contains("Ssp-InteractionID header `urn:x`"), "{d}");
    }

    #[test]
    fn an_unknown_interaction_alone_is_the_ssps_415() {
        let h = headers(&[
            ("ssp-traceid", "5a7a1f1e-2b8a-4f4c-9a0e-3c2f1d0b9e71"),
            ("ssp-from", "200000000359"),
            ("ssp-to", "918999198738"),
            ("ssp-interactionid", "InvalidInteractionid"),
        ]);
        let err = check(&h).unwrap_err();
        assert_eq!(err.error, ids::UNSUPPORTED_MEDIA_TYPE);
        let d = err.value(Placeholder::Diagnostics).unwrap();
        assert!(
            d.contains("`InvalidInteractionid` is not a GP Connect"),
            "{d}"
        );
    }
}
