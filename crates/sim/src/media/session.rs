//! One media stream from the provider's side, without I/O: the frames the provider sends,
//! a virtual speaker playing dialtone's audio in real time, the callee's script, and the
//! record of what was heard. Driven by [`Session::tick`] every 20 ms and [`Session::on_text`]
//! for each message from dialtone, both given the session's clock in ms since `start`.
//!
//! Wire formats (VOICE.md §1): Exotel AgentStream (JSON text frames, `stream_sid`, PCM16 LE
//! 8 kHz, ~100 ms inbound chunks) and Twilio Media Streams (`streamSid`, μ-law 8 kHz, 20 ms
//! frames, string sequence numbers).

use std::collections::{BTreeMap, VecDeque};

use base64::Engine as _;
use serde_json::{json, Value};

use super::callee::{voiced_pcm, Callee, Clip, Step, TURN_GAP_MS};
use crate::stats::MediaCallRecord;

/// The tick: 20 ms of audio, 160 samples at 8 kHz.
pub(crate) const TICK_MS: u64 = 20;
const TICK_SAMPLES: usize = 160;
/// Exotel sends ~100 ms chunks: five ticks.
const EXOTEL_TICKS_PER_CHUNK: usize = 5;
/// How much non-silent audio after the beep makes a voicemail message, in ms.
const MESSAGE_MS: u64 = 1_000;
/// The callee gives up on a call that goes on this long, in ms.
pub(crate) const CALLEE_CAP_MS: u64 = 15 * 60 * 1_000;
const MAX_VIOLATIONS_KEPT: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    Exotel,
    Twilio,
}

impl Wire {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Wire::Exotel => "exotel",
            Wire::Twilio => "twilio",
        }
    }
}

/// Where and how to open a call's media stream, taken from the create-call request.
#[derive(Clone, Debug)]
pub(crate) struct StreamSpec {
    pub wire: Wire,
    /// `ws://…` or `wss://…`, as given.
    pub url: String,
    /// Exotel: the StreamUrl's query parameters (at most 3, as Exotel echoes); Twilio: the
    /// `<Parameter>`s of `<Stream>`.
    pub custom_parameters: Vec<(String, String)>,
    pub account_sid: String,
    /// The dialled number (the callee).
    pub number: String,
    /// The caller line.
    pub caller: String,
}

/// Who ended the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HungUpBy {
    Callee,
    Dialtone,
    Sim,
    Error,
}

impl HungUpBy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HungUpBy::Callee => "callee",
            HungUpBy::Dialtone => "dialtone",
            HungUpBy::Sim => "sim",
            HungUpBy::Error => "error",
        }
    }
}

enum Queued {
    /// Samples not yet played, from `pos`.
    Audio {
        samples: Vec<i16>,
        pos: usize,
    },
    Mark(String),
}

/// What a tick produced: messages to send, and whether the callee hangs up now.
#[derive(Debug, Default)]
pub(crate) struct TickOut {
    pub messages: Vec<String>,
    pub hangup: bool,
}

pub(crate) struct Session {
    wire: Wire,
    call_sid: String,
    account_sid: String,
    stream_sid: String,
    seq: u64,
    chunk: u64,
    /// ms of callee audio sent so far (the `timestamp` of the next frame).
    sent_ms: u64,
    script: Vec<Step>,
    step: usize,
    step_began: u64,
    /// The clip being said and the next byte of it.
    speaking: Option<(Clip, usize)>,
    /// Exotel: μ-law bytes waiting to make up a 100 ms chunk.
    pending_out: Vec<u8>,
    queue: VecDeque<Queued>,
    /// Last time non-silent audio of ours played.
    last_voice_played: Option<u64>,
    /// First time non-silent audio of ours played after the current step began.
    first_voice_in_step: Option<u64>,
    /// When the callee's last utterance's speech ended (0 before it spoke).
    callee_spoke_until: u64,
    /// When the speaker ran out of audio it was playing.
    dry_since: Option<u64>,
    /// Reply latency armed: the end of the callee's speech it counts from.
    reply_from: Option<u64>,
    barge_onset: Option<u64>,
    /// Voicemail: end of the greeting (the beep), and voiced ms heard since.
    beep_end: Option<u64>,
    voiced_after_beep_ms: u64,
    /// Exotel: a chunk under 3,200 B waiting to see whether a mark follows it.
    short_chunk: Option<u32>,
    record: MediaCallRecord,
}

impl Session {
    pub(crate) fn new(spec: &StreamSpec, call_sid: &str, stream_sid: String, callee: Callee) -> Self {
        let record = MediaCallRecord {
            call_sid: call_sid.to_string(),
            provider: spec.wire.as_str().into(),
            callee: callee.as_str().into(),
            number: spec.number.clone(),
            stream_sid: stream_sid.clone(),
            connected: true,
            custom_parameters: spec.custom_parameters.iter().cloned().collect::<BTreeMap<_, _>>(),
            ..MediaCallRecord::default()
        };
        Self {
            wire: spec.wire,
            call_sid: call_sid.to_string(),
            account_sid: spec.account_sid.clone(),
            stream_sid,
            seq: 0,
            chunk: 0,
            sent_ms: 0,
            script: callee.script(),
            step: 0,
            step_began: 0,
            speaking: None,
            pending_out: Vec::with_capacity(TICK_SAMPLES * EXOTEL_TICKS_PER_CHUNK),
            queue: VecDeque::new(),
            last_voice_played: None,
            first_voice_in_step: None,
            callee_spoke_until: 0,
            dry_since: None,
            reply_from: None,
            barge_onset: None,
            beep_end: None,
            voiced_after_beep_ms: 0,
            short_chunk: None,
            record,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// `connected` then `start`, sent as soon as the socket opens; the session clock's 0 is
    /// when they are sent.
    pub(crate) fn opening(&mut self, from: &str, to: &str) -> Vec<String> {
        let params: serde_json::Map<String, Value> = self.record.custom_parameters.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let seq = self.next_seq();
        match self.wire {
            Wire::Exotel => vec![
                json!({"event": "connected"}).to_string(),
                json!({
                    "event": "start",
                    "sequence_number": seq,
                    "stream_sid": self.stream_sid,
                    "start": {
                        "stream_sid": self.stream_sid,
                        "call_sid": self.call_sid,
                        "account_sid": self.account_sid,
                        "from": from,
                        "to": to,
                        "custom_parameters": params,
                        "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
                    },
                })
                .to_string(),
            ],
            Wire::Twilio => vec![
                json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
                json!({
                    "event": "start",
                    "sequenceNumber": seq.to_string(),
                    "streamSid": self.stream_sid,
                    "start": {
                        "streamSid": self.stream_sid,
                        "accountSid": self.account_sid,
                        "callSid": self.call_sid,
                        "tracks": ["inbound"],
                        "customParameters": params,
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    },
                })
                .to_string(),
            ],
        }
    }

    /// `stop`, sent when the callee hangs up (or the call ended otherwise).
    pub(crate) fn stop(&mut self) -> String {
        let seq = self.next_seq();
        match self.wire {
            Wire::Exotel => json!({
                "event": "stop",
                "sequence_number": seq,
                "stream_sid": self.stream_sid,
                "stop": {"call_sid": self.call_sid, "account_sid": self.account_sid, "reason": "callended"},
            })
            .to_string(),
            Wire::Twilio => json!({
                "event": "stop",
                "sequenceNumber": seq.to_string(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            })
            .to_string(),
        }
    }

    fn mark_message(&mut self, name: &str) -> String {
        self.record.marks_echoed.push(name.to_string());
        let seq = self.next_seq();
        match self.wire {
            Wire::Exotel => json!({"event": "mark", "sequence_number": seq, "stream_sid": self.stream_sid, "mark": {"name": name}}).to_string(),
            Wire::Twilio => json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": self.stream_sid, "mark": {"name": name}}).to_string(),
        }
    }

    fn media_message(&mut self, ulaw: &[u8]) -> String {
        let seq = self.next_seq();
        self.chunk += 1;
        let timestamp = self.sent_ms;
        self.sent_ms += ulaw.len() as u64 / 8;
        self.record.frames_sent += 1;
        let b64 = base64::engine::general_purpose::STANDARD;
        match self.wire {
            Wire::Exotel => {
                let pcm: Vec<u8> = ulaw.iter().flat_map(|b| audio_codec_algorithms::decode_ulaw(*b).to_le_bytes()).collect();
                json!({
                    "event": "media",
                    "sequence_number": seq,
                    "stream_sid": self.stream_sid,
                    "media": {"chunk": self.chunk, "timestamp": timestamp.to_string(), "payload": b64.encode(pcm)},
                })
                .to_string()
            }
            Wire::Twilio => json!({
                "event": "media",
                "sequenceNumber": seq.to_string(),
                "streamSid": self.stream_sid,
                "media": {"track": "inbound", "chunk": self.chunk.to_string(), "timestamp": timestamp.to_string(), "payload": b64.encode(ulaw)},
            })
            .to_string(),
        }
    }

    /// A message from dialtone at `now` ms; returns messages to send back at once (Twilio
    /// returns pending marks on `clear`). Never fails: what it cannot read it counts in
    /// `bad_messages`.
    pub(crate) fn on_text(&mut self, now: u64, text: &str) -> Vec<String> {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            self.record.bad_messages += 1;
            return Vec::new();
        };
        match msg["event"].as_str() {
            Some("media") => {
                let payload = msg["media"]["payload"].as_str().and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok());
                match payload {
                    Some(bytes) => self.on_media(now, &bytes),
                    None => self.record.bad_messages += 1,
                }
                Vec::new()
            }
            Some("mark") => {
                self.settle_short_chunk();
                self.record.marks_received += 1;
                let name = msg["mark"]["name"].as_str().unwrap_or_default().to_string();
                self.queue.push_back(Queued::Mark(name));
                Vec::new()
            }
            Some("clear") => self.on_clear(now),
            _ => {
                self.record.bad_messages += 1;
                Vec::new()
            }
        }
    }

    /// A message that was not text JSON (e.g. a binary frame).
    pub(crate) fn bad_message(&mut self) {
        self.record.bad_messages += 1;
    }

    fn violation(&mut self, size: u32) {
        self.record.chunk_size_violations += 1;
        if self.record.violation_sizes.len() < MAX_VIOLATIONS_KEPT {
            self.record.violation_sizes.push(size);
        }
    }

    /// A short Exotel chunk is fine when a mark, `clear` or the end follows it.
    fn settle_short_chunk(&mut self) {
        self.short_chunk = None;
    }

    fn on_media(&mut self, now: u64, bytes: &[u8]) {
        let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.record.chunks += 1;
        *self.record.chunk_sizes.entry(size).or_insert(0) += 1;
        let samples: Vec<i16> = match self.wire {
            Wire::Exotel => {
                if let Some(short) = self.short_chunk.take() {
                    self.violation(short);
                }
                if !size.is_multiple_of(320) || size > 100_000 {
                    self.violation(size);
                } else if size < 3_200 {
                    self.short_chunk = Some(size);
                }
                bytes.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect()
            }
            Wire::Twilio => {
                if size != 160 {
                    self.violation(size);
                }
                bytes.iter().map(|b| audio_codec_algorithms::decode_ulaw(*b)).collect()
            }
        };
        if samples.is_empty() {
            return;
        }
        self.record.audio_received_ms += samples.len() as u64 / 8;
        let voiced_ms: u64 = samples.chunks(TICK_SAMPLES).filter(|f| voiced_pcm(f)).map(|f| f.len() as u64 / 8).sum();
        self.record.voiced_received_ms += voiced_ms;
        if voiced_ms > 0 {
            self.record.greeting_latency_ms.get_or_insert(now);
            if let Some(from) = self.reply_from.filter(|from| now >= *from) {
                self.record.reply_latencies_ms.push(now - from);
                self.reply_from = None;
            }
            if self.beep_end.is_some_and(|end| now >= end) {
                self.voiced_after_beep_ms += voiced_ms;
            }
        }
        if !self.has_audio_queued() {
            if let Some(dry) = self.dry_since.take() {
                let gap = now.saturating_sub(dry);
                if gap <= 1_000 {
                    self.record.playout_gap_max_ms = self.record.playout_gap_max_ms.max(gap);
                    self.record.playout_gaps += u64::from(gap > 2 * TICK_MS);
                }
            }
        }
        self.queue.push_back(Queued::Audio { samples, pos: 0 });
    }

    fn on_clear(&mut self, now: u64) -> Vec<String> {
        self.settle_short_chunk();
        self.record.clears += 1;
        if self.record.clear_latency_ms.is_none() {
            if let Some(onset) = self.barge_onset.filter(|onset| now >= *onset) {
                self.record.clear_latency_ms = Some(now - onset);
            }
        }
        let flushed: Vec<Queued> = self.queue.drain(..).collect();
        self.dry_since = None;
        match self.wire {
            // Twilio sends back the marks the clear removed.
            Wire::Twilio => flushed
                .into_iter()
                .filter_map(|q| match q {
                    Queued::Mark(name) => Some(name),
                    Queued::Audio { .. } => None,
                })
                .map(|name| self.mark_message(&name))
                .collect(),
            Wire::Exotel => Vec::new(),
        }
    }

    fn has_audio_queued(&self) -> bool {
        self.queue.iter().any(|q| matches!(q, Queued::Audio { .. }))
    }

    /// Plays one tick of the speaker, walks the script and sends the callee's audio. Call
    /// every [`TICK_MS`]; `now` is the tick's time.
    pub(crate) fn tick(&mut self, now: u64) -> TickOut {
        let mut out = TickOut::default();
        self.play(now, &mut out.messages);
        out.hangup = self.walk(now) || now >= CALLEE_CAP_MS;
        if !out.hangup {
            self.speak(&mut out.messages);
        }
        out
    }

    fn play(&mut self, now: u64, messages: &mut Vec<String>) {
        let mut budget = TICK_SAMPLES;
        let mut played: Vec<i16> = Vec::new();
        let had_audio = self.has_audio_queued();
        loop {
            match self.queue.front_mut() {
                Some(Queued::Mark(_)) => {
                    if let Some(Queued::Mark(name)) = self.queue.pop_front() {
                        let msg = self.mark_message(&name);
                        messages.push(msg);
                    }
                }
                Some(Queued::Audio { samples, pos }) if budget > 0 => {
                    let take = budget.min(samples.len() - *pos);
                    played.extend_from_slice(&samples[*pos..*pos + take]);
                    *pos += take;
                    budget -= take;
                    if *pos == samples.len() {
                        self.queue.pop_front();
                    }
                }
                _ => break,
            }
        }
        if voiced_pcm(&played) {
            self.last_voice_played = Some(now);
            self.first_voice_in_step.get_or_insert(now);
        }
        if had_audio && !self.has_audio_queued() {
            self.dry_since = Some(now + TICK_MS);
        }
    }

    fn begin_step(&mut self, now: u64) {
        self.step += 1;
        self.step_began = now;
        self.first_voice_in_step = None;
    }

    /// Runs the script at `now`; true when the callee hangs up.
    fn walk(&mut self, now: u64) -> bool {
        loop {
            let Some(step) = self.script.get(self.step).copied() else { return false };
            let elapsed = now.saturating_sub(self.step_began);
            let done = match step {
                Step::WaitTurnEnd { timeout_ms } => {
                    let replied = self.last_voice_played.is_some_and(|t| t >= self.callee_spoke_until && now >= t + TURN_GAP_MS);
                    (replied && !self.has_audio_queued()) || elapsed >= timeout_ms
                }
                Step::WaitOurSpeech { after_ms, timeout_ms } => self.first_voice_in_step.is_some_and(|t| now >= t + after_ms) || elapsed >= timeout_ms,
                Step::Say(clip) => match self.speaking {
                    Some((playing, pos)) if playing == clip => pos >= clip.audio().ulaw.len(),
                    _ => {
                        self.start_clip(now, clip);
                        false
                    }
                },
                Step::Wait { ms } | Step::Record { ms } => elapsed >= ms,
                Step::Hangup => return true,
                Step::Idle => false,
            };
            if !done {
                return false;
            }
            if matches!(step, Step::Say(_)) {
                self.speaking = None;
            }
            self.begin_step(now);
        }
    }

    fn start_clip(&mut self, now: u64, clip: Clip) {
        let audio = clip.audio();
        self.speaking = Some((clip, 0));
        self.record.clips_played.push(audio.name.to_string());
        // This tick's frame carries the clip's first 20 ms.
        match clip {
            Clip::VoicemailBeep => {
                self.beep_end = Some(now + audio.ulaw.len() as u64 / 8);
                self.record.voicemail_left = Some(false);
            }
            _ => {
                self.callee_spoke_until = now + audio.voice_end_ms;
                self.reply_from = Some(now + audio.voice_end_ms);
                if clip == Clip::Interrupt {
                    self.barge_onset = Some(now + audio.voice_start_ms);
                }
            }
        }
    }

    /// The callee's next 20 ms: the clip it is saying, or silence (μ-law 0xFF).
    fn speak(&mut self, messages: &mut Vec<String>) {
        let mut frame = [0xFFu8; TICK_SAMPLES];
        if let Some((clip, pos)) = &mut self.speaking {
            let ulaw = clip.audio().ulaw;
            let take = TICK_SAMPLES.min(ulaw.len() - *pos);
            frame[..take].copy_from_slice(&ulaw[*pos..*pos + take]);
            *pos += take;
        }
        match self.wire {
            Wire::Twilio => {
                let msg = self.media_message(&frame);
                messages.push(msg);
            }
            Wire::Exotel => {
                self.pending_out.extend_from_slice(&frame);
                if self.pending_out.len() >= TICK_SAMPLES * EXOTEL_TICKS_PER_CHUNK {
                    let chunk = std::mem::take(&mut self.pending_out);
                    let msg = self.media_message(&chunk);
                    messages.push(msg);
                }
            }
        }
    }

    /// The record, once the session is over.
    pub(crate) fn finish(mut self, now: u64, by: HungUpBy) -> MediaCallRecord {
        self.settle_short_chunk();
        if self.record.voicemail_left.is_some() {
            self.record.voicemail_left = Some(self.voiced_after_beep_ms >= MESSAGE_MS);
        }
        self.record.hung_up_by = Some(by.as_str().into());
        self.record.duration_ms = now;
        self.record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(wire: Wire) -> StreamSpec {
        StreamSpec {
            wire,
            url: "ws://127.0.0.1:1/voice".into(),
            custom_parameters: vec![("call".into(), "call_1".into())],
            account_sid: "acc".into(),
            number: "+14155550001".into(),
            caller: "+14155550100".into(),
        }
    }

    fn tone_pcm(ms: u64) -> Vec<i16> {
        (0..ms * 8).map(|i| if (i / 8) % 2 == 0 { 3_000 } else { -3_000 }).collect()
    }

    /// `ms` of loud audio as dialtone would send it on `wire`, in one message.
    fn media(wire: Wire, ms: u64) -> String {
        let pcm = tone_pcm(ms);
        let bytes: Vec<u8> = match wire {
            Wire::Exotel => pcm.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Wire::Twilio => pcm.iter().map(|s| audio_codec_algorithms::encode_ulaw(*s)).collect(),
        };
        let key = if wire == Wire::Exotel { "stream_sid" } else { "streamSid" };
        json!({"event": "media", key: "S1", "media": {"payload": base64::engine::general_purpose::STANDARD.encode(bytes)}}).to_string()
    }

    /// `ms` of loud audio in the provider's frame size: Twilio 20 ms frames, Exotel one chunk.
    fn say(s: &mut Session, now: u64, wire: Wire, ms: u64) {
        match wire {
            Wire::Exotel => {
                s.on_text(now, &media(wire, ms));
            }
            Wire::Twilio => {
                for _ in 0..ms / 20 {
                    s.on_text(now, &media(wire, 20));
                }
            }
        }
    }

    fn mark(name: &str) -> String {
        json!({"event": "mark", "streamSid": "S1", "mark": {"name": name}}).to_string()
    }

    fn events(messages: &[String]) -> Vec<Value> {
        messages.iter().map(|m| serde_json::from_str(m).unwrap()).collect()
    }

    /// Ticks from `from` to `to` (exclusive), collecting what was sent.
    fn run(s: &mut Session, from: u64, to: u64) -> (Vec<Value>, Option<u64>) {
        let mut sent = Vec::new();
        let mut t = from;
        while t < to {
            let out = s.tick(t);
            sent.extend(events(&out.messages));
            if out.hangup {
                return (sent, Some(t));
            }
            t += TICK_MS;
        }
        (sent, None)
    }

    #[test]
    fn twilio_frames_are_20_ms_of_mulaw_at_real_time() {
        let mut s = Session::new(&spec(Wire::Twilio), "CA1", "MZ1".into(), Callee::Silent);
        let opening = events(&s.opening("+1", "+2"));
        assert_eq!(opening[0]["event"], "connected");
        assert_eq!(opening[1]["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");
        assert_eq!(opening[1]["start"]["customParameters"]["call"], "call_1");
        assert_eq!(opening[1]["start"]["callSid"], "CA1");
        let (sent, _) = run(&mut s, 0, 1_000);
        assert_eq!(sent.len(), 50, "one frame per 20 ms");
        let payload = base64::engine::general_purpose::STANDARD.decode(sent[3]["media"]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, vec![0xFF; 160], "silence is μ-law 0xFF");
        assert_eq!(sent[3]["media"]["timestamp"], "60");
        assert_eq!(sent[3]["streamSid"], "MZ1");
    }

    #[test]
    fn exotel_chunks_are_100_ms_of_pcm16() {
        let mut s = Session::new(&spec(Wire::Exotel), "c1", "st1".into(), Callee::TalksFirst);
        let opening = events(&s.opening("+1", "+2"));
        assert_eq!(opening[1]["start"]["media_format"]["sample_rate"], "8000");
        assert_eq!(opening[1]["start"]["custom_parameters"]["call"], "call_1");
        let (sent, _) = run(&mut s, 0, 1_000);
        assert_eq!(sent.len(), 10);
        let payload = base64::engine::general_purpose::STANDARD.decode(sent[0]["media"]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload.len(), 1_600, "100 ms of 16-bit 8 kHz");
        // The first chunk is the start of `hello`, decoded from the fixture.
        let hello = Clip::Hello.audio().ulaw;
        let expected: Vec<u8> = hello[..800].iter().flat_map(|b| audio_codec_algorithms::decode_ulaw(*b).to_le_bytes()).collect();
        assert_eq!(payload, expected);
        assert_eq!(sent[2]["stream_sid"], "st1");
        assert_eq!(sent[2]["media"]["timestamp"], "200");
    }

    #[test]
    fn marks_echo_when_playback_reaches_them() {
        let mut s = Session::new(&spec(Wire::Twilio), "CA1", "MZ1".into(), Callee::Silent);
        s.opening("+1", "+2");
        for _ in 0..10 {
            s.on_text(0, &media(Wire::Twilio, 20));
        }
        s.on_text(0, &mark("greeting"));
        let marks = |sent: &[Value]| sent.iter().filter(|e| e["event"] == "mark").map(|e| e["mark"]["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
        let (sent, _) = run(&mut s, 0, 180);
        assert!(marks(&sent).is_empty(), "180 ms of 200 played");
        let (sent, _) = run(&mut s, 180, 220);
        assert_eq!(marks(&sent), ["greeting"]);
        let record = s.finish(220, HungUpBy::Dialtone);
        assert_eq!((record.chunks, record.chunk_size_violations, record.marks_received), (10, 0, 1));
        assert_eq!(record.greeting_latency_ms, Some(0));
        assert_eq!(record.audio_received_ms, 200);
    }

    #[test]
    fn twilio_clear_flushes_and_returns_pending_marks() {
        let mut s = Session::new(&spec(Wire::Twilio), "CA1", "MZ1".into(), Callee::Silent);
        s.on_text(0, &media(Wire::Twilio, 20));
        s.on_text(0, &mark("a"));
        s.on_text(0, &media(Wire::Twilio, 20));
        s.on_text(0, &mark("b"));
        let back = events(&s.on_text(5, &json!({"event": "clear", "streamSid": "MZ1"}).to_string()));
        assert_eq!(back.iter().map(|e| e["mark"]["name"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "b"]);
        let (sent, _) = run(&mut s, 20, 200);
        assert!(sent.iter().all(|e| e["event"] == "media"), "nothing left to play or echo");
        let record = s.finish(200, HungUpBy::Dialtone);
        assert_eq!(record.clears, 1);
        assert_eq!(record.clear_latency_ms, None, "no barge-in to time it from");
    }

    #[test]
    fn exotel_size_rules() {
        let mut s = Session::new(&spec(Wire::Exotel), "c1", "st1".into(), Callee::Silent);
        s.on_text(0, &media(Wire::Exotel, 200)); // 3,200 B: fine
        s.on_text(0, &media(Wire::Exotel, 20)); // 320 B, then a mark: fine
        s.on_text(0, &mark("m"));
        s.on_text(0, &media(Wire::Exotel, 40)); // 640 B followed by media: violation
        s.on_text(0, &media(Wire::Exotel, 220)); // 3,520 B: fine
        let odd = json!({"event": "media", "stream_sid": "st1", "media": {"payload": base64::engine::general_purpose::STANDARD.encode([0u8; 3_210])}});
        s.on_text(0, &odd.to_string()); // not a multiple of 320
        s.on_text(0, "not json");
        let record = s.finish(0, HungUpBy::Dialtone);
        assert_eq!(record.chunk_size_violations, 2, "{record:?}");
        assert_eq!(record.violation_sizes, [640, 3_210]);
        assert_eq!(record.chunk_sizes[&3_200], 1);
        assert_eq!(record.bad_messages, 1);
    }

    #[test]
    fn twilio_size_rule_is_160_bytes() {
        let mut s = Session::new(&spec(Wire::Twilio), "CA1", "MZ1".into(), Callee::Silent);
        s.on_text(0, &media(Wire::Twilio, 20));
        s.on_text(0, &media(Wire::Twilio, 40));
        let record = s.finish(0, HungUpBy::Dialtone);
        assert_eq!((record.chunk_size_violations, record.violation_sizes.clone()), (1, vec![320]));
    }

    /// Plays a conversation as a prompt bot would: greets at 200 ms, and answers each
    /// utterance 300 ms after it ends (as seen in the callee's record).
    fn converse(callee: Callee, wire: Wire, greet: bool, bye_and_close: bool) -> (MediaCallRecord, Vec<Value>) {
        let mut s = Session::new(&spec(wire), "c1", "st1".into(), callee);
        s.opening("+1", "+2");
        let mut sent = Vec::new();
        let mut t = 0;
        let mut answered = 0;
        let mut our_turns = 0;
        let mut hung_up = false;
        let mut clear_pending = false;
        while t < 120_000 {
            if greet && t == 200 {
                say(&mut s, t, wire, 1_500);
                s.on_text(t, &mark("greeting"));
                our_turns += 1;
            }
            // Barge-in: the bot clears 100 ms after the callee starts speaking over it.
            if let Some(onset) = s.barge_onset.filter(|o| t >= o + 100 && !clear_pending) {
                let _ = onset;
                clear_pending = true;
                sent.extend(events(&s.on_text(t, &json!({"event": "clear", "stream_sid": "st1"}).to_string())));
            }
            let spoke = s.record.clips_played.len();
            if spoke > answered && s.speaking.is_none() && s.callee_spoke_until + 300 <= t && t > s.callee_spoke_until {
                answered = spoke;
                our_turns += 1;
                say(&mut s, t, wire, 1_000);
                s.on_text(t, &mark("reply"));
                if bye_and_close && s.record.clips_played.last().is_some_and(|c| c == "thanks_bye") {
                    // Our goodbye, then we close once it played.
                    let (more, _) = run(&mut s, t, t + 1_100);
                    sent.extend(more);
                    return (s.finish(t + 1_100, HungUpBy::Dialtone), sent);
                }
            }
            let out = s.tick(t);
            sent.extend(events(&out.messages));
            if out.hangup {
                hung_up = true;
                break;
            }
            t += TICK_MS;
        }
        let _ = our_turns;
        let by = if hung_up { HungUpBy::Callee } else { HungUpBy::Dialtone };
        (s.finish(t, by), sent)
    }

    #[test]
    fn human_waits_for_the_greeting_then_answers_in_turn() {
        for wire in [Wire::Exotel, Wire::Twilio] {
            let (record, sent) = converse(Callee::Human, wire, true, false);
            assert_eq!(record.clips_played, ["yes_speaking", "question", "thanks_bye"], "{wire:?}");
            assert_eq!(record.hung_up_by.as_deref(), Some("callee"), "hangs up after our goodbye played");
            assert_eq!(record.greeting_latency_ms, Some(200));
            assert_eq!(record.reply_latencies_ms, [300, 300, 300], "{wire:?}");
            assert_eq!(record.marks_echoed, ["greeting", "reply", "reply", "reply"]);
            assert_eq!(record.chunk_size_violations, 0);
            // yes_speaking starts only after the greeting (200 ms + 1.5 s) played and a turn gap.
            let first_voiced = sent.iter().filter(|e| e["event"] == "media").position(|e| {
                let bytes = base64::engine::general_purpose::STANDARD.decode(e["media"]["payload"].as_str().unwrap()).unwrap();
                match wire {
                    Wire::Exotel => voiced_pcm(&bytes.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect::<Vec<_>>()),
                    Wire::Twilio => super::super::callee::voiced_ulaw(&bytes),
                }
            });
            let frame_ms = if wire == Wire::Exotel { 100 } else { 20 };
            let at = first_voiced.unwrap() as u64 * frame_ms;
            assert!(at >= 1_700 + TURN_GAP_MS, "{wire:?}: the callee spoke at {at} ms, over the greeting");
        }
    }

    #[test]
    fn human_ending_when_we_close() {
        let (record, _) = converse(Callee::Human, Wire::Twilio, true, true);
        assert_eq!(record.clips_played, ["yes_speaking", "question", "thanks_bye"]);
        assert_eq!(record.hung_up_by.as_deref(), Some("dialtone"));
    }

    #[test]
    fn talks_first_says_hello_at_once() {
        let (record, sent) = converse(Callee::TalksFirst, Wire::Twilio, false, false);
        assert_eq!(record.clips_played, ["hello", "question", "thanks_bye"]);
        assert_eq!(record.greeting_latency_ms, Some(Clip::Hello.audio().voice_end_ms + 300), "our first words answer its hello");
        let first = base64::engine::general_purpose::STANDARD.decode(sent[0]["media"]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(first, Clip::Hello.audio().ulaw[..160], "hello starts with the first frame");
    }

    #[test]
    fn silent_never_speaks() {
        let (record, sent) = converse(Callee::Silent, Wire::Exotel, true, false);
        assert!(record.clips_played.is_empty());
        assert_eq!(record.hung_up_by.as_deref(), Some("dialtone"), "still there at the test's end");
        assert!(sent.iter().all(|e| e["event"] != "media" || !super::super::callee::voiced_pcm(&[])));
        assert_eq!(record.voiced_received_ms, 1_500);
    }

    #[test]
    fn hangs_up_early_after_two_seconds() {
        let mut s = Session::new(&spec(Wire::Exotel), "c1", "st1".into(), Callee::HangsUpEarly);
        let (_, at) = run(&mut s, 0, 10_000);
        assert_eq!(at, Some(2_000));
        let stop: Value = serde_json::from_str(&s.stop()).unwrap();
        assert_eq!((stop["event"].as_str(), stop["stop"]["reason"].as_str()), (Some("stop"), Some("callended")));
    }

    #[test]
    fn barge_in_interrupts_a_second_into_the_greeting() {
        for wire in [Wire::Exotel, Wire::Twilio] {
            let (record, _) = converse(Callee::BargeIn, wire, true, false);
            assert_eq!(record.clips_played, ["interrupt", "thanks_bye"], "{wire:?}");
            assert_eq!(record.clear_latency_ms, Some(100), "{wire:?}");
            assert_eq!(record.clears, 1);
            if wire == Wire::Twilio {
                assert_eq!(record.marks_echoed[0], "greeting", "returned by the clear");
            }
        }
        let mut s = Session::new(&spec(Wire::Twilio), "c1", "st1".into(), Callee::BargeIn);
        s.on_text(0, &media(Wire::Twilio, 3_000));
        let (sent, _) = run(&mut s, 0, 2_000);
        let voiced_at = sent.iter().position(|e| {
            super::super::callee::voiced_ulaw(&base64::engine::general_purpose::STANDARD.decode(e["media"]["payload"].as_str().unwrap()).unwrap())
        });
        let onset = voiced_at.unwrap() as u64 * 20;
        assert_eq!(onset, 1_000 + Clip::Interrupt.audio().voice_start_ms, "1 s after our speech began playing");
    }

    #[test]
    fn voicemail_records_whether_a_message_was_left() {
        let beep_end = Clip::VoicemailBeep.audio().ulaw.len() as u64 / 8;
        for (message_ms, left) in [(1_500, true), (600, false)] {
            let mut s = Session::new(&spec(Wire::Exotel), "c1", "st1".into(), Callee::Voicemail);
            let (_, hung) = run(&mut s, 0, beep_end + 200);
            assert!(hung.is_none());
            // A message that begins before the beep ends does not count; one after it does.
            s.on_text(beep_end - 100, &media(Wire::Exotel, 2_000));
            s.on_text(beep_end + 200, &media(Wire::Exotel, message_ms));
            let (_, hung) = run(&mut s, beep_end + 200, beep_end + 40_000);
            assert!(hung.is_some(), "hangs up 30 s after the beep");
            let record = s.finish(beep_end + 31_000, HungUpBy::Callee);
            assert_eq!(record.clips_played, ["voicemail_beep"]);
            assert_eq!(record.voicemail_left, Some(left), "{message_ms} ms");
            assert!(record.reply_latencies_ms.is_empty());
        }
    }
}
