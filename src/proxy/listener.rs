//! Accepting connections: TCP, the TLS handshake (check 1), HTTP/1.1 with limits on header
//! size, count and time, and a graceful drain on shutdown.
//!
//! Hostile clients are bounded here (issue 11): a connection slot (`max_connections`) is
//! taken only by an established session, and handshakes in progress have their own budget
//! (`max_handshakes`), so sockets that never finish a handshake cannot lock a good client out;
//! what waits to be written to a consumer is a small bounded buffer, and a consumer that stops
//! reading is closed after `write_timeout`. Refusals are counted in the metrics and logged at
//! most once per `LOG_INTERVAL`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;

use crate::control::metrics::{Connections, Refusal};
use crate::proxy::forwarder::Peer;
use crate::proxy::workers::Workers;
use crate::spine::certificate::CertificateNames;
use crate::wire::body::Body;

/// Something that answers every request of a connection.
pub trait Handler: Send + Sync + 'static {
    /// The response, or `Hangup` to close the connection without one.
    fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: Peer,
    ) -> impl Future<Output = Result<Response<Body>, Hangup>> + Send;

    /// Where this handler's connections are counted, if it counts them.
    fn connections(&self) -> Option<&Connections> {
        None
    }
}

/// A handler's choice to close the connection without answering (a `drop` fault): hyper
/// closes a connection whose service fails, writing nothing.
#[derive(Debug, thiserror::Error)]
#[error("connection closed without a response, as a fault asked")]
pub struct Hangup;

/// Protections against slow or greedy clients. The number of request headers is hyper's own
/// limit, 100 (431 beyond): hyper reads its default into a ready-made array, where a limit set
/// explicitly, even the same one, is a list filled anew for every request (about 1,700
/// instructions a request under callgrind).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of request line and headers.
    pub max_header_bytes: usize,
    /// Time to send a request's headers; also how long an idle keep-alive connection stays.
    pub header_timeout: Duration,
    /// How long a client has to finish the TLS handshake before the connection is closed.
    pub handshake_timeout: Duration,
    /// Established sessions (on a plain listener: connections) open at once.
    pub max_connections: usize,
    /// TLS handshakes in progress at once, apart from `max_connections`.
    pub max_handshakes: usize,
    /// How long a write to a client may make no progress before the connection is closed.
    pub write_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_handshakes: 256,
            write_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// The most of a TLS session's output rustls holds that the client has not yet taken, on top
/// of what hyper holds (its default is 64 KiB).
const TLS_BUFFER: usize = 16 * 1024;

/// The kernel's send buffer for each client socket. Left to itself Linux grows it to 4 MB for a
/// client that has stopped reading; fixed, it bounds what a stalled reader costs the host as
/// hyper's and rustls's limits bound what it costs the process. Ample for loopback and LAN
/// speeds (Linux doubles it for its own bookkeeping).
const CLIENT_SEND_BUFFER: u32 = 256 * 1024;

/// The most a refusal of one kind is logged: once per interval, with how many there were.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A listening socket on `addr` for clients: address reuse as `TcpListener::bind` sets it, and
/// the send buffer every accepted socket inherits fixed at `CLIENT_SEND_BUFFER`.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(CLIENT_SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves `listener` until `shutdown` turns true, then drains in-flight requests. Each admitted
/// connection is served on one of `workers`.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: Arc<H>,
    limits: Limits,
    workers: Arc<Workers>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
    let refusals = Arc::new(Refusals::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        // Bounds both what is read ahead of a request and what waits to be written to a
        // client: hyper's default (~400 KB) per stalled reader added up to a gigabyte. The
        // margin lets a head of `max_header_bytes` arrive with the start of its body.
        .max_buf_size(limits.max_header_bytes + 8 * 1024)
        .keep_alive(true)
        // rustls takes one buffer better than many: flattened writes measured 4-18% faster.
        .writev(false);
    loop {
        let (stream, addr) = tokio::select! {
            _ = async { drop(shutdown.wait_for(|stop| *stop).await) } => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A TLS connection first needs a place to handshake; a plain one a slot at once.
        let admitted = match &tls {
            Some(_) => handshakes
                .clone()
                .try_acquire_owned()
                .map_err(|_| Refusal::MaxHandshakes),
            None => slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| Refusal::MaxConnections),
        };
        let permit = match admitted {
            Ok(permit) => permit,
            Err(why) => {
                refusals.refuse(why, addr, &limits, handler.connections());
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Out of this runtime's reactor, into the worker's (below).
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connection lost before it was served");
                continue;
            }
        };
        let (handler, http, tls, slots, refusals) = (
            handler.clone(),
            http.clone(),
            tls.clone(),
            slots.clone(),
            refusals.clone(),
        );
        let watcher = graceful.watcher();
        workers.spawn(move |worker| async move {
            let _open = handler.connections().map(Connections::hold);
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot serve a connection on a worker");
                    return;
                }
            };
            let mut peer = Peer::new(addr, tls.is_some(), worker);
            let stream = WriteTimeout::new(stream, limits.write_timeout);
            let result = match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream))
                            .await;
                    drop(permit);
                    let mut stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            refusals.handshake_failed.log(|n| {
                                tracing::info!(%addr, error = %e, in_last_interval = n, "TLS handshake refused");
                            });
                            return;
                        }
                        Err(_) => {
                            refusals.handshake_timed_out.log(|n| {
                                tracing::info!(%addr, in_last_interval = n, "TLS handshake timed out");
                            });
                            return;
                        }
                    };
                    let Ok(_slot) = slots.try_acquire_owned() else {
                        refusals.refuse(
                            Refusal::MaxConnections,
                            addr,
                            &limits,
                            handler.connections(),
                        );
                        return;
                    };
                    stream.get_mut().1.set_buffer_limit(Some(TLS_BUFFER));
                    // Read once here, not per request: check 5b compares them with the sender.
                    peer.certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| CertificateNames::of_client(leaf));
                    let service = service_fn(|req| handler.clone().handle(req, peer.clone()));
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                None => {
                    let _slot = permit;
                    let service = service_fn(|req| handler.clone().handle(req, peer.clone()));
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "in-flight requests did not finish within {:?}; closing",
            limits.drain_timeout
        );
    }
}

/// The listener's refusals and handshake failures, each logged at most once per interval.
#[derive(Debug, Default)]
struct Refusals {
    max_connections: Throttled,
    max_handshakes: Throttled,
    handshake_failed: Throttled,
    handshake_timed_out: Throttled,
}

impl Refusals {
    fn refuse(
        &self,
        why: Refusal,
        addr: SocketAddr,
        limits: &Limits,
        counted: Option<&Connections>,
    ) {
        if let Some(connections) = counted {
            connections.refused(why);
        }
        let (throttle, max) = match why {
            Refusal::MaxConnections => (&self.max_connections, limits.max_connections),
            Refusal::MaxHandshakes => (&self.max_handshakes, limits.max_handshakes),
        };
        throttle.log(|n| {
            tracing::warn!(
                %addr,
                refused = n,
                limit = why.label(),
                max,
                "connections refused: {} reached (counted in ssp_sim_connections_refused_total; logged at most every {} s)",
                why.label(),
                LOG_INTERVAL.as_secs()
            );
        });
    }
}

/// Something worth a log line that may happen thousands of times a second: the line is
/// written at most once per `LOG_INTERVAL`, saying how many times it happened since the last.
#[derive(Debug, Default)]
struct Throttled {
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
}

impl Throttled {
    /// Counts one occurrence and calls `write` with the count when a line is due.
    fn log(&self, write: impl FnOnce(u64)) {
        self.since.fetch_add(1, Ordering::Relaxed);
        let due = {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let due = last.is_none_or(|at| at.elapsed() >= LOG_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            write(self.since.swap(0, Ordering::Relaxed));
        }
    }
}

/// A stream whose writes fail once one has made no progress for `limit`: a client that stops
/// reading its response is closed, and what waited for it freed, instead of held for ever.
/// (As nginx's `send_timeout`: the time between two successful writes, not for the whole.)
struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    /// Running while a write waits for the client.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// What to answer for a write: its result once it is ready, else pending until `limit`
    /// has passed since it began waiting, then a timeout error.
    fn watch<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?} (write_timeout_ms)"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(polled, cx)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn a_write_to_a_client_that_reads_nothing_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut server = WriteTimeout::new(server, Duration::from_millis(200));
        let chunk = vec![0u8; 64 * 1024];
        let started = Instant::now();
        let err = loop {
            if let Err(e) = server.write_all(&chunk).await {
                break e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never timed out"
            );
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test]
    async fn a_client_that_keeps_reading_never_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut server = WriteTimeout::new(server, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            client.read_to_end(&mut sink).await.map(|_| sink.len())
        });
        // More than every buffer on the way holds, written slower than the limit in all.
        for _ in 0..64 {
            server.write_all(&[1u8; 64 * 1024]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(server);
        assert_eq!(reader.await.unwrap().unwrap(), 64 * 64 * 1024);
    }

    #[test]
    fn a_throttled_line_is_written_once_per_interval_with_the_count() {
        let throttled = Throttled::default();
        let mut written = Vec::new();
        for _ in 0..5 {
            throttled.log(|n| written.push(n));
        }
        assert_eq!(written, [1]);
        *throttled.last.lock().unwrap() = Some(Instant::now() - LOG_INTERVAL);
        throttled.log(|n| written.push(n));
        assert_eq!(written, [1, 5]);
    }
}
