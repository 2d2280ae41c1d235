//! Delivery of one call's webhooks, whatever the provider: strictly one after
//! another, with the duplicate / reorder / drop faults applied here so the
//! call's lifecycle keeps its own timing however slow the receiver is.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::config::SimOutcome;
use crate::state::Plan;
use crate::Shared;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Progress: ringing / in-progress (Twilio initiated/ringing/answered, Exotel answered).
    Progress,
    /// The ended status update and end-of-call report; a terminal callback.
    Ended,
}

#[derive(Clone, Debug)]
pub(crate) enum Payload {
    /// `{"message": …}` with Vapi's authenticity headers, added at delivery.
    Vapi(Value),
    /// A form POST (Twilio; Exotel without the JSON content type), with an
    /// optional `X-Twilio-Signature`.
    Form { params: Vec<(String, String)>, signature: Option<String> },
    /// A plain JSON POST (Exotel with `StatusCallbackContentType=application/json`).
    Json(Value),
}

#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub kind: Kind,
    pub url: String,
    pub payload: Payload,
}

/// A call's outbox: each webhook with when the call's lifecycle queued it (so the wait
/// behind the call's earlier webhooks is measured: [`crate::SimStats::ended_webhook_wait_us`]).
pub(crate) type Outbox = mpsc::UnboundedSender<(std::time::Instant, Outgoing)>;

/// Starts a call's sender. Dropping every clone of the returned sender lets
/// the task flush what it held back and stop.
pub(crate) fn start(shared: &Arc<Shared>, plan: &Plan) -> Outbox {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::clone(shared);
    let plan = plan.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shared.stopped() => {}
            _ = run(&shared, &plan, rx) => {}
        }
    });
    tx
}

async fn run(shared: &Shared, plan: &Plan, mut rx: mpsc::UnboundedReceiver<(std::time::Instant, Outgoing)>) {
    let mut rng = StdRng::seed_from_u64(plan.webhook_seed);
    let mut held = Vec::new();
    let mut saw_end = false;
    // A hanging call may never end, so there is nothing to send its progress after.
    let reorder = plan.reorder && plan.outcome != SimOutcome::Hang;
    while let Some((queued, msg)) = rx.recv().await {
        match msg.kind {
            Kind::Progress if reorder => held.push(msg),
            Kind::Ended if plan.drop_ended => {
                saw_end = true;
                shared.lock().webhooks_dropped(1);
            }
            kind => {
                if kind == Kind::Ended {
                    saw_end = true;
                    shared.lock().ended_webhook_waited(queued.elapsed());
                }
                deliver_maybe_twice(shared, &msg, &mut rng).await;
            }
        }
    }
    if saw_end && !held.is_empty() {
        shared.lock().call_reordered();
    }
    for msg in held {
        deliver_maybe_twice(shared, &msg, &mut rng).await;
    }
}

async fn deliver_maybe_twice(shared: &Shared, msg: &Outgoing, rng: &mut StdRng) {
    deliver(shared, msg).await;
    if rng.gen_bool(shared.config.faults.duplicate_webhooks.clamp(0.0, 1.0)) {
        shared.lock().webhook_duplicated();
        deliver(shared, msg).await;
    }
}

async fn deliver(shared: &Shared, msg: &Outgoing) {
    let request = match &msg.payload {
        Payload::Vapi(body) => {
            let raw = serde_json::to_vec(body).expect("JSON values always serialize");
            vapi_request(shared, &msg.url, raw)
        }
        Payload::Json(body) => shared.http.post(&msg.url).json(body),
        Payload::Form { params, signature } => {
            let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
            let mut request = shared.http.post(&msg.url).header("content-type", "application/x-www-form-urlencoded").body(body);
            if let Some(signature) = signature {
                request = request.header("x-twilio-signature", signature);
            }
            request
        }
    };
    let sent = std::time::Instant::now();
    let ok = match request.send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            if !ok {
                tracing::debug!(status = %response.status(), "webhook receiver refused delivery");
            }
            ok
        }
        Err(error) => {
            tracing::debug!(%error, "webhook delivery failed");
            false
        }
    };
    shared.lock().webhook_result(ok, sent.elapsed());
}

/// A JSON POST of `raw` carrying Vapi's configured authenticity headers.
pub(crate) fn vapi_request(shared: &Shared, url: &str, raw: Vec<u8>) -> reqwest::RequestBuilder {
    let config = &shared.config;
    let mut request = shared.http.post(url).header("content-type", "application/json");
    if let Some(secret) = &config.hmac_secret {
        let timestamp = jiff::Timestamp::now().as_millisecond().to_string();
        request = request.header("x-signature", sign(secret, &timestamp, &raw)).header("x-timestamp", timestamp);
    } else if let Some(secret) = &config.webhook_secret {
        request = if config.legacy_secret_header { request.header("x-vapi-secret", secret) } else { request.bearer_auth(secret) };
    }
    request.body(raw)
}

/// hex(HMAC-SHA256(secret, "{timestamp}.{raw body}")), Vapi's HMAC scheme.
pub fn sign(secret: &str, timestamp: &str, raw_body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    hex::encode(mac.finalize().into_bytes())
}
