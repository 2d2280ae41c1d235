//! Inbound calls: Vapi asks which assistant answers a call to one of our numbers
//! (`assistant-request`) and must hear back within 7.5 s. The database work is bounded by
//! 2 s; every failure is answered explicitly with `{"error": …}` (Vapi can act on it),
//! logged with the call id and counted — never a silent drop.

use crate::app::AppState;
use dialtone_core::phone::mask;
use dialtone_core::{PhoneError, PhoneNumber, ProviderKind};
use dialtone_providers::AssistantRequest;
use serde_json::{json, Value};
use std::time::Duration;

/// The database work an answer may take; the rest of Vapi's 7.5 s is margin.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(2);

/// The answer to send, and the result label for `dialtone_webhooks_total`.
pub async fn answer(app: &AppState, kind: ProviderKind, ask: &AssistantRequest) -> (&'static str, Value) {
    let call = ask.provider_call_id.as_str();
    let Some(to_raw) = ask.to.as_deref() else {
        tracing::warn!(provider_call_id = call, "assistant-request names no dialled number");
        return ("inbound_unknown_number", json!({ "error": "the request names no dialled number" }));
    };
    let to = match our_number(to_raw) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(provider_call_id = call, number = %mask(to_raw), error = %e, "assistant-request names something that is not a phone number");
            return ("inbound_unknown_number", json!({ "error": "the dialled number is not a phone number" }));
        }
    };
    let to = to.as_str();
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

/// One of our numbers, however the side that names it writes it, in E.164: registration
/// (`POST /phone-numbers`) and the lookup of an `assistant-request` both go through here,
/// so `+14155550102` and `14155550102` are the same number. Vapi sends bring-your-own
/// (BYO, SIP or carrier) numbers as digits without `+`; a string of digits only is
/// therefore read as international first (`+` added). Anything else, or digits that are
/// no valid international number, is read as written by a person, in region `US` (the
/// API's default region), so `(415) 555-0102` is still understood.
pub fn our_number(raw: &str) -> Result<PhoneNumber, PhoneError> {
    let trimmed = raw.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = PhoneNumber::parse(&format!("+{trimmed}"), "US") {
            return Ok(n);
        }
    }
    PhoneNumber::parse(trimmed, "US")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_numbers_are_the_same_with_or_without_plus() {
        for raw in ["+14155550102", "14155550102", " 14155550102 ", "+1 (415) 555-0102", "(415) 555-0102"] {
            assert_eq!(our_number(raw).unwrap().as_str(), "+14155550102", "{raw}");
        }
        // A BYO number of another country, digits only: international, not read as US.
        assert_eq!(our_number("442079460018").unwrap().as_str(), "+442079460018");
        assert_eq!(our_number("919876543210").unwrap().as_str(), "+919876543210");
    }

    #[test]
    fn text_that_is_no_phone_number_is_an_error_not_a_panic() {
        for raw in ["номер телефона", "☎☎☎☎☎☎☎☎", "", "+", "12"] {
            assert!(our_number(raw).is_err(), "{raw}");
        }
    }
}
