//! The identifiers the Spine Directory Service gives systems and endpoints, as types that can
//! only hold a well-formed value: checked once where they are read (routes.toml, the SSP
//! headers), trusted everywhere after.

use std::fmt;

/// Declares a string newtype with its check, `as_str`, `Display` and `Deref<Target = str>`.
macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The identifier, when `text` is well formed.
            pub fn parse(text: &str) -> Option<Self> {
                let check: fn(&str) -> bool = $check;
                check(text).then(|| Self(text.to_owned()))
            }

            /// The identifier as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    };
}

identifier!(
    /// An Accredited System ID: 1 to 20 ASCII digits (real ASIDs have 12).
    Asid,
    |t| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit())
);

identifier!(
    /// An ODS organisation code: 1 to 10 ASCII letters and digits (e.g. `A20047`).
    OdsCode,
    |t| !t.is_empty() && t.len() <= 10 && t.bytes().all(|b| b.is_ascii_alphanumeric())
);

identifier!(
    /// A CPA id (the contract SDS holds for an MHS endpoint): 1 to 64 ASCII letters and
    /// digits (e.g. `S20047821870`).
    CpaId,
    |t| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric())
);

identifier!(
    /// An `nhsMhsEndPoint`: an absolute http(s) URL with a host, without query, fragment or
    /// trailing slash, compared byte for byte with target URLs.
    ServiceRoot,
    |t| service_root_problem(t).is_none()
);

/// What keeps `text` from being a service root, in words a routes.toml author can act on.
pub fn service_root_problem(text: &str) -> Option<String> {
    match url::Url::parse(text) {
        _ if text.ends_with('/') => Some(format!("`{text}` ends with `/`; SDS holds service roots without a trailing slash: write `{}`", text.trim_end_matches('/'))),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => Some(format!("`{text}` is not an http(s) URL")),
        Ok(url) if url.query().is_some() || url.fragment().is_some() => Some(format!("`{text}` has a query or fragment; a service root is a scheme, host and path")),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => Some(format!("`{text}` has no host")),
        Ok(_) => None,
        Err(e) => Some(format!("`{text}` is not a URL ({e}); write e.g. \"https://provider.example.nhs.uk/A20047/STU3/1/gpconnect\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_identifier_refuses_what_sds_would_not_hold() {
        assert!(Asid::parse("918999198738").is_some());
        assert!(Asid::parse("91899919873x").is_none());
        assert!(OdsCode::parse("A20047").is_some());
        assert!(OdsCode::parse("A2 0047").is_none());
        assert!(CpaId::parse("S20047821870").is_some());
        assert!(CpaId::parse("").is_none());
        assert!(ServiceRoot::parse("https://p.example/A1/STU3/1/gpconnect").is_some());
        assert!(ServiceRoot::parse("https://p.example/gpconnect/").is_none());
        assert!(ServiceRoot::parse("ftp://p.example/gpconnect").is_none());
    }
}
