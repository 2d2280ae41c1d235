//! Failure-rate alerts on the injected clock: raised over the threshold with enough calls,
//! kept while the hour stays bad, cleared once the failures slide out of the hour.

use crate::support::{campaign, fresh_store, numbers, started};
use dialtone_core::{Clock, ManualClock, Outcome, ProviderKind};
use dialtone_engine::alerts::AlertScope;
use dialtone_engine::{Engine, EngineConfig, Providers};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

#[tokio::test]
async fn a_failure_rate_alert_is_raised_kept_and_cleared_as_the_hour_slides() {
    let (store, ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T09:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let config = EngineConfig::default();
    assert_eq!((config.alert_threshold, config.alert_min_calls), (0.2, 20), "20 % of at least 20 calls by default");
    let engine = Engine::new(store.clone(), Providers::new(), Arc::new(clock.clone()), config);
    let hook =
        dialtone_store::NewWebhookEndpoint { url: "http://127.0.0.1:9/h".into(), events: vec!["alert.failure_rate".into()], enabled: true, description: None };
    let ep = store.create_webhook_endpoint(&ws, &hook, &"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), start).await.unwrap();
    let mut new = campaign(&ws, "alerts");
    new.max_concurrent = 30;
    let cmp = started(&store, new, &numbers(30), start).await;
    let calls = store.claim(&cmp, "node", start).await.unwrap();
    assert_eq!(calls.len(), 30);
    let end = |i: usize, outcome: Outcome| {
        let (store, id, now) = (store.clone(), calls[i].call_id.clone(), clock.now());
        async move { assert!(store.end_call(&id, outcome, "test", now).await.unwrap().is_some()) }
    };

    // 19 ended, 5 failed: under the minimum volume, nothing.
    for i in 0..19 {
        end(i, if i < 5 { Outcome::Failed } else { Outcome::Completed }).await;
    }
    assert_eq!(engine.evaluate_alerts().await.unwrap().raised, vec![]);
    // The 20th: 5 of 20 = 25 % > 20 %: the campaign and its account (the only campaign on it).
    end(19, Outcome::Completed).await;
    let changes = engine.evaluate_alerts().await.unwrap();
    let raised: Vec<_> = changes.raised.iter().map(|a| (a.scope, a.subject.clone())).collect();
    assert_eq!(raised, vec![(AlertScope::Campaign, cmp.to_string()), (AlertScope::Account, "sim".to_string())]);
    let on_campaign = engine.alerts.for_campaign(cmp.as_str(), ProviderKind::Sim);
    assert_eq!(on_campaign.len(), 2);
    // Each raised alert is an outbound `alert.failure_rate` event of the workspace (issue 13).
    let sent = store.list_deliveries(&ws, ep.id.as_str(), &dialtone_store::Page { limit: 10, before: None }).await.unwrap();
    assert_eq!(sent.len(), 2, "one event per raised alert");
    assert!(sent.iter().all(|(d, _)| d.event_type == "alert.failure_rate" && d.payload.contains("\"failure_rate\"")));
    assert_eq!((on_campaign[0].failed, on_campaign[0].ended, on_campaign[0].since), (5, 20, start));
    let metrics = engine.metrics.render(0, &[]);
    assert!(metrics.contains(&format!("dialtone_failure_rate_alert{{scope=\"campaign\",id=\"{cmp}\"}} 1")), "{metrics}");

    // Ten minutes later, two more calls complete: 5 of 22 (23 %) still above: kept, not raised again.
    clock.advance(SignedDuration::from_mins(10));
    end(20, Outcome::Completed).await;
    end(21, Outcome::Completed).await;
    let changes = engine.evaluate_alerts().await.unwrap();
    assert_eq!((changes.raised.len(), changes.cleared.len()), (0, 0));
    let kept = &engine.alerts.for_campaign(cmp.as_str(), ProviderKind::Sim)[0];
    assert_eq!((kept.failed, kept.ended, kept.since, kept.checked_at), (5, 22, start, clock.now()));

    // An hour after the first ends they slide out: 2 calls left, under the minimum: cleared.
    clock.set(start + SignedDuration::from_mins(60) + SignedDuration::from_secs(1));
    let changes = engine.evaluate_alerts().await.unwrap();
    assert_eq!(changes.cleared.len(), 2);
    assert!(engine.alerts.active().is_empty());
    assert!(engine.alerts.for_campaign(cmp.as_str(), ProviderKind::Sim).is_empty());
    let metrics = engine.metrics.render(0, &[]);
    assert!(metrics.contains(&format!("dialtone_failure_rate_alert{{scope=\"campaign\",id=\"{cmp}\"}} 0")), "{metrics}");
    assert!(metrics.contains("dialtone_failure_rate_alert{scope=\"account\",id=\"sim\"} 0"), "{metrics}");
}
