//! Check 6: `Ssp-To` is a provider with an endpoint registered for the interaction.

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::{Endpoint, Provider, Registry};
use crate::spine::headers::SspHeaders;

/// Check 6: `Ssp-To` is a provider with an endpoint registered for the declared interaction.
///
/// - Reads: `Ssp-To` and the interaction (check 4) against the registry's providers and their
///   endpoints.
/// - Hands on: the [`Provider`] and the [`Endpoint`] SDS holds for the interaction, for check 8,
///   check 10 and the backend.
/// - Refuses: an unknown ASID, or a provider with no endpoint for the interaction, with 403
///   [`receiver-asid-not-authorised`](ids::RECEIVER_NOT_AUTHORISED), placeholders `from_asid`
///   and `to_asid`.
pub fn check<'r>(
    registry: &'r Registry,
    ssp: &SspHeaders,
) -> Result<(&'r Provider, &'r Endpoint), Rejection> {
    registry
        .provider(&ssp.to)
        .and_then(|p| Some((p, p.endpoint_for(ssp.interaction)?)))
        .ok_or_else(|| {
            Rejection::new(ids::RECEIVER_NOT_AUTHORISED)
                .with(Placeholder::FromAsid, ssp.from.as_str())
                .with(Placeholder::ToAsid, ssp.to.as_str())
        })
}
