//! An agent campaign's calls are placed with a media stream (`PlaceCall::media`) carrying
//! the agent's maximum duration; a campaign without an agent asks for none.

use crate::support::{campaign, fresh_store, numbers, sim_account, started};
use dialtone_core::agent::DEFAULT_NO_RESPONSE_PROMPT;
use dialtone_core::{Agent, AgentId, ManualClock, SpeechService};
use dialtone_engine::testing::ScriptedProvider;
use dialtone_engine::{Engine, EngineConfig};
use dialtone_providers::MediaStream;
use jiff::Timestamp;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_campaigns_calls_ask_for_a_media_stream_and_others_do_not() {
    let (store, ws, _dir) = fresh_store().await;
    let start: Timestamp = "2026-05-04T12:00:00Z".parse().unwrap();
    let sim = |p: &str| SpeechService { provider: p.into(), ..Default::default() };
    let agent = Agent {
        id: AgentId::new(),
        workspace_id: ws.clone(),
        name: "ada".into(),
        greeting: "Hi".into(),
        system_prompt: "Be brief.".into(),
        no_response_prompt: DEFAULT_NO_RESPONSE_PROMPT.into(),
        goodbye: "Bye".into(),
        voicemail_message: None,
        max_duration_secs: 240,
        language: "en-US".into(),
        stt: sim("sim"),
        llm: sim("sim"),
        tts: sim("sim"),
        created_at: start,
        updated_at: start,
    };
    store.create_agent(&agent).await.unwrap();
    let provider = Arc::new(ScriptedProvider::new());
    let engine = Engine::new(store.clone(), sim_account(&provider), Arc::new(ManualClock::new(start)), EngineConfig::default());
    let seen = Arc::new(Seen::default());
    assert!(engine.observe_placements(seen.clone()));
    assert!(!engine.observe_placements(seen.clone()), "one observer");
    let nums = numbers(2);
    let mut with_agent = campaign(&ws, "agent");
    with_agent.agent_id = Some(agent.id.clone());
    started(&store, with_agent, &nums[..1], start).await;
    started(&store, campaign(&ws, "plain"), &nums[1..], start).await;

    assert_eq!(engine.dispatch_once().await.unwrap(), 2);
    engine.settle().await;

    let mut asked: Vec<Option<MediaStream>> = provider.media().into_iter().map(|(_, m)| m).collect();
    asked.sort_by_key(|m| m.is_none());
    assert_eq!(asked, vec![Some(MediaStream { max_duration_secs: 240 }), None]);
    // The observer (the server warms the greeting there) heard of the agent call only.
    let agent_call = provider.media().into_iter().find(|(_, m)| m.is_some()).unwrap().0;
    assert_eq!(*seen.0.lock().unwrap(), vec![(agent_call, agent.id.clone())]);
}

/// Records the agent calls the engine told it of.
#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<(dialtone_core::CallId, AgentId)>>);

impl dialtone_engine::PlacementObserver for Seen {
    fn placing_agent_call(&self, call: &dialtone_core::CallId, agent: &AgentId) {
        self.0.lock().unwrap().push((call.clone(), agent.clone()));
    }
}
