//! The `store` setting: where replicas share faults, the journal, coverage counts and rate
//! limits. Only Redis is spoken, so the one form accepted is `redis://HOST:PORT[/DB]`; it is
//! checked here once, at start-up, so a typo is a start-up error rather than a replica that
//! silently runs alone.

use std::fmt;

/// A validated `redis://HOST:PORT[/DB]` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// The host name or IP address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The logical database, 0 unless the path names another.
    pub db: u16,
}

/// The fix every refused address is told.
const FORM: &str = "write redis://HOST:PORT or redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0 (flag --store, variable SSP_SIM_STORE)";

impl StoreUrl {
    /// Reads `text`; the error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{text}` {why}; {FORM}");
        let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if url.scheme() != "redis" {
            return Err(bad(
                "is not a redis:// URL (ssp-sim shares state through Redis only)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // A password in a flag shows in `ps`, and in a URL it ends up in logs.
            return Err(bad("carries credentials, which ssp-sim does not send; protect the Redis port by binding it to a private network"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("has a query or fragment"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("names no host"))?
            .to_owned();
        let port = url.port().ok_or_else(|| bad("names no port"))?;
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            n => n
                .parse()
                .map_err(|_| bad(&format!("has `/{n}` where a database number belongs")))?,
        };
        Ok(Self { host, port, db })
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_and_an_optional_database_are_read() {
        let url = StoreUrl::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.db),
            ("127.0.0.1", 6379, 0)
        );
        let url = StoreUrl::parse("redis://cache.internal:7000/3").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.db),
            ("cache.internal", 7000, 3)
        );
        assert_eq!(url.to_string(), "redis://cache.internal:7000/3");
    }

    #[test]
    fn anything_else_is_refused_with_the_form_to_write() {
        for (text, why) in [
            ("localhost:6379", "not a redis:// URL"),
            ("http://127.0.0.1:6379", "not a redis:// URL"),
            ("redis://127.0.0.1", "names no port"),
            (
                "redis://127.0.0.1:6379/x",
                "where a database number belongs",
            ),
            ("redis://u:secret@127.0.0.1:6379", "carries credentials"),
            ("redis://127.0.0.1:6379?a=1", "query"),
        ] {
            let err = StoreUrl::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains("redis://HOST:PORT"), "{err}");
        }
    }
}
