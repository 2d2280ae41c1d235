//! `dialtone demo --voice` end to end: the real server places agent calls through the
//! simulator's Exotel and Twilio APIs, the simulator opens the media streams and plays one of
//! each scripted callee, dialtone converses through the real speech clients against the
//! simulator's speech services. Judged by the simulator's record. Real time (media does not
//! fast-forward); nothing here is timed.

use dialtone_server::demo::{self, DemoArgs, DemoProvider};
use serde_json::Value;

fn args(provider: DemoProvider) -> DemoArgs {
    DemoArgs {
        contacts: Some(6),
        cap: 6,
        mode: "continuous".into(),
        time_scale: 0.01,
        faults: false,
        json: true,
        // One attempt each: a silent callee's `no_response` would otherwise be called back
        // (the demo's retry policy), adding real-time calls without adding a callee kind.
        max_attempts: 1,
        seed: Some(12),
        database_url: None,
        timeout_secs: 240,
        provider,
        nodes: 1,
        voice: true,
        callees: Some("human,talks_first,silent,voicemail,barge_in,hangs_up_early".into()),
        // Every call is answered, so each callee kind is played once.
        unanswered_percent: 0,
        no_greeting_cache: false,
        sim_nice: 0,
        tts: Default::default(),
    }
}

fn hung_up_by(voice: &Value, callee: &str) -> Vec<String> {
    voice["by_callee"][callee]["hung_up_by"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// The one call dialtone stored for `callee` (the demo's `voice.agent_calls`).
fn call_of<'a>(voice: &'a Value, callee: &str) -> &'a Value {
    let calls: Vec<&Value> = voice["agent_calls"].as_array().expect("the demo reports its agent calls").iter().filter(|c| c["callee"] == callee).collect();
    assert_eq!(calls.len(), 1, "{callee}: one call each (unanswered_percent 0): {voice}");
    calls[0]
}

fn turns<'a>(call: &'a Value, speaker: &str) -> Vec<&'a Value> {
    call["transcript"].as_array().map(|t| t.iter().filter(|turn| turn["speaker"] == speaker).collect()).unwrap_or_default()
}

async fn check(provider: DemoProvider) {
    let r = demo::execute(&args(provider)).await.unwrap();
    assert_eq!(r["contacts_finished"], 6, "{r}");
    let v = &r["voice"];
    assert_eq!(v["connect_errors"], 0, "{v}");
    assert_eq!(v["chunk_size_violations"], 0, "{v}");
    // Every call is answered (unanswered_percent 0): each callee kind is played exactly once
    // and ends the way its script does (docs/sim-voice.md).
    let expect = [
        ("human", "callee"),
        ("talks_first", "callee"),
        ("barge_in", "callee"),
        ("hangs_up_early", "callee"),
        ("silent", "dialtone"),
        ("voicemail", "dialtone"),
    ];
    for (callee, by) in expect {
        assert_eq!(v["by_callee"][callee]["calls"], 1, "{callee}: {v}");
        let who = hung_up_by(v, callee);
        assert_eq!(who, [by.to_string()], "{callee}: hung up by {who:?}, expected {by}: {v}");
    }
    assert_eq!((v["voicemail_calls"].as_u64(), v["voicemails_left"].as_u64()), (Some(1), Some(1)), "the agent leaves its message after the beep: {v}");
    assert_eq!(v["barge_in_to_clear"]["n"], 1, "dialtone cleared the barge-in: {v}");
    assert!(v["reply_latency"]["n"].as_u64().unwrap() >= 3, "{v}");
    assert!(v["greeting_latency"]["n"].as_u64().unwrap() >= 1, "{v}");

    // What dialtone stored for each call (docs/voice.md, "Outcomes").
    let ended = |callee: &str, outcome: &str, voicemail_left: bool| {
        let c = call_of(v, callee);
        assert_eq!(
            (c["status"].as_str(), c["outcome"].as_str(), c["voicemail_left"].as_bool()),
            (Some("ended"), Some(outcome), Some(voicemail_left)),
            "{callee}: {c}"
        );
        assert!(c["transcript"].is_array(), "{callee}: the transcript is saved: {c}");
        c
    };
    // A person who answers, asks and says goodbye: a callee turn and an agent reply.
    let human = ended("human", "completed", false);
    assert!(!turns(human, "callee").is_empty(), "{human}");
    assert!(turns(human, "agent").len() >= 2, "the greeting and a reply: {human}");
    assert_eq!(turns(human, "callee")[0]["text"], "Yes, this is Sam speaking.", "{human}");
    let talks_first = ended("talks_first", "completed", false);
    assert_eq!(talks_first["transcript"][0]["speaker"], "callee", "they spoke first: {talks_first}");
    // Never speaks: prompted, then goodbye; the callee never spoke.
    let silent = ended("silent", "no_response", false);
    assert!(turns(silent, "callee").is_empty(), "{silent}");
    let voicemail = ended("voicemail", "voicemail", true);
    assert!(turns(voicemail, "agent").iter().any(|t| t["text"].as_str().unwrap_or_default().contains("Please call us back")), "{voicemail}");
    let barge_in = ended("barge_in", "completed", false);
    assert!(turns(barge_in, "agent").iter().any(|t| t["interrupted"] == true), "an interrupted agent turn: {barge_in}");
    // Hangs up 2 s in, during the greeting, having said nothing: the callee hung up and the
    // call went without a word from them, so `no_response` ("callee hung up / socket closed:
    // as the call went").
    let early = ended("hangs_up_early", "no_response", false);
    assert!(turns(early, "callee").is_empty(), "{early}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exotel_voice_demo_plays_every_callee() {
    check(DemoProvider::Exotel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_voice_demo_plays_every_callee() {
    check(DemoProvider::Twilio).await;
}
