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
