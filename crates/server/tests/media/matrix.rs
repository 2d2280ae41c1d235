//! Every scripted callee of the simulator (docs/sim-voice.md) played by the test on Exotel
//! and on Twilio: the call's final outcome in the store, the saved transcript (speakers, the
//! clips' texts from `fixtures/voice/clips.json`, interrupted flags), the size of every media
//! frame dialtone sent, and the timings of docs/voice.md on the engine's manual clock (the
//! clock moves only with the audio the test sends; `settle` waits for dialtone to handle it).

use super::{exotel, twilio};
use crate::support::*;
use dialtone_core::{CallId, CallStatus, Clock, Outcome, Speaker, TranscriptTurn};

#[derive(Clone, Copy, Debug)]
pub enum Line {
    Exotel,
    Twilio,
}

async fn connect(app: &MediaApp, call: &CallId, line: Line) -> Provider {
    match line {
        Line::Exotel => exotel(app, call).await,
        Line::Twilio => twilio(app, call).await,
    }
}

/// A call on a fresh server, its provider side connected (`start` sent).
async fn open(line: Line) -> (MediaApp, CallId, Provider) {
    let app = MediaApp::start().await;
    let call = app.call(agent()).await;
    let p = connect(&app, &call, line).await;
    (app, call, p)
}

/// The STT will hear `clip`'s text; then the clip is spoken.
async fn say(app: &MediaApp, p: &mut Provider, clip: &str) {
    *app.speech.says.lock().unwrap() = Some(clip_text(clip));
    p.speak(app, &fixture(clip)).await;
}

/// Stops the stream (the callee hangs up), reads to the close, checks the frame sizes and
/// returns the stored call once the session is gone.
async fn hang_up(app: &MediaApp, call: &CallId, p: &mut Provider) -> dialtone_store::Call {
    p.stop().await;
    finish(app, call, p).await
}

/// Reads to the close (echoing marks), checks every frame's size, waits for the session to
/// end and for no LLM/TTS stream to be left; the stored call.
async fn finish(app: &MediaApp, call: &CallId, p: &mut Provider) -> dialtone_store::Call {
    p.drain(app).await;
    app.until("the call to end", || app.state.media.running_sessions() == 0).await;
    app.until("no LLM/TTS stream left", || app.speech.live_streams() == 0).await;
    p.check_frame_sizes();
    let stored = app.stored_call(call).await;
    assert_eq!(stored.status, CallStatus::Ended);
    stored
}

fn turns(stored: &dialtone_store::Call) -> Vec<TranscriptTurn> {
    stored.transcript.clone().expect("the transcript is saved on the call")
}

fn shape(turns: &[TranscriptTurn]) -> Vec<(Speaker, String, bool)> {
    turns.iter().map(|t| (t.speaker, t.text.clone(), t.interrupted)).collect()
}

fn ms(from: jiff::Timestamp, to: jiff::Timestamp) -> i64 {
    to.duration_since(from).as_millis() as i64
}

/// Answers after the greeting, asks the question, says thanks and goodbye; each callee
/// turn gets a reply, each reply starts after the turn it answers.
pub async fn human(line: Line) {
    let (app, call, mut p) = open(line).await;
    let (_, mark) = p.turn().await;
    p.mark(&app, &mark).await;
    for clip in ["yes_speaking", "question", "thanks_bye"] {
        say(&app, &mut p, clip).await;
        p.silence(&app, 1500).await;
        let (reply, mark) = p.turn().await;
        assert!(!reply.is_empty(), "{line:?}: a reply to {clip}");
        p.mark(&app, &mark).await;
    }
    let stored = hang_up(&app, &call, &mut p).await;
    assert_eq!((stored.outcome, stored.voicemail_left), (Some(Outcome::Completed), false), "{line:?}");
    let turns = turns(&stored);
    let a = |t: &str| (Speaker::Agent, t.to_string(), false);
    let c = |clip: &str| (Speaker::Callee, clip_text(clip), false);
    assert_eq!(
        shape(&turns),
        vec![a(&agent().greeting), c("yes_speaking"), a(REPLY), c("question"), a(REPLY), c("thanks_bye"), a(REPLY)],
        "{line:?}: {turns:#?}"
    );
    for pair in turns.windows(2) {
        assert!(pair[1].started_at >= pair[0].ended_at, "{line:?}: turns overlap: {pair:#?}");
    }
}

/// "Hello?" at the start, over our greeting's first moments: the greeting is cleared
/// (withdrawn unheard) and said after their utterance, within 2 s of its onset.
pub async fn talks_first(line: Line) {
    let (app, call, mut p) = open(line).await;
    say(&app, &mut p, "hello").await;
    p.silence(&app, 2_500).await;
    let greeting = agent().greeting;
    let mut cleared = false;
    loop {
        match p.next().await {
            Got::Clear => cleared = true,
            Got::Mark(m) => {
                p.mark(&app, &m).await;
                if m.starts_with("greeting") && cleared {
                    break;
                }
            }
            Got::Media(_) => {}
            Got::Closed => panic!("{line:?}: closed before the greeting"),
        }
    }
    let stored = hang_up(&app, &call, &mut p).await;
    assert_eq!(stored.outcome, Some(Outcome::Completed), "{line:?}");
    let turns = turns(&stored);
    let hello = turns.iter().find(|t| t.speaker == Speaker::Callee).unwrap_or_else(|| panic!("{line:?}: no callee turn: {turns:#?}"));
    assert_eq!(hello.text, clip_text("hello"), "{line:?}: {turns:#?}");
    let said = turns
        .iter()
        .find(|t| t.speaker == Speaker::Agent && t.text == greeting && !t.interrupted)
        .unwrap_or_else(|| panic!("{line:?}: no whole greeting: {turns:#?}"));
    let after = ms(hello.started_at, said.started_at);
    assert!((0..=2_000).contains(&after), "{line:?}: greeting {after} ms after their onset: {turns:#?}");
    // The greeting they talked over was withdrawn unheard: not in the transcript
    // (docs/voice.md, CalleeFirst).
    assert_eq!(shape(&turns), vec![(Speaker::Callee, clip_text("hello"), false), (Speaker::Agent, greeting.clone(), false)], "{line:?}");
}

/// Never speaks: the prompt 10 s (+0.2) after the greeting played, the goodbye 5 s (+0.2)
/// after the prompt played, then dialtone hangs up: `no_response`.
pub async fn silent(line: Line) {
    let (app, call, mut p) = open(line).await;
    let (_, mark) = p.turn().await;
    p.mark(&app, &mark).await;
    p.silence(&app, 9_800).await;
    p.silence(&app, 400).await;
    let (prompt, mark) = p.turn().await;
    assert!(!prompt.is_empty());
    p.mark(&app, &mark).await;
    p.silence(&app, 5_200).await;
    let (_, mark) = p.turn().await;
    assert!(mark.starts_with("goodbye"), "{line:?}: {mark}");
    p.mark(&app, &mark).await;
    let stored = finish(&app, &call, &mut p).await;
    assert_eq!((stored.outcome, stored.voicemail_left), (Some(Outcome::NoResponse), false), "{line:?}");
    let turns = turns(&stored);
    let a = |t: &str| (Speaker::Agent, t.to_string(), false);
    assert_eq!(shape(&turns), vec![a(&agent().greeting), a("Hello? Are you there?"), a("Goodbye.")], "{line:?}");
    let gap = |a: usize, b: usize| ms(turns[a].ended_at, turns[b].started_at);
    assert!((10_000..=10_200).contains(&gap(0, 1)), "{line:?}: prompt {} ms after the greeting played", gap(0, 1));
    assert!((5_000..=5_200).contains(&gap(1, 2)), "{line:?}: goodbye {} ms after the prompt played", gap(1, 2));
}

/// A mailbox greeting with a beep (`voicemail_beep`, beep at 13.02 s) over our greeting:
/// the message after the beep, then dialtone hangs up: `voicemail`, `voicemail_left`.
pub async fn voicemail(line: Line) {
    let (app, call, mut p) = open(line).await;
    let t0 = app.clock.now();
    let message = agent().voicemail_message.unwrap();
    say(&app, &mut p, "voicemail_beep").await;
    p.silence(&app, 2_000).await;
    let stored = finish(&app, &call, &mut p).await;
    assert_eq!((stored.outcome, stored.voicemail_left), (Some(Outcome::Voicemail), true), "{line:?}");
    let turns = turns(&stored);
    let last = turns.last().unwrap();
    assert_eq!((last.speaker, last.text.as_str(), last.interrupted), (Speaker::Agent, message.as_str(), false), "{line:?}: {turns:#?}");
    assert!(ms(t0, last.started_at) >= 13_020, "{line:?}: the message began {} ms in, before the beep", ms(t0, last.started_at));
    assert!(app.speech.llm_calls.lock().unwrap().is_empty(), "{line:?}: no reply to a machine");
    // Our greeting was cut when the machine was recognised.
    assert!(turns.iter().filter(|t| t.speaker == Speaker::Agent && t.text != message).all(|t| t.interrupted), "{line:?}: {turns:#?}");
}

/// Interrupts our greeting 1 s in: `clear` within 300 ms of the onset (on the engine's
/// clock), no more of the greeting after it, the greeting saved `interrupted: true`; then
/// the interruption gets a reply.
pub async fn barge_in(line: Line) {
    let (app, call, mut p) = open(line).await;
    // The greeting is queued at the provider; its mark is not echoed, so it is still playing.
    let (_, greeting_mark) = p.turn().await;
    p.silence(&app, 1_000).await;
    say(&app, &mut p, "interrupt").await;
    // The callee is still talking: whatever dialtone sent by now belongs to the greeting.
    p.settle(&app).await;
    let _ = p.arrived();
    let clear = p.log.iter().position(|g| *g == Got::Clear).unwrap_or_else(|| panic!("{line:?}: no clear: {:?}", p.log));
    let after: Vec<Got> = p.log[clear + 1..].to_vec();
    assert!(
        after.iter().all(|g| !matches!(g, Got::Media(_)) && *g != Got::Mark(greeting_mark.clone())),
        "{line:?}: old-turn frames after the clear: {after:?}"
    );
    p.silence(&app, 1_500).await;
    let (reply, mark) = p.turn().await;
    assert!(!reply.is_empty(), "{line:?}: the interruption gets a reply");
    p.mark(&app, &mark).await;
    let stored = hang_up(&app, &call, &mut p).await;
    assert_eq!(stored.outcome, Some(Outcome::Completed), "{line:?}");
    let turns = turns(&stored);
    assert_eq!(
        turns.iter().map(|t| (t.speaker, t.interrupted)).collect::<Vec<_>>(),
        vec![(Speaker::Agent, true), (Speaker::Callee, false), (Speaker::Agent, false)],
        "{line:?}: {turns:#?}"
    );
    assert_eq!(turns[1].text, clip_text("interrupt"), "{line:?}");
    assert_eq!(turns[2].text, REPLY, "{line:?}");
    // Its text is what played before the clear (about 1.2 s of its 1.65 s): a prefix of
    // whole words, neither empty nor the whole line.
    let greeting = agent().greeting;
    let cut = &turns[0].text;
    assert!(!cut.is_empty() && cut.len() < greeting.len() && greeting.starts_with(&format!("{cut} ")), "{line:?}: cut greeting {cut:?}");
    // The cut greeting ends at the barge-in (when `clear` went out): within 300 ms of the onset.
    let to_clear = ms(turns[1].started_at, turns[0].ended_at);
    assert!((0..=300).contains(&to_clear), "{line:?}: clear {to_clear} ms after the onset: {turns:#?}");
}

/// Coughs twice during the greeting: bursts shorter than the 200 ms barge-in threshold
/// (VOICE.md pain point 2) neither clear nor cut the greeting.
pub async fn coughs(line: Line) {
    let (app, call, mut p) = open(line).await;
    let (_, mark) = p.turn().await;
    p.silence(&app, 500).await;
    *app.speech.says.lock().unwrap() = Some(String::new());
    p.speak(&app, &fixture("cough")).await;
    p.silence(&app, 400).await;
    p.speak(&app, &fixture("cough")).await;
    p.silence(&app, 1_000).await;
    p.settle(&app).await;
    let _ = p.arrived();
    assert!(!p.log.contains(&Got::Clear), "{line:?}: a cough cleared the greeting: {:?}", p.log);
    p.mark(&app, &mark).await;
    p.silence(&app, 300).await;
    let stored = hang_up(&app, &call, &mut p).await;
    let turns = turns(&stored);
    assert_eq!((turns[0].speaker, turns[0].text.as_str(), turns[0].interrupted), (Speaker::Agent, agent().greeting.as_str(), false), "{line:?}: {turns:#?}");
}

/// Hangs up 2 s after `start`, having heard the greeting: the call is finalised, its
/// transcript saved; the callee never spoke, so `no_response` (docs/voice.md, "Outcomes":
/// callee hung up → as the call went).
pub async fn hangs_up_early(line: Line) {
    let (app, call, mut p) = open(line).await;
    let (_, mark) = p.turn().await;
    p.silence(&app, 1_700).await;
    p.mark(&app, &mark).await;
    p.silence(&app, 300).await;
    let stored = hang_up(&app, &call, &mut p).await;
    assert_eq!((stored.outcome, stored.voicemail_left), (Some(Outcome::NoResponse), false), "{line:?}");
    assert_eq!(shape(&turns(&stored)), vec![(Speaker::Agent, agent().greeting, false)], "{line:?}");
}

macro_rules! both_lines {
    ($($callee:ident),* $(,)?) => {
        $(
            mod $callee {
                use super::Line;
                #[tokio::test]
                async fn exotel() {
                    super::$callee(Line::Exotel).await;
                }
                #[tokio::test]
                async fn twilio() {
                    super::$callee(Line::Twilio).await;
                }
            }
        )*
    };
}

both_lines!(human, talks_first, silent, voicemail, barge_in, hangs_up_early, coughs);
