//! Rate limits in Redis: the same GCRA as the in-process limiter (a limit of N per T seconds
//! admits a burst of N, then one request every T/N), run as one Lua script so the count is
//! shared by every replica. Each bucket is one key holding its theoretical arrival time in
//! microseconds of Redis's own clock (`TIME`), so replicas' clocks do not matter; the key
//! names the limit, so a changed limit starts afresh and an unchanged one keeps its count
//! across reloads, as in-process.
//!
//! A request waits on the script at most `store_timeout_ms`; while the store does not
//! answer, the in-process limiter counts instead (each replica alone).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::Script;

use super::{key, Store};
use crate::config::routes::{Consumer, RateLimit, Registry};
use crate::spine::throttle::{Admission, InMemory, Limiter, Scope, Throttled};

/// KEYS: the consumer's bucket, the global bucket (either may be `-`, no limit); ARGV: for
/// each, the emission interval and the burst tolerance in microseconds. Answers
/// `{0, 0}` when admitted, else `{1 (consumer) or 2 (global), microseconds to wait}`.
/// A request refused by its consumer's limit is not counted against the global one.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function take(key, interval, tolerance)
  if key == '-' then return 0 end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local next = tat + interval
  local allowed = next - tolerance
  if now < allowed then return allowed - now end
  redis.call('SET', key, next, 'PX', math.ceil((next - now) / 1000) + 1)
  return 0
end
local wait = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait > 0 then return {1, wait} end
wait = take(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait > 0 then return {2, wait} end
return {0, 0}
";

/// Rate limits counted in Redis, with the in-process limiter for when it is down.
pub struct RedisLimits {
    store: Arc<Store>,
    script: Script,
    global: ArcSwap<Option<RateLimit>>,
    local: InMemory,
}

impl RedisLimits {
    /// Limits counted in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            script: Script::new(GCRA),
            global: ArcSwap::from_pointee(None),
            local: InMemory::default(),
        }
    }
}

/// A bucket's key and its GCRA parameters (emission interval, tolerance), in microseconds.
fn bucket(name: &str, limit: Option<RateLimit>) -> (String, u64, u64) {
    match limit {
        None => ("-".to_owned(), 0, 0),
        Some(limit) => {
            let requests = u64::from(limit.requests.max(1));
            let window = u64::from(limit.per_seconds) * 1_000_000;
            let interval = (window / requests).max(1);
            (
                key(&format!(
                    "rate:{name}:{}per{}",
                    limit.requests, limit.per_seconds
                )),
                interval,
                interval * requests,
            )
        }
    }
}

impl RedisLimits {
    async fn shared(&self, consumer: &Consumer) -> Result<(), Throttled> {
        let global = **self.global.load();
        let mine = bucket(
            &format!("consumer:{}", consumer.asid.as_str()),
            consumer.rate_limit,
        );
        let all = bucket("global", global);
        let mut call = self.script.prepare_invoke();
        call.key(&mine.0)
            .key(&all.0)
            .arg(mine.1)
            .arg(mine.2)
            .arg(all.1)
            .arg(all.2);
        let verdict: Result<(u8, u64), _> = self
            .store
            .on_request(move |mut c| async move { call.invoke_async(&mut c).await })
            .await;
        let refused = |scope, limit: Option<RateLimit>, wait: u64| {
            limit.map_or(Ok(()), |limit| {
                Err(Throttled {
                    scope,
                    limit,
                    reset: Duration::from_micros(wait),
                })
            })
        };
        match verdict {
            Ok((1, wait)) => refused(Scope::Consumer, consumer.rate_limit, wait),
            Ok((2, wait)) => refused(Scope::Global, global, wait),
            Ok(_) => Ok(()),
            Err(_) => self.local.admit(consumer).await,
        }
    }
}

impl Limiter for RedisLimits {
    fn configure(&self, registry: &Registry) {
        self.local.configure(registry);
        self.global.store(Arc::new(registry.rate_limit));
    }

    fn admit<'a>(&'a self, consumer: &'a Consumer) -> Admission<'a> {
        let admission: Pin<Box<dyn Future<Output = _> + Send + 'a>> =
            Box::pin(self.shared(consumer));
        admission
    }
}
