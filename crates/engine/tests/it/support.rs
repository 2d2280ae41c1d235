//! What every engine test sets up: a fresh store, a campaign on the `sim` account, and the
//! scripted provider as that account.

use dialtone_core::frequency::{Frequency, Recurrence};
use dialtone_core::schedule::{LocalHours, Schedule};
use dialtone_core::{CampaignId, CampaignStatus, Mode, PhoneNumber, ProviderKind, RetryPolicy, WorkspaceId};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Account, Providers};
use dialtone_store::{NewCampaign, NewContact, Store};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

/// A fresh, migrated SQLite store, its default workspace, and the directory that holds it
/// (keep it for the test's length).
pub async fn fresh_store() -> (Arc<dyn Store>, WorkspaceId, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = dialtone_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    (store, ws, dir)
}

/// A continuous campaign on `sim`, dialling round the clock: cap 1, one attempt, retries an
/// hour apart. Tests change what they are about.
pub fn campaign(ws: &WorkspaceId, name: &str) -> NewCampaign {
    let midnight = jiff::civil::Time::midnight();
    NewCampaign {
        workspace_id: ws.clone(),
        name: name.into(),
        provider: ProviderKind::Sim,
        assistant_id: "asst".into(),
        phone_number_id: "pn".into(),
        mode: Mode::Continuous,
        max_concurrent: 1,
        max_attempts: 1,
        retry: RetryPolicy::uniform(1, SignedDuration::from_secs(3600)),
        default_region: "US".into(),
        schedule: Schedule::always("UTC"),
        calling_hours: LocalHours::new(midnight, midnight),
        recurrence: Recurrence::new(Frequency::Once),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: None,
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    }
}

/// Creates `new` with `contacts` (one per number, in order) and starts it.
pub async fn started(store: &Arc<dyn Store>, new: NewCampaign, contacts: &[String], now: Timestamp) -> CampaignId {
    let ws = new.workspace_id.clone();
    let cmp = store.create_campaign(new, now).await.unwrap();
    let rows: Vec<NewContact> = contacts
        .iter()
        .enumerate()
        .map(|(i, p)| NewContact {
            phone: PhoneNumber::parse(p, "US").unwrap(),
            extension: None,
            name: None,
            variables: Default::default(),
            timezone: None,
            line: i as u64 + 1,
        })
        .collect();
    store.insert_contacts(&ws, &cmp.id, &rows, now).await.unwrap();
    store.transition_campaign(&ws, &cmp.id, &[CampaignStatus::Draft], CampaignStatus::Starting, now).await.unwrap();
    cmp.id
}

/// `n` distinct US numbers.
pub fn numbers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1415555{:04}", 2600 + i)).collect()
}

/// The `sim` account played by `provider`.
pub fn sim_account(provider: &Arc<ScriptedProvider>) -> Providers {
    let mut providers = Providers::new();
    providers.insert(ProviderKind::Sim, Arc::new(Account::new(provider.clone())));
    providers
}
