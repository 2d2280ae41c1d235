//! Per-account circuit breaker: after a run of failures, stop sending requests to an account
//! for a while instead of burning call attempts on an outage; then let one probe test it.
//!
//! Time comes from the caller (`now`), so the engine's clock drives it and tests never sleep.
//! Which failures count is the caller's decision: outages (5xx, timeouts, connection errors)
//! should, a 4xx about one bad request should not.

use jiff::Timestamp;
use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

/// How long a caller turned away because a probe is already out is asked to wait. The probe
/// usually answers within a request timeout; waiting the whole `open_for` would stall every
/// campaign on the account long after a successful probe.
const PROBE_PENDING_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// No requests until `until`.
    Open {
        until: Timestamp,
    },
    /// The open period is over; the next request (only one) is a probe.
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive counted failures that open the breaker (0 is treated as 1).
    pub failures_to_open: u32,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failures_to_open: 5, open_for: Duration::from_secs(60) }
    }
}

#[derive(Debug)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Timestamp },
    HalfOpen { probe_out: bool },
}

#[derive(Debug)]
struct Inner {
    config: BreakerConfig,
    phase: Phase,
    /// Bumped each time the breaker opens, so that a permit handed out before that reports
    /// into nothing: its outcome says nothing about the provider after the outage began.
    epoch: u64,
}

impl Inner {
    fn open(&mut self, now: Timestamp) -> Timestamp {
        let until = now.checked_add(self.config.open_for).unwrap_or(Timestamp::MAX);
        self.phase = Phase::Open { until };
        self.epoch += 1;
        until
    }
}

/// One account's breaker. Clones share the state.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Mutex<Inner>>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        let inner = Inner { config, phase: Phase::Closed { failures: 0 }, epoch: 0 };
        Self { inner: Arc::new(Mutex::new(inner)) }
    }

    /// May a request go now? Closed: yes. Open before `until`: no, `Err(until)`. Open at or
    /// after `until`: the breaker turns half-open and this caller gets the one probe; others
    /// get `Err` (a time shortly after `now`) until the probe reports or is dropped.
    pub fn allow(&self, now: Timestamp) -> Result<Permit, Timestamp> {
        let mut inner = self.lock();
        let kind = match inner.phase {
            Phase::Closed { .. } => PermitKind::Normal { epoch: inner.epoch },
            Phase::Open { until } if now < until => return Err(until),
            Phase::Open { .. } | Phase::HalfOpen { probe_out: false } => {
                inner.phase = Phase::HalfOpen { probe_out: true };
                PermitKind::Probe
            }
            Phase::HalfOpen { probe_out: true } => {
                let wait = PROBE_PENDING_RETRY.min(inner.config.open_for);
                return Err(now.checked_add(wait).unwrap_or(Timestamp::MAX));
            }
        };
        Ok(Permit { breaker: Some(self.inner.clone()), kind })
    }

    pub fn state(&self, now: Timestamp) -> BreakerState {
        match self.lock().phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open { until },
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// For a `dialtone_*` gauge: 0 closed, 1 open, 2 half-open.
    pub fn metrics_value(&self, now: Timestamp) -> i64 {
        match self.state(now) {
            BreakerState::Closed => 0,
            BreakerState::Open { .. } => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

/// Every critical section leaves `Inner` consistent, so a panic elsewhere while holding the
/// lock is no reason to stop dialling.
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PermitKind {
    Normal { epoch: u64 },
    Probe,
}

/// Leave to send one request. Report how it went with [`success`](Self::success) or
/// [`failure`](Self::failure); dropping it reports neither (and frees the probe slot).
#[derive(Debug)]
#[must_use = "report the outcome with success() or failure(now)"]
pub struct Permit {
    /// `None` once reported.
    breaker: Option<Arc<Mutex<Inner>>>,
    kind: PermitKind,
}

impl Permit {
    /// Whether this is the half-open probe (worth a log line: the account is being tested).
    pub fn is_probe(&self) -> bool {
        self.kind == PermitKind::Probe
    }

    /// The request worked: closes a half-open breaker, resets the failure count of a closed one.
    pub fn success(mut self) {
        let Some(breaker) = self.breaker.take() else { return };
        let mut inner = lock(&breaker);
        let current_epoch = inner.epoch;
        match (self.kind, &mut inner.phase) {
            (PermitKind::Probe, phase @ Phase::HalfOpen { probe_out: true }) => {
                *phase = Phase::Closed { failures: 0 };
                tracing::info!("circuit breaker closed: probe succeeded");
            }
            (PermitKind::Normal { epoch }, Phase::Closed { failures }) if epoch == current_epoch => *failures = 0,
            _ => {}
        }
    }

    /// The request failed in a way that counts against the account (an outage, not a bad
    /// request). The failure that reaches `failures_to_open`, or a failed probe, opens the
    /// breaker for `open_for` from `now`.
    pub fn failure(mut self, now: Timestamp) {
        let Some(breaker) = self.breaker.take() else { return };
        let mut inner = lock(&breaker);
        let threshold = inner.config.failures_to_open.max(1);
        let current_epoch = inner.epoch;
        let opens = match (self.kind, &mut inner.phase) {
            (PermitKind::Probe, Phase::HalfOpen { probe_out: true }) => true,
            (PermitKind::Normal { epoch }, Phase::Closed { failures }) if epoch == current_epoch => {
                *failures += 1;
                *failures >= threshold
            }
            _ => false,
        };
        if opens {
            let until = inner.open(now);
            tracing::warn!(%until, probe = self.kind == PermitKind::Probe, "circuit breaker opened");
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let (Some(breaker), PermitKind::Probe) = (self.breaker.take(), self.kind) {
            let mut inner = lock(&breaker);
            if let Phase::HalfOpen { probe_out } = &mut inner.phase {
                *probe_out = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    const OPEN_FOR: Duration = Duration::from_secs(60);

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig::default())
    }

    fn fail(b: &CircuitBreaker, times: u32, now: Timestamp) {
        for _ in 0..times {
            b.allow(now).expect("breaker refused while closed").failure(now);
        }
    }

    /// Opens `b` at `t(0)`; it may probe from `t(60)`.
    fn opened() -> CircuitBreaker {
        let b = breaker();
        fail(&b, 5, t(0));
        assert_eq!(b.state(t(0)), BreakerState::Open { until: t(60) });
        b
    }

    #[test]
    fn defaults_are_five_failures_and_sixty_seconds() {
        assert_eq!(BreakerConfig::default(), BreakerConfig { failures_to_open: 5, open_for: OPEN_FOR });
    }

    #[test]
    fn opens_after_exactly_five_consecutive_failures() {
        let b = breaker();
        fail(&b, 4, t(0));
        assert_eq!(b.state(t(0)), BreakerState::Closed, "opened after 4");
        fail(&b, 1, t(3));
        assert_eq!(b.state(t(3)), BreakerState::Open { until: t(63) });
        assert_eq!(b.metrics_value(t(3)), 1);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = breaker();
        fail(&b, 4, t(0));
        b.allow(t(1)).unwrap().success();
        fail(&b, 4, t(2));
        assert_eq!(b.state(t(2)), BreakerState::Closed);
        fail(&b, 1, t(2));
        assert_eq!(b.state(t(2)), BreakerState::Open { until: t(62) });
    }

    /// How the caller leaves out failures that don't count (a 4xx): it drops the permit.
    #[test]
    fn a_dropped_permit_while_closed_counts_as_neither() {
        let b = breaker();
        fail(&b, 4, t(0));
        drop(b.allow(t(0)).unwrap());
        assert_eq!(b.state(t(0)), BreakerState::Closed);
        fail(&b, 1, t(0));
        assert_eq!(b.state(t(0)), BreakerState::Open { until: t(60) }, "the drop reset the count");
    }

    #[test]
    fn rejects_while_open_with_the_reopen_time() {
        let b = opened();
        assert_eq!(b.allow(t(1)).unwrap_err(), t(60));
        let just_before = t(60).checked_sub(Duration::from_millis(1)).unwrap();
        assert_eq!(b.allow(just_before).unwrap_err(), t(60));
        assert_eq!(b.state(just_before), BreakerState::Open { until: t(60) });
    }

    #[test]
    fn lets_exactly_one_probe_through_after_the_open_period() {
        let b = opened();
        let probe = b.allow(t(60)).expect("no probe at the reopen time");
        assert!(probe.is_probe());
        let second = b.allow(t(60)).expect_err("a second caller got through alongside the probe");
        assert!(second > t(60) && second <= t(61), "retry time {second}");
        assert!(b.allow(t(90)).is_err(), "still only one probe later on");
        assert_eq!(b.state(t(90)), BreakerState::HalfOpen);
        assert_eq!(b.metrics_value(t(90)), 2);
        drop(probe);
    }

    #[test]
    fn concurrent_callers_get_one_probe_between_them() {
        let b = opened();
        let callers = 8;
        let barrier = Barrier::new(callers);
        let probes: Vec<Permit> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..callers)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        b.allow(t(61)).ok()
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(probes.len(), 1);
        assert!(probes[0].is_probe());
    }

    #[test]
    fn a_successful_probe_closes_the_breaker_with_a_fresh_count() {
        let b = opened();
        b.allow(t(70)).unwrap().success();
        assert_eq!(b.state(t(70)), BreakerState::Closed);
        assert_eq!(b.metrics_value(t(70)), 0);
        assert!(!b.allow(t(70)).unwrap().is_probe());
        fail(&b, 4, t(71));
        assert_eq!(b.state(t(71)), BreakerState::Closed, "failures from before the outage still counted");
    }

    #[test]
    fn a_failed_probe_reopens_for_another_sixty_seconds() {
        let b = opened();
        b.allow(t(75)).unwrap().failure(t(80));
        assert_eq!(b.state(t(80)), BreakerState::Open { until: t(140) });
        assert_eq!(b.allow(t(139)).unwrap_err(), t(140));
        assert!(b.allow(t(140)).unwrap().is_probe());
    }

    #[test]
    fn a_dropped_probe_frees_the_probe_slot() {
        let b = opened();
        let probe = b.allow(t(60)).unwrap();
        assert!(b.allow(t(60)).is_err());
        drop(probe);
        assert_eq!(b.state(t(61)), BreakerState::HalfOpen, "dropping the probe counted as a result");
        let next = b.allow(t(61)).expect("probe slot still taken after the drop");
        assert!(next.is_probe());
        next.success();
        assert_eq!(b.state(t(61)), BreakerState::Closed);
    }

    #[test]
    fn results_of_requests_sent_before_the_breaker_opened_are_ignored() {
        let b = breaker();
        let slow_success = b.allow(t(0)).unwrap();
        let slow_failure = b.allow(t(0)).unwrap();
        fail(&b, 5, t(0));
        slow_success.success();
        assert_eq!(b.state(t(1)), BreakerState::Open { until: t(60) }, "a stale success closed it");
        b.allow(t(60)).unwrap().success();
        slow_failure.failure(t(61));
        fail(&b, 4, t(61));
        assert_eq!(b.state(t(61)), BreakerState::Closed, "a stale failure counted after recovery");
    }

    #[test]
    fn clones_share_state() {
        let b = breaker();
        let other = b.clone();
        fail(&other, 5, t(0));
        assert_eq!(b.allow(t(1)).unwrap_err(), t(60));
    }
}
