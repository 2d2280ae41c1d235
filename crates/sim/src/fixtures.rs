//! The project's own voice clips, embedded once: `fixtures/voice/{name}.ulaw` (raw G.711
//! μ-law, 8,000 bytes a second, made with flite and sox by `scripts/gen_voice_fixtures.sh`)
//! and their texts from `fixtures/voice/clips.json`. The simulator's callees play them, its
//! speech-to-text recognises them, and tests read them from here rather than from disk.

use std::collections::HashMap;
use std::sync::OnceLock;

macro_rules! clip {
    ($name:literal) => {
        ($name, include_bytes!(concat!("../../../fixtures/voice/", $name, ".ulaw")).as_slice())
    };
}

/// Every clip as (name, μ-law bytes).
pub const CLIPS: &[(&str, &[u8])] = &[
    clip!("hello"),
    clip!("yes_speaking"),
    clip!("question"),
    clip!("thanks_bye"),
    clip!("interrupt"),
    clip!("mhm"),
    clip!("voicemail_beep"),
    clip!("voicemail_no_beep"),
    clip!("dtmf_5"),
    clip!("cough"),
];

const CLIPS_JSON: &str = include_str!("../../../fixtures/voice/clips.json");

/// The clip's μ-law bytes. Panics on a name that is not in [`CLIPS`]: the names are the
/// project's own constants, so a wrong one is a bug in the caller.
pub fn ulaw(name: &str) -> &'static [u8] {
    CLIPS.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes).unwrap_or_else(|| panic!("no voice fixture named {name}"))
}

/// The clip decoded to 16-bit linear PCM, 8 kHz (G.711 through `audio-codec-algorithms`).
pub fn pcm(name: &str) -> Vec<i16> {
    ulaw(name).iter().map(|b| audio_codec_algorithms::decode_ulaw(*b)).collect()
}

/// The words spoken in the clip (`clips.json`), if it has an entry there.
pub fn text(name: &str) -> Option<&'static str> {
    static TEXTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        let json: serde_json::Value = serde_json::from_str(CLIPS_JSON).expect("fixtures/voice/clips.json is JSON");
        let clips = json["clips"].as_array().expect("clips.json has clips[]");
        clips.iter().filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["text"].as_str()?.to_owned()))).collect()
    });
    texts.get(name).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clip_has_audio_and_the_spoken_ones_a_text() {
        for (name, bytes) in CLIPS {
            assert!(bytes.len() >= 8000 / 10, "{name} is at least 100 ms");
        }
        assert_eq!(text("hello"), Some("Hello?"));
        assert_eq!(text("cough"), Some(""), "no words in a cough");
        assert_eq!(text("nope"), None);
        assert_eq!(pcm("hello").len(), ulaw("hello").len());
    }

    /// The simulator re-encodes the PCM dialtone sends back to μ-law to recognise clips by
    /// their codes: decode then encode must give every code back (+0 and −0 aside).
    #[test]
    fn every_mu_law_code_survives_a_round_trip() {
        use audio_codec_algorithms::{decode_ulaw, encode_ulaw};
        for byte in 0..=255u8 {
            assert_eq!(decode_ulaw(encode_ulaw(decode_ulaw(byte))), decode_ulaw(byte), "code {byte:#04x}");
            if byte != 0x7F {
                assert_eq!(encode_ulaw(decode_ulaw(byte)), byte, "code {byte:#04x}");
            }
        }
    }
}
