//! Check 7: the sender may send to the receiver (Spine's FoT check).

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::Consumer;
use crate::spine::headers::SspHeaders;

/// Check 7: the sender may send to the receiver.
///
/// - Reads: the consumer check 5 found (its `may_send_to`) and `Ssp-To`.
/// - Refuses: a receiver not in `may_send_to` (unless that is `"*"`), with 403
///   [`sender-to-receiver-not-authorised`](ids::SENDER_TO_RECEIVER_NOT_AUTHORISED),
///   placeholders `from_asid` and `to_asid`.
pub fn check(consumer: &Consumer, ssp: &SspHeaders) -> Result<(), Rejection> {
    if consumer.may_send_to(&ssp.to) {
        Ok(())
    } else {
        Err(Rejection::new(ids::SENDER_TO_RECEIVER_NOT_AUTHORISED)
            .with(Placeholder::FromAsid, ssp.from.as_str())
            .with(Placeholder::ToAsid, ssp.to.as_str()))
    }
}
