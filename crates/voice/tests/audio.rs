//! The audio front end on the committed callee fixtures (fixtures/voice/*.ulaw, clips.json):
//! real codec, VAD, beep detector and listener code, no fakes.

use dialtone_voice::beep::{Beep, BeepDetector};
use dialtone_voice::codec::{pcm_to_ulaw, ulaw_to_pcm};
use dialtone_voice::listen::{Heard, Listener, ListenerConfig};
use dialtone_voice::vad::{EarshotVad, Vad};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use std::path::PathBuf;

const RATE: usize = 8_000;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/voice")
}

/// (name, kind) of every clip in clips.json.
fn clips() -> Vec<(String, String)> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(fixtures().join("clips.json")).unwrap()).unwrap();
    json["clips"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap().to_owned(), c["kind"].as_str().unwrap().to_owned())).collect()
}

fn clips_of(kinds: &[&str]) -> Vec<String> {
    clips().into_iter().filter(|(_, k)| kinds.contains(&k.as_str())).map(|(n, _)| n).collect()
}

fn load(name: &str) -> Vec<i16> {
    ulaw_to_pcm(&std::fs::read(fixtures().join(format!("{name}.ulaw"))).unwrap())
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; RATE * ms / 1000]
}

/// `pcm` scaled so that its peak is `dbfs` (full scale 32,768), through μ-law as a line carries it.
fn scaled_to_peak(pcm: &[i16], dbfs: f32) -> Vec<i16> {
    let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(1).max(1);
    let k = 32_768.0 * 10f32.powf(dbfs / 20.0) / f32::from(peak);
    ulaw_to_pcm(&pcm_to_ulaw(&pcm.iter().map(|&s| (f32::from(s) * k).round() as i16).collect::<Vec<_>>()))
}

/// Deterministic white or pink (Paul Kellet's economy filter) noise at `rms`, through μ-law.
fn noise(ms: usize, rms: f32, pink: bool, seed: u64) -> Vec<i16> {
    let mut state = seed;
    let mut b = [0.0f32; 3];
    let raw: Vec<f32> = (0..RATE * ms / 1000)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let w = (state >> 33) as f32 / (1u64 << 31) as f32 * 2.0 - 1.0;
            if !pink {
                return w;
            }
            b[0] = 0.997_65 * b[0] + w * 0.099_046;
            b[1] = 0.963 * b[1] + w * 0.296_516_4;
            b[2] = 0.57 * b[2] + w * 1.052_691_3;
            b[0] + b[1] + b[2] + w * 0.1848
        })
        .collect();
    let now = (raw.iter().map(|x| x * x).sum::<f32>() / raw.len() as f32).sqrt();
    ulaw_to_pcm(&pcm_to_ulaw(&raw.iter().map(|x| (x * rms / now).round() as i16).collect::<Vec<_>>()))
}

fn tone(ms: usize, hz: f32, amplitude: f32) -> Vec<i16> {
    (0..RATE * ms / 1000).map(|i| (amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin()).round() as i16).collect()
}

/// Share of 16 ms frames the VAD calls voiced (probability ≥ 0.5).
fn voiced_share(vad: &mut dyn Vad, pcm: &[i16]) -> f32 {
    let n = vad.frame_samples();
    let frames = pcm.len() / n;
    pcm.chunks_exact(n).filter(|f| vad.voice_probability(f) >= 0.5).count() as f32 / frames.max(1) as f32
}

fn beeps(pcm: &[i16]) -> Vec<Beep> {
    let mut det = BeepDetector::default();
    let mut found: Vec<Beep> = pcm.chunks_exact(det.frame_samples()).filter_map(|f| det.push_frame(f)).collect();
    found.extend(det.finish());
    found
}

fn t0() -> Timestamp {
    "2026-12-01T07:00:00Z".parse().unwrap()
}

/// Milliseconds from `t0()` to `at`.
fn ms(at: Timestamp) -> i64 {
    at.duration_since(t0()).as_millis() as i64
}

/// Feeds `pcm` in chunks of `chunk` samples, each stamped with its first sample's time;
/// returns what was heard and the sample position at which each event was returned.
fn listen_with(config: ListenerConfig, pcm: &[i16], chunk: usize) -> Vec<(Heard, usize)> {
    let mut listener = Listener::new(config);
    let mut heard = Vec::new();
    for (i, c) in pcm.chunks(chunk).enumerate() {
        let at = t0() + SignedDuration::from_micros((i * chunk * 125) as i64);
        heard.extend(listener.push(at, c).into_iter().map(|h| (h, i * chunk + c.len())));
    }
    heard.extend(listener.finish().into_iter().map(|h| (h, pcm.len())));
    heard
}

fn listen(pcm: &[i16]) -> Vec<Heard> {
    listen_with(ListenerConfig::default(), pcm, 800).into_iter().map(|(h, _)| h).collect()
}

/// (start ms, speech_ms) of every segment; panics unless starts and ends alternate.
fn segments(heard: &[Heard]) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    let mut open = None;
    for h in heard {
        match h {
            Heard::SpeechStarted { at } => {
                assert!(open.is_none(), "two starts in a row: {heard:?}");
                open = Some(*at);
            }
            Heard::SpeechEnded { at, speech_ms } => {
                let start = open.take().unwrap_or_else(|| panic!("end without start: {heard:?}"));
                assert_eq!(ms(*at) - ms(start), *speech_ms as i64, "{heard:?}");
                out.push((ms(start), *speech_ms));
            }
            Heard::Beep { .. } => {}
        }
    }
    assert!(open.is_none(), "unended segment: {heard:?}");
    out
}

fn beeps_heard(heard: &[Heard]) -> Vec<(i64, u32, u64)> {
    heard.iter().filter_map(|h| if let Heard::Beep { at, hz, ms: len } = h { Some((ms(*at), *hz, *len)) } else { None }).collect()
}

// --- VAD -------------------------------------------------------------------------------

#[test]
fn vad_finds_speech_in_every_speech_clip() {
    let names = clips_of(&["speech", "voicemail"]);
    assert!(names.len() >= 8);
    for name in names {
        let share = voiced_share(&mut EarshotVad::default(), &load(&name));
        // Measured 0.65–0.92 (short clips carry flite's leading and trailing silence).
        assert!(share >= 0.5, "{name}: only {share:.2} of frames voiced");
    }
}

#[test]
fn vad_finds_nothing_in_digital_silence_or_low_noise() {
    let mut lines = vec![("digital silence".to_owned(), silence(5_000)), ("μ-law idle (0xFF)".to_owned(), ulaw_to_pcm(&[0xFF; 40_000]))];
    for (rms, dbfs) in [(104.0, -50), (328.0, -40)] {
        lines.push((format!("white noise {dbfs} dBFS"), noise(5_000, rms, false, 1)));
        lines.push((format!("pink noise {dbfs} dBFS"), noise(5_000, rms, true, 2)));
    }
    for (name, pcm) in lines {
        let share = voiced_share(&mut EarshotVad::default(), &pcm);
        assert!(share <= 0.01, "{name}: {share:.3} of frames voiced");
        assert_eq!(listen(&pcm), vec![], "{name}");
    }
}

#[test]
fn agc_finds_quiet_speech_the_bare_vad_misses() {
    // Peak at −40 dBFS: the active speech is around −55 dBFS RMS.
    let mut lifted = 0.0f32;
    let mut bare = 0.0f32;
    for name in clips_of(&["speech"]) {
        let quiet = scaled_to_peak(&load(&name), -40.0);
        let with_agc = voiced_share(&mut EarshotVad::default(), &quiet);
        assert!(with_agc >= 0.5, "{name} at −40 dBFS: only {with_agc:.2} of frames voiced");
        lifted += with_agc;
        bare += voiced_share(&mut EarshotVad::new(None), &quiet);
    }
    // Without the AGC earshot loses a good share of it (measured 0.0–0.8 per clip).
    assert!(bare < lifted * 0.85, "AGC {lifted:.2} vs bare {bare:.2}");
}

// --- Beep detector ---------------------------------------------------------------------

#[test]
fn beep_is_found_in_the_voicemail_greeting_at_13_02_s() {
    let found = beeps(&load("voicemail_beep"));
    assert_eq!(found.len(), 1, "{found:?}");
    let beep = found[0];
    let at_ms = beep.start_sample as i64 * 1000 / RATE as i64;
    assert!((at_ms - 13_020).abs() <= 100, "beep at {at_ms} ms");
    assert!(beep.hz.abs_diff(1_000) <= 25, "{beep:?}");
    assert!((440..=520).contains(&beep.ms), "{beep:?}");
}

#[test]
fn no_beep_in_speech_dtmf_or_noise() {
    let names = clips_of(&["speech", "tone", "noise"]).into_iter().chain(["voicemail_no_beep".to_owned()]);
    for name in names {
        assert_eq!(beeps(&load(&name)), vec![], "{name}");
    }
    for (name, pcm) in [("pink noise", noise(3_000, 3_000.0, true, 3)), ("440 Hz", tone(1_000, 440.0, 8_000.0)), ("1400 Hz", tone(1_000, 1_400.0, 8_000.0))] {
        assert_eq!(beeps(&pcm), vec![], "{name}");
    }
}

#[test]
fn beep_rule_edges() {
    // 850 and 1,150 Hz beeps are found; 140 ms is too short; a quiet tone (RMS < 300) is not one.
    for hz in [850.0, 1_150.0] {
        let found = beeps(&[silence(300), tone(400, hz, 8_000.0), silence(300)].concat());
        assert_eq!(found.len(), 1, "{hz}: {found:?}");
        assert!((found[0].hz as f32 - hz).abs() <= 25.0, "{hz}: {found:?}");
    }
    assert_eq!(beeps(&[silence(300), tone(140, 1_000.0, 8_000.0), silence(300)].concat()), vec![]);
    assert_eq!(beeps(&[silence(300), tone(500, 1_000.0, 350.0), silence(300)].concat()), vec![]);
    // A beep in pink noise at 10 dB SNR is still found.
    let mut noisy = [silence(300), tone(500, 1_000.0, 8_000.0), silence(300)].concat();
    for (s, n) in noisy.iter_mut().zip(noise(1_100, 5_657.0 / 3.16, true, 4)) {
        *s = s.saturating_add(n);
    }
    assert_eq!(beeps(&noisy).len(), 1);
}

// --- Listener --------------------------------------------------------------------------

#[test]
fn voicemail_greeting_is_one_segment_over_8_s() {
    let heard = listen(&[load("voicemail_no_beep"), silence(1_000)].concat());
    let segs = segments(&heard);
    assert_eq!(segs.len(), 1, "{heard:?}");
    assert!(segs[0].1 > 8_000, "{segs:?}");
    assert_eq!(beeps_heard(&heard), vec![]);
}

#[test]
fn hello_is_one_short_segment() {
    let heard = listen(&[silence(500), load("hello"), silence(1_000)].concat());
    let segs = segments(&heard);
    assert_eq!(segs.len(), 1, "{heard:?}");
    let (start, len) = segs[0];
    assert!(len < 2_000, "{segs:?}");
    // flite's "Hello?" starts ~0.17 s into the clip; the onset is reported at its first voiced frame.
    assert!((600..=800).contains(&start), "onset at {start} ms");
}

#[test]
fn every_speech_clip_is_heard() {
    for name in clips_of(&["speech"]) {
        let heard = listen(&[load(&name), silence(1_000)].concat());
        assert!(!segments(&heard).is_empty(), "{name}: {heard:?}");
    }
}

#[test]
fn cough_is_at_most_a_short_segment() {
    let heard = listen(&[silence(500), load("cough"), silence(1_000)].concat());
    for (_, len) in segments(&heard) {
        assert!(len < 200, "{heard:?}");
    }
}

#[test]
fn quiet_speech_is_still_heard() {
    for name in ["hello", "yes_speaking", "mhm"] {
        let heard = listen(&[silence(500), scaled_to_peak(&load(name), -40.0), silence(1_000)].concat());
        assert_eq!(segments(&heard).len(), 1, "{name}: {heard:?}");
    }
}

#[test]
fn voicemail_beep_is_a_beep_and_not_speech() {
    // The line stays open after the beep (the recorder listens).
    let heard = listen_with(ListenerConfig::default(), &[load("voicemail_beep"), silence(1_000)].concat(), 160);
    let events: Vec<Heard> = heard.iter().map(|(h, _)| h.clone()).collect();
    let segs = segments(&events);
    assert_eq!(segs.len(), 1, "{events:?}");
    assert!(segs[0].1 > 8_000 && segs[0].0 + (segs[0].1 as i64) < 13_000, "{segs:?}");
    let found = beeps_heard(&events);
    assert_eq!(found.len(), 1, "{events:?}");
    let (at, hz, len) = found[0];
    assert!((at - 13_020).abs() <= 100 && hz.abs_diff(1_000) <= 25 && len >= 440, "{found:?}");
    // Reported when the tone ended (13.52 s), within a frame or two.
    let reported_ms = heard.iter().find(|(h, _)| matches!(h, Heard::Beep { .. })).unwrap().1 * 1000 / RATE;
    assert!((13_520..=13_580).contains(&reported_ms), "reported at {reported_ms} ms");
    // Without the tone mask the VAD takes the beep for more of the greeting.
    let unmasked = ListenerConfig { mask_tones: false, ..ListenerConfig::default() };
    let events: Vec<Heard> = listen_with(unmasked, &[load("voicemail_beep"), silence(1_000)].concat(), 160).into_iter().map(|(h, _)| h).collect();
    let segs = segments(&events);
    assert!(segs[0].0 + segs[0].1 as i64 > 13_300, "{segs:?}");
}

#[test]
fn tones_alone_are_not_speech() {
    for (name, pcm) in [("beep", tone(500, 1_000.0, 8_000.0)), ("dtmf 5", load("dtmf_5")), ("dtmf 5 long", load("dtmf_5").repeat(3))] {
        let heard = listen(&[silence(500), pcm, silence(1_000)].concat());
        assert_eq!(segments(&heard), vec![], "{name}: {heard:?}");
    }
}

#[test]
fn speech_end_comes_after_the_endpointing_silence() {
    let config = ListenerConfig::default();
    let pcm = [silence(500), load("yes_speaking"), silence(2_000)].concat();
    let heard = listen_with(config.clone(), &pcm, 160);
    let (end_at, reported_at) =
        heard.iter().find_map(|(h, pos)| if let Heard::SpeechEnded { at, .. } = h { Some((ms(*at), (pos * 1000 / RATE) as i64)) } else { None }).unwrap();
    let silence_ms = reported_at - end_at;
    assert!((config.end_silence_ms as i64..=config.end_silence_ms as i64 + 40).contains(&silence_ms), "{silence_ms} ms");
    // A shorter endpointing delay ends the segment sooner.
    let quick = ListenerConfig { end_silence_ms: 300, ..config };
    let heard_quick = listen_with(quick, &pcm, 160);
    let reported_quick = heard_quick.iter().find(|(h, _)| matches!(h, Heard::SpeechEnded { .. })).unwrap().1;
    assert!(reported_quick * 1000 / RATE < reported_at as usize);
}

#[test]
fn times_come_from_sample_positions_whatever_the_chunking() {
    let pcm = [silence(300), load("question"), silence(900), load("voicemail_beep"), silence(500)].concat();
    let strip = |v: Vec<(Heard, usize)>| v.into_iter().map(|(h, _)| h).collect::<Vec<_>>();
    let reference = strip(listen_with(ListenerConfig::default(), &pcm, 160));
    assert!(reference.len() >= 5, "{reference:?}");
    for chunk in [1, 37, 800, 1_601, 8_000] {
        assert_eq!(strip(listen_with(ListenerConfig::default(), &pcm, chunk)), reference, "chunks of {chunk}");
    }
}

#[test]
fn each_chunk_carries_its_own_time() {
    // A gap in the stream (no packets for 10 s): events after it take the later chunk's time.
    let mut listener = Listener::new(ListenerConfig::default());
    let mut heard = listener.push(t0(), &silence(1_000));
    let later = t0() + SignedDuration::from_secs(11);
    heard.extend(listener.push(later, &[load("hello"), silence(1_000)].concat()));
    let start = heard.iter().find_map(|h| if let Heard::SpeechStarted { at } = h { Some(ms(*at)) } else { None }).unwrap();
    assert!((11_000..11_400).contains(&start), "{start}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_input_in_any_chunks_is_handled(samples in proptest::collection::vec(any::<i16>(), 0..6_000), chunks in proptest::collection::vec(0usize..900, 1..12)) {
        let mut listener = Listener::new(ListenerConfig::default());
        let mut heard = Vec::new();
        let mut pos = 0;
        for c in chunks.iter().cycle().take(64) {
            let end = (pos + c).min(samples.len());
            heard.extend(listener.push(t0() + SignedDuration::from_micros(pos as i64 * 125), &samples[pos..end]));
            pos = end;
        }
        heard.extend(listener.push(t0() + SignedDuration::from_micros(pos as i64 * 125), &samples[pos..]));
        heard.extend(listener.finish());
        segments(&heard);
    }
}
