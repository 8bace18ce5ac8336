//! Check 5: `Ssp-From` is a consumer registered to initiate the interaction.

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::{Consumer, Registry};
use crate::spine::headers::SspHeaders;

/// Check 5: `Ssp-From` is a consumer registered to initiate the declared interaction.
///
/// - Reads: `Ssp-From` and the interaction (check 4) against the registry's consumers.
/// - Hands on: the [`Consumer`], for check 7.
/// - Refuses: an unknown ASID, or one not registered for the interaction, with 403
///   [`sender-asid-not-authorised`](ids::SENDER_NOT_AUTHORISED), placeholders `from_asid` and
///   `to_asid`.
pub fn check<'r>(registry: &'r Registry, ssp: &SspHeaders) -> Result<&'r Consumer, Rejection> {
    registry
        .consumer(&ssp.from)
        .filter(|c| c.may_initiate(ssp.interaction))
        .ok_or_else(|| {
            Rejection::new(ids::SENDER_NOT_AUTHORISED)
                .with(Placeholder::FromAsid, ssp.from.as_str())
                .with(Placeholder::ToAsid, ssp.to.as_str())
        })
}
