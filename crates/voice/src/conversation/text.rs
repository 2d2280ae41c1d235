//! Text helpers for streamed replies: sentence splitting and a length estimate.

use jiff::SignedDuration;

/// Characters that end a sentence when followed by whitespace.
const TERMINATORS: &[char] = &['.', '!', '?', '…', '。', '！', '？', ';'];
/// Characters that may follow a terminator and still belong to its sentence.
const CLOSERS: &[char] = &['"', '\'', ')', ']', '”', '’', '»'];

/// Takes the complete sentences off the front of `buf` (streamed LLM text), trimmed and
/// non-empty, and leaves the incomplete rest in `buf`.
///
/// A sentence ends at a terminator (`. ! ? … ;` and their CJK forms), any run of further
/// terminators or closing quotes/brackets, and then whitespace; or at a newline. A
/// terminator at the very end of `buf` does not end a sentence yet ("3." may become "3.5").
/// Abbreviations ("Mr. Smith") split early; that costs a short pause, not a wrong word.
pub fn take_sentences(buf: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = buf.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        let cut = if c == '\n' {
            Some(i + 1)
        } else if TERMINATORS.contains(&c) {
            let mut j = i + 1;
            while j < chars.len() && (TERMINATORS.contains(&chars[j].1) || CLOSERS.contains(&chars[j].1)) {
                j += 1;
            }
            if j < chars.len() && chars[j].1.is_whitespace() {
                Some(j)
            } else {
                None
            }
        } else {
            None
        };
        match cut {
            Some(j) => {
                let end = chars.get(j).map_or(buf.len(), |&(b, _)| b);
                let sentence = buf[start..end].trim();
                if !sentence.is_empty() {
                    out.push(sentence.to_string());
                }
                start = end;
                i = j.max(i + 1);
            }
            None => i += 1,
        }
    }
    buf.drain(..start);
    out
}

/// A generous estimate of how long `text` takes to say: 1 s plus 90 ms per character
/// (≈ 11 characters/s; TTS voices speak 12–16). Used to start the goodbye before
/// `max_duration` and to bound the wait for a closing line's mark.
pub fn speech_estimate(text: &str) -> SignedDuration {
    let chars = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    SignedDuration::from_millis(chars.saturating_mul(90).saturating_add(1000))
}

/// The words of `text` a listener heard start when the line was cut after `played` of its
/// `total` playing time: the first ⌈n × played/total⌉ of its n words (a word cut in the
/// middle counts as said), joined by single spaces. Speech spreads evenly enough over a
/// line's words for a transcript; `total` zero or negative counts the whole line as played.
pub fn played_words(text: &str, played: SignedDuration, total: SignedDuration) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let fraction = if total.is_positive() { (played.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0) } else { 1.0 };
    let keep = ((words.len() as f64 * fraction).ceil() as usize).min(words.len());
    words[..keep].join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(parts: &[&str]) -> (Vec<String>, String) {
        let mut buf = String::new();
        let mut out = Vec::new();
        for p in parts {
            buf.push_str(p);
            out.extend(take_sentences(&mut buf));
        }
        (out, buf)
    }

    #[test]
    fn played_words_keep_the_words_that_started_playing() {
        let ms = SignedDuration::from_millis;
        let text = "Hi, this is Dana from Acme.";
        assert_eq!(played_words(text, ms(0), ms(3000)), "");
        assert_eq!(played_words(text, ms(1), ms(3000)), "Hi,", "a word begun is a word said");
        assert_eq!(played_words(text, ms(1500), ms(3000)), "Hi, this is");
        assert_eq!(played_words(text, ms(1501), ms(3000)), "Hi, this is Dana");
        assert_eq!(played_words(text, ms(9000), ms(3000)), text);
        assert_eq!(played_words(text, ms(10), ms(0)), text);
        assert_eq!(played_words("  two   words ", ms(1), ms(2)), "two");
    }

    #[test]
    fn sentences_are_taken_as_soon_as_whitespace_follows_the_terminator() {
        let (out, rest) = split(&["Hi there", ". How are", " you? I'm fine", "!"]);
        assert_eq!(out, ["Hi there.", "How are you?"]);
        assert_eq!(rest, " I'm fine!");
    }

    #[test]
    fn a_decimal_point_or_a_trailing_terminator_does_not_split() {
        let (out, rest) = split(&["It costs 3.", "5 dollars. Ok"]);
        assert_eq!(out, ["It costs 3.5 dollars."]);
        assert_eq!(rest, " Ok");
    }

    #[test]
    fn runs_of_terminators_quotes_and_newlines() {
        let (out, rest) = split(&["Really?! \"Yes.\" Then\nmore… ok"]);
        assert_eq!(out, ["Really?!", "\"Yes.\"", "Then", "more…"]);
        assert_eq!(rest, " ok");
    }

    #[test]
    fn multibyte_text_splits_on_char_boundaries() {
        let (out, rest) = split(&["Grüß dich. ", "Ça va? 你好。 再见"]);
        assert_eq!(out, ["Grüß dich.", "Ça va?", "你好。"]);
        assert_eq!(rest, " 再见");
    }

    #[test]
    fn estimate_grows_with_length() {
        assert_eq!(speech_estimate(""), SignedDuration::from_secs(1));
        assert_eq!(speech_estimate("Goodbye."), SignedDuration::from_millis(1720));
    }
}
