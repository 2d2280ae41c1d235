//! The process log: stderr, `text` or `json`, filtered by `DIALTONE_LOG`.
//!
//! Three rules hold whatever the log is written to:
//! - a write never fails the caller: with stderr closed (a pipe whose reader died, EPIPE)
//!   the line is dropped, never a panic — tracing-subscriber would otherwise `eprintln!`
//!   the write error, and `eprintln!` panics on a closed stderr, taking a worker (or the
//!   signal handler, and with it shutdown) down;
//! - ANSI colours only when stderr is a terminal and `NO_COLOR` is unset (no-color.org);
//! - a phone number that reaches a log line anyway (a provider's error text, a raw string)
//!   is masked like [`dialtone_core::phone::mask`]: the call sites log masked numbers and
//!   route patterns, this is the net under them.

use crate::config::LogFormat;
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber; `default` is the filter when `DIALTONE_LOG` is unset.
pub fn init(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIALTONE_LOG").unwrap_or_else(|_| default.into());
    let ansi = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").filter(|v| !v.is_empty()).is_none();
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(Stderr { json: format == LogFormat::Json }).with_ansi(ansi).log_internal_errors(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Stderr that never reports a failed write (see the module docs), masking phone numbers.
#[derive(Clone, Copy)]
pub struct Stderr {
    /// JSON lines: a bare digit run may be a JSON number, left alone so the line stays JSON.
    pub json: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        *self
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tracing-subscriber hands over one whole formatted line per `write_all`.
        let line = String::from_utf8_lossy(buf);
        let _ = io::stderr().lock().write_all(mask_numbers(&line, self.json).as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Masks what looks like a phone number in a log line: `+` and 7–15 digits (E.164), or a
/// bare run of 10–15 digits standing alone (a BYO number without `+`, a national mobile).
/// Shorter runs, digits inside ids (`call_01jz…`), timestamps and durations stay.
pub fn mask_numbers(line: &str, json: bool) -> std::borrow::Cow<'_, str> {
    static PLUS: OnceLock<regex::Regex> = OnceLock::new();
    static BARE: OnceLock<regex::Regex> = OnceLock::new();
    let plus = PLUS.get_or_init(|| regex::Regex::new(r"\+\d{7,15}\b").expect("a valid pattern"));
    // The character before the run is captured (no look-behind in `regex`): a letter, digit
    // or `_` makes it part of an id; `:`, `,`, `[` make it a JSON number.
    let bare = BARE.get_or_init(|| regex::Regex::new(r"(^|[^\w:,\[.\-])(\d{10,15})\b").expect("a valid pattern"));
    let masked = plus.replace_all(line, |c: &regex::Captures| dialtone_core::phone::mask(&c[0]));
    if json {
        return masked;
    }
    match bare.replace_all(&masked, |c: &regex::Captures| format!("{}{}", &c[1], dialtone_core::phone::mask(&c[2]))) {
        std::borrow::Cow::Borrowed(_) => masked,
        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_a_log_line_are_masked_and_the_rest_is_kept() {
        let line = "2026-12-01T00:27:32.123456Z  WARN twilio refused the request message=The 'To' number +15005550001 is not valid call_id=call_01jz0000000000000000000000 to=14155550102 elapsed_ms=1234";
        let masked = mask_numbers(line, false);
        assert!(!masked.contains("5005550001"), "{masked}");
        assert!(!masked.contains("4155550102"), "{masked}");
        assert!(masked.contains("+15…01") && masked.contains("to=141…02"), "{masked}");
        assert!(
            masked.contains("2026-12-01T00:27:32.123456Z") && masked.contains("call_01jz0000000000000000000000") && masked.contains("elapsed_ms=1234"),
            "{masked}"
        );
    }

    #[test]
    fn json_lines_stay_json() {
        let line = r#"{"timestamp":"2026-12-01T00:27:32Z","fields":{"message":"to +919188097679","bytes":26843545600}}"#;
        let masked = mask_numbers(line, true);
        assert!(!masked.contains("9188097679"), "{masked}");
        let v: serde_json::Value = serde_json::from_str(&masked).expect("still JSON");
        assert_eq!(v["fields"]["bytes"], 26843545600u64);
    }
}
