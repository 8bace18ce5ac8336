//! Faults in Redis: the API rules every replica acts on, with their counts.
//!
//! | key | holds |
//! |---|---|
//! | `ssp-sim:faults` | hash: id -> the rule as posted (JSON) |
//! | `ssp-sim:faults:left` | hash: id -> uses left, for a rule with `times` |
//! | `ssp-sim:faults:fired` | hash: id -> requests acted on |
//! | `ssp-sim:faults:seq` | the last id's number |
//! | `ssp-sim:faults:version` | bumped on every change, polled by every replica |
//!
//! Every change runs as one Lua script, so it is atomic; `claim` above all, which takes a
//! use of a counted rule and removes it when spent: `times = N` fires N times in all.

use std::sync::Arc;

use redis::Script;

use super::{key, Store, StoreError};
use crate::control::faults::{Claim, Ledger, LedgerError, Pending, Rule, SharedRule};

/// Adds a rule: KEYS faults, left, fired, seq, version; ARGV json, times (0: none), max.
const ADD: &str = r"
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return nil end
local id = 'fault-' .. redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], id, ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('HSET', KEYS[2], id, ARGV[2]) end
redis.call('HSET', KEYS[3], id, 0)
redis.call('INCR', KEYS[5])
return id
";

/// Removes a rule: KEYS faults, left, fired, version; ARGV id. Answers 1 when it was there.
const REMOVE: &str = r"
local found = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if found == 1 then redis.call('INCR', KEYS[4]) end
return found
";

/// Takes a use: KEYS faults, left, fired, version; ARGV id. Answers the uses left after
/// this one, or -1 when the rule is spent or gone.
const CLAIM: &str = r"
local left = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 or not left or left <= 0 then return -1 end
left = redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if left == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('INCR', KEYS[4])
end
return left
";

/// Turns a rule's JSON back into a rule against this replica's catalogues; `None` when it
/// does not validate here (replicas running different catalogues).
pub type Validate = dyn Fn(&str) -> Option<Rule> + Send + Sync;

/// The API rules in Redis.
pub struct RedisFaults {
    store: Arc<Store>,
    validate: Box<Validate>,
    add: Script,
    remove: Script,
    claim: Script,
    keys: Keys,
}

struct Keys {
    faults: String,
    left: String,
    fired: String,
    seq: String,
    version: String,
}

impl RedisFaults {
    /// Rules in `store`, read back with `validate`.
    pub fn new(store: Arc<Store>, validate: Box<Validate>) -> Self {
        Self {
            store,
            validate,
            add: Script::new(ADD),
            remove: Script::new(REMOVE),
            claim: Script::new(CLAIM),
            keys: Keys {
                faults: key("faults"),
                left: key("faults:left"),
                fired: key("faults:fired"),
                seq: key("faults:seq"),
                version: key("faults:version"),
            },
        }
    }
}

fn ledger(e: StoreError) -> LedgerError {
    LedgerError(e.to_string())
}

impl RedisFaults {
    /// Runs one of the scripts for the admin API, within the background bound.
    fn script<'a, T>(&'a self, call: redis::ScriptInvocation<'a>) -> Pending<'a, T>
    where
        T: redis::FromRedisValue + Send + 'a,
    {
        Box::pin(async move {
            self.store
                .in_background(move |mut c| async move { call.invoke_async(&mut c).await })
                .await
                .map_err(ledger)
        })
    }
}

/// Orders ids `fault-N` by N: the order they were added in, which is the order tried.
fn number(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

impl Ledger for RedisFaults {
    fn add<'a>(&'a self, rule: &'a Rule, max: usize) -> Pending<'a, Option<String>> {
        let mut call = self.add.prepare_invoke();
        call.key(&self.keys.faults)
            .key(&self.keys.left)
            .key(&self.keys.fired)
            .key(&self.keys.seq)
            .key(&self.keys.version)
            .arg(rule.to_json())
            .arg(rule.times().unwrap_or(0))
            .arg(max);
        self.script(call)
    }

    fn remove<'a>(&'a self, id: &'a str) -> Pending<'a, bool> {
        let mut call = self.remove.prepare_invoke();
        call.key(&self.keys.faults)
            .key(&self.keys.left)
            .key(&self.keys.fired)
            .key(&self.keys.version)
            .arg(id);
        self.script(call)
    }

    fn clear(&self) -> Pending<'_, ()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&[&self.keys.faults, &self.keys.left, &self.keys.fired])
            .ignore()
            .incr(&self.keys.version, 1)
            .ignore();
        Box::pin(async move {
            self.store
                .in_background(move |mut c| async move { pipe.query_async(&mut c).await })
                .await
                .map_err(ledger)
        })
    }

    fn claim<'a>(&'a self, id: &'a str) -> Pending<'a, Claim> {
        let mut call = self.claim.prepare_invoke();
        call.key(&self.keys.faults)
            .key(&self.keys.left)
            .key(&self.keys.fired)
            .key(&self.keys.version)
            .arg(id);
        Box::pin(async move {
            let left: i64 = self
                .store
                .on_request(move |mut c| async move { call.invoke_async(&mut c).await })
                .await
                .map_err(ledger)?;
            Ok(match left {
                n if n < 0 => Claim::Gone,
                n => Claim::Taken { last: n == 0 },
            })
        })
    }

    fn fired(&self, id: &str) {
        let mut pipe = redis::pipe();
        pipe.hincr(&self.keys.fired, id, 1);
        self.store.queue(pipe);
    }

    fn version(&self) -> Pending<'_, u64> {
        let version = self.keys.version.clone();
        Box::pin(async move {
            let v: Option<u64> = self
                .store
                .in_background(move |mut c| async move {
                    redis::cmd("GET").arg(version).query_async(&mut c).await
                })
                .await
                .map_err(ledger)?;
            Ok(v.unwrap_or(0))
        })
    }

    fn fetch(&self) -> Pending<'_, Vec<SharedRule>> {
        let mut pipe = redis::pipe();
        pipe.hgetall(&self.keys.faults)
            .hgetall(&self.keys.left)
            .hgetall(&self.keys.fired);
        Box::pin(async move {
            type Hash = std::collections::HashMap<String, String>;
            let (rules, left, fired): (Hash, Hash, Hash) = self
                .store
                .in_background(move |mut c| async move { pipe.query_async(&mut c).await })
                .await
                .map_err(ledger)?;
            let mut shared: Vec<SharedRule> = rules
                .into_iter()
                .filter_map(|(id, json)| {
                    let Some(rule) = (self.validate)(&json) else {
                        tracing::warn!(fault = %id, "a shared fault does not validate against this replica's catalogues; this replica ignores it");
                        return None;
                    };
                    Some(SharedRule {
                        left: left.get(&id).and_then(|n| n.parse().ok()),
                        fired: fired.get(&id).and_then(|n| n.parse().ok()).unwrap_or(0),
                        rule,
                        id,
                    })
                })
                .collect();
            shared.sort_by_key(|r| number(&r.id));
            Ok(shared)
        })
    }
}
