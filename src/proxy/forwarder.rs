//! Check 11: forwarding to a provider backend over pooled keep-alive connections, with
//! bodies streamed both ways.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::time::Sleep;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;

use crate::config::pem::load_roots;
use crate::config::problems::ConfigError;
use crate::config::routes::{HttpBackend, Registry};
use crate::proxy::tls;
use crate::wire::body::{self, Body, BoxError, RequestBody};

/// A pooled HTTP/HTTPS client; cheap to clone (the pool is shared).
pub type HttpClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// Why a backend could not be used; every kind answers 502 `error-communicating`.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The backend did not answer within the backend timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// Connecting, the TLS handshake, or the exchange with the backend failed.
    #[error("{0}")]
    Backend(#[from] hyper_util::client::legacy::Error),
    /// The request to the backend could not be built from the consumer's.
    #[error("cannot build the backend request: {0}")]
    Request(#[from] http::Error),
}

/// The TLS material every backend client trusts: the public web PKI plus the dev CA.
#[derive(Debug, Clone)]
pub struct Clients {
    roots: RootCertStore,
    shared: HttpClient,
}

impl Clients {
    /// Clients trusting the public web PKI plus the certificates of `ca` (the dev CA).
    pub fn new(ca: Option<&Path>) -> Result<Self, tls::TlsError> {
        let roots = match ca {
            Some(path) => load_roots(path)?,
            None => RootCertStore::empty(),
        };
        let shared = build(tls::client_config(&roots, None)?);
        Ok(Self { roots, shared })
    }

    /// The pooled clients a registry's backends need: the shared one, and one per client
    /// identity routes.toml names, built once when the routes are installed.
    pub fn pool(&self, registry: &Registry) -> Result<Pool, ConfigError> {
        let mut identified = Vec::new();
        for identity in registry.identities() {
            let config = tls::client_config(&self.roots, Some((&identity.cert, &identity.key)))
                .map_err(|e| ConfigError::file(&registry.file, e.to_string()))?;
            identified.push(build(config));
        }
        Ok(Pool {
            shared: self.shared.clone(),
            identified,
        })
    }
}

/// The clients of one registry's backends; replaced with the registry on reload.
#[derive(Debug, Clone)]
pub struct Pool {
    shared: HttpClient,
    /// Indexed by `ClientIdentity::index`.
    identified: Vec<HttpClient>,
}

impl Pool {
    /// The client for `backend`: its identity's, else the shared one.
    pub fn client(&self, backend: &HttpBackend) -> &HttpClient {
        backend
            .identity
            .as_ref()
            .and_then(|identity| self.identified.get(identity.index))
            .unwrap_or(&self.shared)
    }
}

fn build(config: rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(https)
}

/// How the consumer reached ssp-sim, for the forwarding headers.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The consumer's socket address; its IP goes into `X-Forwarded-For` and `Forwarded: for=`.
    pub addr: SocketAddr,
    /// Whether it came over TLS: `Forwarded: proto=https` rather than `http`.
    pub tls: bool,
}

/// Sends the request to the backend: the service root replaced by the backend's base, the rest
/// of the path and the query byte for byte, hop-by-hop headers dropped, forwarding headers added.
pub async fn forward(
    client: &HttpClient,
    backend: &HttpBackend,
    request: Request<RequestBody>,
    rest: &str,
    peer: Peer,
    timeout: Duration,
) -> Result<Response<Body>, ForwardError> {
    let (mut parts, body) = request.into_parts();
    let path = if backend.base_path.is_empty() && !rest.starts_with('/') {
        format!("/{rest}")
    } else {
        format!("{}{rest}", backend.base_path)
    };
    let uri: Uri = format!("{}{path}", backend.origin)
        .parse()
        .map_err(http::Error::from)?;
    let ssp_host = parts.headers.get(header::HOST).cloned();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    add_forwarding(&mut parts.headers, peer, ssp_host.as_ref());
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let upstream = Request::from_parts(parts, body);

    let response = tokio::time::timeout(timeout, client.request(upstream))
        .await
        .map_err(|_| ForwardError::Timeout(timeout))??;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(
        parts,
        body::stream(Stalled::new(body, timeout)),
    ))
}

/// A backend response body that fails once no frame has come for `limit`: a backend that
/// stalls mid-body must not hold the consumer's request open for ever. The consumer then sees
/// the connection close before the body's end, as behind a real SSP.
struct Stalled<B> {
    inner: B,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> Stalled<B> {
    fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> http_body::Body for Stalled<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.limit;
                self.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                    "the backend sent nothing for {:?} in the middle of its body",
                    self.limit
                )
                .into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // hyper frames the body itself; a forwarded Transfer-Encoding would be a second framing.
    headers.remove(header::TRANSFER_ENCODING);
}

fn add_forwarding(headers: &mut HeaderMap, peer: Peer, host: Option<&HeaderValue>) {
    let ip = peer.addr.ip();
    let node = if ip.is_ipv6() {
        format!("\"[{ip}]\"")
    } else {
        ip.to_string()
    };
    let proto = if peer.tls { "https" } else { "http" };
    let mut forwarded = format!("for={node};proto={proto}");
    if let Some(host) = host.and_then(|h| h.to_str().ok()) {
        forwarded.push_str(&format!(";host=\"{host}\""));
    }
    append(headers, header::FORWARDED, &forwarded);
    append(
        headers,
        HeaderName::from_static("x-forwarded-for"),
        &ip.to_string(),
    );
}

/// Appends to a list header, as a proxy in a chain does.
fn append(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    let joined = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(old) => format!("{old}, {value}"),
        None => value.to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&joined) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("ssp-traceid", HeaderValue::from_static("t"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("ssp-traceid"));
    }

    #[test]
    fn forwarding_headers_append_to_a_chain() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let peer = Peer {
            addr: "[::1]:5000".parse().unwrap(),
            tls: true,
        };
        add_forwarding(
            &mut h,
            peer,
            Some(&HeaderValue::from_static("localhost:8443")),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, ::1");
        assert_eq!(
            h["forwarded"],
            "for=\"[::1]\";proto=https;host=\"localhost:8443\""
        );
    }
}
