//! The HTTP/1.1 client check 11 forwards with: keep-alive connections to each backend origin,
//! kept by one pool per worker thread and reused most recent first.
//!
//! (hyper-util's pooled client did the same with a SipHash of every request's origin, a task
//! per response to hand its connection back, and a `Host` written from the URI each time:
//! under callgrind, about 6,000 instructions of each forwarded request. Here a connection goes
//! back on its origin's list with its response's head, and is taken again once hyper says it
//! wants the next request.)

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};
use std::time::Duration;

use foldhash::HashMap;
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
use tower_service::Service;

use crate::config::routes::Origin;
use crate::wire::body::{BoxError, RequestBody};

/// How long a connection may sit unused before it is closed rather than reused: backends close
/// idle keep-alive connections too, and one that has is only found out by using it.
const IDLE: Duration = Duration::from_secs(60);

/// The most connections kept per origin; beyond it the least recently used one is closed.
const MAX_IDLE: usize = 256;

/// The most of a backend's response read ahead of the consumer, per connection; a backend's
/// response head must fit in it.
const READ_BUFFER: usize = 16 * 1024;

/// Why a backend exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection: refused, unreachable, too slow to connect, or its TLS handshake failed;
    /// the reason with its causes (`tcp connect error: Connection refused (os error 111)`).
    #[error("cannot connect to the backend: {0}")]
    Connect(String),
    /// The exchange on the connection failed: a broken response, or a connection that closed.
    #[error("{0}")]
    Exchange(#[from] hyper::Error),
}

impl ClientError {
    fn connect(error: BoxError) -> Self {
        let mut reason = error.to_string();
        let mut cause = error.source();
        while let Some(inner) = cause {
            reason.push_str(": ");
            reason.push_str(&inner.to_string());
            cause = inner.source();
        }
        ClientError::Connect(reason)
    }
}

/// A pool of backend connections; cheap to clone (clones share it).
#[derive(Clone)]
pub struct Client {
    connector: HttpsConnector<HttpConnector>,
    pool: Arc<Shared>,
}

/// The connections of one [`Client`] and its clones, by origin.
struct Shared {
    /// How long a connection may sit unused ([`IDLE`]).
    idle: Duration,
    lists: Mutex<HashMap<Origin, Vec<Idle>>>,
    /// Starts the task that closes connections left idle when no request comes to do it: once,
    /// with the first connection, on the runtime that opened it.
    sweeper: Once,
}

impl Shared {
    fn lists(&self) -> MutexGuard<'_, HashMap<Origin, Vec<Idle>>> {
        // Nothing panics while the lock is held, and the lists are valid between any two steps.
        self.lists.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every half of the idle time, closes the connections of `pool` that have sat unused for
/// longer, until the pool is dropped (replaced on a routes reload).
async fn sweep(pool: Weak<Shared>, idle: Duration) {
    let mut every = tokio::time::interval(idle / 2);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut lists = pool.lists();
        for list in lists.values_mut() {
            list.retain(|c| !c.stale(now, pool.idle));
        }
        lists.retain(|_, list| !list.is_empty());
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// A connection in the pool: waiting for its next request, or still busy with its last.
struct Idle {
    sender: SendRequest<RequestBody>,
    /// When its last response began.
    since: Instant,
}

impl Idle {
    fn stale(&self, now: Instant, idle: Duration) -> bool {
        self.sender.is_closed() || now.duration_since(self.since) > idle
    }
}

impl Client {
    /// A client for `http` and `https` backends, speaking TLS with `config`.
    pub fn new(config: rustls::ClientConfig) -> Self {
        Self::with_idle(config, IDLE)
    }

    fn with_idle(config: rustls::ClientConfig, idle: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pool = Shared {
            idle,
            lists: Mutex::default(),
            sweeper: Once::new(),
        };
        Self {
            connector,
            pool: Arc::new(pool),
        }
    }

    /// Sends `request` (its URI in origin form, `/path?query`) to `origin` on a pooled
    /// connection, or a new one; answers with the response head, its body still to come.
    pub async fn request(
        &self,
        origin: &Origin,
        mut request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, ClientError> {
        while let Some(mut pooled) = self.checkout(origin) {
            match pooled.try_send_request(request).await {
                Ok(response) => {
                    self.checkin(origin, pooled);
                    return Ok(response);
                }
                // The backend closed the connection before the request went: it is sent again,
                // on the next connection, and this one is let go.
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(failed.into_error().into()),
                },
            }
        }
        let mut fresh = self.connect(origin).await?;
        let response = fresh.send_request(request).await?;
        self.checkin(origin, fresh);
        Ok(response)
    }

    /// The most recently used connection to `origin` that wants a request, dropping the closed
    /// and expired ones found on the way; busy ones stay.
    fn checkout(&self, origin: &Origin) -> Option<SendRequest<RequestBody>> {
        let mut lists = self.pool.lists();
        let list = lists.get_mut(origin)?;
        let now = Instant::now();
        let mut at = list.len();
        while at > 0 {
            at -= 1;
            if list[at].stale(now, self.pool.idle) {
                list.remove(at);
            } else if list[at].sender.is_ready() {
                return Some(list.remove(at).sender);
            }
        }
        None
    }

    /// Puts a connection (its response's body maybe still coming) back on `origin`'s list. The least recently
    /// used one goes when it has expired or the list is full, so that connections left over
    /// from a burst are closed as requests go on (and by the sweep when none do).
    fn checkin(&self, origin: &Origin, sender: SendRequest<RequestBody>) {
        let now = Instant::now();
        let entry = Idle { sender, since: now };
        let mut lists = self.pool.lists();
        if let Some(list) = lists.get_mut(origin) {
            let full = list.len() >= MAX_IDLE;
            if full || list.first().is_some_and(|c| c.stale(now, self.pool.idle)) {
                list.remove(0);
            }
            list.push(entry);
        } else {
            lists.insert(origin.clone(), vec![entry]);
        }
    }

    /// A new connection to `origin`, its I/O driven by a task of its own on this thread.
    async fn connect(&self, origin: &Origin) -> Result<SendRequest<RequestBody>, ClientError> {
        let mut connector = self.connector.clone();
        let uri = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query(PathAndQuery::from_static("/"))
            .build()
            .map_err(|e| ClientError::connect(e.into()))?;
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(ClientError::connect)?;
        let stream = connector.call(uri).await.map_err(ClientError::connect)?;
        let (sender, connection) = http1::Builder::new()
            // A consumer that stops reading stops us reading the backend: what waits
            // meanwhile is this buffer, so it is kept small (hyper's default is ~400 KB).
            .max_buf_size(READ_BUFFER)
            .handshake(stream)
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "backend connection ended");
            }
        });
        self.pool.sweeper.call_once(|| {
            tokio::spawn(sweep(Arc::downgrade(&self.pool), self.pool.idle));
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http::uri::Scheme;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// A backend on loopback that answers `{}`, counts the connections it accepts and says
    /// when one of them has closed.
    async fn backend() -> (Origin, Arc<AtomicUsize>, mpsc::UnboundedReceiver<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = Origin {
            scheme: Scheme::HTTP,
            authority: listener.local_addr().unwrap().to_string().parse().unwrap(),
        };
        let (closed, ends) = mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let closed = closed.clone();
                tokio::spawn(async move {
                    let answer = service_fn(|_| async {
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"{}",
                        ))))
                    });
                    let served = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), answer)
                        .await;
                    drop(served);
                    let _ = closed.send(());
                });
            }
        });
        (origin, accepted, ends)
    }

    fn plain() -> rustls::ClientConfig {
        crate::proxy::tls::client_config(&rustls::RootCertStore::empty(), None).unwrap()
    }

    async fn get(client: &Client, origin: &Origin) {
        let request = Request::get("/")
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .unwrap();
        let response = client.request(origin, request).await.unwrap();
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "{}"
        );
    }

    #[tokio::test]
    async fn a_connection_is_reused_and_closed_once_idle_with_no_request_to_notice() {
        let (origin, accepted, mut ends) = backend().await;
        let client = Client::with_idle(plain(), Duration::from_millis(300));
        get(&client, &origin).await;
        get(&client, &origin).await;
        assert_eq!(
            accepted.load(Ordering::Relaxed),
            1,
            "two requests, one connection"
        );
        let kept = tokio::time::timeout(Duration::from_millis(100), ends.recv()).await;
        assert!(kept.is_err(), "closed while inside its idle time");
        let closed = tokio::time::timeout(Duration::from_secs(3), ends.recv()).await;
        assert_eq!(closed, Ok(Some(())), "still open after its idle time");
        assert!(client.pool.lists().is_empty());
        get(&client, &origin).await;
        assert_eq!(
            accepted.load(Ordering::Relaxed),
            2,
            "a new connection after the sweep"
        );
    }
}
