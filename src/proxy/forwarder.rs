//! Check 11: forwarding to a provider backend over pooled keep-alive connections, with
//! bodies streamed both ways, bounded in time and in what waits in memory.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use rustls::RootCertStore;

use crate::config::pem::load_roots;
use crate::config::problems::ConfigError;
use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::{HttpBackend, Registry};
use crate::proxy::client::{Client, ClientError};
use crate::proxy::tls;
use crate::spine::certificate::CertificateNames;
use crate::wire::body::{self, Body, BoxError, RequestBody};

/// Why a request could not be forwarded: a backend that does not answer in time gets 504
/// `gateway-timeout`, its other failures 502 `error-communicating`, a consumer's own
/// unreadable body 400 `bad-request`.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The backend did not answer within the backend timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// Connecting, the TLS handshake, or the exchange with the backend failed.
    #[error("{0}")]
    Backend(#[from] ClientError),
    /// The request to the backend could not be built from the consumer's.
    #[error("cannot build the backend request: {0}")]
    Request(#[from] http::Error),
    /// A `101 Switching Protocols` as the backend's answer (hyper reads past the interim 1xx,
    /// 102 and 103, to the final answer): an SSP forwards HTTP messages, not other protocols.
    #[error("the backend answered {0}, which an SSP cannot forward")]
    Informational(StatusCode),
    /// The consumer's request body broke off or was badly framed while it was being sent on.
    #[error("the request body could not be read: {0}")]
    ConsumerBody(String),
}

impl ForwardError {
    /// Whether the backend is to blame (counted as a backend error, logged as a warning).
    pub fn is_backends(&self) -> bool {
        !matches!(self, ForwardError::ConsumerBody(_))
    }

    /// The answer for the consumer: `bad-request` for its own body, `gateway-timeout` (the
    /// SSP guide's 504) for a backend too slow to answer, else `error-communicating`, each for
    /// `target_url` with the reason in the diagnostics.
    pub fn rejection(&self, target_url: &str) -> Rejection {
        let error = match self {
            ForwardError::ConsumerBody(_) => return Rejection::bad_request(self.to_string()),
            ForwardError::Timeout(_) => ids::GATEWAY_TIMEOUT,
            _ => ids::ERROR_COMMUNICATING,
        };
        Rejection::new(error)
            .with(Placeholder::TargetUrl, target_url)
            .with(Placeholder::Diagnostics, self.to_string())
    }
}

/// How long a backend may take: to start answering (also the longest pause inside its
/// body), and for its whole body.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until the response head, and the longest pause inside the body.
    pub answer: Duration,
    /// For the whole body.
    pub body: Duration,
}

/// The TLS material every backend client trusts (the public web PKI plus the dev CA), and how
/// many copies of each pooled client to keep: one per worker thread, so that a backend
/// connection is only ever used by the thread that opened it.
#[derive(Debug, Clone)]
pub struct Clients {
    roots: RootCertStore,
    shared: Vec<Client>,
}

impl Clients {
    /// Clients trusting the public web PKI plus the certificates of `ca` (the dev CA), `pools`
    /// copies of each.
    pub fn new(ca: Option<&Path>, pools: usize) -> Result<Self, tls::TlsError> {
        let roots = match ca {
            Some(path) => load_roots(path)?,
            None => RootCertStore::empty(),
        };
        let shared = copies(&tls::client_config(&roots, None)?, pools);
        Ok(Self { roots, shared })
    }

    /// The pooled clients a registry's backends need: the shared one, and one per client
    /// identity routes.toml names, built once when the routes are installed.
    pub fn pool(&self, registry: &Registry) -> Result<Pool, ConfigError> {
        let mut identified = Vec::new();
        for identity in registry.identities() {
            let config = tls::client_config(&self.roots, Some((&identity.cert, &identity.key)))
                .map_err(|e| ConfigError::file(&registry.file, e.to_string()))?;
            identified.push(copies(&config, self.shared.len()));
        }
        Ok(Pool {
            shared: self.shared.clone(),
            identified,
        })
    }
}

/// `count` clients (at least one) with their own connection pools, over one TLS config.
fn copies(config: &rustls::ClientConfig, count: usize) -> Vec<Client> {
    (0..count.max(1))
        .map(|_| Client::new(config.clone()))
        .collect()
}

/// The clients of one registry's backends; replaced with the registry on reload.
#[derive(Debug, Clone)]
pub struct Pool {
    /// One per worker.
    shared: Vec<Client>,
    /// Indexed by `ClientIdentity::index`, then by worker.
    identified: Vec<Vec<Client>>,
}

impl Pool {
    /// The client for `backend` on worker `worker`: its identity's, else the shared one.
    pub fn client(&self, backend: &HttpBackend, worker: usize) -> &Client {
        let clients = backend
            .identity
            .as_ref()
            .and_then(|identity| self.identified.get(identity.index))
            .unwrap_or(&self.shared);
        &clients[worker % clients.len()]
    }
}

/// How the consumer reached ssp-sim: for the forwarding headers, HSTS and check 5b.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The consumer's socket address; its IP goes into `X-Forwarded-For` and `Forwarded: for=`.
    pub addr: SocketAddr,
    /// Whether it came over TLS: `Forwarded: proto=https` rather than `http`.
    pub tls: bool,
    /// The worker thread serving the connection, whose backend pool its requests use.
    pub worker: usize,
    /// The host names of the client certificate it presented, read once per connection.
    pub certificate: Option<Arc<CertificateNames>>,
    /// The forwarding headers, written once per connection rather than per request.
    hop: Arc<Hop>,
}

/// The forwarding headers of one consumer connection.
#[derive(Debug)]
struct Hop {
    /// `Forwarded` with its `for` and `proto`: the whole value when `Host` names no host.
    forwarded: HeaderValue,
    x_forwarded_for: HeaderValue,
    /// The first `Host` the connection sent and the whole `Forwarded` value for it: a
    /// connection's requests name one host, as a rule, so it is written once.
    first: OnceLock<(HeaderValue, Option<HeaderValue>)>,
}

impl Hop {
    /// The `Forwarded` value for a request that named `host`.
    fn forwarded(&self, host: Option<&HeaderValue>) -> Option<HeaderValue> {
        let Some(host) = host else {
            return Some(self.forwarded.clone());
        };
        let (first, value) = self.first.get_or_init(|| (host.clone(), self.write(host)));
        if first == host {
            value.clone()
        } else {
            self.write(host)
        }
    }

    /// Only a host name or address (with its port) is passed on: anything else in `Host` is
    /// not a host, and left out rather than trusted to quoting.
    fn write(&self, host: &HeaderValue) -> Option<HeaderValue> {
        match (self.forwarded.to_str(), host.to_str()) {
            (Ok(hop), Ok(host)) if is_host(host) => {
                HeaderValue::from_str(&format!("{hop};host={}", rfc7239_value(host))).ok()
            }
            _ => Some(self.forwarded.clone()),
        }
    }
}

impl Peer {
    /// A consumer at `addr`, over TLS or not, served by worker `worker`.
    pub fn new(addr: SocketAddr, tls: bool, worker: usize) -> Self {
        let ip = addr.ip();
        let node = if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let proto = if tls { "https" } else { "http" };
        let hop = Hop {
            // `unknown` is RFC 7239's own word for a node it cannot name.
            forwarded: HeaderValue::from_str(&format!(
                "for={};proto={proto}",
                rfc7239_value(&node)
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("for=unknown")),
            x_forwarded_for: HeaderValue::from_str(&ip.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            first: OnceLock::new(),
        };
        Self {
            addr,
            tls,
            worker,
            certificate: None,
            hop: Arc::new(hop),
        }
    }
}

/// Sends the request to the backend: the service root replaced by the backend's base, the rest
/// of the path and the query byte for byte, hop-by-hop headers dropped, forwarding headers set.
pub async fn forward(
    client: &Client,
    backend: &HttpBackend,
    request: Request<RequestBody>,
    rest: &str,
    peer: &Peer,
    timeouts: Timeouts,
) -> Result<Response<Body>, ForwardError> {
    let (mut parts, body) = request.into_parts();
    let path = if backend.base_path.is_empty() && !rest.starts_with('/') {
        format!("/{rest}")
    } else {
        format!("{}{rest}", backend.base_path)
    };
    // Origin form, as HTTP/1.1 sends it: the client is told the origin beside it.
    let uri = Uri::from(PathAndQuery::try_from(path).map_err(http::Error::from)?);
    let ssp_host = parts.headers.remove(header::HOST);
    strip_hop_by_hop(&mut parts.headers);
    // Set here, the client finds it rather than writing it from the URI on every request.
    parts.headers.insert(header::HOST, backend.host.clone());
    set_forwarding(&mut parts.headers, peer, ssp_host.as_ref());
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    let consumer_error = Arc::new(OnceLock::new());
    let body = Watched {
        inner: body,
        error: consumer_error.clone(),
    }
    .boxed_unsync();
    let upstream = Request::from_parts(parts, body);

    let response = tokio::time::timeout(timeouts.answer, client.request(&backend.origin, upstream))
        .await
        .map_err(|_| ForwardError::Timeout(timeouts.answer))?
        .map_err(|e| match consumer_error.get() {
            Some(reason) => ForwardError::ConsumerBody(reason.clone()),
            None => ForwardError::Backend(e),
        })?;
    if response.status().is_informational() {
        return Err(ForwardError::Informational(response.status()));
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(
        parts,
        body::stream(Deadlines::new(body, timeouts)),
    ))
}

/// The consumer's request body on its way to the backend, keeping the reason it failed, if it
/// does: hyper's client then fails the call, and the failure is the consumer's, not the
/// backend's.
struct Watched {
    inner: RequestBody,
    error: Arc<OnceLock<String>>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(e))) = &polled {
            let _ = self.error.set(e.to_string());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A backend response body that fails once no frame has come for the answer timeout, or once
/// the whole body has taken longer than the body timeout: a backend that stalls, or dribbles
/// for ever, must not hold the consumer's request open. The consumer then sees the connection
/// close before the body's end, as behind a real SSP.
struct Deadlines<B> {
    inner: B,
    pause: Duration,
    total: Duration,
    began: Instant,
    /// Set the first time the body has to wait: most bodies come whole with the head, and
    /// never arm a timer.
    timers: Option<Timers>,
}

struct Timers {
    next_frame: Pin<Box<Sleep>>,
    end: Pin<Box<Sleep>>,
}

impl<B> Deadlines<B> {
    fn new(inner: B, timeouts: Timeouts) -> Self {
        Self {
            inner,
            pause: timeouts.answer,
            total: timeouts.body,
            began: Instant::now(),
            timers: None,
        }
    }
}

fn too_long(total: Duration) -> BoxError {
    format!("the backend's body took longer than {total:?} in all").into()
}

impl<B> http_body::Body for Deadlines<B>
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
        let this = &mut *self;
        let late = match &mut this.timers {
            Some(timers) => timers.end.as_mut().poll(cx).is_ready(),
            // A body that never waits can still be read for longer than allowed, by a
            // consumer that reads it slowly.
            None => this.began.elapsed() >= this.total,
        };
        if late {
            return Poll::Ready(Some(Err(too_long(this.total))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(timers) = &mut this.timers {
                    timers
                        .next_frame
                        .as_mut()
                        .reset(Instant::now() + this.pause);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let (pause, end) = (this.pause, this.began + this.total);
                let timers = this.timers.get_or_insert_with(|| Timers {
                    next_frame: Box::pin(tokio::time::sleep(pause)),
                    end: Box::pin(tokio::time::sleep_until(end)),
                });
                // Polled once now so that it wakes the body when it ends.
                if timers.end.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(too_long(this.total))));
                }
                match timers.next_frame.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                        "the backend sent nothing for {:?} in the middle of its body",
                        this.pause
                    )
                    .into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
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
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
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
    // hyper frames the body itself; a forwarded Transfer-Encoding would be a second framing.
    remove_any(headers, |name| {
        HOP_BY_HOP.contains(name) || name == header::TRANSFER_ENCODING
    });
}

/// Removes the headers whose name `unwanted` picks. One pass over the names present: removing
/// each unwanted name in turn is a lookup apiece, most of them for headers not sent, on every
/// request and response.
fn remove_any(headers: &mut HeaderMap, unwanted: impl Fn(&HeaderName) -> bool) {
    let found: Vec<HeaderName> = headers.keys().filter(|n| unwanted(n)).cloned().collect();
    for name in found {
        headers.remove(name);
    }
}

/// The forwarding headers a consumer may send, which only a proxy may set: the ones we set,
/// and the `X-Forwarded-*` that would contradict them.
const FORWARDING: [HeaderName; 4] = [
    header::FORWARDED,
    X_FORWARDED_FOR,
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Sets `Forwarded` (RFC 7239) and `X-Forwarded-For` to the one hop we saw, replacing what the
/// consumer sent. The consumer is the origin of a GP Connect call (its TLS session with its own
/// client certificate ends here), so a chain it claims is unverifiable and is not passed on.
fn set_forwarding(headers: &mut HeaderMap, peer: &Peer, host: Option<&HeaderValue>) {
    remove_any(headers, |name| FORWARDING.contains(name));
    if let Some(value) = peer.hop.forwarded(host) {
        headers.insert(header::FORWARDED, value);
    }
    headers.insert(X_FORWARDED_FOR, peer.hop.x_forwarded_for.clone());
}

/// A `Forwarded` parameter value (RFC 7239 section 4): a token as it is, anything else a
/// quoted-string with `"` and `\` escaped.
fn rfc7239_value(value: &str) -> String {
    let token = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Whether a `Host` value is a host name or address with an optional port.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
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
    fn forwarding_headers_replace_what_the_consumer_sent() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        h.insert("x-forwarded-host", HeaderValue::from_static("evil"));
        let peer = Peer::new("[::1]:5000".parse().unwrap(), true, 0);
        set_forwarding(
            &mut h,
            &peer,
            Some(&HeaderValue::from_static("localhost:8443")),
        );
        assert_eq!(h["x-forwarded-for"], "::1");
        assert_eq!(
            h["forwarded"],
            "for=\"[::1]\";proto=https;host=\"localhost:8443\""
        );
        assert!(h.get("x-forwarded-host").is_none());
        // The connection's first host is written once; any other is written for its request.
        for host in ["other:1", "localhost:8443"] {
            set_forwarding(&mut h, &peer, Some(&HeaderValue::from_static(host)));
            assert_eq!(
                h["forwarded"],
                format!("for=\"[::1]\";proto=https;host=\"{host}\"")
            );
        }
        set_forwarding(&mut h, &peer, None);
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=https");
        let mut h = HeaderMap::new();
        let peer = Peer::new("127.0.0.1:5000".parse().unwrap(), false, 0);
        set_forwarding(
            &mut h,
            &peer,
            Some(&HeaderValue::from_static("a\";for=6.6.6.6")),
        );
        assert_eq!(h["forwarded"], "for=127.0.0.1;proto=http");
    }

    #[test]
    fn rfc7239_values_are_tokens_or_escaped_quoted_strings() {
        assert_eq!(rfc7239_value("127.0.0.1"), "127.0.0.1");
        assert_eq!(rfc7239_value("a\";b\\"), "\"a\\\";b\\\\\"");
        assert_eq!(rfc7239_value(""), "\"\"");
    }
}
