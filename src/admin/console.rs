//! The console: one page (HTML, script and style built into the binary) that shows the
//! journal live, explains a request, adds faults, shows the mock SDS and the coverage report,
//! all through the admin API. No build step, nothing fetched from elsewhere.
//!
//! The assets hold no data, so they are served without the admin token (the page asks for
//! it, keeps it in `sessionStorage` and sends it as a header on every call). A strict
//! Content-Security-Policy forbids inline script and any other origin: even text that a
//! consumer sent and that somehow reached the DOM as markup could not run.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};

use crate::wire::body::{self, Body};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Only this origin's own script, style and API; no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console page (also what `GET /report` answers a browser).
pub fn page() -> Response<Body> {
    asset(PAGE, "text/html; charset=utf-8")
}

/// The asset at `path`, when it is one of the console's.
pub fn file(path: &str) -> Option<Response<Body>> {
    match path {
        "/" => Some(page()),
        "/console.js" => Some(asset(SCRIPT, "text/javascript; charset=utf-8")),
        "/console.css" => Some(asset(STYLE, "text/css; charset=utf-8")),
        _ => None,
    }
}

fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("content-security-policy", HeaderValue::from_static(POLICY));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}
