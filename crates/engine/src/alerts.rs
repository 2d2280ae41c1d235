//! Failure-rate alerts. Every `alert_interval` (default 30 s) the evaluator reads the calls
//! that ended in the last hour (`Store::failure_window`: one indexed query, by campaign and
//! provider account) and, for each campaign and each provider account with at least
//! `alert_min_calls` ended calls (outcome other than `canceled`), compares the share that
//! failed (outcome `failed`, `timeout` or `invalid_number`) with `alert_threshold`:
//! - above it, the alert is raised (logged once at error level) and stays while it holds;
//! - at or below it, or with fewer calls than the minimum (the hour no longer says
//!   anything), a raised alert is cleared (logged at info).
//!
//! `dialtone_failure_rate_alert{scope, id}` is 1 while raised and 0 once cleared; the
//! campaign view lists the alerts of the campaign and of its provider account. The state
//! lives in each process: every node of a cluster evaluates the same database, so each
//! reaches the same alerts (each logs them, too). Time is the engine's clock.

use crate::{Engine, EngineError};
use dialtone_core::ProviderKind;
use dialtone_store::WindowCount;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The sliding window alerts look back over.
pub const WINDOW: SignedDuration = SignedDuration::from_hours(1);

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertScope {
    /// One campaign's calls.
    Campaign,
    /// Every call through one provider account (today one account per provider).
    Account,
}

impl AlertScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertScope::Campaign => "campaign",
            AlertScope::Account => "account",
        }
    }
}

/// A raised failure-rate alert, as the campaign view lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    /// Always `failure_rate`.
    pub kind: &'static str,
    pub scope: AlertScope,
    /// The campaign id (scope `campaign`) or the provider (scope `account`).
    pub subject: String,
    /// `failed / ended` over the last hour, at the last evaluation (0..=1).
    pub failure_rate: f64,
    pub failed: u64,
    pub ended: u64,
    /// The threshold it is above (0..=1).
    pub threshold: f64,
    /// When it was raised.
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
    /// When it was last evaluated.
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: Timestamp,
    pub message: String,
}

/// Thresholds of the evaluator (`EngineConfig::alert_*`).
#[derive(Debug, Clone, Copy)]
pub struct AlertRule {
    /// A share of failed calls above this raises the alert (0..=1).
    pub threshold: f64,
    /// Fewer ended calls than this in the hour say nothing: no alert.
    pub min_calls: u64,
}

/// What one evaluation changed.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub raised: Vec<Alert>,
    pub cleared: Vec<Alert>,
}

/// The alerts raised now, by (scope, subject).
#[derive(Default)]
pub struct Alerts {
    active: Mutex<BTreeMap<(AlertScope, String), Alert>>,
}

impl Alerts {
    /// Every raised alert.
    pub fn active(&self) -> Vec<Alert> {
        self.active.lock().unwrap().values().cloned().collect()
    }

    /// The alerts that concern a campaign: its own and its provider account's.
    pub fn for_campaign(&self, campaign: &str, provider: ProviderKind) -> Vec<Alert> {
        let active = self.active.lock().unwrap();
        [(AlertScope::Campaign, campaign.to_string()), (AlertScope::Account, provider.to_string())].iter().filter_map(|k| active.get(k).cloned()).collect()
    }

    /// Judges one window's counts: raises, keeps (with fresh numbers) and clears alerts.
    pub fn update(&self, rows: &[WindowCount], rule: AlertRule, now: Timestamp) -> Changes {
        let mut totals: BTreeMap<(AlertScope, String), (u64, u64)> = BTreeMap::new();
        for r in rows {
            for key in [(AlertScope::Campaign, r.campaign_id.clone()), (AlertScope::Account, r.provider.clone())] {
                let t = totals.entry(key).or_default();
                t.0 += r.ended.max(0) as u64;
                t.1 += r.failed.max(0) as u64;
            }
        }
        let mut active = self.active.lock().unwrap();
        let mut changes = Changes::default();
        for ((scope, subject), (ended, failed)) in &totals {
            let rate = if *ended == 0 { 0.0 } else { *failed as f64 / *ended as f64 };
            let key = (*scope, subject.clone());
            if *ended < rule.min_calls || rate <= rule.threshold {
                continue;
            }
            let message = format!(
                "{} {subject}: {failed} of {ended} calls failed in the last hour ({:.0} %, threshold {:.0} %)",
                scope.as_str(),
                rate * 100.0,
                rule.threshold * 100.0
            );
            match active.get_mut(&key) {
                Some(a) => {
                    (a.failure_rate, a.failed, a.ended, a.checked_at, a.message) = (rate, *failed, *ended, now, message);
                }
                None => {
                    let alert = Alert {
                        kind: "failure_rate",
                        scope: *scope,
                        subject: subject.clone(),
                        failure_rate: rate,
                        failed: *failed,
                        ended: *ended,
                        threshold: rule.threshold,
                        since: now,
                        checked_at: now,
                        message,
                    };
                    changes.raised.push(alert.clone());
                    active.insert(key, alert);
                }
            }
        }
        let recovered: Vec<_> = active
            .iter()
            .filter(|(k, _)| totals.get(k).is_none_or(|(ended, failed)| *ended < rule.min_calls || (*failed as f64 / *ended as f64) <= rule.threshold))
            .map(|(k, _)| k.clone())
            .collect();
        for k in recovered {
            if let Some(mut a) = active.remove(&k) {
                let (ended, failed) = totals.get(&k).copied().unwrap_or((0, 0));
                (a.ended, a.failed, a.checked_at) = (ended, failed, now);
                a.failure_rate = if ended == 0 { 0.0 } else { failed as f64 / ended as f64 };
                changes.cleared.push(a);
            }
        }
        changes
    }
}

pub(crate) async fn run(engine: Arc<Engine>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(engine.config.alert_interval) => {}
        }
        if let Err(e) = engine.evaluate_alerts().await {
            tracing::warn!(error = %e, "failure-rate alert evaluation failed; retrying on the next pass");
        }
    }
}

impl Engine {
    /// An `alert.failure_rate` outbox event for each raised alert: a campaign's goes to the
    /// campaign's workspace, a provider account's (the config file's accounts) to the
    /// default workspace. `data` is the alert as `GET /campaigns/{id}` shows it. Every node
    /// evaluates alerts on its own, so on a cluster each node that raises one sends it.
    async fn emit_alert_events(&self, raised: &[Alert], now: Timestamp) -> Result<(), EngineError> {
        let mut events = Vec::with_capacity(raised.len());
        for a in raised {
            let ws = match a.scope {
                AlertScope::Campaign => self.store.campaign_workspace(&a.subject).await?,
                AlertScope::Account => Some(self.default_workspace().await?.clone()),
            };
            let Some(ws) = ws else { continue };
            events.push(dialtone_store::OutboxEvent::new(ws.as_str(), "alert.failure_rate", serde_json::to_value(a).unwrap_or(serde_json::Value::Null)));
        }
        self.store.emit_events(&events, now).await?;
        Ok(())
    }

    /// One evaluation of the failure-rate alerts at the engine clock's now (the periodic
    /// task calls it every `alert_interval`; tests call it directly).
    pub async fn evaluate_alerts(&self) -> Result<Changes, EngineError> {
        let now = self.clock.now();
        let rows = self.store.failure_window(now - WINDOW).await?;
        let rule = AlertRule { threshold: self.config.alert_threshold, min_calls: self.config.alert_min_calls };
        let changes = self.alerts.update(&rows, rule, now);
        for a in &changes.raised {
            tracing::error!(scope = a.scope.as_str(), subject = %a.subject, failed = a.failed, ended = a.ended, rate = a.failure_rate, "failure-rate alert: {}", a.message);
            self.metrics.failure_alert(a.scope.as_str(), &a.subject, true);
        }
        if !changes.raised.is_empty() {
            self.emit_alert_events(&changes.raised, now).await?;
        }
        for a in &changes.cleared {
            tracing::info!(scope = a.scope.as_str(), subject = %a.subject, failed = a.failed, ended = a.ended, "failure-rate alert cleared: the last hour is back under the threshold");
            self.metrics.failure_alert(a.scope.as_str(), &a.subject, false);
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(campaign: &str, provider: &str, ended: i64, failed: i64) -> WindowCount {
        WindowCount { campaign_id: campaign.into(), provider: provider.into(), ended, failed }
    }

    const RULE: AlertRule = AlertRule { threshold: 0.2, min_calls: 20 };

    #[test]
    fn raised_above_the_threshold_with_enough_calls_kept_then_cleared() {
        let alerts = Alerts::default();
        let t = |s| Timestamp::from_second(s).unwrap();
        // 5 of 20 (25 %) in campaign a; 0 of 30 in b: the account sees 5 of 50 (10 %).
        let c = alerts.update(&[row("cmp_a", "sim", 20, 5), row("cmp_b", "sim", 30, 0)], RULE, t(0));
        assert_eq!(c.raised.iter().map(|a| (a.scope, a.subject.as_str())).collect::<Vec<_>>(), vec![(AlertScope::Campaign, "cmp_a")]);
        assert_eq!(alerts.for_campaign("cmp_a", ProviderKind::Sim).len(), 1);
        assert!(alerts.for_campaign("cmp_b", ProviderKind::Sim).is_empty());
        // Still failing: kept, not raised again, numbers refreshed, `since` kept.
        let c = alerts.update(&[row("cmp_a", "sim", 30, 9)], RULE, t(60));
        assert_eq!(c.cleared, vec![]);
        let raised: Vec<_> = c.raised.iter().map(|a| a.subject.clone()).collect();
        assert_eq!(raised, vec!["sim".to_string()], "the account alone is new: 9 of 30");
        let a = &alerts.for_campaign("cmp_a", ProviderKind::Sim)[0];
        assert_eq!((a.failed, a.ended, a.since, a.checked_at), (9, 30, t(0), t(60)));
        // Exactly at the threshold is not above it: cleared. Too few calls: cleared too.
        let c = alerts.update(&[row("cmp_a", "sim", 40, 8), row("cmp_c", "twilio", 5, 5)], RULE, t(120));
        assert_eq!(c.cleared.len(), 2);
        assert!(alerts.active().is_empty());
        assert!(alerts.update(&[row("cmp_c", "sim", 19, 19)], RULE, t(180)).raised.is_empty(), "under the minimum volume");
    }
}
