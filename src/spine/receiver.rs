//! Check 6: `Ssp-To` is a provider with an endpoint registered for the interaction.

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::{Endpoint, Provider, Registry};
use crate::spine::headers::SspHeaders;

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
