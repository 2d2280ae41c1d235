//! Scripted callees: who answers a media-stream call, made from the committed clips in
//! `fixtures/voice/` (raw G.711 μ-law, 8 kHz, mono, no header; `clips.json` has their text).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// One of the scripted people (or machines) that answer a media-stream call.
///
/// Selection, first match wins: [`crate::SimConfig::callees`] for the dialled number; a call
/// whose planned outcome is voicemail gets [`Callee::Voicemail`]; otherwise the dialled
/// number's last digit: `0`–`3` and `9` human, `4` talks_first, `5` silent, `6` voicemail,
/// `7` barge_in, `8` hangs_up_early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Callee {
    /// Waits for our greeting to finish playing, says `yes_speaking`; after our reply asks
    /// `question`; after our answer says `thanks_bye`; hangs up once our goodbye has played
    /// (or 10 s after `thanks_bye`).
    Human,
    /// Says `hello` right after `start`, then `question` and `thanks_bye` after our turns.
    TalksFirst,
    /// Never speaks; hangs up only at the sim's 15-minute cap.
    Silent,
    /// Plays `voicemail_beep` (a 13 s greeting, then a beep), then records: a message is
    /// left when ≥ 1 s of non-silent audio arrives after the beep. Hangs up 30 s after the beep.
    Voicemail,
    /// Starts `interrupt` 1 s into our greeting's playback, then says `thanks_bye` after our
    /// next turn and hangs up like [`Callee::Human`].
    BargeIn,
    /// Hangs up 2 s after `start`, without a word.
    HangsUpEarly,
}

impl Callee {
    pub const ALL: [Callee; 6] = [Callee::Human, Callee::TalksFirst, Callee::Silent, Callee::Voicemail, Callee::BargeIn, Callee::HangsUpEarly];

    pub fn as_str(self) -> &'static str {
        match self {
            Callee::Human => "human",
            Callee::TalksFirst => "talks_first",
            Callee::Silent => "silent",
            Callee::Voicemail => "voicemail",
            Callee::BargeIn => "barge_in",
            Callee::HangsUpEarly => "hangs_up_early",
        }
    }

    /// The callee a number gets by its last digit (see [`Callee`]).
    pub fn by_last_digit(number: &str) -> Callee {
        match number.bytes().last() {
            Some(b'4') => Callee::TalksFirst,
            Some(b'5') => Callee::Silent,
            Some(b'6') => Callee::Voicemail,
            Some(b'7') => Callee::BargeIn,
            Some(b'8') => Callee::HangsUpEarly,
            _ => Callee::Human,
        }
    }

    /// A number ending in the digit that selects `self` (for demos and tests):
    /// `prefix` followed by that digit.
    pub fn number_with_prefix(self, prefix: &str) -> String {
        let digit = match self {
            Callee::Human => '1',
            Callee::TalksFirst => '4',
            Callee::Silent => '5',
            Callee::Voicemail => '6',
            Callee::BargeIn => '7',
            Callee::HangsUpEarly => '8',
        };
        format!("{prefix}{digit}")
    }

    /// The steps this callee walks through.
    pub(crate) fn script(self) -> Vec<Step> {
        use Step::*;
        let closing = [WaitTurnEnd { timeout_ms: 15_000 }, Say(Clip::ThanksBye), WaitTurnEnd { timeout_ms: 10_000 }, Hangup];
        let mut steps = match self {
            Callee::Human => vec![WaitTurnEnd { timeout_ms: 5_000 }, Say(Clip::YesSpeaking), WaitTurnEnd { timeout_ms: 15_000 }, Say(Clip::Question)],
            Callee::TalksFirst => vec![Say(Clip::Hello), WaitTurnEnd { timeout_ms: 15_000 }, Say(Clip::Question)],
            Callee::BargeIn => vec![WaitOurSpeech { after_ms: 1_000, timeout_ms: 10_000 }, Say(Clip::Interrupt)],
            Callee::Silent => return vec![Idle],
            Callee::Voicemail => return vec![Say(Clip::VoicemailBeep), Record { ms: 30_000 }, Hangup],
            Callee::HangsUpEarly => return vec![Wait { ms: 2_000 }, Hangup],
        };
        steps.extend(closing);
        steps
    }
}

impl FromStr for Callee {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Callee::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| format!("unknown callee `{s}` (human, talks_first, silent, voicemail, barge_in, hangs_up_early)"))
    }
}

/// One step of a callee's script, run on the session's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Until our audio has played and then been quiet for [`TURN_GAP_MS`] (nothing left
    /// queued), or `timeout_ms` after the step began, whichever is first.
    WaitTurnEnd {
        timeout_ms: u64,
    },
    /// Until `after_ms` after our first non-silent audio played since the step began
    /// (or `timeout_ms`).
    WaitOurSpeech {
        after_ms: u64,
        timeout_ms: u64,
    },
    /// Plays a clip to the end.
    Say(Clip),
    Wait {
        ms: u64,
    },
    /// Listens for a message for `ms` (voicemail).
    Record {
        ms: u64,
    },
    /// Ends the call from the callee's side.
    Hangup,
    /// Nothing more, until the call ends some other way.
    Idle,
}

/// How long our audio must have been quiet before a callee takes its turn, in ms.
pub(crate) const TURN_GAP_MS: u64 = 400;

/// The committed fixtures this module plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Clip {
    Hello,
    YesSpeaking,
    Question,
    ThanksBye,
    Interrupt,
    VoicemailBeep,
}

/// A clip's μ-law bytes and where its speech starts and ends.
pub(crate) struct ClipAudio {
    pub name: &'static str,
    /// Raw μ-law, 8,000 bytes a second.
    pub ulaw: &'static [u8],
    /// First and last-plus-one non-silent 20 ms frame, in ms from the clip's start.
    pub voice_start_ms: u64,
    pub voice_end_ms: u64,
}

impl Clip {
    pub(crate) fn audio(self) -> &'static ClipAudio {
        static CLIPS: OnceLock<HashMap<Clip, ClipAudio>> = OnceLock::new();
        let clips = CLIPS.get_or_init(|| {
            let all = [
                (Clip::Hello, "hello"),
                (Clip::YesSpeaking, "yes_speaking"),
                (Clip::Question, "question"),
                (Clip::ThanksBye, "thanks_bye"),
                (Clip::Interrupt, "interrupt"),
                (Clip::VoicemailBeep, "voicemail_beep"),
            ];
            all.into_iter()
                .map(|(clip, name)| {
                    let ulaw = crate::fixtures::ulaw(name);
                    let voiced: Vec<usize> = ulaw.chunks(160).enumerate().filter(|(_, f)| voiced_ulaw(f)).map(|(i, _)| i).collect();
                    let voice_start_ms = voiced.first().map_or(0, |i| *i as u64 * 20);
                    let voice_end_ms = voiced.last().map_or(0, |i| (*i as u64 + 1) * 20).min(ulaw.len() as u64 / 8);
                    (clip, ClipAudio { name, ulaw, voice_start_ms, voice_end_ms })
                })
                .collect()
        });
        &clips[&self]
    }
}

/// RMS above this (of 16-bit samples, ≈ −44 dBFS) makes a frame non-silent.
pub(crate) const VOICE_RMS: f64 = 200.0;

pub(crate) fn voiced_pcm(samples: &[i16]) -> bool {
    if samples.is_empty() {
        return false;
    }
    let energy: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    (energy / samples.len() as f64).sqrt() > VOICE_RMS
}

pub(crate) fn voiced_ulaw(bytes: &[u8]) -> bool {
    let samples: Vec<i16> = bytes.iter().map(|b| audio_codec_algorithms::decode_ulaw(*b)).collect();
    voiced_pcm(&samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_have_speech_inside_them() {
        for clip in [Clip::Hello, Clip::YesSpeaking, Clip::Question, Clip::ThanksBye, Clip::Interrupt, Clip::VoicemailBeep] {
            let a = clip.audio();
            let len_ms = a.ulaw.len() as u64 / 8;
            assert!(a.voice_start_ms < a.voice_end_ms && a.voice_end_ms <= len_ms, "{}: {}..{} of {len_ms}", a.name, a.voice_start_ms, a.voice_end_ms);
        }
        // The voicemail greeting ends with its beep at 13.02 s (clips.json).
        assert!(Clip::VoicemailBeep.audio().voice_end_ms > 13_020);
        assert!(!voiced_ulaw(&[0xFF; 160]) && !voiced_ulaw(&[0x7F; 160]));
    }

    #[test]
    fn selection_by_last_digit_round_trips() {
        for callee in Callee::ALL {
            assert_eq!(Callee::by_last_digit(&callee.number_with_prefix("+1415555000")), callee);
            assert_eq!(callee.as_str().parse::<Callee>(), Ok(callee));
        }
        assert_eq!(Callee::by_last_digit("+14155550000"), Callee::Human);
        assert!("robot".parse::<Callee>().is_err());
    }
}
