//! What the SSP does for browser-based consumers (SSP implementation guide: *"Cross-Origin
//! Resource Sharing … MUST be supported"* and *"HTTP Strict Transport Security (HSTS) … MUST
//! be employed"*): it answers a CORS preflight for a registered endpoint, lets the response of
//! a cross-origin request be read, and tells browsers to keep to HTTPS.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN,
    STRICT_TRANSPORT_SECURITY, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, Uri};

use crate::config::routes::Registry;
use crate::spine::{endpoint, target};
use crate::wire::body::{self, Body};

/// The methods the SSP brokers (check 2), and the preflight itself.
const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS");

/// The request headers a GP Connect consumer sends: the SSP headers, the JWT, and the FHIR
/// request headers of the interactions.
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static(
    "Ssp-TraceID, Ssp-From, Ssp-To, Ssp-InteractionID, Authorization, Accept, Content-Type, \
     Prefer, If-Match, If-None-Exist",
);

/// The response headers a browser script may read beyond the CORS-safelisted ones.
const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static(
    "Ssp-TraceID, Ssp-Sim-Diagnostics, Ssp-Sim-Warnings, ETag, Location, Last-Modified, \
     X-Rate-Limit-Limit, X-Rate-Limit-Remaining, X-Rate-Limit-Reset, Retry-After, Allow",
);

/// How long a browser may cache a preflight's answer (Chromium caps it at two hours).
const MAX_AGE: HeaderValue = HeaderValue::from_static("7200");

/// One year, the usual HSTS lifetime; no `includeSubDomains`, as ssp-sim answers on one host.
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// The answer to a CORS preflight: an `OPTIONS` whose target URL is below the service root of
/// an endpoint registered in routes.toml. Any other `OPTIONS` goes on to check 2 (405).
pub fn preflight(method: &Method, uri: &Uri, registry: &Registry) -> Option<Response<Body>> {
    if method != Method::OPTIONS {
        return None;
    }
    let target = target::parse(uri).ok()?;
    let registered = registry
        .providers()
        .flat_map(|p| p.endpoints.iter())
        .any(|e| endpoint::check(&target, e).is_ok());
    if !registered {
        return None;
    }
    // 200 rather than 204: some older browsers and proxies mishandle a 204 preflight.
    let mut response = Response::new(body::empty());
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
    headers.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE);
    Some(response)
}

/// The `Origin` a request came with, kept for [`finish`].
pub fn origin(request: &HeaderMap) -> Option<HeaderValue> {
    request.get(ORIGIN).cloned()
}

/// Adds to any response what browsers need: for a request with an `Origin`, that origin
/// allowed (echoed, with credentials, since a GP Connect call carries a client certificate and
/// a bearer token), and on the TLS listener `Strict-Transport-Security`.
pub fn finish(origin: Option<HeaderValue>, tls: bool, headers: &mut HeaderMap) {
    if let Some(origin) = origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    if tls {
        headers.insert(STRICT_TRANSPORT_SECURITY, HSTS);
    }
}
