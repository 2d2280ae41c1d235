//! Prometheus metrics, all named `dialtone_*`.

use dialtone_core::ProviderKind;
use dialtone_providers::ProviderError;
use dialtone_store::Applied;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    provider: String,
    class: String,
    status: String,
}

/// A failure-rate alert's subject: `scope` `campaign` (id a campaign id) or `account` (id a provider).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabel {
    scope: String,
    id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabel {
    provider: String,
    result: String,
}

fn latency() -> Histogram {
    // 0.5 ms … ~4 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

pub struct Metrics {
    registry: Registry,
    placed: Family<ProviderLabel, Counter>,
    ended: Family<OutcomeLabel, Counter>,
    provider_errors: Family<ErrorLabel, Counter>,
    provider_latency: Family<ProviderLabel, Histogram, fn() -> Histogram>,
    webhooks: Family<WebhookLabel, Counter>,
    webhook_latency: Family<ProviderLabel, Histogram, fn() -> Histogram>,
    active: Gauge,
    breakers: Family<ProviderLabel, Gauge>,
    clock_skew: Gauge<f64, std::sync::atomic::AtomicU64>,
    unknown_events: Family<ProviderLabel, Counter>,
    unknown_purged: Counter,
    failure_alerts: Family<AlertLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dialtone");
        let placed = Family::<ProviderLabel, Counter>::default();
        let ended = Family::<OutcomeLabel, Counter>::default();
        let provider_errors = Family::<ErrorLabel, Counter>::default();
        let provider_latency = Family::<ProviderLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let webhooks = Family::<WebhookLabel, Counter>::default();
        let webhook_latency = Family::<ProviderLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let active = Gauge::default();
        let breakers = Family::<ProviderLabel, Gauge>::default();
        registry.register("circuit_breaker_state", "Provider account circuit breaker: 0 closed, 1 open, 2 half-open", breakers.clone());
        registry.register("calls_placed", "Calls accepted by a provider", placed.clone());
        registry.register("calls_ended", "Calls ended, by outcome", ended.clone());
        registry.register("provider_errors", "Provider requests that failed", provider_errors.clone());
        registry.register("provider_request_seconds", "Time to place a call at the provider", provider_latency.clone());
        registry.register("webhooks", "Webhooks received, by result", webhooks.clone());
        registry.register("webhook_seconds", "Webhook handling time, verification to committed write", webhook_latency.clone());
        registry.register("active_calls", "Calls holding a concurrency slot", active.clone());
        let clock_skew = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register("clock_skew_seconds", "This node's clock minus the database's, at the last heartbeat (PostgreSQL)", clock_skew.clone());
        let unknown_events = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "webhook_events_unknown",
            "Webhook events stored for a call dialtone never placed (kept for unknown_event_retention)",
            unknown_events.clone(),
        );
        let unknown_purged = Counter::default();
        registry.register(
            "webhook_events_unknown_purged",
            "Events for calls dialtone never placed, purged after unknown_event_retention",
            unknown_purged.clone(),
        );
        let failure_alerts = Family::<AlertLabel, Gauge>::default();
        registry.register(
            "failure_rate_alert",
            "1 while a campaign's or provider account's failure rate over the last hour is above the alert threshold, 0 once it recovered",
            failure_alerts.clone(),
        );
        Self {
            failure_alerts,
            registry,
            placed,
            ended,
            provider_errors,
            provider_latency,
            webhooks,
            webhook_latency,
            active,
            breakers,
            clock_skew,
            unknown_events,
            unknown_purged,
        }
    }
}

impl Metrics {
    pub fn calls_placed(&self, provider: ProviderKind) {
        self.placed.get_or_create(&ProviderLabel { provider: provider.to_string() }).inc();
    }

    pub fn provider_error(&self, provider: ProviderKind, e: &ProviderError) {
        let label = ErrorLabel {
            provider: provider.to_string(),
            class: if e.is_retryable() { "retryable" } else { "final" }.into(),
            status: e.status.map_or_else(|| "none".into(), |s| s.to_string()),
        };
        self.provider_errors.get_or_create(&label).inc();
    }

    pub fn observe_provider_request(&self, provider: ProviderKind, took: Duration) {
        self.provider_latency.get_or_create(&ProviderLabel { provider: provider.to_string() }).observe(took.as_secs_f64());
    }

    pub fn webhook(&self, provider: &str, result: &str, took: Duration) {
        self.webhooks.get_or_create(&WebhookLabel { provider: provider.into(), result: result.into() }).inc();
        self.webhook_latency.get_or_create(&ProviderLabel { provider: provider.into() }).observe(took.as_secs_f64());
    }

    /// Counts webhook events that named no call of ours (`dialtone_webhook_events_unknown_total`).
    pub fn unknown_events(&self, provider: &str, n: u64) {
        if n > 0 {
            self.unknown_events.get_or_create(&ProviderLabel { provider: provider.into() }).inc_by(n);
        }
    }

    /// Counts events for unknown calls the reaper purged (`dialtone_webhook_events_unknown_purged_total`).
    pub fn unknown_purged(&self, n: u64) {
        self.unknown_purged.inc_by(n);
    }

    /// Sets `dialtone_failure_rate_alert{scope, id}`: 1 raised, 0 cleared.
    pub fn failure_alert(&self, scope: &str, id: &str, raised: bool) {
        self.failure_alerts.get_or_create(&AlertLabel { scope: scope.into(), id: id.into() }).set(i64::from(raised));
    }

    pub fn clock_skew(&self, seconds: f64) {
        self.clock_skew.set(seconds);
    }

    pub fn record_applied(&self, applied: &[Applied]) {
        for a in applied {
            if let Some(outcome) = a.transition.as_ref().filter(|t| t.ends_call()).and_then(|t| t.outcome) {
                self.ended.get_or_create(&OutcomeLabel { outcome: outcome.to_string() }).inc();
            }
        }
    }

    /// Renders the Prometheus text format; `active_calls` is read fresh by the caller.
    pub fn render(&self, active_calls: u64, breakers: &[(ProviderKind, i64)]) -> String {
        self.active.set(active_calls as i64);
        for (provider, state) in breakers {
            self.breakers.get_or_create(&ProviderLabel { provider: provider.to_string() }).set(*state);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_skew_is_exported_in_seconds() {
        let m = Metrics::default();
        m.clock_skew(-3.5);
        let out = m.render(0, &[]);
        assert!(out.contains("dialtone_clock_skew_seconds -3.5"), "{out}");
    }
}
