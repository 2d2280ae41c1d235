//! The reaper: calls that went quiet are looked up at the provider; what the provider
//! says is applied through the normal ingest path, and a call the provider cannot vouch
//! for ends as `timeout` so it stops holding a slot. It also resolves calls a crash left
//! between claim and provider acceptance, so no attempt is ever dialled twice.

use crate::placer::Sent;
use crate::{Engine, EngineError};
use dialtone_core::{AttemptState, EventKind, Outcome};
use dialtone_store::Call;
use jiff::SignedDuration;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How often at most the reaper's housekeeping ([`Engine::housekeeping`]) runs, however
/// short `reaper_interval` is. Its work does not free a slot, and a `/stats` read brings
/// the rollup up to date itself; but each stats refresh recomputes whole hours (tens of ms
/// with a few thousand calls in the hour), on SQLite in the one writer every ingest batch
/// and claim waits for. The demo's reaper runs every ~170 ms at time scale 0.0005, where
/// this was about a seventh of PostgreSQL's CPU (BENCHMARKS.md, "Planner statistics").
pub const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) async fn run(engine: Arc<Engine>, cancel: CancellationToken) {
    let mut housekept: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(engine.config.reaper_interval) => {}
        }
        if let Err(e) = engine.reap_calls().await {
            tracing::warn!(error = %e, "reaper pass failed; retrying on the next pass");
            continue;
        }
        if housekept.is_some_and(|at| at.elapsed() < HOUSEKEEPING_INTERVAL) {
            continue;
        }
        housekept = Some(std::time::Instant::now());
        if let Err(e) = engine.housekeeping().await {
            tracing::warn!(error = %e, "reaper housekeeping failed; retrying on the next pass");
        }
    }
}

/// Runs [`Engine::catch_up`] once, one `lease` after start: a node that died with this
/// process's previous run (or just before it) still looks alive until its lease runs out.
pub(crate) async fn catch_up_after_lease(engine: Arc<Engine>, cancel: CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = tokio::time::sleep(engine.config.lease) => {}
    }
    if let Err(e) = engine.catch_up().await {
        tracing::warn!(error = %e, "could not look up the calls live while no node was listening; the reaper will once they are quiet");
    }
}

impl Engine {
    /// Resolves unsent calls nobody is placing: those a dead node (its lease ran out, or a
    /// previous run of this process) left behind, taken over first so that exactly one
    /// node resolves each, and any of ours whose placer gave up on its bookkeeping. Called
    /// once before the dispatcher starts, then on every reaper pass. A live node's calls
    /// are never touched.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let orphans: Vec<_> = {
            // While we look, no claim of ours is between its commit and `placing`, and no
            // placement leaves `placing`: a call of ours found outside it was finished
            // with (or never started) before the read, so the row we act on is current.
            let _gate = self.claim_gate.write().await;
            // `placing` cannot change under the gate, so this copy is what the store skips.
            let busy = self.placing.lock().unwrap().clone();
            self.store.orphaned_calls(self.node.as_str(), self.config.lease, self.clock.now(), &busy).await?
        };
        let mut resolved = 0;
        for call in &orphans {
            self.resolve_unsent(call).await?;
            resolved += 1;
        }
        if resolved > 0 {
            tracing::info!(calls = resolved, "recovered calls left unsent by a dead node or an interrupted placement");
            self.wake();
        }
        Ok(resolved)
    }

    /// At start, when no other node holds a live lease, nobody was listening for webhooks
    /// until now: the ends of calls that were live across the downtime were sent to a dead
    /// server (providers retry a webhook a few times at most). Each such call (active, with
    /// a provider id) is looked up at its provider at once, rather than after
    /// `stuck_timeout` of quiet, so a crash does not hold the cap with calls that have
    /// ended. What the provider says is applied as in [`Engine::reap_calls`]; a call it
    /// cannot say anything about is left for the reaper (a 429 at start ends nothing).
    /// With another node live, its webhooks were received: nothing to do. Returns how many
    /// calls it looked up (at most 500: the reaper finds any others once they are quiet).
    pub async fn catch_up(&self) -> Result<usize, EngineError> {
        let now = self.clock.now();
        if self.store.other_live_nodes(self.node.as_str(), self.config.lease, now).await? > 0 {
            return Ok(0);
        }
        let live = self.store.stuck_calls(now, 500).await?;
        let mut looked = 0;
        for call in live.iter().filter(|c| c.provider_call_id.is_some()) {
            if self.placing.lock().unwrap().contains(&call.id) {
                continue;
            }
            looked += 1;
            if let Err(e) = self.look_up(call).await? {
                tracing::warn!(call_id = %call.id, error = %e, "could not look up a call live across the downtime; the reaper will once it is quiet");
            }
        }
        if looked > 0 {
            tracing::info!(calls = looked, "looked up the calls that were live while no node was listening for webhooks");
        }
        Ok(looked)
    }

    /// One whole reaper pass: [`Engine::reap_calls`], then [`Engine::housekeeping`]. Returns
    /// how many quiet calls it looked at.
    pub async fn reap_once(&self) -> Result<usize, EngineError> {
        let stuck = self.reap_calls().await?;
        self.housekeeping().await?;
        Ok(stuck)
    }

    /// What frees slots, on every reaper pass: ends calls past their maximum duration,
    /// reconciles quiet calls and resolves unsent ones. Returns how many quiet calls it
    /// looked at.
    pub async fn reap_calls(&self) -> Result<usize, EngineError> {
        self.end_overdue().await?;
        let now = self.clock.now();
        let quiet_since = now.checked_sub(SignedDuration::try_from(self.config.stuck_timeout).unwrap_or(SignedDuration::MAX)).unwrap_or(now);
        let stuck = self.store.stuck_calls(quiet_since, 500).await?;
        for call in &stuck {
            if self.placing.lock().unwrap().contains(&call.id) {
                continue;
            }
            // An unsent call belongs to the node that claimed it: `recover` below resolves
            // ours and those of dead nodes, never a live node's.
            if call.provider_call_id.is_some() {
                self.reconcile(call).await?;
            }
        }
        self.recover().await?;
        Ok(stuck.len())
    }

    /// The reaper's housekeeping, at most every [`HOUSEKEEPING_INTERVAL`]: purges events of
    /// calls dialtone never placed and expired `Idempotency-Key` records, and brings the
    /// `/stats` rollup up to date.
    pub async fn housekeeping(&self) -> Result<(), EngineError> {
        self.purge_unknown_events().await?;
        self.purge_idempotency_keys().await?;
        self.refresh_stats().await?;
        Ok(())
    }

    /// Ends every live call that has lasted its maximum duration as `timeout`, then asks
    /// the provider to hang it up. A provider that keeps vouching for a call (a line left
    /// open, a stuck assistant) would otherwise hold its slot for ever, and a campaign at
    /// its cap would stall. Returns how many calls it ended.
    pub async fn end_overdue(&self) -> Result<usize, EngineError> {
        let overdue = self.store.overdue_calls(self.clock.now(), self.config.max_call_duration, 500).await?;
        let mut ended = 0;
        for (call, max_secs) in &overdue {
            if self.end_overdue_call(call, *max_secs).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    #[tracing::instrument(skip_all, fields(call_id = %call.id, campaign_id = %call.campaign_id))]
    async fn end_overdue_call(&self, call: &Call, max_secs: u64) -> Result<bool, EngineError> {
        // Decided before the provider hears of it, as an API hang-up is: the provider's own
        // report of the end (Twilio says `completed` for a call it was told to end) must not
        // race this write, and a call that ended meanwhile keeps its real outcome.
        let reason = format!("still live after its maximum duration of {max_secs} s (max_call_duration_secs); hung up");
        let Some(applied) = self.store.end_call(&call.id, Outcome::Timeout, &reason, self.clock.now()).await? else {
            return Ok(false);
        };
        if !applied.ended_call() {
            return Ok(false);
        }
        self.metrics.record_applied(std::slice::from_ref(&applied));
        tracing::info!(max_secs, "call ended at its maximum duration; asking the provider to hang up");
        let provider_call_id = call.provider_call_id.as_deref().unwrap_or_default();
        let hung_up = match self.provider_for_call(call).await {
            Some(p) => p.hang_up(provider_call_id).await.map_err(|e| e.to_string()),
            None => Err(format!("no {} account is configured", call.provider)),
        };
        if let Err(e) = hung_up {
            tracing::warn!(error = %e, "the provider did not confirm the hang-up of a call past its maximum duration; its slot is freed anyway");
        }
        // Only now: the next call should not start while the provider still has this one
        // (the dispatcher's tick can still find the slot sooner; the window is one request).
        self.wake();
        Ok(true)
    }

    /// Deletes the events for calls dialtone never placed that are older than
    /// `unknown_event_retention` (in rounds, see [`purge_in_rounds`]). Returns how many went.
    pub async fn purge_unknown_events(&self) -> Result<u64, EngineError> {
        let now = self.clock.now();
        let retention = SignedDuration::try_from(self.config.unknown_event_retention).unwrap_or(SignedDuration::MAX);
        let Ok(before) = now.checked_sub(retention) else { return Ok(0) };
        let purged = purge_in_rounds(|chunk| self.store.purge_unknown_events(before, chunk)).await?;
        if purged > 0 {
            self.metrics.unknown_purged(purged);
            tracing::info!(events = purged, retention_secs = self.config.unknown_event_retention.as_secs(), "purged events for calls dialtone never placed");
        }
        Ok(purged)
    }

    /// Deletes expired `Idempotency-Key` records (24 h old), in rounds. Returns how many went.
    pub async fn purge_idempotency_keys(&self) -> Result<u64, EngineError> {
        let now = self.clock.now();
        let purged = purge_in_rounds(|chunk| self.store.purge_idempotency_keys(now, chunk)).await?;
        if purged > 0 {
            tracing::debug!(records = purged, "purged expired Idempotency-Key records");
        }
        Ok(purged)
    }

    /// Brings the `/stats` rollup up to date (`Store::refresh_stats`), so the log of changed
    /// hours stays short between `/stats` reads. Returns how many hours it recomputed.
    pub async fn refresh_stats(&self) -> Result<u64, EngineError> {
        let hours = self.store.refresh_stats().await?;
        if hours > 0 {
            tracing::debug!(hours, "refreshed the stats rollup");
        }
        Ok(hours)
    }

    #[tracing::instrument(skip_all, fields(call_id = %call.id, campaign_id = %call.campaign_id))]
    async fn reconcile(&self, call: &Call) -> Result<(), EngineError> {
        if let Err(e) = self.look_up(call).await? {
            tracing::warn!(error = %e, "quiet call unknown to the provider; ending it as timeout");
            self.end_call(&call.id, Outcome::Timeout, &format!("no event for {:?} and the provider could not say: {e}", self.config.stuck_timeout)).await?;
        }
        Ok(())
    }

    /// Asks the provider about `call` and applies its answer through the ingest: an ended
    /// call ends, a live one is touched (the provider vouches for it). `Err` with the
    /// provider's error when it could not say (the outer `Err`: the store's).
    async fn look_up(&self, call: &Call) -> Result<Result<(), String>, EngineError> {
        let provider_call_id = call.provider_call_id.as_deref().unwrap_or_default();
        let remote = match self.provider_for_call(call).await {
            Some(p) => p.get_call(provider_call_id).await.map_err(|e| e.to_string()),
            None => Err(format!("no provider configured for {}", call.provider)),
        };
        let remote = match remote {
            Ok(remote) => remote,
            Err(e) => return Ok(Err(e)),
        };
        let alive = !matches!(remote.event.kind, EventKind::Ended { .. });
        let _ = self.ingest(vec![remote.event]).await.map_err(|e| tracing::warn!(error = %e, "could not apply the provider's answer"));
        if alive {
            // The provider vouches for it: a long call, not a stuck one.
            self.store.touch_call(&call.id, self.clock.now()).await?;
        } else {
            tracing::info!(call_id = %call.id, "reconciled a quiet call: the provider says it ended");
        }
        Ok(Ok(()))
    }

    /// A QUEUED call with no provider id. If it was never sent, its claim is released and
    /// the same attempt is dialled later; if it may have been sent, the provider is asked
    /// whether it has it (by our id in the metadata) before anything is re-dialled.
    #[tracing::instrument(skip_all, fields(call_id = %call.id, campaign_id = %call.campaign_id))]
    async fn resolve_unsent(&self, call: &Call) -> Result<(), EngineError> {
        let now = self.clock.now();
        // Where the attempt stands decides (`dialtone_core::attempt`): a claim never marked
        // placing was certainly never sent; one marked placing may be at the provider.
        let placing_at = match (AttemptState::of(call.status, call.placing_at.is_some(), call.provider_call_id.is_some()), call.placing_at) {
            (Some(AttemptState::Claimed), _) => {
                self.store.release_unsent(&call.id, "claimed but never sent (interrupted)", now).await?;
                return Ok(());
            }
            (Some(AttemptState::Placing), Some(placing_at)) => placing_at,
            // Dialled or ended since it was read: nothing left to resolve.
            _ => return Ok(()),
        };
        let Some(provider) = self.provider_for_call(call).await else {
            return Err(EngineError::NoProvider(call.provider));
        };
        match self.look_for_sent(provider.as_ref(), &call.id, placing_at).await? {
            Sent::Adopted => tracing::info!("a call interrupted while placing is at the provider: adopted it"),
            Sent::Absent => {
                tracing::info!("a call interrupted while placing never reached the provider: releasing it");
                self.store.release_unsent(&call.id, "interrupted while placing; the provider has no such call", now).await?;
            }
            Sent::Unknown(e) => {
                tracing::warn!(error = %e, "cannot tell whether an interrupted call reached the provider; ending it as timeout");
                self.end_call(&call.id, Outcome::Timeout, &format!("interrupted while placing, and the provider could not say: {e}")).await?;
            }
        }
        Ok(())
    }
}

/// Runs `purge(chunk)` until a round deletes fewer than `PURGE_CHUNK` rows, at most
/// `PURGE_ROUNDS` rounds a pass, so one pass after a long outage cannot hold the writer for
/// long. Returns how many rows went.
async fn purge_in_rounds<F, Fut>(mut purge: F) -> Result<u64, EngineError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = dialtone_store::Result<u64>>,
{
    const PURGE_CHUNK: u32 = 5_000;
    const PURGE_ROUNDS: u32 = 20;
    let mut purged = 0;
    for _ in 0..PURGE_ROUNDS {
        let n = purge(PURGE_CHUNK).await?;
        purged += n;
        if n < u64::from(PURGE_CHUNK) {
            break;
        }
    }
    Ok(purged)
}
