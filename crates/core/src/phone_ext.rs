//! Extensions written after a phone number (`+1 415 555 2671 ext. 22`, `x22`, `;ext=22`,
//! `#22`, `extension 22`): split off here, before the number part goes to
//! [`PhoneNumber::parse`], so an extension is kept on the contact and dialled after the
//! call connects instead of being dropped.
//!
//! Hand-written rather than left to the phone-number crate: the crate may accept such input
//! and keep only the number, and which crate parses numbers is being changed separately; the
//! rule here is small and only looks at the end of the text.

use crate::phone::{PhoneError, PhoneNumber};
use serde::Serialize;
use std::fmt;

/// Digits dialled (DTMF) after the call connects: 1 to [`Extension::MAX_DIGITS`] of `0-9`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "22")]
pub struct Extension(String);

/// Labels that announce an extension, lower case, longest first so `extension` is not read
/// as `ext` followed by letters. The digit limits follow libphonenumber
/// (`PhoneNumberUtil`: 20 after an explicit label, 9 after an ambiguous character).
const LABELS: &[(&str, usize)] = &[("extension", 20), ("extn", 20), ("ext", 20), ("x", 9), ("#", 9)];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("extension must be 1 to {max} digits (0-9), got {got:?}")]
    Invalid { got: String, max: usize },
}

impl Extension {
    /// Longest extension accepted (libphonenumber's limit after an explicit label).
    pub const MAX_DIGITS: usize = 20;

    /// An extension given on its own (a CSV `extension` column, an API field): digits,
    /// optionally behind one of the labels (`ext. 22`, `x22`). Blank is `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, ExtensionError> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if let Some((number, ext)) = split_label(s) {
            if number.is_empty() {
                return Ok(Some(ext));
            }
        }
        Self::digits(s, Self::MAX_DIGITS).map(Some)
    }

    fn digits(s: &str, max: usize) -> Result<Self, ExtensionError> {
        if (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(ExtensionError::Invalid { got: s.to_string(), max })
        }
    }

    /// Trusted text from the database.
    pub fn from_db(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `raw` into the number part and the extension written after it, if any.
/// `"(415) 555-2671 ext. 22"` → `("(415) 555-2671", Some("22"))`; text without a trailing
/// label and digits comes back whole with `None`.
pub fn split_extension(raw: &str) -> (&str, Option<Extension>) {
    let s = raw.trim();
    match split_label(s) {
        Some((number, ext)) if !number.is_empty() => (number, Some(ext)),
        _ => (s, None),
    }
}

/// The number part and extension of `s` when it ends in `<label><separators><digits>`.
/// Too many digits after a label is no extension (the phone parser then judges the text).
fn split_label(s: &str) -> Option<(&str, Extension)> {
    let lower = s.to_ascii_lowercase();
    let digits_at = lower.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits_at == lower.len() {
        return None;
    }
    let before = lower[..digits_at].trim_end_matches([' ', '\t', '.', ':', '=']);
    let (label, max) = LABELS.iter().find(|(label, _)| before.ends_with(label))?;
    let label_at = before.len() - label.len();
    // `x` and the words must stand apart from letters before them ("fax22" is no label).
    if label.chars().all(|c| c.is_ascii_alphabetic()) && lower[..label_at].ends_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let ext = Extension::digits(&s[digits_at..], *max).ok()?;
    // The byte offsets of `lower` are those of `s`: ASCII lowering keeps lengths.
    let number = s[..label_at].trim_end_matches([' ', '\t', ',', ';']);
    Some((number, ext))
}

/// Parses a number that may carry an extension: the extension is split off, the rest must
/// be a valid number for [`PhoneNumber::parse`] (with `default_region` for national forms).
pub fn parse_with_extension(raw: &str, default_region: &str) -> Result<(PhoneNumber, Option<Extension>), PhoneError> {
    let (number, ext) = split_extension(raw);
    Ok((PhoneNumber::parse(number, default_region)?, ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(raw: &str) -> (String, Option<String>) {
        let (n, e) = split_extension(raw);
        (n.to_string(), e.map(|e| e.as_str().to_string()))
    }

    #[test]
    fn every_written_form_of_an_extension_is_split_off() {
        for raw in [
            "+1 415 555 2671 ext. 22",
            "+1 415 555 2671 ext 22",
            "+1 415 555 2671 EXT.22",
            "+1 415 555 2671 x22",
            "+1 415 555 2671 X 22",
            "+1 415 555 2671;ext=22",
            "+1 415 555 2671#22",
            "+1 415 555 2671 extension 22",
            "+1 415 555 2671 Extn: 22",
            "+1 415 555 2671, ext. 22",
        ] {
            assert_eq!(split(raw), ("+1 415 555 2671".to_string(), Some("22".to_string())), "{raw}");
        }
    }

    #[test]
    fn numbers_without_an_extension_come_back_whole() {
        for raw in ["+1 415 555 2671", "(415) 555-2671", "fax 4155552671", "  4155552671  "] {
            assert_eq!(split(raw), (raw.trim().to_string(), None), "{raw}");
        }
        // A label with nothing before it is not an extension of anything.
        assert_eq!(split("x22"), ("x22".to_string(), None));
    }

    #[test]
    fn digit_limits_follow_libphonenumber() {
        let twenty = "1".repeat(20);
        assert_eq!(split(&format!("4155552671 ext {twenty}")).1, Some(twenty.clone()));
        assert_eq!(split(&format!("4155552671 ext 1{twenty}")).1, None);
        assert_eq!(split("4155552671 x123456789").1, Some("123456789".to_string()));
        assert_eq!(split("4155552671 x1234567890").1, None);
    }

    #[test]
    fn the_number_part_is_parsed_as_a_phone_number() {
        let (phone, ext) = parse_with_extension("(415) 555-2671 ext. 22", "US").unwrap();
        assert_eq!(phone.as_str(), "+14155552671");
        assert_eq!(ext.unwrap().as_str(), "22");
        assert!(parse_with_extension("not a number x22", "US").is_err());
    }

    #[test]
    fn an_extension_on_its_own_is_digits_after_an_optional_label() {
        assert_eq!(Extension::parse("22").unwrap().unwrap().as_str(), "22");
        assert_eq!(Extension::parse(" ext. 22 ").unwrap().unwrap().as_str(), "22");
        assert_eq!(Extension::parse("x7").unwrap().unwrap().as_str(), "7");
        assert_eq!(Extension::parse("  ").unwrap(), None);
        assert!(matches!(Extension::parse("22a"), Err(ExtensionError::Invalid { .. })));
        assert!(Extension::parse(&"1".repeat(21)).is_err());
    }
}
