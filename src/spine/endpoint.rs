//! Check 8: the target URL starts with the service root SDS holds for the receiver and
//! interaction. Spine compares strings, so an IP for the host name, an added `:443` or a
//! change of case all fail.
//!
//! What follows the service root must stay below it: a dot segment (`..`, `.`, raw or
//! percent-encoded) or a backslash would let a request climb out of the registered endpoint
//! on the backend (`…/gpconnect/../../admin`), and the SSP forwards only to the registered
//! endpoint. Such a path is a `bad-request` naming the segment.

use percent_encoding::percent_decode_str;

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::Endpoint;
use crate::spine::target::TargetUrl;
use crate::wire::echo;

/// Check 8: the target URL starts with the service root SDS holds for the receiver and
/// interaction, at a path-segment boundary.
///
/// - Reads: the target URL (check 3) and the endpoint check 6 found.
/// - Hands on: the rest of the target after the service root, the FHIR path and query (empty,
///   or starting with `/` or `?`), for check 10, the demo provider and the forwarder.
/// - Refuses: any other target, with 400 [`endpoint-varies`](ids::ENDPOINT_VARIES),
///   placeholders `endpoint` (the registered service root), `cpa_id` and `target_url`.
pub fn check<'t>(target: &'t TargetUrl, endpoint: &Endpoint) -> Result<&'t str, Rejection> {
    let url = target.as_str();
    match url.strip_prefix(endpoint.service_root.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
            match escaping_segment(rest) {
                None => Ok(rest),
                Some(segment) => Err(Rejection::bad_request(format!(
                    "The FHIR request after the service root must not hold dot segments or \
                     backslashes, raw or percent-encoded, and `{}` does: the SSP forwards only to \
                     the registered endpoint {}",
                    echo::clean(segment, echo::SHORT),
                    endpoint.service_root.as_str()
                ))),
            }
        }
        _ => Err(Rejection::new(ids::ENDPOINT_VARIES)
            .with(Placeholder::Endpoint, endpoint.service_root.as_str())
            .with(Placeholder::CpaId, endpoint.cpa_id.as_str())
            .with(Placeholder::TargetUrl, url)),
    }
}

/// The first path segment of `rest` (before any query) that is, or decodes to, a dot segment,
/// or holds a backslash; as sent.
fn escaping_segment(rest: &str) -> Option<&str> {
    let path = &rest[..rest.find('?').unwrap_or(rest.len())];
    path.split('/').find(|segment| {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        decoded
            .split(['/', '\\'])
            .any(|part| part == "." || part == "..")
            || decoded.contains('\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::interactions::InteractionSet;
    use crate::config::routes::Backend;
    use crate::config::sds::{CpaId, ServiceRoot};

    fn endpoint() -> Endpoint {
        Endpoint {
            service_root: ServiceRoot::parse(
                "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect",
            )
            .unwrap(),
            cpa_id: CpaId::parse("S20047821870").unwrap(),
            interactions: InteractionSet::new(),
            backend: Backend::Demo,
            jwt: Default::default(),
        }
    }

    fn target(url: &str) -> TargetUrl {
        crate::spine::target::parse(&format!("/{url}").parse().unwrap()).unwrap()
    }

    #[test]
    fn the_registered_root_and_anything_below_it_pass() {
        let e = endpoint();
        let t = target("https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/Patient/2?x=1");
        assert_eq!(check(&t, &e).unwrap(), "/Patient/2?x=1");
        let t = target("https://provider.example.nhs.uk/A20047/STU3/1/gpconnect");
        assert_eq!(check(&t, &e).unwrap(), "");
    }

    #[test]
    fn dot_segments_and_backslashes_below_the_root_are_bad_requests_naming_the_segment() {
        let e = endpoint();
        for (rest, segment) in [
            ("/../../admin", ".."),
            ("/Patient/%2E%2e", "%2E%2e"),
            ("/..%2Fadmin", "..%2Fadmin"),
            ("/./metadata", "."),
            ("/Patient%5C1", "Patient%5C1"),
        ] {
            let t = target(&format!(
                "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect{rest}"
            ));
            let err = check(&t, &e).unwrap_err();
            assert_eq!(err.error, ids::BAD_REQUEST, "{rest}");
            let diagnostics = err.value(Placeholder::Diagnostics).unwrap();
            assert!(
                diagnostics.contains(&format!("`{segment}`")),
                "{diagnostics}"
            );
        }
        for rest in ["/Patient/1.2", "/a..b/...", "/metadata?x=../..%2f", ""] {
            let t = target(&format!(
                "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect{rest}"
            ));
            assert!(check(&t, &e).is_ok(), "{rest}");
        }
    }

    #[test]
    fn near_misses_vary_from_the_endpoint() {
        let e = endpoint();
        for url in [
            "https://127.0.0.1/A20047/STU3/1/gpconnect/metadata",
            "https://provider.example.nhs.uk:443/A20047/STU3/1/gpconnect/metadata",
            "https://provider.example.nhs.uk/a20047/STU3/1/gpconnect/metadata",
            "https://provider.example.nhs.uk/A20047/STU3/1/gpconnectx/metadata",
            "http://provider.example.nhs.uk/A20047/STU3/1/gpconnect/metadata",
            "https://provider.example.nhs.uk/A20047/STU3/1/metadata",
        ] {
            let err = check(&target(url), &e).unwrap_err();
            assert_eq!(err.error, ids::ENDPOINT_VARIES, "{url}");
            assert_eq!(err.value(Placeholder::TargetUrl), Some(url));
            assert_eq!(err.value(Placeholder::CpaId), Some("S20047821870"));
        }
    }
}
