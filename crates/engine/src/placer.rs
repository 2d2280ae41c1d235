//! The placer: sends one claimed call to its provider account, under the account's rate
//! limiter and circuit breaker. Retries 429/503/504, timeouts and connection errors on the
//! configured backoff (a `Retry-After` wins when longer); a final error, or the last failed
//! try, ends the call FAILED with the provider's reason. While the breaker is open, or the
//! provider says the account is at its concurrency limit, the claim is given back: the
//! contact is due again and no attempt is spent.
//!
//! A try that went unanswered (a timeout, a connection cut after sending, a 504) may still
//! have created the call, and providers take no idempotency key. So before sending again, or giving up, the
//! provider is asked for a call carrying our id: found → adopted, never sent twice; certainly
//! not there → sent again; the provider cannot say → the call ends `timeout` rather than risk
//! a second dial (the contact's retry policy decides what comes next).

use crate::{Account, Engine, EngineError};
use dialtone_core::{CallId, Outcome};
use dialtone_providers::{PlaceCall, Provider, ProviderError};
use dialtone_store::Dial;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// A `Retry-After` longer than this is not waited for in one go: the call fails and the
/// contact's retry policy takes over.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A provider lookup for a possibly-sent call starts this long before we marked it placing,
/// to allow for clock skew between us and the provider.
const LOOKUP_SLACK: SignedDuration = SignedDuration::from_secs(120);

/// What the provider says of a call we may have sent.
pub(crate) enum Sent {
    /// It has the call: its id is stored and its state applied.
    Adopted,
    /// It certainly has no such call.
    Absent,
    /// It cannot say.
    Unknown(ProviderError),
}

/// Failures that say the provider is unwell (not that our request was wrong).
fn counts_against_breaker(e: &ProviderError) -> bool {
    e.is_retryable() && !e.concurrency_limited && e.status != Some(429)
}

impl Engine {
    #[tracing::instrument(skip_all, fields(call_id = %dial.call_id, campaign_id = %dial.campaign_id))]
    pub(crate) async fn place(self: Arc<Self>, dial: Dial) {
        self.placing.lock().unwrap().insert(dial.call_id.clone());
        let result = self.try_place(&dial).await;
        {
            // Not while the reaper is looking: a call it finds in `placing` stays there
            // until it has decided, so it never acts on a row read before we finished.
            let _gate = self.claim_gate.read().await;
            self.placing.lock().unwrap().remove(&dial.call_id);
        }
        if let Err(e) = result {
            tracing::error!(error = %e, "placement bookkeeping failed; the reaper will resolve this call");
        }
    }

    /// Gives a claim back without spending the attempt (the provider certainly has no call).
    async fn give_back(&self, dial: &Dial, why: &str) -> Result<(), EngineError> {
        tracing::info!(reason = why, "claim given back; the contact stays due");
        self.store.release_unsent(&dial.call_id, why, self.clock.now()).await?;
        Ok(())
    }

    async fn try_place(&self, dial: &Dial) -> Result<(), EngineError> {
        let Some(account) = self.providers.get(&dial.provider).cloned() else {
            // A setting missing on this node is not the contact's fault: failing the call
            // would spend its attempts and complete the campaign. The claim goes back and
            // the dispatcher holds the campaign (`held_back`) until a node has the account.
            return self.give_back(dial, &format!("no {} account is configured on this node", dial.provider)).await;
        };
        if let Some(why) = account.waiting(self.clock.now()) {
            return self.give_back(dial, &why).await;
        }
        account.limiter.acquire().await;
        // The fence: committed before the request, so after a crash a call with
        // `placing_at` set is known to be possibly at the provider, and one without is not.
        // It also fails if another node took the call over (our lease ran out meanwhile).
        let placing_at = self.clock.now();
        if !self.mark_placing(&dial.call_id).await? {
            return Ok(());
        }
        let request = PlaceCall {
            call_id: dial.call_id.clone(),
            campaign_id: dial.campaign_id.clone(),
            assistant_id: dial.assistant_id.clone(),
            phone_number_id: dial.phone_number_id.clone(),
            customer_number: dial.phone.as_str().to_string(),
            extension: dial.extension.clone(),
            customer_name: dial.name.clone(),
            variables: dial.variables.clone(),
        };
        let mut tries = 0;
        // Whether the last failure left it unclear if the provider created the call.
        let mut ambiguous = false;
        loop {
            let permit = match account.breaker.allow(self.clock.now()) {
                Ok(permit) => permit,
                Err(until) if !ambiguous => return self.give_back(dial, &format!("circuit breaker open until {until}")).await,
                Err(until) => {
                    // A timed-out try may have reached the provider: never release it to be dialled again.
                    return self.end_call(&dial.call_id, Outcome::Failed, &format!("circuit breaker opened (until {until}) after an unanswered try")).await;
                }
            };
            let started = std::time::Instant::now();
            let result = account.provider.place_call(&request).await;
            self.metrics.observe_provider_request(dial.provider, started.elapsed());
            let e = match result {
                Ok(placed) => {
                    permit.success();
                    self.metrics.calls_placed(dial.provider);
                    if self.mark_dialed(&dial.call_id, &placed.provider_call_id).await? {
                        tracing::info!("campaign is dialing: the provider accepted its first call");
                    }
                    return Ok(());
                }
                Err(e) => e,
            };
            self.metrics.provider_error(dial.provider, &e);
            if counts_against_breaker(&e) {
                permit.failure(self.clock.now());
            }
            if e.concurrency_limited {
                // The account is full at the provider: slow down, spend nothing.
                account.cool_down(self.clock.now(), self.config.capacity_cooldown);
                return self.give_back(dial, &format!("provider at its concurrency limit: {e}")).await;
            }
            ambiguous = e.unanswered;
            let wait = self.config.placement_backoff.get(tries).map(|d| e.retry_after.map_or(*d, |r| r.max(*d)));
            match wait {
                Some(wait) if e.is_retryable() && wait <= MAX_RETRY_AFTER => {
                    tracing::warn!(status = ?e.status, error = %e, retry_in_ms = wait.as_millis() as u64, "provider refused the call for now; retrying");
                    tokio::time::sleep(wait).await;
                    tries += 1;
                    if ambiguous {
                        if !self.absent_after_unanswered_try(&account, dial, placing_at).await? {
                            return Ok(());
                        }
                        // Certainly not at the provider: as good as never sent.
                        ambiguous = false;
                    }
                }
                _ => {
                    tracing::warn!(status = ?e.status, error = %e, tries = tries + 1, "provider refused the call; giving up on this attempt");
                    if ambiguous && !self.absent_after_unanswered_try(&account, dial, placing_at).await? {
                        return Ok(());
                    }
                    return self.end_call(&dial.call_id, Outcome::Failed, &e.message).await;
                }
            }
        }
    }

    /// After a try that went unanswered: true when the provider certainly has no call of
    /// ours, so sending it (again) dials once. Otherwise the call is settled here: adopted
    /// when the provider has it, ended `timeout` when the provider cannot say.
    async fn absent_after_unanswered_try(&self, account: &Account, dial: &Dial, placing_at: Timestamp) -> Result<bool, EngineError> {
        match self.look_for_sent(account.provider.as_ref(), &dial.call_id, placing_at).await? {
            Sent::Absent => Ok(true),
            Sent::Adopted => {
                tracing::info!("an unanswered try did reach the provider: adopted its call instead of sending again");
                self.metrics.calls_placed(dial.provider);
                Ok(false)
            }
            Sent::Unknown(e) => {
                tracing::warn!(error = %e, "a try went unanswered and the provider cannot say whether it placed the call; ending it as timeout");
                let reason = format!("a placement went unanswered and the provider could not say whether it placed the call: {e}");
                self.end_call(&dial.call_id, Outcome::Timeout, &reason).await?;
                Ok(false)
            }
        }
    }

    /// Asks `provider` for a call carrying our id `call` (in its metadata), created since
    /// shortly before `placing_at`; adopts it when there is one. Placement after an
    /// unanswered try and crash recovery both ask this before anything is sent again.
    pub(crate) async fn look_for_sent(&self, provider: &dyn Provider, call: &CallId, placing_at: Timestamp) -> Result<Sent, EngineError> {
        let since = placing_at.checked_sub(LOOKUP_SLACK).unwrap_or(placing_at);
        match provider.find_call(call, since).await {
            Ok(Some(remote)) => {
                self.store.mark_dialed(call, &remote.provider_call_id, self.clock.now()).await?;
                let _ = self.ingest(vec![remote.event]).await;
                Ok(Sent::Adopted)
            }
            Ok(None) => Ok(Sent::Absent),
            Err(e) => Ok(Sent::Unknown(e)),
        }
    }
}
