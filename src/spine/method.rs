//! Check 2: the SSP brokers GET, POST, PUT and DELETE only.

use http::Method;

use crate::config::rejection::{ids, Rejection};

/// Check 2: the method is one the SSP brokers.
///
/// - Reads: the request method.
/// - Refuses: anything but GET, POST, PUT and DELETE, with 405
///   [`method-not-allowed`](ids::METHOD_NOT_ALLOWED) (no placeholders: Spine's 405 names
///   nothing).
pub fn check(method: &Method) -> Result<(), Rejection> {
    match *method {
        Method::GET | Method::POST | Method::PUT | Method::DELETE => Ok(()),
        _ => Err(Rejection::new(ids::METHOD_NOT_ALLOWED)),
    }
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
            assert_eq!(check(&m).unwrap_err().error, ids::METHOD_NOT_ALLOWED);
        }
    }
}
