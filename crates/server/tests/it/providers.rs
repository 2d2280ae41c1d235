//! The same campaign on each provider's wire format — Vapi (the `sim` account), Twilio,
//! Exotel — judged by the simulator's own books: the cap holds at the provider, nothing is
//! dialled twice, and our outcomes are the provider's, even when no end webhook arrives.

use crate::support::*;
use dialtone_sim::{Faults, SimStats};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
enum Wire {
    Vapi,
    Twilio,
    Exotel,
}

impl Wire {
    /// The campaign's `provider`: Vapi's format is dialled through the `sim` account.
    fn campaign_provider(self) -> &'static str {
        match self {
            Wire::Vapi => "sim",
            Wire::Twilio => "twilio",
            Wire::Exotel => "exotel",
        }
    }

    /// The sim's name for the provider in `dials_by_provider`.
    fn sim_name(self) -> &'static str {
        match self {
            Wire::Vapi => "vapi",
            Wire::Twilio => "twilio",
            Wire::Exotel => "exotel",
        }
    }

    /// The caller line, as the sim keys its per-line peak.
    fn caller(self) -> &'static str {
        match self {
            Wire::Vapi => PHONE_NUMBER_ID,
            Wire::Twilio => TWILIO_CALLER,
            Wire::Exotel => EXOTEL_CALLER,
        }
    }

    /// The sim's outcome counts in our names, as this provider can report them: Exotel has
    /// no answering-machine detection, so a voicemail reaches us as a completed call.
    fn expected_outcomes(self, sim: &SimStats) -> BTreeMap<String, u64> {
        let o = &sim.outcomes;
        let (completed, voicemail) = match self {
            Wire::Exotel => (o.answered + o.voicemail, 0),
            _ => (o.answered, o.voicemail),
        };
        [("completed", completed), ("no_answer", o.no_answer), ("busy", o.busy), ("voicemail", voicemail), ("failed", o.failed), ("canceled", o.canceled)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_string(), n))
            .collect()
    }
}

fn outcomes(campaign: &Value) -> BTreeMap<String, u64> {
    serde_json::from_value(campaign["counts"]["outcomes"].clone()).unwrap()
}

const CONTACTS: usize = 30;
const CAP: u64 = 4;

async fn run_campaign(wire: Wire, options: Options) -> (TestApp, String, Value, SimStats) {
    let app = TestApp::with(Options { provider_accounts: true, ..options }).await;
    let id = app.create_campaign(json!({"provider": wire.campaign_provider(), "phone_number_id": wire.caller(), "max_concurrent": CAP})).await;
    let report = app.import_csv(&id, &contacts_csv(CONTACTS)).await;
    assert_eq!(report["imported"], CONTACTS as u64, "{report}");
    app.act(&id, "start").await;
    let done = app.wait_for_status(&id, "completed", secs(12)).await;
    let sim = app.sim_stats();
    (app, id, done, sim)
}

async fn completes_within_its_cap_and_agrees_with_the_provider(wire: Wire) {
    let (_app, id, done, sim) = run_campaign(wire, Options::default()).await;
    let counts = &done["counts"];
    assert_eq!(sim.dials, CONTACTS as u64, "one attempt per contact (max_attempts 1): {sim:?}");
    assert_eq!(sim.dials_by_provider.get(wire.sim_name()), Some(&(CONTACTS as u64)), "dialled on {wire:?}'s API: {sim:?}");
    assert_eq!(sim.ended, sim.dials, "the provider ended every call it accepted: {sim:?}");
    assert_eq!(counts["active_calls"], 0, "{counts}");
    assert_eq!(total(&counts["outcomes"]), CONTACTS as u64, "every call has one outcome: {counts}");

    let peak = sim.peak_concurrent_by_phone_number.get(wire.caller()).copied().unwrap_or(0);
    assert!(peak <= CAP, "the provider saw {peak} calls at once from {}, above the cap of {CAP}", wire.caller());
    assert_eq!(peak, CAP, "the cap was used in full: {sim:?}");
    if let Wire::Vapi = wire {
        // Only Vapi's metadata names the campaign to the sim; our Twilio and Exotel
        // callbacks carry the call id alone, so the per-line peak is the measure there.
        assert_eq!(sim.peak_concurrent_by_campaign.get(&id), Some(&CAP), "{sim:?}");
    }
    assert_eq!(sim.duplicate_dials, 0, "no attempt was dialled twice: {:?}", sim.duplicate_dial_ids);
    assert_eq!(sim.dials_without_dialtone_id, 0, "every dial carries our call id");
    assert_eq!(outcomes(&done), wire.expected_outcomes(&sim), "our outcomes are the provider's");
}

async fn completes_from_the_providers_answers_when_no_end_webhook_arrives(wire: Wire) {
    let mut options = Options::default();
    options.sim.faults = Faults { drop_webhooks: 1.0, ..Faults::none() };
    // Longer than the longest simulated call (~200 ms), so only quiet calls are looked up.
    options.engine.stuck_timeout = ms(400);
    options.engine.reaper_interval = ms(100);
    let (app, id, done, sim) = run_campaign(wire, options).await;
    let counts = &done["counts"];
    assert_eq!(sim.dials, CONTACTS as u64, "{sim:?}");
    assert!(sim.webhooks_dropped >= CONTACTS as u64, "every call's end was withheld: {sim:?}");
    assert_eq!(total(&counts["outcomes"]), CONTACTS as u64, "{counts}");
    let timed_out: Vec<Value> = app.all_calls(&[("campaign_id", id.as_str()), ("outcome", "timeout")], 100).await;
    let reasons: Vec<String> =
        timed_out.iter().map(|c| format!("{} (dialled at {} as {}): {}", c["id"], c["dialed_at"], c["provider_call_id"], c["ended_reason"])).collect();
    assert!(timed_out.is_empty(), "the provider knew how each call ended, yet {} timed out: {reasons:?}", timed_out.len());
    assert_eq!(outcomes(&done), wire.expected_outcomes(&sim), "the reaper's answers are the provider's outcomes");
    assert_eq!(sim.duplicate_dials, 0, "{:?}", sim.duplicate_dial_ids);
    let peak = sim.peak_concurrent_by_phone_number.get(wire.caller()).copied().unwrap_or(0);
    assert!(peak <= CAP, "peak {peak} above the cap of {CAP}");

    let calls = app.all_calls(&[("campaign_id", id.as_str())], 100).await;
    assert_eq!(calls.len(), CONTACTS, "{calls:?}");
    assert!(calls.iter().all(|c| c["status"] == "ended" && c["outcome"].is_string()), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vapi_campaign_completes_at_its_cap_without_duplicates_and_with_the_providers_outcomes() {
    completes_within_its_cap_and_agrees_with_the_provider(Wire::Vapi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_campaign_completes_at_its_cap_without_duplicates_and_with_the_providers_outcomes() {
    completes_within_its_cap_and_agrees_with_the_provider(Wire::Twilio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exotel_campaign_completes_at_its_cap_without_duplicates_and_with_the_providers_outcomes() {
    completes_within_its_cap_and_agrees_with_the_provider(Wire::Exotel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vapi_campaign_whose_end_webhooks_are_all_dropped_completes_through_the_reaper_without_timeouts() {
    completes_from_the_providers_answers_when_no_end_webhook_arrives(Wire::Vapi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_campaign_whose_end_callbacks_are_all_dropped_completes_through_the_reaper_without_timeouts() {
    completes_from_the_providers_answers_when_no_end_webhook_arrives(Wire::Twilio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exotel_campaign_whose_end_callbacks_are_all_dropped_completes_through_the_reaper_without_timeouts() {
    completes_from_the_providers_answers_when_no_end_webhook_arrives(Wire::Exotel).await;
}
