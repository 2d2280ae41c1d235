//! The conversation's rules on a virtual clock. `Call` plays the server: it ticks only at
//! `next_deadline`, so every timer is met exactly when the machine says it is due.

use super::*;
use crate::listen::Heard;
use crate::speech::SttEvent;
use dialtone_core::Speaker;

const GREETING: &str = "Hi, this is Dana from Acme.";
const GOODBYE: &str = "Thanks for your time, goodbye.";
const VOICEMAIL: &str = "Please call Acme back.";

fn script() -> Script {
    Script {
        greeting: GREETING.into(),
        system_prompt: "You are Dana.".into(),
        no_response_prompt: "Hello? Are you there?".into(),
        goodbye: GOODBYE.into(),
        voicemail_message: Some(VOICEMAIL.into()),
        max_duration: SignedDuration::from_secs(600),
    }
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap().saturating_add(SignedDuration::from_millis(ms)).unwrap()
}

fn ms(at: Timestamp) -> i64 {
    i64::try_from(at.duration_since(t(0)).as_millis()).unwrap()
}

/// A driver on a virtual clock. `log` holds every action with the time (ms) it came.
struct Call {
    c: Conversation,
    now: i64,
    log: Vec<(i64, Action)>,
}

impl Call {
    fn new(script: Script) -> Self {
        Self { c: Conversation::new(script, Timing::default()), now: 0, log: Vec::new() }
    }

    fn started() -> Self {
        let mut call = Self::new(script());
        call.feed(0, Input::Started);
        call
    }

    /// Ticks at every deadline up to `to` (inclusive), then stands at `to`.
    fn advance(&mut self, to: i64) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(d) = self.c.next_deadline() {
            let d = ms(d);
            if d > to {
                break;
            }
            assert!(d > self.now || self.log.is_empty() && d >= self.now, "deadline {d} not after {}", self.now);
            self.now = d;
            let acts = self.c.handle(t(d), Input::Tick);
            self.log.extend(acts.iter().cloned().map(|a| (d, a)));
            out.extend(acts);
        }
        self.now = to.max(self.now);
        out
    }

    /// Advances to `at` (ticking at deadlines on the way) and feeds `input` there. Returns
    /// the actions of the ticks and of the input.
    fn feed(&mut self, at: i64, input: Input) -> Vec<Action> {
        let mut out = self.advance(at);
        let acts = self.c.handle(t(at), input);
        self.log.extend(acts.iter().cloned().map(|a| (at, a)));
        out.extend(acts);
        out
    }

    fn onset(&mut self, at: i64) -> Vec<Action> {
        self.feed(at, Input::Heard(Heard::SpeechStarted { at: t(at) }))
    }

    fn end_of_speech(&mut self, at: i64, speech_ms: u64) -> Vec<Action> {
        self.feed(at, Input::Heard(Heard::SpeechEnded { at: t(at), speech_ms }))
    }

    fn final_text(&mut self, at: i64, text: &str) -> Vec<Action> {
        self.feed(at, Input::Stt(SttEvent::Final { text: text.into(), speech_final: true }))
    }

    fn played(&mut self, at: i64, mark: &str) -> Vec<Action> {
        self.feed(at, Input::MarkPlayed { mark: mark.into() })
    }

    /// The callee says `text` from `from` to `to` (ms), STT answering 100 ms later.
    fn callee_says(&mut self, from: i64, to: i64, text: &str) -> Vec<Action> {
        let mut out = self.onset(from);
        out.extend(self.end_of_speech(to, u64::try_from(to - from).unwrap()));
        out.extend(self.final_text(to + 100, text));
        out
    }

    /// When (ms) the first action matching `f` came.
    fn when(&self, f: impl Fn(&Action) -> bool) -> Option<i64> {
        self.log.iter().find(|(_, a)| f(a)).map(|(at, _)| *at)
    }

    fn turns(&self) -> Vec<(Speaker, &str, i64, i64, bool)> {
        self.c.transcript().iter().map(|t| (t.speaker, t.text.as_str(), ms(t.started_at), ms(t.ended_at), t.interrupted)).collect()
    }
}

fn says(acts: &[Action]) -> Vec<(Utterance, &str, &str)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Say { mark, text, kind } => Some((*kind, text.as_str(), mark.as_str())),
            _ => None,
        })
        .collect()
}

fn mark_of(acts: &[Action], kind: Utterance) -> String {
    says(acts).into_iter().find(|s| s.0 == kind).map(|s| s.2.to_string()).unwrap_or_else(|| panic!("no {kind:?} in {acts:?}"))
}

fn is_say(kind: Utterance) -> impl Fn(&Action) -> bool {
    move |a| matches!(a, Action::Say { kind: k, .. } if *k == kind)
}

fn is_hangup(a: &Action) -> bool {
    matches!(a, Action::Hangup(_))
}

fn reply_id(acts: &[Action]) -> u64 {
    acts.iter().find_map(|a| if let Action::Reply { reply, .. } = a { Some(*reply) } else { None }).expect("a Reply")
}

/// Greeted at 0 and the greeting played by 2 s.
fn greeted() -> (Call, String) {
    let mut call = Call::started();
    let g = mark_of(&call.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), Utterance::Greeting);
    call.played(2000, &g);
    (call, g)
}

/// Greeted, then the callee asks something at 3–4 s and reply 1 starts streaming.
fn asked() -> (Call, u64) {
    let (mut call, _) = greeted();
    let acts = call.callee_says(3000, 4000, "When do you open?");
    (call, reply_id(&acts))
}

#[test]
fn the_greeting_is_said_first_when_the_stream_starts() {
    let mut call = Call::new(script());
    assert_eq!(call.c.state(), State::Ringing);
    assert_eq!(call.c.next_deadline(), None, "nothing is timed before the line opens");
    let acts = call.feed(0, Input::Started);
    assert_eq!(says(&acts), [(Utterance::Greeting, GREETING, "greeting-1")]);
    assert_eq!(acts.len(), 1);
    assert_eq!(call.c.state(), State::Talking);
    assert!(call.feed(10, Input::Started).is_empty(), "a second start changes nothing");
}

#[test]
fn when_the_callee_speaks_first_the_greeting_waits_for_their_utterance() {
    let mut call = Call::started();
    let first = mark_of(&call.log[0..1].iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), Utterance::Greeting);
    // "Hello?" from 100 ms, before our greeting can be heard.
    call.onset(100);
    let at_deadline = call.advance(300);
    assert_eq!(at_deadline, [Action::Clear], "the queued greeting is withdrawn 200 ms after the onset");
    assert_eq!(call.c.state(), State::CalleeFirst);
    let acts = call.end_of_speech(900, 700);
    assert_eq!(acts[0], Action::FinalizeStt);
    let second = mark_of(&acts, Utterance::Greeting);
    assert_ne!(first, second, "a new mark for the greeting said again");
    // Twilio echoes the cleared mark: it is not taken as played.
    assert!(call.played(950, &first).is_empty());
    let acts = call.final_text(1000, "Hello?");
    assert!(acts.is_empty(), "the greeting answers their hello; no LLM reply: {acts:?}");
    call.played(3000, &second);
    assert_eq!(call.turns(), [(Speaker::Callee, "Hello?", 100, 900, false), (Speaker::Agent, GREETING, 900, 3000, false)]);
}

#[test]
fn a_callee_already_speaking_at_start_is_greeted_at_most_2s_after_their_onset() {
    let mut call = Call::new(script());
    call.feed(0, Input::Heard(Heard::SpeechStarted { at: t(0) }));
    assert!(call.feed(50, Input::Started).is_empty(), "no greeting over their hello");
    call.advance(10_000);
    assert_eq!(call.when(is_say(Utterance::Greeting)), Some(2050), "2 s after the later of onset and start");
}

#[test]
fn callee_speech_before_start_that_ended_gets_the_greeting_at_its_end() {
    let mut call = Call::new(script());
    call.onset(0);
    assert!(call.feed(20, Input::Started).is_empty());
    let acts = call.end_of_speech(600, 550);
    assert_eq!(says(&acts).len(), 1);
    assert_eq!(call.when(is_say(Utterance::Greeting)), Some(600));
}

#[test]
fn a_callee_turn_gets_a_streamed_reply_sentence_by_sentence() {
    let (mut call, g) = greeted();
    let acts = call.onset(3000);
    assert!(acts.is_empty());
    call.feed(3200, Input::Stt(SttEvent::Partial { text: "When do".into() }));
    assert_eq!(call.end_of_speech(4000, 1000), [Action::FinalizeStt]);
    let acts = call.final_text(4100, "When do you open?");
    let Action::Reply { reply, request } = &acts[0] else { panic!("{acts:?}") };
    assert_eq!(acts.len(), 1);
    let roles: Vec<(&str, &str)> = request.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    assert_eq!(roles, [("system", "You are Dana."), ("assistant", GREETING), ("user", "When do you open?")]);
    assert_eq!(request.model, None);
    let reply = *reply;

    let a = call.feed(4300, Input::ReplyDelta { reply, text: "We open".into() });
    assert!(a.is_empty(), "no complete sentence yet");
    let a = call.feed(4350, Input::ReplyDelta { reply, text: " at 9.30 am. We".into() });
    assert_eq!(says(&a).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(Utterance::Reply, "We open at 9.30 am.")]);
    let m1 = mark_of(&a, Utterance::Reply);
    let a = call.feed(4400, Input::ReplyDelta { reply: reply + 7, text: "Stale text. ".into() });
    assert!(a.is_empty(), "other reply ids are ignored");
    let a = call.feed(4450, Input::ReplyDelta { reply, text: " close at five! See".into() });
    let m2 = mark_of(&a, Utterance::Reply);
    let a = call.feed(4500, Input::ReplyDone { reply });
    assert_eq!(says(&a).iter().map(|s| s.1).collect::<Vec<_>>(), ["See"], "ReplyDone flushes the rest");
    let m3 = mark_of(&a, Utterance::Reply);
    let marks = [g.as_str(), m1.as_str(), m2.as_str(), m3.as_str()];
    assert!(marks.iter().enumerate().all(|(i, m)| !marks[..i].contains(m)), "marks are unique: {marks:?}");
    call.played(6000, &m1);
    call.played(7000, &m2);
    assert_eq!(call.c.transcript().len(), 2, "the turn is recorded when its last mark is back");
    call.played(7500, &m3);
    assert_eq!(call.turns()[2], (Speaker::Agent, "We open at 9.30 am. We close at five! See", 4350, 7500, false));
    assert!(call.feed(7600, Input::ReplyDelta { reply, text: "Late. ".into() }).is_empty(), "a finished reply takes no more text");
}

#[test]
fn a_reply_is_not_requested_for_a_backchannel_while_we_talk() {
    let (mut call, reply) = asked();
    let m1 = mark_of(&call.feed(4200, Input::ReplyDelta { reply, text: "We open at nine. ".into() }), Utterance::Reply);
    // "mhm", too short to interrupt.
    call.onset(4500);
    let acts = call.end_of_speech(4650, 150);
    assert_eq!(acts, [Action::FinalizeStt]);
    let acts = call.final_text(4700, "mhm");
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(call.c.transcript().last().unwrap().text, "mhm");
    // Another one whose text comes only after our turn ended: still no reply.
    let m2 = mark_of(&call.feed(4800, Input::ReplyDelta { reply, text: "We close at five. ".into() }), Utterance::Reply);
    call.feed(4900, Input::ReplyDone { reply });
    call.onset(5000);
    call.end_of_speech(5100, 100);
    call.played(5200, &m1);
    call.played(5300, &m2);
    assert!(call.final_text(5400, "uh-huh").is_empty(), "no reply to a backchannel");
    // A real question after that is answered.
    let acts = call.callee_says(6000, 7000, "And on Sundays?");
    assert!(matches!(acts[..], [Action::FinalizeStt, Action::Reply { .. }]), "{acts:?}");
}

#[test]
fn barge_in_clears_within_300ms_and_truncates_our_turn_at_the_last_played_mark() {
    let (mut call, reply) = asked();
    let m1 = mark_of(&call.feed(4200, Input::ReplyDelta { reply, text: "We open at nine. ".into() }), Utterance::Reply);
    let m2 = mark_of(&call.feed(4300, Input::ReplyDelta { reply, text: "We close at five. And".into() }), Utterance::Reply);
    call.played(5500, &m1);
    assert!(call.onset(6000).is_empty(), "nothing at the onset itself");
    let acts = call.advance(6300);
    assert_eq!(acts, [Action::Clear, Action::CancelReply { reply }]);
    let cleared_at = call.when(|a| *a == Action::Clear).unwrap();
    assert!(cleared_at - 6000 <= 300, "clear {} ms after the onset", cleared_at - 6000);
    assert_eq!(cleared_at, 6200);
    let last = call.c.transcript().last().unwrap();
    assert_eq!((last.speaker, last.text.as_str(), last.interrupted, ms(last.ended_at)), (Speaker::Agent, "We open at nine.", true, 6200));
    // Nothing of the old turn after Clear.
    assert!(call.feed(6400, Input::ReplyDelta { reply, text: " on Sundays. Also on Mondays. ".into() }).is_empty());
    assert!(call.feed(6450, Input::ReplyDone { reply }).is_empty());
    assert!(call.played(6500, &m2).is_empty(), "the echo of a cleared mark is ignored");
    assert_eq!(call.c.transcript().last().unwrap().text, "We open at nine.");
    // Their turn gets the next reply, with the truncated turn in the history.
    call.end_of_speech(7000, 1000);
    let acts = call.final_text(7100, "Sorry, what about Sundays?");
    let Action::Reply { reply: next, request } = &acts[0] else { panic!("{acts:?}") };
    assert!(*next > reply);
    assert_eq!(request.messages[3].content, "We open at nine.");
    assert_eq!(request.messages[4].content, "Sorry, what about Sundays?");
}

/// A greeting (or a reply's first sentence) cut by barge-in before its mark came back keeps
/// the words that had started playing, by the share of its audio (reported by the driver)
/// that had played, marked interrupted; never an empty turn.
#[test]
fn a_greeting_cut_by_barge_in_keeps_the_words_that_played() {
    let mut call = Call::started();
    let greeting = mark_of(&call.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), Utterance::Greeting);
    // The cached greeting's audio: 2.4 s for 6 words.
    assert!(call.feed(10, Input::LineAudio { mark: greeting.clone(), duration: SignedDuration::from_millis(2400) }).is_empty());
    call.onset(1000);
    assert_eq!(call.advance(1200), [Action::Clear], "barge-in 200 ms after the onset");
    // 1.2 s of 2.4 s played: half of the 6 words.
    assert_eq!(call.turns(), [(Speaker::Agent, "Hi, this is", 0, 1200, true)]);
    assert!(call.played(1300, &greeting).is_empty(), "the cleared mark's echo changes nothing");
    assert_eq!(call.turns().len(), 1);

    // A reply cut in its first sentence, audio reported.
    let (mut call, reply) = asked();
    let m = mark_of(&call.feed(4200, Input::ReplyDelta { reply, text: "We open at nine on weekdays. ".into() }), Utterance::Reply);
    call.feed(4300, Input::LineAudio { mark: m, duration: SignedDuration::from_millis(2000) });
    call.onset(4500);
    assert_eq!(call.advance(4700), [Action::Clear, Action::CancelReply { reply }]);
    // 500 ms of 2 s: a quarter of 6 words, rounded up to the word under way.
    assert_eq!(call.turns().last().unwrap(), &(Speaker::Agent, "We open", 4200, 4700, true));
}

#[test]
fn an_onset_shorter_than_200ms_does_not_interrupt() {
    let (mut call, reply) = asked();
    let m1 = mark_of(&call.feed(4200, Input::ReplyDelta { reply, text: "We open at nine. ".into() }), Utterance::Reply);
    call.onset(5000);
    assert_eq!(call.end_of_speech(5150, 120), [Action::FinalizeStt], "a cough");
    call.advance(5400);
    assert!(call.when(|a| *a == Action::Clear).is_none());
    call.feed(5500, Input::ReplyDone { reply });
    call.played(5600, &m1);
    assert_eq!(call.turns().last().unwrap(), &(Speaker::Agent, "We open at nine.", 4200, 5600, false));
}

#[test]
fn barge_in_on_a_reply_still_thinking_cancels_it_without_clear() {
    let (mut call, reply) = asked();
    call.onset(4500);
    assert_eq!(call.advance(4700), [Action::CancelReply { reply }], "nothing queued: no clear");
    assert!(call.feed(4800, Input::ReplyDelta { reply, text: "Late sentence. ".into() }).is_empty());
}

#[test]
fn no_response_prompt_10s_after_our_audio_played_then_goodbye_5s_after_the_prompt() {
    let mut call = Call::started();
    let g = mark_of(&call.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), Utterance::Greeting);
    call.advance(12_000);
    assert!(call.when(is_say(Utterance::NoResponsePrompt)).is_none(), "not timed from sending: the greeting is still playing");
    call.played(4000, &g);
    assert_eq!(call.c.next_deadline(), Some(t(14_000)));
    call.advance(13_999);
    assert!(call.when(is_say(Utterance::NoResponsePrompt)).is_none());
    let acts = call.advance(14_000);
    assert_eq!(says(&acts).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(Utterance::NoResponsePrompt, "Hello? Are you there?")]);
    let p = mark_of(&acts, Utterance::NoResponsePrompt);
    call.advance(17_000);
    call.played(17_000, &p);
    call.advance(21_999);
    assert!(call.when(is_say(Utterance::Goodbye)).is_none());
    let acts = call.advance(22_000);
    let bye = mark_of(&acts, Utterance::Goodbye);
    assert_eq!(call.c.state(), State::Closing);
    let acts = call.played(24_000, &bye);
    let ending = Ending { outcome: VoiceOutcome::NoResponse, reason: EndReason::AgentHungUp, voicemail_left: false };
    assert_eq!(acts, [Action::Hangup(ending)]);
    assert_eq!(call.c.ending(), Some(ending));
    assert_eq!(call.c.next_deadline(), None);
    let kinds: Vec<(i64, Utterance)> = call.log.iter().filter_map(|(at, a)| if let Action::Say { kind, .. } = a { Some((*at, *kind)) } else { None }).collect();
    assert_eq!(kinds, [(0, Utterance::Greeting), (14_000, Utterance::NoResponsePrompt), (22_000, Utterance::Goodbye)]);
}

#[test]
fn dtmf_and_speech_restart_the_no_response_timer() {
    let (mut call, _) = greeted();
    call.feed(9000, Input::Dtmf { digit: '5' });
    call.advance(18_000);
    assert!(call.when(is_say(Utterance::NoResponsePrompt)).is_none(), "DTMF at 9 s restarts the 10 s");
    assert_eq!(ms(call.c.next_deadline().unwrap()), 19_000);
    // Noise the STT makes nothing of still restarts it from its end.
    call.onset(18_500);
    call.end_of_speech(19_500, 1000);
    call.feed(19_600, Input::Stt(SttEvent::Final { text: " ".into(), speech_final: true }));
    assert_eq!(ms(call.c.next_deadline().unwrap()), 29_500);
    call.advance(29_500);
    assert_eq!(call.when(is_say(Utterance::NoResponsePrompt)), Some(29_500));
}

#[test]
fn no_response_timers_never_fire_while_the_callee_talks_or_we_talk() {
    let (mut call, _) = greeted();
    call.feed(2500, Input::ProviderAmd(dialtone_core::AnsweredBy::Human));
    call.onset(3000);
    call.advance(40_000);
    assert!(call.log.iter().all(|(at, _)| *at <= 2000), "nothing while they talk for 37 s: {:?}", call.log);
    call.end_of_speech(40_000, 37_000);
    let acts = call.final_text(40_100, "And that is my whole story.");
    let reply = reply_id(&acts);
    call.advance(60_000);
    assert!(call.when(is_say(Utterance::NoResponsePrompt)).is_none(), "nothing while the reply is coming");
    let m = mark_of(&call.feed(60_000, Input::ReplyDelta { reply, text: "I see. ".into() }), Utterance::Reply);
    call.feed(60_100, Input::ReplyDone { reply });
    call.advance(90_000);
    assert!(call.when(is_say(Utterance::NoResponsePrompt)).is_none(), "nothing while our audio plays");
    call.played(90_000, &m);
    call.advance(100_000);
    assert_eq!(call.when(is_say(Utterance::NoResponsePrompt)), Some(100_000));
}

#[test]
fn after_a_conversation_the_no_response_goodbye_ends_completed() {
    let (mut call, reply) = asked();
    let m = mark_of(&call.feed(4200, Input::ReplyDelta { reply, text: "Nine. ".into() }), Utterance::Reply);
    call.feed(4300, Input::ReplyDone { reply });
    call.played(5000, &m);
    call.advance(15_000);
    let p = mark_of(&call.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), Utterance::NoResponsePrompt);
    call.played(16_000, &p);
    let bye = mark_of(&call.advance(21_000), Utterance::Goodbye);
    let acts = call.played(23_000, &bye);
    assert_eq!(acts, [Action::Hangup(Ending { outcome: VoiceOutcome::Completed, reason: EndReason::AgentHungUp, voicemail_left: false })]);
}

#[test]
fn a_goodbye_whose_mark_never_returns_still_hangs_up() {
    let (mut call, _) = greeted();
    let p = mark_of(&call.advance(12_000), Utterance::NoResponsePrompt);
    call.played(13_000, &p);
    call.advance(18_000);
    call.advance(60_000);
    let bound = 18_000 + speech_estimate(GOODBYE).as_millis() as i64 + 5000;
    assert_eq!(call.when(is_hangup), Some(bound));
}

#[test]
fn long_uninterrupted_opening_speech_is_voicemail_left_after_the_greeting_ends() {
    let mut call = Call::started();
    call.onset(600);
    assert_eq!(call.advance(800), [Action::Clear], "our greeting is barged in on");
    call.advance(8599);
    assert_eq!(call.c.state(), State::Talking);
    call.advance(8600);
    assert_eq!(call.c.state(), State::VoicemailWait, "8 s after the onset");
    let acts = call.end_of_speech(14_300, 13_700);
    assert_eq!(acts, [Action::FinalizeStt]);
    call.final_text(14_400, "Hi, you've reached Sam. Leave a message.");
    call.advance(15_799);
    assert!(call.when(is_say(Utterance::Voicemail)).is_none());
    let acts = call.advance(15_800);
    assert_eq!(says(&acts).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(Utterance::Voicemail, VOICEMAIL)], "1.5 s of silence after the greeting");
    let m = mark_of(&acts, Utterance::Voicemail);
    let acts = call.played(19_000, &m);
    assert_eq!(acts, [Action::Hangup(Ending { outcome: VoiceOutcome::Voicemail, reason: EndReason::VoicemailDone, voicemail_left: true })]);
    let turns = call.turns();
    // Cut 800 ms into a greeting whose audio length was not reported: its estimate (3.43 s)
    // says 23 % of its 6 words had played, so the first two began.
    assert_eq!(turns[0], (Speaker::Agent, "Hi, this", 0, 800, true), "the greeting was cut before its mark: the words that began playing");
    assert_eq!(turns[1].0, Speaker::Callee);
    assert_eq!(turns[2], (Speaker::Agent, VOICEMAIL, 15_800, 19_000, false));
}

#[test]
fn a_beep_leaves_the_message_at_once() {
    let mut call = Call::started();
    // A short voicemail greeting the VAD missed; its beep while our greeting is still queued.
    let acts = call.feed(3500, Input::Heard(Heard::Beep { at: t(3400), hz: 1000, ms: 400 }));
    assert_eq!(acts[0], Action::Clear, "stop talking first");
    assert_eq!(says(&acts).iter().map(|s| s.0).collect::<Vec<_>>(), [Utterance::Voicemail]);
    assert_eq!(call.c.state(), State::LeavingMessage);
    assert!(call.feed(3600, Input::Heard(Heard::Beep { at: t(3600), hz: 1000, ms: 400 })).is_empty(), "a second beep changes nothing");
}

#[test]
fn a_beep_while_waiting_for_the_greeting_to_end_does_not_wait_for_silence() {
    let mut call = Call::started();
    call.onset(600);
    call.advance(9000);
    assert_eq!(call.c.state(), State::VoicemailWait);
    call.end_of_speech(12_000, 11_400);
    let acts = call.feed(12_300, Input::Heard(Heard::Beep { at: t(12_300), hz: 1000, ms: 300 }));
    assert_eq!(says(&acts).iter().map(|s| s.0).collect::<Vec<_>>(), [Utterance::Voicemail]);
}

#[test]
fn voicemail_without_a_message_hangs_up_at_once() {
    let mut call = Call::new(Script { voicemail_message: None, ..script() });
    call.feed(0, Input::Started);
    let acts = call.feed(5000, Input::Heard(Heard::Beep { at: t(5000), hz: 1000, ms: 300 }));
    assert_eq!(acts, [Action::Clear, Action::Hangup(Ending { outcome: VoiceOutcome::Voicemail, reason: EndReason::VoicemailDone, voicemail_left: false })]);
}

#[test]
fn a_voicemail_message_whose_mark_never_returns_is_not_left() {
    let mut call = Call::started();
    call.feed(3000, Input::Heard(Heard::Beep { at: t(3000), hz: 1000, ms: 300 }));
    call.advance(100_000);
    let bound = 3000 + speech_estimate(VOICEMAIL).as_millis() as i64 + 5000;
    assert_eq!(call.when(is_hangup), Some(bound));
    assert_eq!(call.c.ending().map(|e| (e.outcome, e.voicemail_left)), Some((VoiceOutcome::Voicemail, false)));
}

#[test]
fn a_voicemail_greeting_that_never_ends_gets_the_message_after_30s() {
    let mut call = Call::started();
    call.onset(600);
    call.advance(100_000);
    assert_eq!(call.when(is_say(Utterance::Voicemail)), Some(8600 + 30_000));
}

#[test]
fn provider_amd_machine_means_voicemail_before_a_real_exchange() {
    let mut call = Call::started();
    let acts = call.feed(1500, Input::ProviderAmd(dialtone_core::AnsweredBy::Machine));
    assert_eq!(acts, [Action::Clear]);
    assert_eq!(call.c.state(), State::VoicemailWait);
    // Silent line: the greeting already ended; leave the message after the silence bound.
    call.advance(3000);
    assert_eq!(call.when(is_say(Utterance::Voicemail)), Some(3000));

    // Before the stream starts: no greeting at all.
    let mut early = Call::new(script());
    early.feed(0, Input::ProviderAmd(dialtone_core::AnsweredBy::Machine));
    let acts = early.feed(100, Input::Started);
    assert!(says(&acts).is_empty());
    assert_eq!(early.c.state(), State::VoicemailWait);
}

#[test]
fn provider_amd_machine_after_a_real_exchange_is_ignored() {
    let (mut call, reply) = asked();
    let m = mark_of(&call.feed(4200, Input::ReplyDelta { reply, text: "Nine. ".into() }), Utterance::Reply);
    call.feed(4300, Input::ReplyDone { reply });
    call.played(5000, &m);
    call.callee_says(6000, 7000, "Thanks.");
    let acts = call.feed(7500, Input::ProviderAmd(dialtone_core::AnsweredBy::Machine));
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(call.c.state(), State::Talking);
}

#[test]
fn provider_amd_human_cancels_long_speech_but_not_a_beep() {
    let mut call = Call::started();
    call.feed(500, Input::ProviderAmd(dialtone_core::AnsweredBy::Human));
    call.onset(600);
    call.advance(20_000);
    assert_eq!(call.c.state(), State::Talking, "a person talking 19 s is not a voicemail when AMD says human");
    call.end_of_speech(20_000, 19_400);
    let acts = call.feed(21_000, Input::Heard(Heard::Beep { at: t(21_000), hz: 1000, ms: 300 }));
    assert_eq!(says(&acts).iter().map(|s| s.0).collect::<Vec<_>>(), [Utterance::Voicemail]);
}

#[test]
fn provider_amd_human_after_a_long_speech_suspicion_returns_to_the_conversation() {
    let mut call = Call::started();
    call.onset(600);
    call.advance(9000);
    assert_eq!(call.c.state(), State::VoicemailWait);
    call.feed(9500, Input::ProviderAmd(dialtone_core::AnsweredBy::Human));
    assert_eq!(call.c.state(), State::Talking);
    call.end_of_speech(11_000, 10_400);
    let acts = call.final_text(11_100, "So that is why I called you, anyway what is this about?");
    assert!(matches!(acts[..], [Action::Reply { .. }]), "{acts:?}");
    call.c.handle(t(12_000), Input::Stopped);
    assert_eq!(call.c.ending().unwrap().outcome, VoiceOutcome::Completed);
}

#[test]
fn max_duration_says_goodbye_and_hangs_up_within_1s() {
    let max = 60_000;
    let mut call = Call::new(Script { max_duration: SignedDuration::from_millis(max), ..script() });
    call.feed(0, Input::Started);
    let g = mark_of(&call.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), Utterance::Greeting);
    call.played(2000, &g);
    // Keep the conversation going: the callee talks every 8 s and we answer.
    let mut at = 3000;
    while at < 50_000 {
        let acts = call.callee_says(at, at + 1000, "Tell me more.");
        let reply = reply_id(&acts);
        let m = mark_of(&call.feed(at + 1300, Input::ReplyDelta { reply, text: "Sure. ".into() }), Utterance::Reply);
        call.feed(at + 1400, Input::ReplyDone { reply });
        call.played(at + 2500, &m);
        at += 8000;
    }
    let reply = reply_id(&call.callee_says(at, at + 1000, "And then?"));
    call.feed(at + 1300, Input::ReplyDelta { reply, text: "Well. ".into() });
    let goodbye_at = max - speech_estimate(GOODBYE).as_millis() as i64;
    let acts = call.advance(goodbye_at);
    assert_eq!(acts[0], Action::Clear, "our reply is cut for the goodbye");
    assert_eq!(acts[1], Action::CancelReply { reply });
    let bye = mark_of(&acts, Utterance::Goodbye);
    // The goodbye played quickly: hang up at max − 1 s, not earlier.
    call.played(goodbye_at + 1500, &bye);
    assert!(call.c.ending().is_none());
    call.advance(max + 5000);
    let hung = call.when(is_hangup).unwrap();
    assert_eq!(hung, max - 1000);
    assert_eq!(call.c.ending(), Some(Ending { outcome: VoiceOutcome::Completed, reason: EndReason::MaxDuration, voicemail_left: false }));
}

#[test]
fn max_duration_forces_the_hang_up_when_the_goodbye_mark_is_late() {
    let max = 30_000;
    let mut call = Call::new(Script { max_duration: SignedDuration::from_millis(max), ..script() });
    call.feed(0, Input::Started);
    call.feed(500, Input::ProviderAmd(dialtone_core::AnsweredBy::Human));
    call.onset(1000);
    call.advance(max + 5000);
    assert_eq!(call.when(is_hangup), Some(max));
    assert_eq!(call.c.ending().unwrap().reason, EndReason::MaxDuration);
}

#[test]
fn stopped_ends_with_the_callee_hanging_up_and_nothing_after() {
    let mut call = Call::started();
    let acts = call.feed(1000, Input::Stopped);
    let ending = Ending { outcome: VoiceOutcome::NoResponse, reason: EndReason::CalleeHungUp, voicemail_left: false };
    assert_eq!(acts, [Action::Hangup(ending)]);
    assert_eq!(call.c.state(), State::Ended);
    assert_eq!(call.c.next_deadline(), None);
    for input in [Input::Started, Input::Tick, Input::Stopped, Input::Heard(Heard::Beep { at: t(2000), hz: 1000, ms: 300 }), Input::Dtmf { digit: '1' }] {
        assert!(call.c.handle(t(2000), input).is_empty());
    }
    assert_eq!(call.c.ending(), Some(ending));
    assert_eq!(call.turns(), [(Speaker::Agent, "Hi, this", 0, 1000, true)], "the greeting was cut before its mark: what had played");
}

#[test]
fn stopped_outcome_follows_what_happened() {
    let (mut call, reply) = asked();
    let m = mark_of(&call.feed(4200, Input::ReplyDelta { reply, text: "We open at nine. We close at five. ".into() }), Utterance::Reply);
    call.played(5000, &m);
    call.feed(5100, Input::Stt(SttEvent::Partial { text: "ok bye".into() }));
    let acts = call.feed(5200, Input::Stopped);
    assert_eq!(acts, [Action::Hangup(Ending { outcome: VoiceOutcome::Completed, reason: EndReason::CalleeHungUp, voicemail_left: false })]);
    let turns = call.turns();
    assert_eq!(turns[2], (Speaker::Agent, "We open at nine.", 4200, 5200, true), "only what played");
    assert_eq!(turns[3].1, "ok bye", "the unsettled words are kept");

    let mut vm = Call::started();
    vm.onset(600);
    vm.advance(9000);
    let acts = vm.feed(9500, Input::Stopped);
    assert_eq!(acts, [Action::Hangup(Ending { outcome: VoiceOutcome::Voicemail, reason: EndReason::CalleeHungUp, voicemail_left: false })]);

    let mut ringing = Call::new(script());
    assert_eq!(
        ringing.feed(0, Input::Stopped),
        [Action::Hangup(Ending { outcome: VoiceOutcome::NoResponse, reason: EndReason::CalleeHungUp, voicemail_left: false })]
    );
}

#[test]
fn the_transcript_holds_every_turn_in_order_with_times() {
    let (mut call, reply) = asked();
    let m = mark_of(&call.feed(4300, Input::ReplyDelta { reply, text: "At nine. ".into() }), Utterance::Reply);
    call.feed(4400, Input::ReplyDone { reply });
    call.played(5200, &m);
    let acts = call.callee_says(6000, 7000, "Great, thanks.");
    let reply = reply_id(&acts);
    let m = mark_of(&call.feed(7300, Input::ReplyDelta { reply, text: "You're welcome. Anything else?".into() }), Utterance::Reply);
    call.onset(7800);
    call.advance(8100);
    call.end_of_speech(8500, 700);
    call.final_text(8600, "No.");
    let _ = m;
    assert_eq!(
        call.turns(),
        [
            (Speaker::Agent, GREETING, 0, 2000, false),
            (Speaker::Callee, "When do you open?", 3000, 4000, false),
            (Speaker::Agent, "At nine.", 4300, 5200, false),
            (Speaker::Callee, "Great, thanks.", 6000, 7000, false),
            // Cut 700 ms into its first sentence, before any mark: the word that began.
            (Speaker::Agent, "You're", 7300, 8000, true),
            (Speaker::Callee, "No.", 7800, 8500, false),
        ]
    );
}

#[test]
fn a_late_driver_still_gets_every_timer_and_deadlines_stay_ahead() {
    let (mut call, _) = greeted();
    // The driver missed the 12 s deadline and ticks at 12.5 s.
    let acts = call.c.handle(t(12_500), Input::Tick);
    assert_eq!(says(&acts).iter().map(|s| s.0).collect::<Vec<_>>(), [Utterance::NoResponsePrompt]);
    assert!(call.c.next_deadline().unwrap() > t(12_500));
    // A clock running backwards is taken as the last time.
    assert!(call.c.handle(t(1000), Input::Tick).is_empty());
    assert!(call.c.next_deadline().unwrap() > t(12_500));
}

#[test]
fn blank_lines_are_not_said_and_the_conversation_still_works() {
    let mut call = Call::new(Script { greeting: " ".into(), no_response_prompt: String::new(), goodbye: String::new(), ..script() });
    assert!(call.feed(0, Input::Started).is_empty(), "no Say for a blank greeting");
    let acts = call.callee_says(1000, 2000, "Hello?");
    assert!(matches!(acts[..], [Action::FinalizeStt, Action::Reply { .. }]), "{acts:?}");
    call.feed(2200, Input::ReplyFailed { reply: reply_id(&acts) });
    // Blank prompt and goodbye: the timers still run, and the call ends.
    call.advance(100_000);
    assert_eq!(call.when(is_hangup), Some(2200 + 10_000 + 5000));
    assert!(says(&call.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>()).is_empty());
}

#[test]
fn an_agents_settings_make_its_script() {
    use dialtone_core::agent::{Agent, SpeechService};
    let agent = Agent {
        id: dialtone_core::ids::AgentId::new(),
        workspace_id: dialtone_core::ids::WorkspaceId::new(),
        name: "Dana".into(),
        greeting: GREETING.into(),
        system_prompt: "You are Dana.".into(),
        no_response_prompt: "Hello? Are you there?".into(),
        goodbye: GOODBYE.into(),
        voicemail_message: Some(VOICEMAIL.into()),
        max_duration_secs: 600,
        language: "en-US".into(),
        stt: SpeechService::default(),
        llm: SpeechService::default(),
        tts: SpeechService::default(),
        created_at: t(0),
        updated_at: t(0),
    };
    assert_eq!(Script::from_agent(&agent), script());
}

#[test]
fn long_opening_silence_is_voicemail_only_when_configured() {
    // Default: a silent line gets the no-response prompt.
    let (mut call, _) = greeted();
    call.advance(12_000);
    assert_eq!(call.when(is_say(Utterance::NoResponsePrompt)), Some(12_000));

    let timing = Timing { voicemail_opening_silence: Some(SignedDuration::from_secs(5)), ..Timing::default() };
    let mut call = Call { c: Conversation::new(script(), timing.clone()), now: 0, log: Vec::new() };
    let g = mark_of(&call.feed(0, Input::Started), Utterance::Greeting);
    call.played(2000, &g);
    call.advance(7000);
    assert_eq!(call.c.state(), State::VoicemailWait, "5 s of silence after the greeting played");
    call.advance(8500);
    assert_eq!(call.when(is_say(Utterance::Voicemail)), Some(8500));

    // Any sound from the callee's side disarms it.
    let mut call = Call { c: Conversation::new(script(), timing), now: 0, log: Vec::new() };
    let g = mark_of(&call.feed(0, Input::Started), Utterance::Greeting);
    call.played(2000, &g);
    call.onset(3000);
    call.end_of_speech(3100, 100);
    call.advance(20_000);
    assert_eq!(call.c.state(), State::Talking);
    assert_eq!(call.when(is_say(Utterance::NoResponsePrompt)), Some(13_100));
}

#[test]
fn an_onset_the_listener_confirms_after_200ms_of_voice_clears_at_once() {
    let (mut call, reply) = asked();
    call.feed(4200, Input::ReplyDelta { reply, text: "We open at nine. ".into() });
    // Voice from 5000; the listener reports it at 5220 (200 ms of voice plus a 20 ms frame).
    let acts = call.feed(5220, Input::Heard(Heard::SpeechStarted { at: t(5000) }));
    assert_eq!(acts, [Action::Clear, Action::CancelReply { reply }]);
    // Its end comes after the listener's 700 ms endpointing silence.
    let acts = call.feed(6500, Input::Heard(Heard::SpeechEnded { at: t(5800), speech_ms: 800 }));
    assert_eq!(acts, [Action::FinalizeStt]);
    let heard = call.final_text(6600, "Wait, what?");
    assert!(matches!(heard[..], [Action::Reply { .. }]), "{heard:?}");
    assert_eq!(call.turns().last().unwrap(), &(Speaker::Callee, "Wait, what?", 5000, 5800, false));
}
