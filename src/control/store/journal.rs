//! The journal in Redis: one capped stream, `ssp-sim:journal`, that every replica appends
//! to (`XADD ... MAXLEN ~ journal_size`, through the background writer) and reads, newest
//! first for `GET /journal` (`XREVRANGE`) and as they come for the live stream
//! (`XREAD BLOCK`, on a connection of its own).
//!
//! Each stream entry has one field, `entry`, the entry as `GET /journal` shows it without
//! its `id`. The id is made from the stream's own position (`<ms>-<seq>` as ms * 1000 +
//! seq), so it is the same on every replica, orders entries as the stream does, and stays
//! an integer a browser holds exactly.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use super::{key, Store};
use crate::control::journal::{Sink, SinkPending};

/// How long a live read waits for an entry before it asks again.
const BLOCK_MS: u64 = 1000;

/// The journal's stream.
pub struct RedisJournal {
    store: Arc<Store>,
    key: String,
    capacity: usize,
    /// The live reader's connection, made when first needed and again after a failure.
    reader: Mutex<Option<MultiplexedConnection>>,
}

impl RedisJournal {
    /// The stream in `store`, capped at about `capacity` entries.
    pub fn new(store: Arc<Store>, capacity: usize) -> Self {
        Self {
            store,
            key: key("journal"),
            capacity,
            reader: Mutex::new(None),
        }
    }
}

/// A stream entry as `GET /journal` shows it: its id spliced in front of its fields.
fn shown(position: &str, fields: &[String]) -> Option<String> {
    let (ms, seq) = position.split_once('-')?;
    let id = ms.parse::<u64>().ok()? * 1000 + seq.parse::<u64>().ok()?.min(999);
    let json = fields
        .chunks(2)
        .find(|kv| kv[0] == "entry")
        .and_then(|kv| kv.get(1))?;
    let rest = json.strip_prefix('{')?;
    Some(format!("{{\"id\":{id},{rest}"))
}

/// `XREVRANGE` / `XRANGE` replies: `[position, [field, value, ...]]`.
type Entries = Vec<(String, Vec<String>)>;

impl Sink for RedisJournal {
    fn up(&self) -> bool {
        self.store.up()
    }

    fn replica(&self) -> &Arc<str> {
        self.store.replica()
    }

    fn append(&self, entry: String) {
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.capacity)
            .arg("*")
            .arg("entry")
            .arg(entry);
        self.store.queue(pipe);
    }

    fn recent(&self, count: usize) -> SinkPending<'_, Vec<String>> {
        let key = self.key.clone();
        Box::pin(async move {
            let entries: Entries = self
                .store
                .in_background(move |mut c| async move {
                    redis::cmd("XREVRANGE")
                        .arg(key)
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(count)
                        .query_async(&mut c)
                        .await
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(entries
                .iter()
                .filter_map(|(position, fields)| shown(position, fields))
                .collect())
        })
    }

    fn clear(&self) -> SinkPending<'_, ()> {
        let key = self.key.clone();
        Box::pin(async move {
            self.store
                .in_background(move |mut c| async move {
                    redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await
                })
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn read<'a>(&'a self, after: &'a str) -> SinkPending<'a, (String, Vec<String>)> {
        Box::pin(async move {
            let mut reader = self.reader.lock().await;
            let conn = match reader.as_mut() {
                Some(conn) => conn,
                None => reader.insert(self.store.dedicated().await.map_err(|e| e.to_string())?),
            };
            // `$` is resolved to the newest position once, so nothing appended between two
            // reads is missed.
            let mut after = after.to_owned();
            if after == "$" {
                let newest: redis::RedisResult<Entries> = redis::cmd("XREVRANGE")
                    .arg(&self.key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(conn)
                    .await;
                match newest {
                    Ok(newest) => {
                        after = newest
                            .first()
                            .map_or_else(|| "0-0".to_owned(), |e| e.0.clone())
                    }
                    Err(e) => {
                        *reader = None;
                        return Err(e.to_string());
                    }
                }
            }
            let read: redis::RedisResult<Option<Vec<(String, Entries)>>> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("COUNT")
                .arg(self.capacity.max(1))
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&after)
                .query_async(conn)
                .await;
            let streams = match read {
                Ok(streams) => streams.unwrap_or_default(),
                Err(e) => {
                    *reader = None;
                    return Err(e.to_string());
                }
            };
            let mut next = after;
            let mut shown_entries = Vec::new();
            for (_, entries) in streams {
                for (position, fields) in entries {
                    shown_entries.extend(shown(&position, &fields));
                    next = position;
                }
            }
            Ok((next, shown_entries))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_gets_its_stream_position_as_id() {
        let fields = vec![
            "entry".to_owned(),
            r#"{"replica":"a","status":200}"#.to_owned(),
        ];
        assert_eq!(
            shown("1700000000123-4", &fields).as_deref(),
            Some(r#"{"id":1700000000123004,"replica":"a","status":200}"#)
        );
        assert_eq!(shown("garbage", &fields), None);
    }
}
