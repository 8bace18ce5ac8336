//! Check 3: the request path carries the provider's absolute URL, as in
//! `GET https://ssp/https://provider/ODS/STU3/1/gpconnect/Patient/1`.

use http::Uri;

use crate::config::rejection::Rejection;
use crate::wire::echo;

/// The provider URL a consumer asked for, with its query, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(String);

impl TargetUrl {
    /// The URL as the consumer sent it, query included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Check 3: the request path holds the provider's absolute URL after the SSP's own address.
///
/// - Reads: the request's path and query.
/// - Hands on: the [`TargetUrl`], byte for byte, for check 8 and the forwarder.
/// - Refuses: a path that is not `/http://host...` or `/https://host...` (a relative path, no
///   host, another scheme), with 400 [`bad-request`](crate::config::rejection::ids::BAD_REQUEST),
///   the `diagnostics` showing the expected form and the path received. A target with one `/`
///   after the scheme (`https:/host`) is refused too, as Spine would (it is no absolute URL),
///   but the diagnostics say what almost always made it: a client that joined or normalised
///   the URL and collapsed the `//`.
pub fn parse(uri: &Uri) -> Result<TargetUrl, Rejection> {
    let raw = uri.path_and_query().map_or("", |pq| pq.as_str());
    let target = raw.strip_prefix('/').unwrap_or(raw);
    let after_scheme = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"));
    match after_scheme {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['/', '?']) => {
            Ok(TargetUrl(target.to_owned()))
        }
        _ => {
            let got = echo::clean(raw, echo::SHORT);
            Err(Rejection::bad_request(match collapsed(target) {
                Some(scheme) => format!(
                    "The target URL has one `/` after `{scheme}`, got `{got}`: the `//` was most \
                     likely collapsed by the client or a library, e.g. Python's urljoin (used by \
                     fhirclient) or a proxy merging slashes. Join strings instead: \
                     https://<ssp>/ + the service root + the resource path"
                ),
                None => format!(
                    "The request path must hold the provider's absolute URL after the SSP address, e.g. \
                     https://<ssp>/https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/metadata; got `{got}`"
                ),
            }))
        }
    }
}

/// The scheme of a target that is `http:/host...` or `https:/host...` (one slash, then a host):
/// a `//` collapsed on the way.
fn collapsed(target: &str) -> Option<&'static str> {
    ["https:", "http:"].into_iter().find(|scheme| {
        target
            .strip_prefix(scheme)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|host| !host.is_empty() && !host.starts_with(['/', '?']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_https_and_http_targets_are_kept_with_their_query() {
        let uri: Uri = "/https://p.nhs.uk/A1/STU3/1/gpconnect/Patient?identifier=a%7Cb"
            .parse()
            .unwrap();
        assert_eq!(
            parse(&uri).unwrap().as_str(),
            "https://p.nhs.uk/A1/STU3/1/gpconnect/Patient?identifier=a%7Cb"
        );
        let uri: Uri = "/http://127.0.0.1:9000/x".parse().unwrap();
        assert!(parse(&uri).is_ok());
    }

    #[test]
    fn relative_or_hostless_targets_are_bad_requests() {
        for path in [
            "/",
            "/metadata",
            "/https://",
            "/https:///x",
            "/ftp://x/y",
            "/https:/x",
        ] {
            let uri: Uri = path.parse().unwrap();
            let err = parse(&uri).unwrap_err();
            assert_eq!(err.error, "bad-request", "{path}");
        }
    }

    #[test]
    fn a_collapsed_double_slash_is_refused_naming_the_likely_cause() {
        let uri: Uri = "/https:/p.nhs.uk/A1/STU3/1/gpconnect/metadata"
            .parse()
            .unwrap();
        let detail = parse(&uri).unwrap_err().to_string();
        assert!(detail.contains("urljoin"), "{detail}");
        let uri: Uri = "/metadata".parse().unwrap();
        let detail = parse(&uri).unwrap_err().to_string();
        assert!(!detail.contains("urljoin"), "{detail}");
    }
}
