//! The dispatcher: claims due contacts for every runnable campaign. The cap is checked in
//! the claiming transaction itself, so it holds however many dispatchers run.

use crate::AccountKey;
use crate::{Engine, EngineError};
use dialtone_core::CampaignId;
use std::collections::HashSet;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(engine: Arc<Engine>, cancel: CancellationToken) {
    loop {
        if let Err(e) = engine.dispatch_once().await {
            tracing::warn!(error = %e, "dispatch pass failed; retrying on the next tick");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = engine.wake.notified() => {}
            _ = tokio::time::sleep(engine.config.tick) => {}
        }
    }
}

/// The most campaigns claimed for in one transaction: a chunk's campaign rows stay locked
/// until its claim commits, and its placements start only then.
const MAX_CHUNK: usize = 64;

impl Engine {
    /// One pass over runnable campaigns: claims what the caps allow and starts placing it.
    /// Returns how many calls were claimed.
    pub async fn dispatch_once(self: &Arc<Self>) -> Result<usize, EngineError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let now = self.clock.now();
        let campaigns = self.store.runnable_campaigns(now).await?;
        // A campaign whose provider account is holding back (breaker open, at capacity)
        // is not claimed for: its contacts stay due, no attempt is spent.
        let (held, ready): (Vec<_>, Vec<_>) = campaigns.into_iter().partition(|c| self.held_back(c, now));
        // Claims for different campaigns are independent (each locks its own campaign
        // rows). A database that takes concurrent writers claims for a chunk of campaigns
        // in one transaction, one chunk per writer at once (more lanes only made the two
        // cores thrash: BENCHMARKS.md); SQLite claims campaign by campaign, so each one's
        // calls start as soon as it is claimed.
        let (lanes, chunk) = match self.store.concurrent_writers() {
            0 | 1 => (1, 1),
            n => (n, ready.len().div_ceil(n).clamp(1, MAX_CHUNK)),
        };
        let counts: Vec<usize> =
            stream::iter(ready.chunks(chunk).map(<[_]>::to_vec)).map(|chunk| self.dispatch_chunk(chunk)).buffer_unordered(lanes).try_collect().await?;
        for campaign in &held {
            self.complete_if_done(campaign).await?;
        }
        Ok(counts.into_iter().sum())
    }

    /// Its account is holding back (breaker open, at capacity) or missing on this node.
    fn held_back(&self, campaign: &CampaignId, now: jiff::Timestamp) -> bool {
        let known = self.campaign_providers.lock().unwrap().get(campaign).cloned();
        // A workspace account not looked at lately is not held here: the placer reads it.
        known.is_some_and(|key| match self.accounts().cached(&key, now) {
            Some(Some(a)) => a.waiting(now).is_some(),
            Some(None) => true,
            None => false,
        })
    }

    /// Whether `campaign`'s calls are sent the moment they are claimed, so the claim may
    /// commit their placing fence too (`Store::claim_placing`), one commit fewer per call
    /// on the path that refills a freed slot. Only on an account known here with no rate
    /// limit (a limiter wait would leave a call marked possibly-sent while it waits) whose
    /// provider can be asked for a call by our id (a crash between claim and request then
    /// costs a lookup, never the attempt: `ProviderKind::finds_calls_by_our_id`).
    fn sends_at_once(&self, campaign: &CampaignId, now: jiff::Timestamp) -> bool {
        let known = self.campaign_providers.lock().unwrap().get(campaign).cloned();
        known.is_some_and(|key| {
            key.provider.finds_calls_by_our_id() && matches!(self.accounts().cached(&key, now), Some(Some(a)) if a.limiter.limit().is_none())
        })
    }

    /// Claims for `campaigns` and starts placing what each got; completes those with
    /// nothing left.
    async fn dispatch_chunk(self: &Arc<Self>, campaigns: Vec<CampaignId>) -> Result<usize, EngineError> {
        let now = self.clock.now();
        let placing: HashSet<CampaignId> = campaigns.iter().filter(|c| self.sends_at_once(c, now)).cloned().collect();
        let mut claimed = {
            // Registered as placing before the gate opens: the reaper never mistakes a
            // call just claimed for one left behind.
            let _gate = self.claim_gate.read().await;
            let claimed = self.store.claim_placing(&campaigns, &placing, self.node.as_str(), now).await?;
            self.placing.lock().unwrap().extend(claimed.values().flatten().map(|d| d.call_id.clone()));
            claimed
        };
        let (mut total, mut empty) = (0, vec![]);
        for campaign in campaigns {
            let dials = claimed.remove(&campaign).unwrap_or_default();
            let Some(first) = dials.first() else {
                empty.push(campaign);
                continue;
            };
            self.campaign_providers.lock().unwrap().insert(campaign.clone(), AccountKey::of_dial(first));
            total += dials.len();
            for dial in dials {
                let engine = self.clone();
                self.tasks.spawn(async move { engine.place(dial).await });
            }
        }
        // Only once every claimed call is on its way: a failure here strands no claim.
        for campaign in &empty {
            self.complete_if_done(campaign).await?;
        }
        Ok(total)
    }

    async fn complete_if_done(&self, campaign: &CampaignId) -> Result<(), EngineError> {
        if self.store.complete_if_done(campaign, self.clock.now()).await? {
            tracing::info!(campaign_id = %campaign, "campaign completed: no contact left to call");
        }
        Ok(())
    }
}
