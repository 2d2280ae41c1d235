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
//!
//! The order that keeps one attempt from being dialled twice (`dialtone_core::attempt`) is
//! held by types here: a claim is a [`Claimed`], which can only be given back or turned,
//! through the store's `mark_placing` fence, into a [`Placing`] permit (or is one already,
//! when the claim's own transaction committed the fence: `Store::claim_placing`); the
//! request is built only from a `Placing`, and each way out (accepted, given back, ended)
//! consumes it.

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

/// A claim this node holds: its QUEUED call is inserted and the attempt spent, but
/// `placing_at` is not set, so a crash now leaves a call recovery knows was never sent.
/// Nothing can be sent with it: the only ways on are [`Claimed::mark_placing`] and
/// [`Claimed::give_back`].
pub(crate) struct Claimed(Dial);

/// The permit to send: `placing_at` is committed and the call was still ours
/// (`Store::mark_placing` returned true, or the claim committed it with the call:
/// `Store::claim_placing`). Made only by [`Claimed::mark_placing`] and
/// [`Claimed::placing_since_claim`]; the
/// request is built only from it ([`Placing::request`]); accepted, given back or ended, it
/// is consumed, so nothing is sent for that attempt afterwards.
pub(crate) struct Placing {
    dial: Dial,
    /// When `placing_at` was set: a lookup for a possibly-sent call starts from here.
    at: Timestamp,
}

/// Whether a claim's placing fence is committed yet ([`Claimed::placing_since_claim`]).
enum Fence {
    /// By the claim's own transaction: the permit to send.
    Committed(Placing),
    /// Not yet: [`Claimed::mark_placing`] comes first.
    Needed(Claimed),
}

impl Claimed {
    /// A claim the dispatcher got from `Store::claim`.
    pub(crate) fn new(dial: Dial) -> Claimed {
        Claimed(dial)
    }

    /// The fence before any request (`Claimed → Placing`), committed first, so that after a
    /// crash a call with `placing_at` set is known to be possibly at the provider and one
    /// without is not. `None`: another node took the call over (our lease ran out), or it
    /// is no longer QUEUED; it must not be sent.
    async fn mark_placing(self, engine: &Engine) -> Result<Option<Placing>, EngineError> {
        let at = engine.clock.now();
        // Grouped with the other placers' fences on a one-writer backend (`Engine::mark_placing`);
        // still committed before this call's request is built.
        Ok(engine.mark_placing(&self.0.call_id).await?.then_some(Placing { dial: self.0, at }))
    }

    /// The permit the claim made itself, when its transaction committed `placing_at` too
    /// (`Store::claim_placing`, `Claimed → Placing` in one commit); else the claim back, for
    /// [`Claimed::mark_placing`].
    fn placing_since_claim(self) -> Fence {
        match self.0.placing_at {
            Some(at) => Fence::Committed(Placing { dial: self.0, at }),
            None => Fence::Needed(self),
        }
    }

    /// Gives the claim back without spending the attempt (`Claimed → Released`): nothing was sent.
    async fn give_back(self, engine: &Engine, why: &str) -> Result<(), EngineError> {
        engine.release(&self.0, why).await
    }
}

impl Placing {
    /// The request for this attempt (`Placing → Placing`: send). Our call id travels with it.
    fn request(&self) -> PlaceCall {
        let dial = &self.dial;
        PlaceCall {
            call_id: dial.call_id.clone(),
            campaign_id: dial.campaign_id.clone(),
            assistant_id: dial.assistant_id.clone(),
            phone_number_id: dial.phone_number_id.clone(),
            customer_number: dial.phone.as_str().to_string(),
            extension: dial.extension.clone(),
            customer_name: dial.name.clone(),
            variables: dial.variables.clone(),
            // The campaign's agent: the provider opens a media stream to our pipeline.
            media: dial.agent.as_ref().map(|a| dialtone_providers::MediaStream { max_duration_secs: a.max_duration_secs }),
        }
    }

    /// The provider accepted it (`Placing → Dialed`): stores its id.
    async fn dialed(self, engine: &Engine, provider_call_id: &str) -> Result<(), EngineError> {
        if engine.mark_dialed(&self.dial.call_id, provider_call_id).await? {
            tracing::info!("campaign is dialing: the provider accepted its first call");
        }
        Ok(())
    }

    /// Gives it back (`Placing → Released`). Only when the provider certainly has no such
    /// call: it answered every try, or a lookup found nothing.
    async fn give_back(self, engine: &Engine, why: &str) -> Result<(), EngineError> {
        engine.release(&self.dial, why).await
    }

    /// Ends it unsent, the attempt spent (`Placing → Ended`): refused for good, or nobody
    /// can say whether it reached the provider.
    async fn end(self, engine: &Engine, outcome: Outcome, reason: &str) -> Result<(), EngineError> {
        engine.end_call(&self.dial.call_id, outcome, reason).await
    }
}

/// Failures that say the provider is unwell (not that our request was wrong).
fn counts_against_breaker(e: &ProviderError) -> bool {
    e.is_retryable() && !e.concurrency_limited && e.status != Some(429)
}

impl Engine {
    #[tracing::instrument(skip_all, fields(call_id = %dial.call_id, campaign_id = %dial.campaign_id))]
    pub(crate) async fn place(self: Arc<Self>, dial: Dial) {
        let call = dial.call_id.clone();
        self.placing.lock().unwrap().insert(call.clone());
        let result = self.try_place(Claimed::new(dial)).await;
        {
            // Not while the reaper is looking: a call it finds in `placing` stays there
            // until it has decided, so it never acts on a row read before we finished.
            let _gate = self.claim_gate.read().await;
            self.placing.lock().unwrap().remove(&call);
        }
        if let Err(e) = result {
            tracing::error!(error = %e, "placement bookkeeping failed; the reaper will resolve this call");
        }
    }

    /// Gives a claim back without spending the attempt (the provider certainly has no call).
    async fn release(&self, dial: &Dial, why: &str) -> Result<(), EngineError> {
        tracing::info!(reason = why, "claim given back; the contact stays due");
        self.store.release_unsent(&dial.call_id, why, self.clock.now()).await?;
        Ok(())
    }

    async fn try_place(&self, claimed: Claimed) -> Result<(), EngineError> {
        let provider = claimed.0.provider;
        let key = crate::AccountKey::of_dial(&claimed.0);
        let Some(account) = self.account_for(&claimed.0.workspace_id, &key).await else {
            // A setting missing on this node (or a workspace account disabled, gone or
            // unusable) is not the contact's fault: failing the call would spend its
            // attempts and complete the campaign. The claim goes back and the dispatcher
            // holds the campaign (`held_back`) until the account can be used.
            let which = match &key.id {
                Some(id) => format!("provider account {id} is disabled, gone or unusable"),
                None => format!("no {provider} account is configured on this node"),
            };
            return claimed.give_back(self, &which).await;
        };
        if let Some(why) = account.waiting(self.clock.now()) {
            return claimed.give_back(self, &why).await;
        }
        let mut placing = match claimed.placing_since_claim() {
            // The claim committed the fence (the dispatcher saw no rate limit on the account).
            Fence::Committed(placing) if account.limiter.try_acquire() => placing,
            // The account has gained a rate limit since: a wait now would keep a call that
            // was never sent marked possibly-sent for its length. Nothing was sent; the next
            // claim fences after the wait.
            Fence::Committed(placing) => return placing.give_back(self, "the account's rate limit changed since the claim").await,
            Fence::Needed(claimed) => {
                account.limiter.acquire().await;
                // The fence; false if another node took the call over (our lease ran out meanwhile).
                let Some(placing) = claimed.mark_placing(self).await? else {
                    return Ok(());
                };
                placing
            }
        };
        let request = placing.request();
        if let (Some(agent), Some(observer)) = (&placing.dial.agent, self.observer.get()) {
            // Now, not once the provider accepts: the greeting's synthesis overlaps the
            // provider request as well as the ringing.
            observer.placing_agent_call(&placing.dial.call_id, &agent.id);
        }
        let mut tries = 0;
        // Whether the last failure left it unclear if the provider created the call.
        let mut ambiguous = false;
        loop {
            let permit = match account.breaker.allow(self.clock.now()) {
                Ok(permit) => permit,
                Err(until) if !ambiguous => return placing.give_back(self, &format!("circuit breaker open until {until}")).await,
                Err(until) => {
                    // A timed-out try may have reached the provider: never release it to be dialled again.
                    return placing.end(self, Outcome::Failed, &format!("circuit breaker opened (until {until}) after an unanswered try")).await;
                }
            };
            let started = std::time::Instant::now();
            let result = account.provider.place_call(&request).await;
            self.metrics.observe_provider_request(provider, started.elapsed());
            let e = match result {
                Ok(placed) => {
                    permit.success();
                    self.metrics.calls_placed(provider);
                    return placing.dialed(self, &placed.provider_call_id).await;
                }
                Err(e) => e,
            };
            self.metrics.provider_error(provider, &e);
            if counts_against_breaker(&e) {
                permit.failure(self.clock.now());
            }
            if e.concurrency_limited {
                // The account is full at the provider: slow down, spend nothing.
                account.cool_down(self.clock.now(), self.config.capacity_cooldown);
                return placing.give_back(self, &format!("provider at its concurrency limit: {e}")).await;
            }
            ambiguous = e.unanswered;
            let wait = self.config.placement_backoff.get(tries).map(|d| e.retry_after.map_or(*d, |r| r.max(*d)));
            match wait {
                Some(wait) if e.is_retryable() && wait <= MAX_RETRY_AFTER => {
                    tracing::warn!(status = ?e.status, error = %e, retry_in_ms = wait.as_millis() as u64, "provider refused the call for now; retrying");
                    tokio::time::sleep(wait).await;
                    tries += 1;
                    if ambiguous {
                        let Some(absent) = self.absent_after_unanswered_try(&account, placing).await? else {
                            return Ok(());
                        };
                        // Certainly not at the provider: as good as never sent.
                        placing = absent;
                        ambiguous = false;
                    }
                }
                _ => {
                    tracing::warn!(status = ?e.status, error = %e, tries = tries + 1, "provider refused the call; giving up on this attempt");
                    if ambiguous {
                        let Some(absent) = self.absent_after_unanswered_try(&account, placing).await? else {
                            return Ok(());
                        };
                        placing = absent;
                    }
                    return placing.end(self, Outcome::Failed, &e.message).await;
                }
            }
        }
    }

    /// After a try that went unanswered: the permit back when the provider certainly has no
    /// call of ours, so sending it (again) dials once. Otherwise the call is settled here and
    /// the permit spent: adopted when the provider has it, ended `timeout` when it cannot say.
    async fn absent_after_unanswered_try(&self, account: &Account, placing: Placing) -> Result<Option<Placing>, EngineError> {
        match self.look_for_sent(account.provider.as_ref(), &placing.dial.call_id, placing.at).await? {
            Sent::Absent => Ok(Some(placing)),
            Sent::Adopted => {
                tracing::info!("an unanswered try did reach the provider: adopted its call instead of sending again");
                self.metrics.calls_placed(placing.dial.provider);
                Ok(None)
            }
            Sent::Unknown(e) => {
                tracing::warn!(error = %e, "a try went unanswered and the provider cannot say whether it placed the call; ending it as timeout");
                let reason = format!("a placement went unanswered and the provider could not say whether it placed the call: {e}");
                placing.end(self, Outcome::Timeout, &reason).await?;
                Ok(None)
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
