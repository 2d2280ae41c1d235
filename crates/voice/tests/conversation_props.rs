//! Properties of the conversation over random input sequences on a virtual clock: it never
//! panics, says nothing after hanging up or of a cancelled reply after `Clear`, ends exactly
//! once, and its next deadline is always ahead of the last time it handled.

use dialtone_core::AnsweredBy;
use dialtone_voice::conversation::{Action, Conversation, Input, Script, Timing, Utterance};
use dialtone_voice::listen::Heard;
use dialtone_voice::speech::SttEvent;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use std::collections::HashSet;

#[derive(Debug, Clone)]
enum Op {
    Started,
    Stopped,
    Tick,
    Onset { back_ms: u16 },
    End { back_ms: u16, speech_ms: u16 },
    Beep { back_ms: u16 },
    Partial,
    Final { text: &'static str, speech_final: bool },
    Delta { sel: u8, text: &'static str },
    Done { sel: u8 },
    Failed { sel: u8 },
    Mark { sel: u8 },
    Dtmf,
    Amd(u8),
}

const TEXTS: &[&str] = &["", " ", "Hello?", "Yes. ", "We open at 9.30. We close", " at five! ", "ok", "?\n", "Grüß dich… "];

fn op() -> impl Strategy<Value = Op> {
    let text = prop::sample::select(TEXTS);
    prop_oneof![
        1 => Just(Op::Started),
        1 => Just(Op::Stopped),
        4 => Just(Op::Tick),
        4 => (0u16..800).prop_map(|back_ms| Op::Onset { back_ms }),
        4 => (0u16..800, 0u16..3000).prop_map(|(back_ms, speech_ms)| Op::End { back_ms, speech_ms }),
        1 => (0u16..800).prop_map(|back_ms| Op::Beep { back_ms }),
        1 => Just(Op::Partial),
        3 => (text.clone(), any::<bool>()).prop_map(|(text, speech_final)| Op::Final { text, speech_final }),
        5 => (any::<u8>(), text).prop_map(|(sel, text)| Op::Delta { sel, text }),
        2 => any::<u8>().prop_map(|sel| Op::Done { sel }),
        1 => any::<u8>().prop_map(|sel| Op::Failed { sel }),
        5 => any::<u8>().prop_map(|sel| Op::Mark { sel }),
        1 => Just(Op::Dtmf),
        1 => (0u8..3).prop_map(Op::Amd),
    ]
}

/// One step: time passes (`advance_ms`), the driver ticks at the deadlines on the way
/// (`ticks`), then `op` happens.
fn steps() -> impl Strategy<Value = Vec<(u16, bool, Op)>> {
    // Mostly short gaps (a conversation's pace), sometimes long ones (timers).
    let gap = prop_oneof![3 => 0u16..400, 1 => 0u16..15_000];
    let step = (gap, prop::bool::weighted(0.8), op());
    // Most runs start the stream first, so they get past the greeting.
    (any::<bool>(), prop::collection::vec(step, 1..200)).prop_map(|(start, mut steps)| {
        if start {
            steps.insert(0, (0, true, Op::Started));
        }
        steps
    })
}

fn script(max_s: u8, voicemail: bool) -> Script {
    Script {
        greeting: "Hi, this is Dana.".into(),
        system_prompt: "Be brief.".into(),
        no_response_prompt: "Are you there?".into(),
        goodbye: "Goodbye.".into(),
        voicemail_message: voicemail.then(|| "Call us back.".into()),
        max_duration: SignedDuration::from_secs(i64::from(max_s)),
    }
}

/// What the checker knows of the conversation from its actions.
#[derive(Default)]
struct Seen {
    marks: Vec<String>,
    replies: Vec<u64>,
    cancelled: HashSet<u64>,
    /// A `Reply` was requested since the last `Clear`: only then may reply sentences be said.
    reply_since_clear: bool,
    hangups: usize,
}

impl Seen {
    fn check(&mut self, c: &Conversation, now: Timestamp, acts: &[Action], ended_before: bool) -> Result<(), TestCaseError> {
        if ended_before {
            prop_assert!(acts.is_empty(), "actions after the ending: {:?}", acts);
        }
        for (i, a) in acts.iter().enumerate() {
            match a {
                Action::Say { mark, kind, .. } => {
                    prop_assert!(!self.marks.contains(mark), "mark {} used twice", mark);
                    self.marks.push(mark.clone());
                    if *kind == Utterance::Reply {
                        prop_assert!(self.reply_since_clear, "a reply sentence after Clear with no new reply: {:?}", acts);
                    }
                }
                Action::Reply { reply, request } => {
                    prop_assert!(!self.replies.contains(reply));
                    prop_assert_eq!(request.messages[0].role.as_str(), "system");
                    self.replies.push(*reply);
                    self.reply_since_clear = true;
                }
                Action::CancelReply { reply } => {
                    self.cancelled.insert(*reply);
                }
                Action::Clear => self.reply_since_clear = false,
                Action::FinalizeStt => {}
                Action::Hangup(ending) => {
                    self.hangups += 1;
                    prop_assert_eq!(self.hangups, 1, "hung up twice");
                    prop_assert_eq!(i, acts.len() - 1, "Hangup is not the last action: {:?}", acts);
                    prop_assert_eq!(c.ending(), Some(*ending));
                }
            }
        }
        prop_assert_eq!(c.ending().is_some(), self.hangups == 1, "ending and Hangup disagree");
        if let Some(d) = c.next_deadline() {
            prop_assert!(d > now, "deadline {} not after {}", d, now);
        }
        let turns = c.transcript();
        prop_assert!(turns.windows(2).all(|w| w[0].started_at <= w[1].started_at), "transcript out of order");
        prop_assert!(turns.iter().all(|t| t.started_at <= t.ended_at), "a turn ends before it starts");
        Ok(())
    }
}

fn pick<T: Clone>(items: &[T], sel: u8, bogus: T) -> T {
    let i = usize::from(sel) % (items.len() + 1);
    items.get(i).cloned().unwrap_or(bogus)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_inputs_keep_the_conversation_sound(steps in steps(), max_s in 1u8..90, voicemail in any::<bool>(), silence in any::<bool>()) {
        let timing = Timing { voicemail_opening_silence: silence.then(|| SignedDuration::from_secs(5)), ..Timing::default() };
        let mut c = Conversation::new(script(max_s, voicemail), timing);
        let mut seen = Seen::default();
        let mut now = Timestamp::from_second(1_800_000_000).unwrap();
        for (advance_ms, ticks, op) in steps {
            let to = now.saturating_add(SignedDuration::from_millis(i64::from(advance_ms))).unwrap();
            if ticks {
                while let Some(d) = c.next_deadline().filter(|d| *d <= to) {
                    let ended = c.ending().is_some();
                    let acts = c.handle(d, Input::Tick);
                    seen.check(&c, d, &acts, ended)?;
                }
            }
            now = to;
            let back = |ms: u16| now.saturating_sub(SignedDuration::from_millis(i64::from(ms))).unwrap();
            let input = match op {
                Op::Started => Input::Started,
                Op::Stopped => Input::Stopped,
                Op::Tick => Input::Tick,
                Op::Onset { back_ms } => Input::Heard(Heard::SpeechStarted { at: back(back_ms) }),
                Op::End { back_ms, speech_ms } => Input::Heard(Heard::SpeechEnded { at: back(back_ms), speech_ms: u64::from(speech_ms) }),
                Op::Beep { back_ms } => Input::Heard(Heard::Beep { at: back(back_ms), hz: 1000, ms: 300 }),
                Op::Partial => Input::Stt(SttEvent::Partial { text: "so".into() }),
                Op::Final { text, speech_final } => Input::Stt(SttEvent::Final { text: text.into(), speech_final }),
                Op::Delta { sel, text } => Input::ReplyDelta { reply: pick(&seen.replies, sel, 999), text: text.into() },
                Op::Done { sel } => Input::ReplyDone { reply: pick(&seen.replies, sel, 999) },
                Op::Failed { sel } => Input::ReplyFailed { reply: pick(&seen.replies, sel, 999) },
                Op::Mark { sel } => Input::MarkPlayed { mark: pick(&seen.marks, sel, "nope".to_string()) },
                Op::Dtmf => Input::Dtmf { digit: '1' },
                Op::Amd(v) => Input::ProviderAmd([AnsweredBy::Human, AnsweredBy::Machine, AnsweredBy::Unknown][usize::from(v)]),
            };
            let stale_reply = match &input {
                Input::ReplyDelta { reply, .. } | Input::ReplyDone { reply } => seen.cancelled.contains(reply),
                _ => false,
            };
            let ended = c.ending().is_some();
            let acts = c.handle(now, input);
            if stale_reply {
                // Only reply sentences count: handling any input first runs overdue timers, so a
                // goodbye (max duration) or a prompt may rightly come out of the same call.
                prop_assert!(
                    !acts.iter().any(|a| matches!(a, Action::Say { kind: Utterance::Reply, .. })),
                    "a cancelled reply was said: {:?}",
                    acts
                );
            }
            seen.check(&c, now, &acts, ended)?;
        }
        // A driver that keeps ticking always reaches the ending once started (max_duration).
        if c.state() != dialtone_voice::conversation::State::Ringing {
            let mut guard = 0;
            while let Some(d) = c.next_deadline() {
                let ended = c.ending().is_some();
                let acts = c.handle(d, Input::Tick);
                seen.check(&c, d, &acts, ended)?;
                guard += 1;
                prop_assert!(guard < 1000, "ticking never ends the call");
            }
            prop_assert!(c.ending().is_some(), "no deadline left but not ended");
        }
    }
}
