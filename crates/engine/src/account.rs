//! A provider account as the engine sees it: the client, the rate limiter and circuit
//! breaker shared by every campaign on the account, and a cool-down set when the provider
//! says the account is at its concurrency limit.

use dialtone_providers::resilience::{AccountLimiter, BreakerConfig, BreakerState, CircuitBreaker};
use dialtone_providers::Provider;
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex};

pub struct Account {
    pub provider: Arc<dyn Provider>,
    pub limiter: AccountLimiter,
    pub breaker: CircuitBreaker,
    cooldown_until: Mutex<Option<Timestamp>>,
}

impl Account {
    /// No rate limit, the default breaker (5 failures → open for 60 s).
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Self::with(provider, AccountLimiter::unlimited(), BreakerConfig::default())
    }

    pub fn with(provider: Arc<dyn Provider>, limiter: AccountLimiter, breaker: BreakerConfig) -> Self {
        Self { provider, limiter, breaker: CircuitBreaker::new(breaker), cooldown_until: Mutex::new(None) }
    }

    /// Pauses placement on this account for `pause` (the provider said it is at capacity).
    pub fn cool_down(&self, now: Timestamp, pause: std::time::Duration) {
        let pause = SignedDuration::try_from(pause).unwrap_or(SignedDuration::from_secs(5));
        *self.cooldown_until.lock().unwrap() = Some(now + pause);
    }

    /// What holds new calls on this account now, if anything: `(true, until)` for an open
    /// circuit breaker, `(false, until)` for the provider's "at capacity" cool-down.
    pub fn hold(&self, now: Timestamp) -> Option<(bool, Timestamp)> {
        if let BreakerState::Open { until } = self.breaker.state(now) {
            return Some((true, until));
        }
        match *self.cooldown_until.lock().unwrap() {
            Some(until) if until > now => Some((false, until)),
            _ => None,
        }
    }

    /// Why new calls on this account must wait now, if they must.
    pub fn waiting(&self, now: Timestamp) -> Option<String> {
        if let BreakerState::Open { until } = self.breaker.state(now) {
            return Some(format!("the provider is failing: circuit breaker open until {until}"));
        }
        match *self.cooldown_until.lock().unwrap() {
            Some(until) if until > now => Some(format!("the provider account is at its concurrency limit: slowing down until {until}")),
            _ => None,
        }
    }
}
