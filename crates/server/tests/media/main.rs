//! Media streams end to end: the real server on port 0 (SQLite, a manual clock, scripted
//! speech services); the test plays Exotel or Twilio over a real WebSocket.

mod matrix;
mod support;

use dialtone_core::{CallStatus, EventKind, Outcome, Speaker};
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

async fn exotel(app: &MediaApp, call: &dialtone_core::CallId) -> Provider {
    let url = app.state.media.config.exotel_stream_url(call);
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut p = Provider { ws, exotel: true, sid: "st_media_it".into(), sent: 0, log: Vec::new() };
    p.start(json!({"call_id": call.as_str()})).await;
    p
}

async fn twilio(app: &MediaApp, call: &dialtone_core::CallId) -> Provider {
    let url = format!("{}/media/twilio", app.ws_base());
    let mut request = url.as_str().into_client_request().unwrap();
    let signature = dialtone_providers::twilio::sign_base64(TWILIO_TOKEN, &url, &[]);
    request.headers_mut().insert("x-twilio-signature", signature.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut p = Provider { ws, exotel: false, sid: "MZ_media_it".into(), sent: 0, log: Vec::new() };
    let url = app.state.media.config.exotel_stream_url(call);
    let token = url.split("/media/exotel/").nth(1).unwrap().split('?').next().unwrap().to_string();
    p.start(json!({"dialtone_call_id": call.as_str(), "token": token})).await;
    p
}

fn status_of(e: WsError) -> u16 {
    match e {
        WsError::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_wrong_token_or_signature_is_refused_before_the_upgrade() {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let good = app.state.media.config.exotel_stream_url(&call);
    let other = app.state.media.config.exotel_stream_url(&dialtone_core::CallId::new());
    // Another call's token on this call.
    let token = other.split("/media/exotel/").nth(1).unwrap().split('?').next().unwrap();
    let bad = format!("{}/media/exotel/{token}?call_id={call}", app.ws_base());
    assert_eq!(status_of(tokio_tungstenite::connect_async(bad).await.unwrap_err()), 401);
    let no_call = good.split('?').next().unwrap().to_string();
    assert_eq!(status_of(tokio_tungstenite::connect_async(no_call).await.unwrap_err()), 400);

    let url = format!("{}/media/twilio", app.ws_base());
    assert_eq!(status_of(tokio_tungstenite::connect_async(url.clone()).await.unwrap_err()), 401);
    let mut request = url.as_str().into_client_request().unwrap();
    let forged = dialtone_providers::twilio::sign_base64("not-the-token", &url, &[]);
    request.headers_mut().insert("x-twilio-signature", forged.parse().unwrap());
    assert_eq!(status_of(tokio_tungstenite::connect_async(request).await.unwrap_err()), 401);
    assert_eq!(app.state.media.running_sessions(), 0);
}

/// A plain GET (a browser, curl, a health check) on a media route with a valid token or
/// signature: 426 `upgrade_required` with `Upgrade: websocket`, not a JSON-body error.
#[tokio::test]
async fn a_plain_get_on_a_media_route_is_426_upgrade_required() {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let http = reqwest::Client::new();
    let exotel = app.state.media.config.exotel_stream_url(&call).replacen("ws://", "http://", 1);
    let twilio_ws = format!("{}/media/twilio", app.ws_base());
    let signature = dialtone_providers::twilio::sign_base64(TWILIO_TOKEN, &twilio_ws, &[]);
    let twilio = http.get(twilio_ws.replacen("ws://", "http://", 1)).header("x-twilio-signature", signature);
    for request in [http.get(&exotel), twilio] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 426);
        assert_eq!(response.headers()["upgrade"], "websocket");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upgrade_required", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("WebSocket"), "{body}");
    }
    assert_eq!(app.state.media.running_sessions(), 0);
}

#[tokio::test]
async fn the_voicebot_applet_endpoint_answers_the_calls_stream_url() {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/media/exotel/voicebot/exotel-cb-token?CallSid=ca1&CustomField={call}", app.base);
    let body: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["url"], app.state.media.config.exotel_stream_url(&call));
    assert!(body["url"].as_str().unwrap().starts_with("ws://"));
    let wrong = format!("{}/media/exotel/voicebot/guess?CustomField={call}", app.base);
    assert_eq!(http.get(&wrong).send().await.unwrap().status(), 401);
    let missing = format!("{}/media/exotel/voicebot/exotel-cb-token?CallSid=ca1", app.base);
    assert_eq!(http.get(&missing).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn exotel_greets_in_320_byte_multiples_replies_and_saves_the_call_on_stop() {
    let app = MediaApp::start().await;
    let agent = agent();
    let greeting = agent.greeting.clone();
    let call = app.call(agent).await;
    let mut p = exotel(&app, &call).await;

    let (sizes, mark) = p.turn().await;
    let (last, whole) = sizes.split_last().unwrap();
    assert!(whole.iter().all(|n| *n >= 3200 && n % 320 == 0), "{sizes:?}");
    assert!(*last > 0 && last % 320 == 0, "{sizes:?}");
    let total: usize = sizes.iter().sum();
    assert!(total >= tts_samples(&greeting) * 2 && total < tts_samples(&greeting) * 2 + 3200, "{total}");
    p.mark(&app, &mark).await;

    p.speak(&app, &fixture("question")).await;
    p.silence(&app, 1500).await;
    let (reply, _) = p.turn().await;
    assert!(!reply.is_empty());
    assert!(app.speech.tts_calls.lock().unwrap().iter().any(|t| REPLY.contains(t.trim()) || t.contains("appointment")));

    p.stop().await;
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
    let stored = app.stored_call(&call).await;
    assert_eq!((stored.status, stored.outcome), (CallStatus::Ended, Some(Outcome::Completed)));
    let transcript = stored.transcript.clone().expect("the transcript is saved on the call");
    assert!(!stored.voicemail_left);
    assert_eq!(transcript[0].speaker, Speaker::Agent);
    assert!(transcript.iter().any(|t| t.speaker == Speaker::Callee && t.text == HEARD), "{transcript:?}");
    app.until("no LLM/TTS stream left", || app.speech.live_streams() == 0).await;
}

#[tokio::test]
async fn twilio_greets_in_160_byte_frames_and_a_barge_in_clears() {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let mut p = twilio(&app, &call).await;

    let (sizes, mark) = p.turn().await;
    assert!(sizes.iter().all(|n| *n == 160), "{sizes:?}");
    p.mark(&app, &mark).await;
    p.speak(&app, &fixture("question")).await;
    p.silence(&app, 1500).await;
    // The reply starts; the callee interrupts while it is still queued.
    assert!(matches!(p.next().await, Got::Media(160)));
    p.speak(&app, &fixture("interrupt")).await;
    loop {
        match p.next().await {
            Got::Clear => break,
            Got::Media(n) => assert_eq!(n, 160),
            Got::Mark(_) => {}
            Got::Closed => panic!("closed before the clear"),
        }
    }
    p.stop().await;
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
    let transcript = app.stored_call(&call).await.transcript.expect("the transcript is saved on the call");
    assert!(transcript.iter().any(|t| t.speaker == Speaker::Agent && t.interrupted), "{transcript:?}");
}

#[tokio::test]
async fn a_dropped_socket_ends_the_call_with_what_was_said_and_no_task_left() {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let mut p = exotel(&app, &call).await;
    let _ = p.turn().await;
    // The provider's plain `completed` wins the race; the voice verdict must still count.
    app.ingest(&call, EventKind::Ended { outcome: Outcome::Completed, reason: None }, "completed").await;
    drop(p);
    app.until("the session to end", || app.state.media.running_sessions() == 0).await;
    app.until("no LLM/TTS stream left", || app.speech.live_streams() == 0).await;
    let stored = app.stored_call(&call).await;
    assert!(stored.transcript.is_some(), "what was said is saved");
    assert_eq!(stored.status, CallStatus::Ended);
    assert_ne!(stored.outcome, Some(Outcome::Completed), "the callee never spoke: the voice verdict (no response) corrects `completed`");
}

#[tokio::test]
async fn a_warmed_greeting_is_played_from_the_cache_without_a_tts_request() {
    let app = MediaApp::start().await;
    let mut agent = agent();
    agent.workspace_id = app.state.store.default_workspace().await.unwrap();
    app.state.media.warm(&agent);
    app.until("the greeting to be cached for both providers", || app.state.media.cache.len() == 2).await;
    let call = app.call(agent.clone()).await;
    let mut p = twilio(&app, &call).await;
    let (sizes, _) = p.turn().await;
    assert_eq!(sizes.len(), tts_samples(&agent.greeting).div_ceil(160));
    let asked: Vec<String> = app.speech.tts_calls.lock().unwrap().clone();
    assert_eq!(asked, vec![agent.greeting.clone()], "synthesised once, when warmed");
    p.stop().await;
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
}

/// Issue 12: the greeting is synthesised at dial time, while the phone rings, so `start`
/// plays it from the cache; and a new process warms the agents of campaigns under way.
#[tokio::test]
async fn a_placed_agent_calls_greeting_is_warmed_while_it_rings_and_again_after_a_restart() {
    struct Noop;
    impl dialtone_engine::PlacementObserver for Noop {
        fn placing_agent_call(&self, _: &dialtone_core::CallId, _: &dialtone_core::AgentId) {}
    }
    let app = MediaApp::start().await;
    app.until("the start-up warm-up to finish", || app.state.media.warmed_at_start.load(std::sync::atomic::Ordering::SeqCst)).await;
    assert!(!app.state.engine.observe_placements(std::sync::Arc::new(Noop)), "the server set the engine's placement observer");
    let agent = agent();
    let call = app.call(agent.clone()).await;
    assert!(app.speech.tts_calls.lock().unwrap().is_empty(), "nothing synthesised before the call is placed");
    // What the engine's placer does for an agent call (the engine's own test checks it calls
    // the observer); asked twice, as by two calls of one campaign placed together.
    app.state.media.warm_for_call(&call, &agent.id);
    app.state.media.warm_for_call(&call, &agent.id);
    app.until("the greeting to be cached for both providers", || app.state.media.cache.len() == 2).await;
    // Once the cache holds it, a later placement asks for nothing.
    app.state.media.warm_for_call(&call, &agent.id);
    assert_eq!(*app.speech.tts_calls.lock().unwrap(), vec![agent.greeting.clone()], "synthesised once, at dial time");

    let mut p = twilio(&app, &call).await;
    let (sizes, _) = p.turn().await;
    assert_eq!(sizes.len(), tts_samples(&agent.greeting).div_ceil(160));
    assert_eq!(*app.speech.tts_calls.lock().unwrap(), vec![agent.greeting.clone()], "no TTS request at `start`");
    p.stop().await;
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;

    // A new process over the same database: its cache starts empty and is warmed at start
    // for the agents of campaigns under way (a second agent call keeps one dialling).
    let second = app.another_call(&agent.id).await;
    let app = app.restart().await;
    app.until("the start-up warm-up to finish", || app.state.media.warmed_at_start.load(std::sync::atomic::Ordering::SeqCst)).await;
    assert_eq!(app.state.media.cache.len(), 2);
    assert_eq!(*app.speech.tts_calls.lock().unwrap(), vec![agent.greeting.clone()], "synthesised once, at start");
    let mut p = exotel(&app, &second).await;
    let (sizes, _) = p.turn().await;
    let total: usize = sizes.iter().sum();
    assert!(total >= tts_samples(&agent.greeting) * 2 && total < tts_samples(&agent.greeting) * 2 + 3200, "{total}");
    assert_eq!(*app.speech.tts_calls.lock().unwrap(), vec![agent.greeting.clone()], "no TTS request at `start` after the restart");
    p.stop().await;
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
}

#[tokio::test]
async fn a_voicemail_greeting_with_a_beep_gets_the_message_and_ends_voicemail_left() {
    let app = MediaApp::start().await;
    let agent = agent();
    let message = agent.voicemail_message.clone().unwrap();
    let call = app.call(agent).await;
    let mut p = exotel(&app, &call).await;
    let mut marks = Vec::new();
    // The machine talks over our greeting; whatever we send, its marks come back.
    p.speak(&app, &fixture("voicemail_beep")).await;
    p.silence(&app, 2_000).await;
    let said = loop {
        match p.next().await {
            Got::Mark(m) => {
                marks.push(m.clone());
                p.mark(&app, &m).await;
                if m.starts_with("voicemail") {
                    break m;
                }
            }
            Got::Closed => panic!("closed before the voicemail message; marks {marks:?}"),
            Got::Media(_) | Got::Clear => {}
        }
    };
    assert!(said.starts_with("voicemail"));
    // After its mark, the call is hung up.
    loop {
        match p.next().await {
            Got::Closed => break,
            Got::Mark(m) => p.mark(&app, &m).await,
            _ => {}
        }
    }
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
    let stored = app.stored_call(&call).await;
    assert_eq!(stored.outcome, Some(Outcome::Voicemail));
    assert!(stored.voicemail_left);
    assert!(app.speech.tts_calls.lock().unwrap().contains(&message));
}

#[tokio::test]
async fn twilios_machine_verdict_reaches_the_conversation_under_way() {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let verdict = || dialtone_voice::conversation::Input::ProviderAmd(dialtone_core::AnsweredBy::Machine);
    assert!(!app.state.media.notify(&call, verdict()), "no session yet");
    let mut p = twilio(&app, &call).await;
    let (_, mark) = p.turn().await;
    assert!(app.state.media.notify(&call, verdict()));
    p.mark(&app, &mark).await;
    // A machine that never beeps: the line stays silent until the message has played,
    // its marks echoed as it plays.
    let mut left = false;
    for _ in 0..62 {
        p.silence(&app, 500).await;
        for got in p.arrived() {
            match got {
                Got::Mark(m) => {
                    left |= m.starts_with("voicemail");
                    p.mark(&app, &m).await;
                }
                Got::Closed => panic!("closed before the voicemail message"),
                _ => {}
            }
        }
        if left {
            break;
        }
    }
    assert!(left, "the voicemail message was said within 31 s");
    while p.next().await != Got::Closed {}
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
    assert!(!app.state.media.notify(&call, verdict()), "the session is gone");
    let stored = app.stored_call(&call).await;
    assert_eq!((stored.outcome, stored.voicemail_left), (Some(Outcome::Voicemail), true));
}

#[tokio::test]
async fn a_second_stream_for_a_live_call_is_closed_and_the_first_conversation_goes_on() {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let mut first = exotel(&app, &call).await;
    let (_, mark) = first.turn().await;

    // A reconnect, or a flow that opens its own stream, for the same call.
    let mut second = exotel(&app, &call).await;
    match second.next().await {
        Got::Closed => {}
        other => panic!("the second stream got {other:?} instead of being closed"),
    }
    drop(second);
    assert_eq!(app.state.media.running_sessions(), 1, "only the first conversation runs");
    assert_ne!(app.stored_call(&call).await.status, CallStatus::Ended, "closing the second stream does not end the call");

    // The first conversation carries on and ends the call when its stream stops.
    first.mark(&app, &mark).await;
    first.speak(&app, &fixture("question")).await;
    first.silence(&app, 1500).await;
    let (reply, _) = first.turn().await;
    assert!(!reply.is_empty(), "the first conversation still answers");
    first.stop().await;
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
    let stored = app.stored_call(&call).await;
    assert_eq!((stored.status, stored.outcome), (CallStatus::Ended, Some(Outcome::Completed)));
    let transcript = stored.transcript.expect("the first conversation's transcript is saved");
    assert!(transcript.iter().any(|t| t.speaker == Speaker::Callee && t.text == HEARD), "{transcript:?}");
}
