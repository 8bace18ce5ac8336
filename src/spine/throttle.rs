//! The throttle: request rate limits per consumer and over the whole simulator (routes.toml
//! `rate_limit`), as the SSP guide describes Spine's (*"HTTP status code 429 MUST be used"* with
//! `X-Rate-Limit-Limit`, `-Remaining` and `-Reset`; 503 when the service as a whole is loaded).
//!
//! The gateway holds the counts behind the [`Limiter`] trait: [`InMemory`] (governor's GCRA,
//! one limiter per bucket) serves one process; replicas that must share counts plug in another
//! implementation with `Gateway::with_limiter`.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use http::{HeaderName, HeaderValue};

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::{Consumer, RateLimit, Registry};
use crate::config::sds::Asid;

/// Whose limit a request went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The sending consumer's own `rate_limit`: 429.
    Consumer,
    /// The simulator's global `rate_limit`: 503.
    Global,
}

/// A request the limits refuse: whose limit, what it is, and when a request may come again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Whose limit it went over.
    pub scope: Scope,
    /// That limit.
    pub limit: RateLimit,
    /// How long until the limit admits a request again.
    pub reset: Duration,
}

/// What [`Limiter::admit`] answers, later: a shared limiter may ask a store over the network.
pub type Admission<'a> = Pin<Box<dyn Future<Output = Result<(), Throttled>> + Send + 'a>>;

/// Where the request counts are kept.
pub trait Limiter: Send + Sync {
    /// Takes the limits of routes being installed (at start-up and on every reload), before
    /// any request runs on them. A bucket whose limit is unchanged keeps its count.
    fn configure(&self, registry: &Registry);

    /// Counts one request from `consumer` against its own limit, then the global one, as
    /// configured; a refused request is not counted against the global limit.
    fn admit<'a>(&'a self, consumer: &'a Consumer) -> Admission<'a>;
}

/// The throttle phase: runs only when the routes set a limit that applies to `consumer`.
///
/// - Reads: the sender check 5 found, and the routes' limits.
/// - Refuses: a request over the sender's limit with 429
///   [`too-many-requests`](ids::TOO_MANY_REQUESTS), one over the global limit with 503
///   [`service-unavailable`](ids::SERVICE_UNAVAILABLE), each with the rate-limit headers.
pub async fn check(
    limiter: &dyn Limiter,
    registry: &Registry,
    consumer: &Consumer,
) -> Result<(), Rejection> {
    if consumer.rate_limit.is_none() && registry.rate_limit.is_none() {
        return Ok(());
    }
    limiter.admit(consumer).await.map_err(|t| refusal(&t))
}

/// The refusal for a throttled request: the catalogue error of its scope, the
/// `X-Rate-Limit-*` headers (and `Retry-After`) and a diagnostic naming the limit.
pub fn refusal(throttled: &Throttled) -> Rejection {
    let (error, whose) = match throttled.scope {
        Scope::Consumer => (ids::TOO_MANY_REQUESTS, "the sender's rate_limit"),
        Scope::Global => (ids::SERVICE_UNAVAILABLE, "the global rate_limit"),
    };
    let RateLimit {
        requests,
        per_seconds,
    } = throttled.limit;
    // Whole seconds, rounded up: a client that waits this long is admitted.
    let reset = throttled.reset.as_millis().div_ceil(1000).max(1);
    let number = |n: u128| HeaderValue::from_str(&n.to_string()).expect("digits");
    Rejection::new(error)
        .with(
            Placeholder::Diagnostics,
            format!("over {whose} of {requests} requests per {per_seconds} s; retry in {reset} s"),
        )
        .with_header(LIMIT, number(requests.into()))
        .with_header(REMAINING, HeaderValue::from_static("0"))
        .with_header(RESET, number(reset))
        .with_header(http::header::RETRY_AFTER, number(reset))
}

/// `X-Rate-Limit-Limit`: the requests the window allows.
const LIMIT: HeaderName = HeaderName::from_static("x-rate-limit-limit");
/// `X-Rate-Limit-Remaining`: how many more the window allows now.
const REMAINING: HeaderName = HeaderName::from_static("x-rate-limit-remaining");
/// `X-Rate-Limit-Reset`: seconds until the limit admits a request again.
const RESET: HeaderName = HeaderName::from_static("x-rate-limit-reset");

/// One bucket: its limit and governor's count for it.
type Bucket = (RateLimit, Arc<DefaultDirectRateLimiter>);

/// The buckets of one routes snapshot.
#[derive(Default)]
struct Buckets {
    global: Option<Bucket>,
    consumers: HashMap<Asid, Bucket>,
}

/// Counts kept in this process, with governor's GCRA: a limit of N per T seconds admits a
/// burst of N, then one request every T/N.
pub struct InMemory {
    buckets: ArcSwap<Buckets>,
    clock: DefaultClock,
}

impl Default for InMemory {
    fn default() -> Self {
        Self {
            buckets: ArcSwap::from_pointee(Buckets::default()),
            clock: DefaultClock::default(),
        }
    }
}

/// A bucket for `limit`: the old one when its limit is the same (its count carries over).
fn bucket(limit: RateLimit, old: Option<&Bucket>) -> Bucket {
    match old {
        Some(kept) if kept.0 == limit => kept.clone(),
        _ => {
            let burst = NonZeroU32::new(limit.requests).unwrap_or(NonZeroU32::MIN);
            let period = Duration::from_secs(limit.per_seconds.into()) / burst.get();
            let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
                .expect("a period of at least 1 ns")
                .allow_burst(burst);
            (limit, Arc::new(DefaultDirectRateLimiter::direct(quota)))
        }
    }
}

impl InMemory {
    /// Takes one request from `bucket`, or says when it may come again.
    fn take(&self, scope: Scope, (limit, counts): &Bucket) -> Result<(), Throttled> {
        counts.check().map_err(|not_until| Throttled {
            scope,
            limit: *limit,
            reset: not_until.wait_time_from(self.clock.now()),
        })
    }
}

impl Limiter for InMemory {
    fn configure(&self, registry: &Registry) {
        let old = self.buckets.load();
        let consumers = registry
            .consumers()
            .filter_map(|c| {
                let limit = c.rate_limit?;
                Some((c.asid.clone(), bucket(limit, old.consumers.get(&c.asid))))
            })
            .collect();
        let global = registry
            .rate_limit
            .map(|limit| bucket(limit, old.global.as_ref()));
        self.buckets.store(Arc::new(Buckets { global, consumers }));
    }

    fn admit<'a>(&'a self, consumer: &'a Consumer) -> Admission<'a> {
        let buckets = self.buckets.load();
        let verdict = buckets
            .consumers
            .get(&consumer.asid)
            .map_or(Ok(()), |b| self.take(Scope::Consumer, b))
            .and_then(|()| {
                buckets
                    .global
                    .as_ref()
                    .map_or(Ok(()), |b| self.take(Scope::Global, b))
            });
        Box::pin(std::future::ready(verdict))
    }
}
