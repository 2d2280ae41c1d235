//! Inbound calls: Vapi asks which assistant answers a call to one of our numbers
//! (`assistant-request`) and must hear back within 7.5 s. The database work is bounded by
//! 2 s; every failure is answered explicitly with `{"error": …}` (Vapi can act on it),
//! logged with the call id and counted — never a silent drop.

use crate::app::AppState;
use dialtone_core::phone::mask;
use dialtone_core::ProviderKind;
use dialtone_providers::AssistantRequest;
use serde_json::{json, Value};
use std::time::Duration;

/// The database work an answer may take; the rest of Vapi's 7.5 s is margin.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(2);

/// The answer to send, and the result label for `dialtone_webhooks_total`.
pub async fn answer(app: &AppState, kind: ProviderKind, ask: &AssistantRequest) -> (&'static str, Value) {
    let call = ask.provider_call_id.as_str();
    let Some(to) = ask.to.as_deref() else {
        tracing::warn!(provider_call_id = call, "assistant-request names no dialled number");
        return ("inbound_unknown_number", json!({ "error": "the request names no dialled number" }));
    };
    let from = ask.from.as_deref().unwrap_or("anonymous");
    let work = async {
        let Some(entry) = app.store.find_phone_number(to).await? else { return Ok(None) };
        app.store.record_inbound_call(&entry, call, from, app.now()).await?;
        Ok::<_, dialtone_store::StoreError>(Some(entry))
    };
    match tokio::time::timeout(LOOKUP_BUDGET, work).await {
        Ok(Ok(Some(entry))) => {
            tracing::info!(provider_call_id = call, number = %mask(to), assistant_id = %entry.assistant_id, provider = %kind, "inbound call answered");
            ("inbound_answered", json!({ "assistantId": entry.assistant_id }))
        }
        Ok(Ok(None)) => {
            tracing::warn!(provider_call_id = call, number = %mask(to), "inbound call to a number with no assistant");
            ("inbound_unknown_number", json!({ "error": format!("no assistant is configured for {to}") }))
        }
        Ok(Err(e)) => {
            tracing::error!(provider_call_id = call, error = %e, "inbound call could not be recorded");
            ("inbound_failed", json!({ "error": "the dialer could not record this call; please try again" }))
        }
        Err(_) => {
            tracing::error!(provider_call_id = call, budget_ms = LOOKUP_BUDGET.as_millis() as u64, "inbound lookup ran out of time");
            ("inbound_timeout", json!({ "error": "the dialer timed out looking up this number" }))
        }
    }
}
