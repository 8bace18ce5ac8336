//! `GET /journal/stream`: journal entries as server-sent events, as they are recorded, and
//! the one-use tickets that let a browser's `EventSource` (which cannot send an
//! `Authorization` header) open the stream when an admin token is set.
//!
//! What waits for a slow reader is bounded: the stream pulls from the journal's broadcast
//! channel only as fast as the socket takes bytes, and a reader more than the channel's
//! backlog behind skips what it missed (a `lagged` event says how many).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use serde_json::json;
use tokio::sync::{broadcast, watch};

use crate::control::journal::Journal;
use crate::wire::body::{self, Body};

/// How often an idle stream sends a comment, so proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a ticket may wait to be used.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// Tickets outstanding at once; the oldest goes when more are asked for.
const MAX_TICKETS: usize = 64;

/// The journal's live entries as an SSE response, until `stop` turns true.
pub fn respond(journal: &Journal, stop: watch::Receiver<bool>) -> Response<Body> {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let live = Live {
        entries: journal.subscribe(),
        stop,
        tick,
        opened: false,
    };
    let events = stream::unfold(live, |mut live| async move {
        let chunk = live.next().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), live))
    });
    let mut response = Response::new(body::stream(StreamBody::new(events)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// One open stream's state.
struct Live {
    entries: broadcast::Receiver<Arc<str>>,
    stop: watch::Receiver<bool>,
    tick: tokio::time::Interval,
    opened: bool,
}

impl Live {
    /// The next chunk to send, or `None` when the stream ends (shutdown).
    async fn next(&mut self) -> Option<Bytes> {
        if !self.opened {
            self.opened = true;
            // Sent at once, so the client knows the stream is open; `retry` paces reconnects.
            return Some(Bytes::from_static(b"retry: 2000\n: connected\n\n"));
        }
        tokio::select! {
            _ = self.stop.wait_for(|stop| *stop) => None,
            received = self.entries.recv() => match received {
                Ok(entry) => Some(event("entry", &entry)),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    Some(event("lagged", &json!({"skipped": skipped}).to_string()))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
            _ = self.tick.tick() => Some(Bytes::from_static(b": keep-alive\n\n")),
        }
    }
}

/// One SSE event; `data` is one line of JSON (serde_json escapes newlines in strings).
fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// One-use tickets for `GET /journal/stream?ticket=...`, handed out to holders of the admin
/// token by `POST /journal/stream/ticket`. A ticket is random, lives 30 s and opens one
/// stream; the admin token itself never goes into a URL.
#[derive(Debug, Default)]
pub struct Tickets {
    issued: Mutex<HashMap<String, Instant>>,
}

impl Tickets {
    /// A new ticket.
    pub fn issue(&self) -> String {
        let ticket = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued.retain(|_, at| now.duration_since(*at) < TICKET_LIFETIME);
        if issued.len() >= MAX_TICKETS {
            if let Some(oldest) = issued
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(t, _)| t.clone())
            {
                issued.remove(&oldest);
            }
        }
        issued.insert(ticket.clone(), now);
        ticket
    }

    /// Whether `ticket` was issued and is still fresh; it cannot be used again.
    pub fn redeem(&self, ticket: &str) -> bool {
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued
            .remove(ticket)
            .is_some_and(|at| at.elapsed() < TICKET_LIFETIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_one_stream() {
        let tickets = Tickets::default();
        let ticket = tickets.issue();
        assert!(!tickets.redeem("made-up"));
        assert!(tickets.redeem(&ticket));
        assert!(!tickets.redeem(&ticket));
    }

    #[test]
    fn tickets_outstanding_are_bounded() {
        let tickets = Tickets::default();
        let first = tickets.issue();
        for _ in 0..MAX_TICKETS {
            tickets.issue();
        }
        assert!(!tickets.redeem(&first));
        assert_eq!(tickets.issued.lock().unwrap().len(), MAX_TICKETS);
    }
}
