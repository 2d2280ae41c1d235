//! `Store::stats` and `Store::failure_window` against a hand-computed fixture: every number
//! below is worked out from the timeline in the comments, not read back from a run.

use crate::support::*;
use dialtone_core::{CallStatus, ContactZone, Mode, Outcome, ProviderKind, TzSource, WorkspaceId};
use dialtone_store::{Assistant, FailureReason, NewSingleCall, Percentiles, StatsQuery};
use jiff::{SignedDuration, Timestamp};

fn ms(n: i64) -> SignedDuration {
    SignedDuration::from_millis(n)
}

/// An end-of-call report received at `received`, which the provider says happened
/// `lag_ms` earlier, reporting `duration_ms`.
async fn end_with(store: &S, call: &dialtone_core::CallId, outcome: Outcome, received: Timestamp, lag_ms: i64, duration_ms: Option<i64>) {
    let mut e = ended(call, outcome);
    e.occurred_at = Some(received - ms(lag_ms));
    e.duration_ms = duration_ms;
    assert!(apply1(store, e, received).await.ended_call());
}

fn single(ws: &WorkspaceId, i: u32, when: Timestamp) -> NewSingleCall {
    NewSingleCall {
        workspace_id: ws.clone(),
        assistant: Assistant { id: "asst".into(), provider: ProviderKind::Sim, phone_number_id: "pn".into(), name: None },
        phone: phone(i),
        extension: None,
        name: None,
        variables: Default::default(),
        timezone: ContactZone::single("UTC", TzSource::Explicit),
        scheduled_for: when,
        recurrence: None,
        respect_business_hours: false,
        max_attempts: 1,
        retry: retry_policy(),
        agent_id: None,
        account_id: None,
    }
}

pub async fn stats_match_a_hand_computed_fixture(store: S) {
    // Campaign A, 3 attempts, retries 5 min after no_answer / busy / failed.
    let (ws, a) = running(&store, Mode::Continuous, 10, 3, 6).await;
    // t0 (12:00): six calls d0..d5 created by one claim.
    let d = claim(&store, &a.id, t0()).await;
    assert_eq!(d.len(), 6);
    // d0..d4 reach the provider 1..5 s after the claim: placement 1000..5000 ms.
    for (i, dial) in d.iter().take(5).enumerate() {
        place(&store, dial, at(i as i64 + 1)).await;
    }
    // d0, d1 answered.
    apply1(&store, progress(&d[0].call_id, CallStatus::InProgress), at(10)).await;
    apply1(&store, progress(&d[1].call_id, CallStatus::InProgress), at(10)).await;
    // Ends; webhook-to-commit lag in ms: d0 100, d1 200, d2 300, d3 400, d4 1500.
    end_with(&store, &d[0].call_id, Outcome::Completed, at(100), 100, Some(60_000)).await;
    end_with(&store, &d[1].call_id, Outcome::Completed, at(100), 200, Some(120_000)).await;
    end_with(&store, &d[2].call_id, Outcome::NoAnswer, at(10), 300, None).await; // retry due at(310)
    end_with(&store, &d[3].call_id, Outcome::Busy, at(10), 400, None).await; // retry due at(310)
    end_with(&store, &d[4].call_id, Outcome::Failed, at(3650), 1500, None).await; // retry due at(3950)
                                                                                  // d5 never reached the provider: ended by the engine (not a provider event), status failed.
    assert!(store.end_call(&d[5].call_id, Outcome::Failed, "provider refused", at(3650)).await.unwrap().is_some());

    // 13:01:40: the retries of d2 and d3 (only they are due), placed 500 and 250 ms later.
    let r = claim(&store, &a.id, at(3700)).await;
    assert_eq!(r.len(), 2);
    let r2 = r.iter().find(|x| x.contact_id == d[2].contact_id).expect("retry of d2");
    let r3 = r.iter().find(|x| x.contact_id == d[3].contact_id).expect("retry of d3");
    place(&store, r2, at(3700) + ms(500)).await;
    place(&store, r3, at(3700) + ms(250)).await;
    apply1(&store, progress(&r2.call_id, CallStatus::InProgress), at(3710)).await;
    end_with(&store, &r2.call_id, Outcome::Completed, at(3800), 50, Some(30_000)).await;
    end_with(&store, &r3.call_id, Outcome::Busy, at(3800), 20, None).await; // attempt 2 of 3: pending again

    // Two single calls created at t0, due at(5000) and at(20000).
    store.create_single_call(single(&ws, 100, at(5000)), t0()).await.unwrap();
    store.create_single_call(single(&ws, 101, at(20000)), t0()).await.unwrap();

    let q = |campaign: Option<dialtone_core::CampaignId>, from: Timestamp| StatsQuery {
        workspace_id: ws.clone(),
        campaign_id: campaign,
        from,
        to: at(7200),
        now: at(4000),
    };
    let s = store.stats(&q(None, t0())).await.unwrap();
    // d0..d5, r2, r3 and the two single calls.
    assert_eq!(s.total_calls, 10);
    let counts = |m: &std::collections::BTreeMap<String, u64>| m.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>();
    let pairs = |v: &[(&str, u64)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect::<Vec<_>>();
    assert_eq!(counts(&s.by_status), pairs(&[("ended", 7), ("failed", 1), ("scheduled", 2)]));
    assert_eq!(counts(&s.by_outcome), pairs(&[("busy", 2), ("completed", 3), ("failed", 2), ("no_answer", 1)]));
    assert_eq!(s.ended_calls, 8);
    assert_eq!(s.success_rate, Some(3.0 / 8.0));
    assert_eq!(s.failed_calls, 2);
    assert_eq!(s.failure_rate, Some(0.25));
    // (60 + 120 + 30) s / 3.
    assert_eq!(s.avg_duration_secs, Some(70.0));
    let reason = |outcome: &str, reason: &str, count| FailureReason { outcome: outcome.into(), reason: Some(reason.into()), count };
    assert_eq!(
        s.failure_breakdown,
        vec![
            reason("busy", "test busy", 2),
            reason("failed", "provider refused", 1),
            reason("failed", "test failed", 1),
            reason("no_answer", "test no_answer", 1)
        ]
    );
    assert_eq!((s.scheduled_next_hour, s.scheduled_next_24h), (1, 2));
    // Pending after an attempt: the contacts of d4, d5 (attempt 1) and r3 (attempt 2).
    assert_eq!((s.retries.pending, s.retries.calls, s.retries.ended, s.retries.success_rate), (3, 2, 2, Some(0.5)));
    // Webhook lags 20, 50, 100, 200, 300, 400, 1500: ranks 4, 7, 7.
    assert_eq!(s.latency_ms.webhook_to_commit, Percentiles { count: 7, p50: Some(200), p95: Some(1500), p99: Some(1500) });
    // Placements 250, 500, 1000, 2000, 3000, 4000, 5000.
    assert_eq!(s.latency_ms.placement, Percentiles { count: 7, p50: Some(2000), p95: Some(5000), p99: Some(5000) });
    let hours: Vec<_> = s.hourly.iter().map(|h| (h.hour, h.placed, h.answered, h.failed)).collect();
    assert_eq!(hours, vec![(t0(), 5, 2, 2), (at(3600), 2, 1, 0)]);

    // One campaign: the single calls (their own hidden campaign) drop out.
    let s = store.stats(&q(Some(a.id.clone()), t0())).await.unwrap();
    assert_eq!((s.total_calls, s.scheduled_next_hour, s.scheduled_next_24h, s.retries.pending), (8, 0, 0, 3));
    assert!(!s.by_status.contains_key("scheduled"));
    assert_eq!(s.latency_ms.webhook_to_commit.count, 7);

    // From 13:00: r2 and r3 only; events received since: d4 (1500), r2 (50), r3 (20).
    let s = store.stats(&q(None, at(3600))).await.unwrap();
    assert_eq!((s.total_calls, s.ended_calls, s.success_rate), (2, 2, Some(0.5)));
    assert_eq!(s.latency_ms.webhook_to_commit, Percentiles { count: 3, p50: Some(50), p95: Some(1500), p99: Some(1500) });
    assert_eq!(s.latency_ms.placement, Percentiles { count: 2, p50: Some(250), p95: Some(500), p99: Some(500) });
    assert_eq!(s.hourly.len(), 1);

    // Another workspace sees nothing.
    let other = StatsQuery { workspace_id: WorkspaceId::new(), ..q(None, t0()) };
    let s = store.stats(&other).await.unwrap();
    assert_eq!((s.total_calls, s.ended_calls, s.success_rate, s.avg_duration_secs), (0, 0, None, None));
    assert_eq!((s.scheduled_next_24h, s.retries.pending, s.latency_ms.webhook_to_commit.count, s.latency_ms.placement.count), (0, 0, 0, 0));
    assert!(s.failure_breakdown.is_empty() && s.by_status.is_empty());
    assert_eq!(s.hourly.iter().map(|h| h.placed + h.answered + h.failed).sum::<u64>(), 0);
    assert_eq!(s.hourly.len(), 2);

    // The alert window: calls that ended since 13:00 (d4, d5, r2, r3), by campaign and provider.
    let w = store.failure_window(at(3600)).await.unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].campaign_id.as_str(), w[0].provider.as_str(), w[0].ended, w[0].failed), (a.id.as_str(), "sim", 4, 2));
    assert!(store.failure_window(at(3801)).await.unwrap().is_empty());
}

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Every range the comparison asks: whole days, odd hours, ranges inside one hour, ms
/// edges, with and without a campaign.
fn ranges(rng: &mut Rng, ws: &WorkspaceId, campaigns: &[dialtone_core::CampaignId]) -> Vec<StatsQuery> {
    let mut out = Vec::new();
    let mut fixed = vec![(at(-86_400), at(3 * 86_400)), (at(-3600), at(86_400 + 3600)), (t0(), at(7200)), (at(600), at(900))];
    for _ in 0..8 {
        let from = at(rng.below(2 * 86_400) as i64 - 3600) + ms(rng.below(3_600_000) as i64);
        let to = from + ms(1 + rng.below(2 * 86_400_000) as i64);
        fixed.push((from, to));
    }
    for (from, to) in fixed {
        for campaign in std::iter::once(None).chain(campaigns.iter().cloned().map(Some)) {
            out.push(StatsQuery { workspace_id: ws.clone(), campaign_id: campaign, from, to, now: at(86_400) });
        }
    }
    out
}

/// The rollup (whole hours and days from `stats_call_hours` / `stats_latency_*`, edges
/// raw) answers exactly what the raw query answers, on random calls spread over two days
/// in two campaigns and single calls, including calls that change after their hour was rolled up
/// (late ends, retries) and provider events received over several hours.
pub async fn the_stats_rollup_answers_exactly_what_the_raw_query_answers(store: S) {
    let mut rng = Rng(0x5EED_0011);
    let (ws, a) = running(&store, Mode::Continuous, 30, 3, 120).await;
    let b = draft_campaign(&store, &ws, Mode::Continuous, 30, 2).await;
    add_contacts(&store, &ws, &b.id, 200..320).await;
    start(&store, &ws, &b.id).await;
    let campaigns = [a.id.clone(), b.id.clone()];
    let outcomes = [
        Outcome::Completed,
        Outcome::Completed,
        Outcome::NoAnswer,
        Outcome::Busy,
        Outcome::Voicemail,
        Outcome::Failed,
        Outcome::Timeout,
        Outcome::InvalidNumber,
    ];
    let mut open: Vec<dialtone_core::CallId> = Vec::new();
    let mut now = t0();
    for round in 0..14 {
        now += ms(600_000 + rng.below(7_200_000) as i64);
        for cmp in &campaigns {
            for dial in claim(&store, cmp, now).await {
                if rng.below(6) == 0 {
                    continue; // never placed: stays queued
                }
                let placed = now + ms(rng.below(3_000) as i64);
                place(&store, &dial, placed).await;
                if rng.below(3) > 0 {
                    apply1(&store, progress(&dial.call_id, CallStatus::InProgress), placed + ms(2_000)).await;
                }
                if rng.below(4) == 0 {
                    open.push(dial.call_id.clone()); // ends in a later round, in a later hour
                    continue;
                }
                let outcome = outcomes[rng.below(outcomes.len() as u64) as usize];
                let received = placed + ms(5_000 + rng.below(600_000) as i64);
                let duration = (outcome == Outcome::Completed && rng.below(5) > 0).then(|| 1_000 + rng.below(300_000) as i64);
                end_with(&store, &dial.call_id, outcome, received, rng.below(2_500) as i64, duration).await;
            }
        }
        // Late ends of calls from earlier rounds, whose hours the rollup may already hold.
        for call in std::mem::take(&mut open) {
            if rng.below(2) == 0 {
                open.push(call);
                continue;
            }
            let outcome = outcomes[rng.below(outcomes.len() as u64) as usize];
            end_with(&store, &call, outcome, now + ms(rng.below(60_000) as i64), rng.below(150_000) as i64, None).await;
        }
        if round % 3 == 1 {
            store.create_single_call(single(&ws, 500 + round, now + ms(90_000)), now).await.unwrap();
        }
        if round % 4 == 3 {
            // A refresh now, so the next rounds change hours already rolled up.
            store.refresh_stats().await.unwrap();
            for q in ranges(&mut rng, &ws, &campaigns) {
                assert_eq!(store.stats(&q).await.unwrap(), store.stats_raw(&q).await.unwrap(), "{:?}..{:?} {:?}", q.from, q.to, q.campaign_id);
            }
        }
    }
    let mut nonzero = 0;
    for q in ranges(&mut rng, &ws, &campaigns) {
        let rolled = store.stats(&q).await.unwrap();
        let raw = store.stats_raw(&q).await.unwrap();
        assert_eq!(rolled, raw, "{:?}..{:?} {:?}", q.from, q.to, q.campaign_id);
        nonzero += usize::from(raw.total_calls > 0 && raw.latency_ms.placement.count > 0 && raw.latency_ms.webhook_to_commit.count > 0);
    }
    assert!(nonzero >= 6, "the ranges hold calls and latencies ({nonzero})");
    // Completed per hour sums to the completed calls.
    let q = StatsQuery { workspace_id: ws.clone(), campaign_id: None, from: at(-86_400), to: at(3 * 86_400), now: at(86_400) };
    let s = store.stats(&q).await.unwrap();
    assert_eq!(s.hourly.iter().map(|h| h.completed).sum::<u64>(), s.by_outcome.get("completed").copied().unwrap_or(0));
    assert!(store.refresh_stats().await.unwrap() == 0, "nothing changed since the last read");
}
