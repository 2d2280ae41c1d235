//! The speech clients against the simulator's Deepgram-, OpenAI- and ElevenLabs-compatible
//! services on loopback, and flite for real.

use std::time::Duration;

use dialtone_core::SpeechService;
use dialtone_server::config::SpeechConfig;
use dialtone_server::speech::deepgram::DeepgramStt;
use dialtone_server::speech::elevenlabs::ElevenLabsTts;
use dialtone_server::speech::flite::FliteTts;
use dialtone_server::speech::openai::{OpenAiChat, OpenAiTranscription};
use dialtone_server::speech::SpeechClients;
use dialtone_sim::{Sim, SimConfig, SimHandle};
use dialtone_voice::speech::{ChatMessage, ChatRequest, Llm, SpeechError, Stt, SttEvent, SttInput, SttOptions, SttSession, Tts, TtsOptions};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;

const KEY: &str = "speech-test-key";
/// Bounds every wait so a broken client fails the test instead of hanging it; not a timing
/// assertion.
const PATIENCE: Duration = Duration::from_secs(60);

async fn sim() -> SimHandle {
    Sim::spawn(SimConfig { speech_api_key: Some(KEY.into()), ..SimConfig::default() }, "127.0.0.1:0").await.unwrap()
}

fn key(k: &str) -> Option<SecretString> {
    Some(SecretString::from(k.to_owned()))
}

use dialtone_sim::fixtures::pcm as clip;

fn options() -> SttOptions {
    SttOptions { sample_rate: 8000, language: "en-US".into(), model: None }
}

/// Sends `audio` in chunks of 1..=`max` samples.
async fn send_chunked(session: &SttSession, audio: &[i16], max: usize, rng: &mut rand::rngs::StdRng) {
    let mut rest = audio;
    while !rest.is_empty() {
        let n = rng.gen_range(1..=max).min(rest.len());
        session.audio.send(SttInput::Audio(rest[..n].to_vec())).await.unwrap();
        rest = &rest[n..];
    }
}

async fn next(session: &mut SttSession) -> Option<Result<SttEvent, SpeechError>> {
    tokio::time::timeout(PATIENCE, session.events.recv()).await.expect("an event or the end within the patience")
}

/// Events until a final with `speech_final`.
async fn until_speech_final(session: &mut SttSession) -> Vec<SttEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next(session).await.expect("the session is still open").expect("no error");
        let done = matches!(event, SttEvent::Final { speech_final: true, .. });
        seen.push(event);
        if done {
            return seen;
        }
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "waited too long for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn deepgram_recognises_a_clip_sent_in_random_chunks_with_partial_then_final_and_closes_on_drop() {
    let sim = sim().await;
    let stt = DeepgramStt::new(&sim.base_url(), key(KEY));
    let mut session = stt.open(&options()).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut audio = vec![0i16; 1600];
    audio.extend(clip("question"));
    // 500 ms of silence: more than the 300 ms endpointing.
    audio.extend(vec![0i16; 4000]);
    // Nothing to send must not close the stream (an empty binary frame would).
    session.audio.send(SttInput::Audio(vec![])).await.unwrap();
    send_chunked(&session, &audio, 777, &mut rng).await;
    let events = until_speech_final(&mut session).await;
    let text = "What time is my appointment tomorrow?";
    assert!(matches!(events.first(), Some(SttEvent::Partial { .. })), "interim results first: {events:?}");
    assert_eq!(events.last(), Some(&SttEvent::Final { text: text.into(), speech_final: true }), "{events:?}");
    let partials: Vec<&SttEvent> = events.iter().filter(|e| matches!(e, SttEvent::Partial { .. })).collect();
    assert!(partials.iter().all(|p| matches!(p, SttEvent::Partial { text: t } if text.starts_with(t.as_str()))), "{partials:?}");

    // A second utterance on the same stream, split differently.
    let mut more = clip("thanks_bye");
    more.extend(vec![0i16; 4000]);
    send_chunked(&session, &more, 160, &mut rng).await;
    let events = until_speech_final(&mut session).await;
    assert_eq!(events.last(), Some(&SttEvent::Final { text: "Okay, thank you. Goodbye.".into(), speech_final: true }));

    // Dropping the audio sender sends CloseStream; the events then end, without an error.
    let SttSession { audio, mut events } = session;
    drop(audio);
    let rest: Vec<_> = tokio::time::timeout(PATIENCE, async {
        let mut rest = Vec::new();
        while let Some(e) = events.recv().await {
            rest.push(e);
        }
        rest
    })
    .await
    .unwrap();
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
    let stats = sim.sim().speech_stats();
    assert_eq!((stats.deepgram_sessions, stats.deepgram_close_streams), (1, 1), "{stats:?}");
    sim.shutdown();
}

#[tokio::test]
async fn deepgram_finalize_settles_a_cut_utterance_and_silence_answers_empty() {
    let sim = sim().await;
    let stt = DeepgramStt::new(&sim.base_url(), key(KEY));
    let mut session = stt.open(&options()).await.unwrap();
    let interrupt = clip("interrupt");
    // Cut mid-sentence, no trailing silence: only Finalize ends it.
    session.audio.send(SttInput::Audio(interrupt[..interrupt.len() / 2].to_vec())).await.unwrap();
    session.audio.send(SttInput::Finalize).await.unwrap();
    let events = until_speech_final(&mut session).await;
    let Some(SttEvent::Final { text, .. }) = events.last() else { unreachable!() };
    assert!(text.starts_with("Sorry, wait") && !text.ends_with("question."), "what was heard so far: {text}");
    // Finalize with nothing heard: an empty final, so the caller is not left waiting.
    session.audio.send(SttInput::Audio(vec![0; 800])).await.unwrap();
    session.audio.send(SttInput::Finalize).await.unwrap();
    assert_eq!(until_speech_final(&mut session).await, vec![SttEvent::Final { text: String::new(), speech_final: true }]);
    assert_eq!(sim.sim().speech_stats().deepgram_finalizes, 2);
    sim.shutdown();
}

#[tokio::test]
async fn deepgram_sends_keepalives_while_no_audio_flows_and_the_session_stays_usable() {
    let sim = sim().await;
    let stt = DeepgramStt::new(&sim.base_url(), key(KEY)).with_keepalive(Duration::from_millis(20));
    let mut session = stt.open(&options()).await.unwrap();
    let handle = sim.sim().clone();
    wait_for("two keepalives", || handle.speech_stats().deepgram_keepalives >= 2).await;
    let mut audio = clip("hello");
    audio.extend(vec![0i16; 4000]);
    session.audio.send(SttInput::Audio(audio)).await.unwrap();
    let events = until_speech_final(&mut session).await;
    assert_eq!(events.last(), Some(&SttEvent::Final { text: "Hello?".into(), speech_final: true }));
    sim.shutdown();
}

#[tokio::test]
async fn deepgram_refuses_a_wrong_key_on_the_upgrade() {
    let sim = sim().await;
    for wrong in [key("nope"), None] {
        let error = DeepgramStt::new(&sim.base_url(), wrong).open(&options()).await.err().expect("refused");
        assert_eq!(error.service, "deepgram");
        assert!(error.message.contains("401") && error.message.contains("INVALID_AUTH"), "{error}");
        assert!(!error.retryable);
    }
    assert_eq!(sim.sim().speech_stats().unauthorized, 2);
    sim.shutdown();
}

fn chat(text: &str) -> ChatRequest {
    ChatRequest {
        model: Some("sim-model".into()),
        messages: vec![
            ChatMessage { role: "system".into(), content: "You call to confirm appointments.".into() },
            ChatMessage { role: "assistant".into(), content: "Hi, this is the clinic.".into() },
            ChatMessage { role: "user".into(), content: text.into() },
        ],
    }
}

#[tokio::test]
async fn openai_chat_streams_the_scripted_reply_in_deltas_and_a_wrong_key_is_refused() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let llm = OpenAiChat::new(http.clone(), &format!("{}/v1", sim.base_url()), key(KEY));
    let deltas: Vec<String> = llm.reply(&chat("What time is my appointment tomorrow?")).await.unwrap().map(Result::unwrap).collect().await;
    assert!(deltas.len() >= 5, "streamed in pieces: {deltas:?}");
    assert_eq!(deltas.concat(), "Your appointment is tomorrow at ten a.m. Is there anything else?");
    let bye: String = llm.reply(&chat("Okay, thank you. Goodbye.")).await.unwrap().map(Result::unwrap).collect::<Vec<_>>().await.concat();
    assert_eq!(bye, "Thank you, goodbye!");

    let wrong = OpenAiChat::new(http, &format!("{}/v1", sim.base_url()), key("nope"));
    let error = wrong.reply(&chat("hi")).await.err().expect("refused");
    assert!(error.message.contains("401") && error.message.contains("Incorrect API key"), "{error}");
    assert!(!error.retryable);
    assert_eq!(sim.sim().speech_stats().chat_requests, 2);
    sim.shutdown();
}

#[tokio::test]
async fn openai_transcription_buffers_until_finalize_and_returns_the_clip_text() {
    let sim = sim().await;
    let stt = OpenAiTranscription::new(reqwest::Client::new(), &format!("{}/v1", sim.base_url()), key(KEY));
    let mut session = stt.open(&options()).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut audio = vec![0i16; 400];
    audio.extend(clip("yes_speaking"));
    audio.extend(vec![0i16; 400]);
    send_chunked(&session, &audio, 500, &mut rng).await;
    session.audio.send(SttInput::Finalize).await.unwrap();
    assert_eq!(next(&mut session).await.unwrap().unwrap(), SttEvent::Final { text: "Yes, this is Sam speaking.".into(), speech_final: true });
    // The buffer starts afresh after each Finalize.
    session.audio.send(SttInput::Audio(clip("mhm"))).await.unwrap();
    session.audio.send(SttInput::Finalize).await.unwrap();
    assert_eq!(next(&mut session).await.unwrap().unwrap(), SttEvent::Final { text: "Mm.".into(), speech_final: true });
    assert_eq!(sim.sim().speech_stats().transcriptions, 2);

    let wrong = OpenAiTranscription::new(reqwest::Client::new(), &format!("{}/v1", sim.base_url()), key("nope"));
    let mut session = wrong.open(&options()).await.unwrap();
    session.audio.send(SttInput::Audio(clip("hello"))).await.unwrap();
    session.audio.send(SttInput::Finalize).await.unwrap();
    let error = next(&mut session).await.unwrap().unwrap_err();
    assert!(error.message.contains("401"), "{error}");
    sim.shutdown();
}

fn tts_options(rate: u32) -> TtsOptions {
    TtsOptions { sample_rate: rate, voice: Some("sim-voice".into()), model: None, language: "en-US".into() }
}

async fn all_audio(tts: &dyn Tts, text: &str, rate: u32) -> Result<Vec<i16>, SpeechError> {
    let mut stream = tts.synthesize(text, &tts_options(rate)).await?;
    let mut audio = Vec::new();
    while let Some(chunk) = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
        audio.extend(chunk?);
    }
    Ok(audio)
}

#[tokio::test]
async fn elevenlabs_returns_audio_of_the_expected_length_and_refuses_a_wrong_key() {
    let sim = sim().await;
    let tts = ElevenLabsTts::new(&sim.base_url(), key(KEY));
    let text = "Hello there, this is dialtone calling about your appointment.";
    let chars = text.chars().count();
    let audio = all_audio(&tts, text, 8000).await.unwrap();
    assert_eq!(audio.len(), chars * 480, "60 ms a character at 8 kHz");
    assert!(audio.iter().any(|&s| s.abs() > 1000), "audible");
    assert_eq!(all_audio(&tts, text, 16000).await.unwrap().len(), chars * 960);
    assert_eq!(all_audio(&tts, text, 8000).await.unwrap(), audio, "deterministic");

    let error = tts.synthesize(text, &tts_options(11025)).await.err().expect("11,025 Hz is not made");
    assert!(error.message.contains("sample_rate"), "{error}");
    let wrong = ElevenLabsTts::new(&sim.base_url(), key("nope"));
    let error = wrong.synthesize(text, &tts_options(8000)).await.err().expect("refused");
    assert!(error.message.contains("401"), "{error}");
    // No header: the key may come in the first message instead, and a missing one ends the stream.
    let keyless = ElevenLabsTts::new(&sim.base_url(), None);
    let mut stream = keyless.synthesize(text, &tts_options(8000)).await.unwrap();
    let error = stream.next().await.unwrap().unwrap_err();
    assert!(error.message.contains("Invalid API key") && !error.retryable, "{error}");
    assert_eq!(sim.sim().speech_stats().tts_sessions, 3);
    sim.shutdown();
}

#[tokio::test]
async fn flite_speaks_at_the_rate_asked_and_names_a_missing_program() {
    let flite = FliteTts::new("flite");
    let audio = all_audio(&flite, "Hello, this is dialtone.", 8000).await.unwrap();
    let secs = audio.len() as f64 / 8000.0;
    assert!((0.8..4.0).contains(&secs), "a short sentence lasts about a second or two: {secs} s");
    let rms = (audio.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / audio.len() as f64).sqrt();
    assert!(rms > 300.0, "audible: rms {rms}");
    let wide = all_audio(&flite, "Hello, this is dialtone.", 16000).await.unwrap();
    assert!((wide.len() as i64 - 2 * audio.len() as i64).abs() <= 2, "16 kHz is flite's own rate: {} vs {}", wide.len(), audio.len());

    let error = flite.synthesize("Hello", &tts_options(22050)).await.err().expect("22,050 Hz is no small ratio of 16 kHz");
    assert!(error.message.contains("sample_rate"), "{error}");

    let missing = FliteTts::new("/nonexistent/flite");
    let error = missing.synthesize("Hello", &tts_options(8000)).await.err().expect("no such program");
    assert_eq!(error.service, "flite");
    assert!(error.message.contains("/nonexistent/flite") && error.message.contains("apt-get install flite"), "{error}");
}

#[tokio::test]
async fn the_factory_wires_the_sim_providers_into_a_whole_turn() {
    let sim = sim().await;
    let config = SpeechConfig { sim_url: sim.base_url(), sim_api_key: key(KEY), ..SpeechConfig::default() };
    let clients = SpeechClients::new(&config).unwrap();
    let service = SpeechService { provider: "sim".into(), ..SpeechService::default() };
    let stt = clients.stt(&service).unwrap();
    let llm = clients.llm(&service).unwrap();
    let tts = clients.tts(&service).unwrap();

    let mut session = stt.open(&options()).await.unwrap();
    let mut audio = clip("question");
    audio.extend(vec![0i16; 4000]);
    session.audio.send(SttInput::Audio(audio)).await.unwrap();
    let Some(SttEvent::Final { text: heard, .. }) = until_speech_final(&mut session).await.pop() else { unreachable!() };
    let reply: String = llm.reply(&chat(&heard)).await.unwrap().map(Result::unwrap).collect::<Vec<_>>().await.concat();
    assert_eq!(reply, dialtone_sim::speech::scripted_reply(&heard));
    let audio = all_audio(tts.as_ref(), &reply, 8000).await.unwrap();
    assert_eq!(audio.len(), reply.chars().count() * 8 * dialtone_sim::speech::TTS_MS_PER_CHAR as usize);

    // flite through the factory; a missing key for a cloud provider names its setting.
    let flite = clients.tts(&SpeechService { provider: "flite".into(), ..SpeechService::default() }).unwrap();
    assert!(!all_audio(flite.as_ref(), "Goodbye.", 8000).await.unwrap().is_empty());
    let error = clients.tts(&SpeechService { provider: "elevenlabs".into(), ..SpeechService::default() }).err().unwrap();
    assert!(error.message.contains("DIALTONE_SPEECH_ELEVENLABS_API_KEY"), "{error}");
    sim.shutdown();
}
