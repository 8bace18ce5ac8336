//! The Spine checks of DESIGN.md section 4, one file each, in the order they run.
//!
//! Each check is a small function that either hands the next check what it established
//! or returns the `Rejection` that answers the request.

pub mod endpoint; // 8
pub mod fot; // 7
pub mod headers; // 4
pub mod media_type;
pub mod method; // 2
pub mod provider; // 10
pub mod receiver; // 6
pub mod sender; // 5
pub mod target; // 3 // 9

/// Building request headers for the checks' unit tests.
#[cfg(test)]
mod test_headers {
    use http::HeaderMap;

    /// A header map of `(name, value)` pairs.
    pub fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }
}
