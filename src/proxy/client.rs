//! The HTTP/1.1 client check 11 forwards with: keep-alive connections to each backend origin,
//! kept by one pool per worker thread and reused most recent first.
//!
//! (hyper-util's pooled client did the same with a SipHash of every request's origin, a task
//! per response to hand its connection back, and a `Host` written from the URI each time:
//! under callgrind, about 6,000 instructions of each forwarded request. Here a connection goes
//! back on its origin's list as soon as the request is on it, and is taken again once hyper
//! says it wants the next one.)

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, PoisonError};
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
    idle: Arc<Mutex<HashMap<Origin, Vec<Idle>>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// A connection in the pool: waiting for its next request, or still busy with its last.
struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

impl Idle {
    fn stale(&self, now: Instant) -> bool {
        self.sender.is_closed() || now.duration_since(self.since) > IDLE
    }
}

impl Client {
    /// A client that connects over `connector` (plain TCP, or TLS with its configuration).
    pub fn new(connector: HttpsConnector<HttpConnector>) -> Self {
        Self {
            connector,
            idle: Arc::default(),
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
            let sent = pooled.try_send_request(request);
            self.checkin(origin, pooled);
            match sent.await {
                Ok(response) => return Ok(response),
                // The backend closed the connection before the request went: it is sent again,
                // on the next connection.
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(failed.into_error().into()),
                },
            }
        }
        let mut fresh = self.connect(origin).await?;
        let sent = fresh.send_request(request);
        self.checkin(origin, fresh);
        Ok(sent.await?)
    }

    /// The most recently used connection to `origin` that wants a request, dropping the closed
    /// and expired ones found on the way; busy ones stay.
    fn checkout(&self, origin: &Origin) -> Option<SendRequest<RequestBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.get_mut(origin)?;
        let now = Instant::now();
        let mut at = list.len();
        while at > 0 {
            at -= 1;
            if list[at].stale(now) {
                list.remove(at);
            } else if list[at].sender.is_ready() {
                return Some(list.remove(at).sender);
            }
        }
        None
    }

    /// Puts a connection (with its request on it) back on `origin`'s list. The least recently
    /// used one goes when it has expired or the list is full, so that connections left over
    /// from a burst are closed as requests go on.
    fn checkin(&self, origin: &Origin, sender: SendRequest<RequestBody>) {
        let now = Instant::now();
        let entry = Idle { sender, since: now };
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = idle.get_mut(origin) {
            if list.first().is_some_and(|oldest| oldest.stale(now)) || list.len() >= MAX_IDLE {
                list.remove(0);
            }
            list.push(entry);
        } else {
            idle.insert(origin.clone(), vec![entry]);
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
        Ok(sender)
    }
}
