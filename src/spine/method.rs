//! Check 2: the SSP brokers GET, POST, PUT and DELETE only.

use http::header::ALLOW;
use http::{HeaderValue, Method};

use crate::config::rejection::{ids, Placeholder, Rejection};

/// The methods the SSP brokers, as the `Allow` header of its 405 lists them (RFC 9110: a 405
/// names the methods the target supports). The SSP forwards these four to any registered
/// target whatever the interaction; which one fits an interaction is the provider's call
/// (check 10), so the list does not narrow per interaction.
pub const BROKERED: &str = "GET, POST, PUT, DELETE";

/// Check 2: the method is one the SSP brokers.
///
/// - Reads: the request method.
/// - Refuses: anything but GET, POST, PUT and DELETE, with [`refusal`].
pub fn check(method: &Method) -> Result<(), Rejection> {
    match *method {
        Method::GET | Method::POST | Method::PUT | Method::DELETE => Ok(()),
        _ => Err(refusal(method)),
    }
}

/// 405 [`method-not-allowed`](ids::METHOD_NOT_ALLOWED) for `method`, with `Allow` listing the
/// brokered methods. Spine's payload names nothing, so the reason goes in the diagnostics
/// header.
pub fn refusal(method: &Method) -> Rejection {
    Rejection::new(ids::METHOD_NOT_ALLOWED)
        .with(
            Placeholder::Diagnostics,
            format!("The SSP brokers GET, POST, PUT and DELETE, not {method}"),
        )
        .with_header(ALLOW, HeaderValue::from_static(BROKERED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_fhir_methods_pass() {
        for m in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            assert!(check(&m).is_ok());
        }
        for m in [Method::PATCH, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            let refusal = check(&m).unwrap_err();
            assert_eq!(refusal.error, ids::METHOD_NOT_ALLOWED);
            assert_eq!(
                refusal.headers,
                [(ALLOW, HeaderValue::from_static(BROKERED))]
            );
            assert!(refusal
                .value(Placeholder::Diagnostics)
                .is_some_and(|d| d.ends_with(m.as_str())));
        }
    }
}
