//! Check 2: the SSP brokers GET, POST, PUT and DELETE only.

use http::Method;

use crate::config::rejection::{ids, Rejection};

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
