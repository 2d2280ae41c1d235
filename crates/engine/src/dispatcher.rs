//! The dispatcher: claims due contacts for every runnable campaign. The cap is checked in
//! the claiming transaction itself, so it holds however many dispatchers run.

use crate::{Engine, EngineError};
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

impl Engine {
    /// One pass over runnable campaigns: claims what the caps allow and starts placing it.
    /// Returns how many calls were claimed.
    pub async fn dispatch_once(self: &Arc<Self>) -> Result<usize, EngineError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let campaigns = self.store.runnable_campaigns(self.clock.now()).await?;
        // Claims for different campaigns are independent transactions (each locks its own
        // campaign row), so a database that takes concurrent writers runs a few at once.
        let lanes = match self.store.concurrent_writers() {
            0 | 1 => 1,
            n => n * 4,
        };
        let counts: Vec<usize> = stream::iter(campaigns)
            .map(|campaign| self.dispatch_campaign(campaign))
            .buffer_unordered(lanes)
            .try_collect()
            .await?;
        Ok(counts.into_iter().sum())
    }

    /// Claims for one campaign and starts placing what it got; completes it if nothing is left.
    async fn dispatch_campaign(self: &Arc<Self>, campaign: dialtone_core::CampaignId) -> Result<usize, EngineError> {
        let now = self.clock.now();
        // A campaign whose provider account is holding back (breaker open, at capacity)
        // is not claimed for: its contacts stay due, no attempt is spent.
        let known = self.campaign_providers.lock().unwrap().get(&campaign).copied();
        let held_back = known.is_some_and(|kind| self.providers.get(&kind).is_some_and(|a| a.waiting(now).is_some()));
        let dials = if held_back {
            vec![]
        } else {
            // Registered as placing before the gate opens: the reaper never mistakes a
            // call just claimed for one left behind.
            let _gate = self.claim_gate.read().await;
            let dials = self.store.claim(&campaign, &self.node, now).await?;
            self.placing.lock().unwrap().extend(dials.iter().map(|d| d.call_id.clone()));
            dials
        };
        if dials.is_empty() {
            if self.store.complete_if_done(&campaign, now).await? {
                tracing::info!(campaign_id = %campaign, "campaign completed: no contact left to call");
            }
            return Ok(0);
        }
        let claimed = dials.len();
        if let Some(d) = dials.first() {
            self.campaign_providers.lock().unwrap().insert(campaign.clone(), d.provider);
        }
        for dial in dials {
            let engine = self.clone();
            self.tasks.spawn(async move { engine.place(dial).await });
        }
        Ok(claimed)
    }
}
