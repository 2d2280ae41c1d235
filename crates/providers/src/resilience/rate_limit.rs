//! Per-account request rate limit: a GCRA token bucket from `governor`.
//!
//! Providers meter calls per account, not per campaign, so one [`AccountLimiter`] is made
//! per account and cloned into every campaign that dials through it.

use governor::{
    clock::{Clock, MonotonicClock, ReasonablyRealtime},
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed},
    Quota, RateLimiter,
};
use std::{fmt, num::NonZeroU32, sync::Arc, time::Duration};

/// The slowest rate accepted: one request a day. `governor` keeps its times in u64
/// nanoseconds (about 584 years) and panics past that, when it first uses a bucket whose
/// period or burst would reach it; no provider meters slower than a day.
pub const MIN_PER_SECOND: f64 = 1.0 / 86_400.0;

/// The largest burst accepted: `governor` also keeps burst × period in u64 nanoseconds,
/// and with the slowest rate 10,000 days stays well within it.
pub const MAX_BURST: u32 = 10_000;

/// How fast one provider account accepts requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate. Must be positive and finite.
    pub per_second: f64,
    /// How many requests may go back to back after a quiet spell. At least 1.
    pub burst: u32,
}

impl RateLimit {
    /// Twilio's default outbound calls-per-second for an account: 1 CPS, no burst.
    pub fn twilio() -> Self {
        Self { per_second: 1.0, burst: 1 }
    }

    /// Exotel's default: 200 calls a minute, bursts of up to 10.
    pub fn exotel() -> Self {
        Self::per_minute(200).with_burst(10)
    }

    /// `n` requests a minute, no burst (use [`with_burst`](Self::with_burst) to allow one).
    pub fn per_minute(n: u32) -> Self {
        Self { per_second: f64::from(n) / 60.0, burst: 1 }
    }

    pub fn with_burst(self, burst: u32) -> Self {
        Self { burst, ..self }
    }

    /// For checking configuration at start-up, so that [`AccountLimiter::new`] never panics
    /// in the middle of a campaign.
    pub fn validate(&self) -> Result<(), InvalidRateLimit> {
        self.quota().map(|_| ())
    }

    fn quota(&self) -> Result<Quota, InvalidRateLimit> {
        let burst = NonZeroU32::new(self.burst).filter(|b| b.get() <= MAX_BURST).ok_or(InvalidRateLimit::Burst(self.burst))?;
        let rate_error = InvalidRateLimit::Rate(self.per_second);
        if !(self.per_second.is_finite() && self.per_second >= MIN_PER_SECOND) {
            return Err(rate_error);
        }
        // Too slow overflows a Duration; too fast rounds the period to zero nanoseconds.
        let period = Duration::try_from_secs_f64(1.0 / self.per_second).map_err(|_| rate_error.clone())?;
        let quota = Quota::with_period(period).ok_or(rate_error)?;
        Ok(quota.allow_burst(burst))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidRateLimit {
    #[error("rate limit must be a finite number of requests per second, at least one a day ({MIN_PER_SECOND:.3e}) (got {0})")]
    Rate(f64),
    #[error("rate limit burst must be from 1 to {MAX_BURST} (got {0})")]
    Burst(u32),
}

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The token bucket of one provider account. Clones share the bucket.
///
/// The clock parameter exists for tests (`governor::clock::FakeRelativeClock`); production
/// code uses the default.
pub struct AccountLimiter<C: Clock = MonotonicClock> {
    /// `None` = unlimited (e.g. a simulator account, or a provider without a documented limit).
    bucket: Option<Arc<Bucket<C>>>,
    limit: Option<RateLimit>,
}

impl AccountLimiter {
    /// Panics if `limit` is invalid; check it with [`RateLimit::validate`] when loading config.
    pub fn new(limit: RateLimit) -> Self {
        Self::with_clock(limit, MonotonicClock)
    }

    pub fn unlimited() -> Self {
        Self { bucket: None, limit: None }
    }
}

impl<C: Clock> AccountLimiter<C> {
    /// Like [`new`](AccountLimiter::new), on a clock of the caller's choosing.
    pub fn with_clock(limit: RateLimit, clock: C) -> Self {
        let quota = match limit.quota() {
            Ok(quota) => quota,
            Err(e) => panic!("invalid rate limit {limit:?}: {e}"),
        };
        Self { bucket: Some(Arc::new(RateLimiter::direct_with_clock(quota, clock))), limit: Some(limit) }
    }

    /// Takes a token if one is there now; never waits.
    pub fn try_acquire(&self) -> bool {
        match &self.bucket {
            Some(bucket) => bucket.check().is_ok(),
            None => true,
        }
    }

    /// `None` when unlimited.
    pub fn limit(&self) -> Option<RateLimit> {
        self.limit
    }
}

impl<C: ReasonablyRealtime> AccountLimiter<C> {
    /// Waits until a token is free and takes it. Cancel-safe: a dropped wait takes nothing.
    pub async fn acquire(&self) {
        if let Some(bucket) = &self.bucket {
            bucket.until_ready().await;
        }
    }
}

impl<C: Clock> Clone for AccountLimiter<C> {
    fn clone(&self) -> Self {
        Self { bucket: self.bucket.clone(), limit: self.limit }
    }
}

impl<C: Clock> fmt::Debug for AccountLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.limit {
            Some(limit) => f.debug_tuple("AccountLimiter").field(limit).finish(),
            None => f.write_str("AccountLimiter(unlimited)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Instant;

    fn fake(limit: RateLimit) -> (AccountLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (AccountLimiter::with_clock(limit, clock.clone()), clock)
    }

    fn take_all(limiter: &AccountLimiter<FakeRelativeClock>) -> usize {
        (0..1000).take_while(|_| limiter.try_acquire()).count()
    }

    #[test]
    fn twilio_allows_one_call_a_second() {
        let (limiter, clock) = fake(RateLimit::twilio());
        assert_eq!(take_all(&limiter), 1);
        clock.advance(Duration::from_millis(999));
        assert!(!limiter.try_acquire(), "a token came back before a full second");
        clock.advance(Duration::from_millis(1));
        assert_eq!(take_all(&limiter), 1);
    }

    #[test]
    fn exotel_allows_a_burst_of_ten_then_one_every_300_ms() {
        let (limiter, clock) = fake(RateLimit::exotel());
        assert_eq!(take_all(&limiter), 10);
        clock.advance(Duration::from_millis(299));
        assert!(!limiter.try_acquire());
        clock.advance(Duration::from_millis(1));
        assert_eq!(take_all(&limiter), 1);
        // A long quiet spell refills the burst, but never beyond it.
        clock.advance(Duration::from_secs(3600));
        assert_eq!(take_all(&limiter), 10);
    }

    #[test]
    fn clones_share_one_bucket() {
        let (limiter, _clock) = fake(RateLimit::per_minute(60).with_burst(3));
        let other_campaign = limiter.clone();
        assert!(limiter.try_acquire());
        assert!(other_campaign.try_acquire());
        assert!(limiter.try_acquire());
        assert!(!other_campaign.try_acquire(), "the clone had its own bucket");
    }

    #[test]
    fn unlimited_never_refuses() {
        let limiter = AccountLimiter::unlimited();
        assert!((0..10_000).all(|_| limiter.try_acquire()));
        assert_eq!(limiter.limit(), None);
    }

    #[test]
    fn invalid_limits_are_rejected_by_validate() {
        // 1e-19..5e-11 fit a Duration but not governor's u64 nanoseconds: it panicked on
        // first use of such a bucket.
        for per_second in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-30, 1e-19, 1e-12, 5e-11, MIN_PER_SECOND / 2.0, 1e12] {
            let limit = RateLimit { per_second, burst: 1 };
            assert!(limit.validate().is_err(), "{per_second} accepted");
        }
        assert_eq!(RateLimit { per_second: 1.0, burst: 0 }.validate(), Err(InvalidRateLimit::Burst(0)));
        assert_eq!(RateLimit { per_second: 1.0, burst: MAX_BURST + 1 }.validate(), Err(InvalidRateLimit::Burst(MAX_BURST + 1)));
        // The extremes accepted make a bucket that works.
        for limit in [RateLimit { per_second: MIN_PER_SECOND, burst: MAX_BURST }, RateLimit { per_second: MIN_PER_SECOND, burst: 1 }] {
            assert_eq!(limit.validate(), Ok(()));
            let limiter = AccountLimiter::new(limit);
            assert!(limiter.try_acquire(), "{limit:?}: the first request goes");
        }
        assert_eq!(RateLimit::per_minute(0).validate(), Err(InvalidRateLimit::Rate(0.0)));
        for ok in [RateLimit::twilio(), RateLimit::exotel(), RateLimit::per_minute(1)] {
            assert_eq!(ok.validate(), Ok(()));
        }
    }

    #[test]
    #[should_panic(expected = "invalid rate limit")]
    fn new_panics_on_an_invalid_limit() {
        AccountLimiter::new(RateLimit { per_second: 0.0, burst: 1 });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acquire_waits_for_tokens_across_concurrent_tasks() {
        // 5/s, burst 1: the first token is free, the other five come 200 ms apart.
        let limiter = AccountLimiter::new(RateLimit { per_second: 5.0, burst: 1 });
        let start = Instant::now();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    limiter.acquire().await;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(950), "6 acquires at 5/s took only {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }

    #[test]
    fn acquire_is_send_so_the_placer_can_spawn_it() {
        fn assert_send<T: Send>(_: T) {}
        let limiter = AccountLimiter::unlimited();
        assert_send(limiter.acquire());
    }
}
