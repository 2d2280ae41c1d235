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
        max_attempts: 3,
        seed: Some(12),
        database_url: None,
        timeout_secs: 240,
        provider,
        nodes: 1,
        voice: true,
        callees: Some("human,talks_first,silent,voicemail,barge_in,hangs_up_early".into()),
        // Every call is answered, so each callee kind is played once.
        unanswered_percent: 0,
    }
}

fn hung_up_by(voice: &Value, callee: &str) -> Vec<String> {
    voice["by_callee"][callee]["hung_up_by"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

async fn check(provider: DemoProvider) {
    let r = demo::execute(&args(provider)).await.unwrap();
    assert_eq!(r["contacts_finished"], 6, "{r}");
    let v = &r["voice"];
    assert_eq!(v["connect_errors"], 0, "{v}");
    assert_eq!(v["chunk_size_violations"], 0, "{v}");
    // A contact the simulator left unanswered three times has no media call; every other
    // callee kind ends the way its script does.
    let expect = [
        ("human", "callee"),
        ("talks_first", "callee"),
        ("barge_in", "callee"),
        ("hangs_up_early", "callee"),
        ("silent", "dialtone"),
        ("voicemail", "dialtone"),
    ];
    for (callee, by) in expect {
        let who = hung_up_by(v, callee);
        assert!(who.is_empty() || who == [by.to_string()], "{callee}: hung up by {who:?}, expected {by}: {v}");
    }
    assert_eq!(v["voicemails_left"], v["voicemail_calls"], "the agent leaves its message after the beep: {v}");
    if v["by_callee"]["barge_in"]["calls"] == 1 {
        assert_eq!(v["barge_in_to_clear"]["n"], 1, "dialtone cleared the barge-in: {v}");
    }
    if v["by_callee"]["human"]["calls"] == 1 {
        assert!(v["reply_latency"]["n"].as_u64().unwrap() >= 3, "{v}");
    }
    assert!(v["greeting_latency"]["n"].as_u64().unwrap() >= 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exotel_voice_demo_plays_every_callee() {
    check(DemoProvider::Exotel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_voice_demo_plays_every_callee() {
    check(DemoProvider::Twilio).await;
}
