//! Agents (dialtone's own voice pipeline): stored once for both backends, soft-deleted
//! only when no unfinished campaign uses them, carried into the claim so the call is placed
//! with a media stream, and the transcript and voicemail flag an agent call leaves.

use crate::support::*;
use dialtone_core::agent::{DEFAULT_MAX_DURATION_SECS, DEFAULT_NO_RESPONSE_PROMPT};
use dialtone_core::{
    Agent, AgentId, CallStatus, ContactStatus, ContactZone, Mode, Outcome, ProviderKind, Speaker, SpeechService, TranscriptTurn, TzSource, WorkspaceId,
};
use dialtone_store::{Assistant, NewCampaign, NewSingleCall, Page, StoreError};
use jiff::Timestamp;

fn service(provider: &str) -> SpeechService {
    SpeechService { provider: provider.into(), ..Default::default() }
}

fn agent(ws: &WorkspaceId, name: &str, now: Timestamp) -> Agent {
    Agent {
        id: AgentId::new(),
        workspace_id: ws.clone(),
        name: name.into(),
        greeting: "Hi, this is Ada from Acme.".into(),
        system_prompt: "You book appointments.".into(),
        no_response_prompt: DEFAULT_NO_RESPONSE_PROMPT.into(),
        goodbye: "Goodbye!".into(),
        voicemail_message: Some("Please call us back.".into()),
        max_duration_secs: 300,
        language: "en-US".into(),
        stt: SpeechService { provider: "deepgram".into(), model: Some("nova-3".into()), voice: None, base_url: None },
        llm: SpeechService { provider: "openai".into(), model: Some("gpt-4o-mini".into()), voice: None, base_url: Some("http://127.0.0.1:11434/v1".into()) },
        tts: SpeechService { provider: "flite".into(), model: None, voice: Some("slt".into()), base_url: None },
        created_at: now,
        updated_at: now,
    }
}

async fn agent_campaign(store: &S, ws: &WorkspaceId, agent: Option<&AgentId>) -> dialtone_store::Campaign {
    let midnight = jiff::civil::Time::midnight();
    let new = NewCampaign {
        workspace_id: ws.clone(),
        name: "agent".into(),
        provider: ProviderKind::Exotel,
        assistant_id: String::new(),
        phone_number_id: "08030752400".into(),
        mode: Mode::Continuous,
        max_concurrent: 5,
        max_attempts: 5,
        retry: retry_policy(),
        default_region: "IN".into(),
        schedule: dialtone_core::schedule::Schedule::always("UTC"),
        calling_hours: dialtone_core::schedule::LocalHours::new(midnight, midnight),
        recurrence: dialtone_core::frequency::Recurrence::new(dialtone_core::frequency::Frequency::Once),
        max_call_duration_secs: None,
        assume_campaign_timezone_for_ambiguous: false,
        agent_id: agent.cloned(),
        caller_pool: Default::default(),
        calls_per_minute: None,
        account_id: None,
    };
    store.create_campaign(new, t0()).await.unwrap()
}

pub async fn agents_are_created_listed_paged_updated_and_soft_deleted(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let a = agent(&ws, "first", t0());
    let b = agent(&ws, "second", at(1));
    store.create_agent(&a).await.unwrap();
    store.create_agent(&b).await.unwrap();

    assert_eq!(store.get_agent(&ws, &a.id).await.unwrap(), Some(a.clone()), "every field reads back as stored");
    assert_eq!(store.get_agent(&WorkspaceId::new(), &a.id).await.unwrap(), None, "another workspace does not see it");
    let all = store.list_agents(&ws, &Page::default()).await.unwrap();
    assert_eq!(all.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), vec![b.id.clone(), a.id.clone()], "newest first");
    let page = store.list_agents(&ws, &Page { limit: 1, before: Some(b.id.to_string()) }).await.unwrap();
    assert_eq!(page, vec![a.clone()], "keyset: the page after the second");

    let changed = Agent {
        name: "renamed".into(),
        voicemail_message: None,
        max_duration_secs: 90,
        tts: service("sim"),
        created_at: at(50),
        updated_at: at(60),
        ..a.clone()
    };
    assert!(store.update_agent(&changed).await.unwrap());
    let read = store.get_agent(&ws, &a.id).await.unwrap().unwrap();
    assert_eq!(read, Agent { created_at: a.created_at, ..changed.clone() }, "settings and updated_at change, created_at stays");
    assert!(!store.update_agent(&Agent { workspace_id: WorkspaceId::new(), ..changed.clone() }).await.unwrap(), "not in another workspace");

    assert!(store.delete_agent(&ws, &a.id, at(70)).await.unwrap());
    assert_eq!(store.get_agent(&ws, &a.id).await.unwrap(), None, "a deleted agent is gone for the API");
    assert_eq!(store.list_agents(&ws, &Page::default()).await.unwrap(), vec![b.clone()]);
    assert!(!store.delete_agent(&ws, &a.id, at(71)).await.unwrap(), "deleted once");
    assert!(!store.update_agent(&changed).await.unwrap(), "a deleted agent is not updated");
    assert!(!store.delete_agent(&ws, &AgentId::new(), at(72)).await.unwrap(), "no such agent");
}

pub async fn an_agent_campaigns_calls_carry_the_agent_and_keep_their_transcript(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let ada = agent(&ws, "ada", t0());
    store.create_agent(&ada).await.unwrap();
    let cmp = agent_campaign(&store, &ws, Some(&ada.id)).await;
    assert_eq!(cmp.agent_id, Some(ada.id.clone()));
    assert_eq!(load_campaign(&store, &ws, &cmp.id).await.agent_id, Some(ada.id.clone()), "read back");
    let plain = agent_campaign(&store, &ws, None).await;
    assert_eq!(plain.agent_id, None);

    let refused = store.delete_agent(&ws, &ada.id, at(1)).await;
    assert!(matches!(&refused, Err(StoreError::Conflict(m)) if m.contains(cmp.id.as_str())), "in use by a draft campaign: {refused:?}");

    assert!(store.agents_in_use(10).await.unwrap().is_empty(), "a draft campaign's agent is not warmed at start");
    add_contacts(&store, &ws, &cmp.id, 0..2).await;
    start(&store, &ws, &cmp.id).await;
    add_contacts(&store, &ws, &plain.id, 10..11).await;
    start(&store, &ws, &plain.id).await;
    assert_eq!(store.agents_in_use(10).await.unwrap(), vec![ada.clone()], "the agent of a started campaign, once");
    assert!(store.agents_in_use(0).await.unwrap().is_empty(), "limit");
    let dials = claim(&store, &cmp.id, at(2)).await;
    assert_eq!(dials.len(), 2);
    for d in &dials {
        let agent = d.agent.as_ref().expect("an agent campaign's dial names its agent");
        assert_eq!((&agent.id, agent.max_duration_secs), (&ada.id, 300));
    }
    let plain_dials = claim(&store, &plain.id, at(2)).await;
    assert!(plain_dials[0].agent.is_none(), "no agent, no media stream");
    assert_eq!(store.agent_for_call(&plain_dials[0].call_id).await.unwrap(), None);

    let (talked, silent) = (&dials[0], &dials[1]);
    place(&store, talked, at(3)).await;
    place(&store, silent, at(3)).await;
    assert_eq!(store.agent_for_call(&talked.call_id).await.unwrap(), Some(ada.clone()), "the media stream finds its agent by call");
    let fresh = load_call(&store, &ws, &talked.call_id).await;
    assert_eq!((fresh.transcript.clone(), fresh.voicemail_left), (None, false), "nothing saved yet");

    let turns = vec![
        TranscriptTurn { speaker: Speaker::Agent, text: "Hi, this is Ada".into(), started_at: at(10), ended_at: at(12), interrupted: true },
        TranscriptTurn { speaker: Speaker::Callee, text: "Who is this? ünïcode \"quoted\"".into(), started_at: at(12), ended_at: at(14), interrupted: false },
    ];
    assert!(store.save_transcript(&talked.call_id, &turns, false, at(20)).await.unwrap());
    assert!(store.save_transcript(&silent.call_id, &[], true, at(20)).await.unwrap());
    assert!(!store.save_transcript(&dialtone_core::CallId::new(), &turns, false, at(20)).await.unwrap(), "no such call");
    end(&store, &talked.call_id, Outcome::Completed, at(21)).await;
    end(&store, &silent.call_id, Outcome::NoResponse, at(21)).await;

    let talked_call = load_call(&store, &ws, &talked.call_id).await;
    assert_eq!((talked_call.transcript, talked_call.voicemail_left), (Some(turns), false));
    let silent_call = load_call(&store, &ws, &silent.call_id).await;
    assert_eq!(
        (silent_call.status, silent_call.outcome, silent_call.transcript, silent_call.voicemail_left),
        (CallStatus::Ended, Some(Outcome::NoResponse), Some(vec![]), true)
    );
    let c = load_contact(&store, &ws, &silent.contact_id).await;
    assert_eq!((c.status, c.last_outcome), (ContactStatus::Pending, Some(Outcome::NoResponse)), "no_response is retried by the campaign's policy");
    let counts = store.campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.outcomes.get("no_response"), Some(&1));

    assert!(store.cancel_campaign(&ws, &cmp.id, at(30)).await.unwrap());
    assert!(store.agents_in_use(10).await.unwrap().is_empty(), "no campaign under way uses it");
    assert!(store.delete_agent(&ws, &ada.id, at(31)).await.unwrap(), "no unfinished campaign uses it any more");
    assert_eq!(store.agent_for_call(&talked.call_id).await.unwrap(), None, "a call that is over opens no stream (a replayed stream URL)");
}

pub async fn a_single_call_with_an_agent_is_claimed_with_it(store: S) {
    let ws = store.default_workspace().await.unwrap();
    let ada = Agent { max_duration_secs: DEFAULT_MAX_DURATION_SECS, ..agent(&ws, "ada", t0()) };
    store.create_agent(&ada).await.unwrap();
    let call = store
        .create_single_call(
            NewSingleCall {
                workspace_id: ws.clone(),
                assistant: Assistant { id: String::new(), provider: ProviderKind::Twilio, phone_number_id: "+15005550006".into(), name: None },
                phone: phone(1),
                extension: None,
                name: None,
                variables: Default::default(),
                timezone: ContactZone::single("UTC", TzSource::Explicit),
                scheduled_for: at(60),
                recurrence: None,
                respect_business_hours: false,
                max_attempts: 1,
                retry: retry_policy(),
                agent_id: Some(ada.id.clone()),
                account_id: None,
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(load_campaign(&store, &ws, &call.campaign_id).await.agent_id, Some(ada.id.clone()), "on the hidden campaign");
    assert!(store.delete_agent(&ws, &ada.id, at(1)).await.is_err(), "a scheduled single call uses it");
    let dials = claim(&store, &call.campaign_id, at(60)).await;
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].agent.as_ref().map(|a| (a.id.clone(), a.max_duration_secs)), Some((ada.id.clone(), DEFAULT_MAX_DURATION_SECS)));
}
