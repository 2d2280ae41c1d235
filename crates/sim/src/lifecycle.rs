//! One task per accepted call walks it from queued to ended on a scaled clock.
//! The walk is the same for every provider; what goes on the wire at each step
//! comes from the provider's module. Webhooks are queued under the books' lock,
//! so a hang-up racing the walk can never be reported out of order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::{SimConfig, SimOutcome};
use crate::media::{self, Callee, HungUpBy, MediaEnd, StreamSpec};
use crate::state::{CallRecord, Detail, Ending, Final, Plan, Step};
use crate::webhooks::{self, Outgoing};
use crate::{exotel, twilio, vapi, Shared};

/// Attaches the call's webhook queue (when it has somewhere to send to), then
/// walks the call in the background. Call before answering the create request,
/// so a hang-up can always report through the queue.
pub(crate) fn spawn(shared: Arc<Shared>, id: String, plan: Plan) {
    let wants_webhooks = {
        let mut state = shared.lock();
        state.call_mut(&id).is_some_and(|call| callback_url(call, &shared.config).is_some())
    };
    if wants_webhooks {
        let outbox = webhooks::start(&shared, &plan);
        shared.lock().attach_outbox(&id, outbox);
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = shared.stopped() => {}
            _ = run(&shared, &id, &plan) => {}
        }
    });
}

async fn run(shared: &Shared, id: &str, plan: &Plan) {
    sleep(shared, plan.queue_delay).await;
    if !step(shared, id, Step::Initiated) {
        return;
    }
    if plan.outcome == SimOutcome::Failed {
        finish(shared, id, natural(plan));
        return;
    }
    if !step(shared, id, Step::Ringing) {
        return;
    }
    sleep(shared, plan.ring).await;
    match plan.outcome {
        SimOutcome::Busy | SimOutcome::NoAnswer | SimOutcome::Failed => {
            finish(shared, id, natural(plan));
        }
        SimOutcome::Answered | SimOutcome::Voicemail => {
            if step(shared, id, Step::InProgress) {
                if let Some((spec, callee)) = media_stream(shared, id, plan) {
                    if let Some(end) = media::run(shared, id, &spec, callee).await {
                        finish(shared, id, media_ending(plan, callee, &end));
                        return;
                    }
                }
                sleep(shared, plan.talk).await;
                finish(shared, id, natural(plan));
            }
        }
        // Stays active for good; the engine must notice through GET.
        SimOutcome::Hang => {
            step(shared, id, Step::InProgress);
        }
    }
}

/// The call's media stream, if it asked for one, and the callee who answers it.
fn media_stream(shared: &Shared, id: &str, plan: &Plan) -> Option<(StreamSpec, Callee)> {
    let mut state = shared.lock();
    let spec = match &state.call_mut(id)?.detail {
        Detail::Exotel(e) => e.stream.clone(),
        Detail::Twilio(t) => t.stream.clone(),
        Detail::Vapi(_) => None,
    }?;
    let callee = match shared.config.callees.get(&spec.number) {
        Some(callee) => *callee,
        None if plan.outcome == SimOutcome::Voicemail => Callee::Voicemail,
        None => Callee::by_last_digit(&spec.number),
    };
    Some((spec, callee))
}

/// A media call ends `completed` (a voicemail callee counts as voicemail), priced and timed
/// on the real seconds it lasted.
fn media_ending(plan: &Plan, callee: Callee, end: &MediaEnd) -> Ending {
    let fin = if callee == Callee::Voicemail || plan.outcome == SimOutcome::Voicemail { Final::Voicemail } else { Final::Answered };
    let reason = match end.by {
        HungUpBy::Callee => "customer-ended-call",
        HungUpBy::Dialtone => "assistant-ended-call",
        HungUpBy::Sim | HungUpBy::Error => "call-ended",
    };
    Ending { fin, reason: reason.into(), cost: None, talk_secs: Some(end.secs), hangup: false }
}

async fn sleep(shared: &Shared, simulated_secs: f64) {
    let secs = simulated_secs * shared.config.time_scale;
    if secs.is_finite() && secs > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
}

fn natural(plan: &Plan) -> Ending {
    let talk = match plan.outcome {
        SimOutcome::Answered | SimOutcome::Voicemail => plan.talk,
        _ => 0.0,
    };
    Ending { fin: Final::from_outcome(plan.outcome), reason: plan.ended_reason.to_string(), cost: Some(cost(plan)), talk_secs: Some(talk), hangup: false }
}

/// Priced on simulated (unscaled) talk time, about $0.09 a minute plus a
/// connection fee, so fast-forwarded runs cost the same as real ones.
fn cost(plan: &Plan) -> f64 {
    let dollars = match plan.outcome {
        SimOutcome::Answered | SimOutcome::Voicemail => 0.01 + plan.talk / 60.0 * 0.09,
        SimOutcome::NoAnswer | SimOutcome::Busy => 0.01,
        SimOutcome::Failed | SimOutcome::Hang => 0.0,
    };
    (dollars * 10_000.0).round() / 10_000.0
}

/// Moves a live call one step and queues its webhooks; false once it has ended.
pub(crate) fn step(shared: &Shared, id: &str, step: Step) -> bool {
    let mut state = shared.lock();
    let Some(call) = state.advance(id, step) else { return false };
    let events = match &call.detail {
        Detail::Vapi(_) => vapi::progress(call, step, &shared.config),
        Detail::Twilio(_) => twilio::progress(call, step, &shared.config),
        Detail::Exotel(_) => exotel::progress(call, step),
    };
    call.send(events);
    true
}

/// Ends a live call: books first, then its ended webhooks, then the queue is
/// closed. Returns the ended call as its provider renders it, or `None` if it
/// had already ended.
pub(crate) fn finish(shared: &Shared, id: &str, ending: Ending) -> Option<Value> {
    let mut state = shared.lock();
    let call = state.end(id, ending)?;
    let events: Vec<Outgoing> = match &call.detail {
        Detail::Vapi(_) => vapi::ended(call, &shared.config),
        Detail::Twilio(_) => twilio::ended(call, &shared.config),
        Detail::Exotel(_) => exotel::ended(call),
    };
    call.send(events);
    let json = call.to_json();
    state.close_outbox(id);
    Some(json)
}

/// Where this call's webhooks go, if anywhere.
fn callback_url<'a>(call: &'a CallRecord, config: &'a SimConfig) -> Option<&'a str> {
    match &call.detail {
        Detail::Vapi(_) => config.webhook_url.as_deref(),
        Detail::Twilio(t) => t.status_callback.as_deref(),
        Detail::Exotel(e) => e.status_callback.as_deref(),
    }
}
