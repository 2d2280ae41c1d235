//! Phone numbers are parsed once, at the edge, into E.164. Nothing inside dialtone ever
//! handles an unparsed number.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("unknown default region {0:?}")]
    UnknownRegion(String),
    #[error("not a phone number: {0}")]
    Unparseable(String),
    #[error("not a valid number for its region")]
    Invalid,
}

/// A phone number in E.164 form (`+14155551234`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `raw` as written by a person; a number without a `+` country code is read in
    /// `default_region` (ISO 3166 alpha-2, e.g. `US`).
    pub fn parse(raw: &str, default_region: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        let region: phonenumber::country::Id = default_region
            .trim()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| PhoneError::UnknownRegion(default_region.to_string()))?;
        let parsed = phonenumber::parse(Some(region), raw)
            .map_err(|e| PhoneError::Unparseable(e.to_string()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid);
        }
        Ok(Self(parsed.format().mode(phonenumber::Mode::E164).to_string()))
    }

    /// Wraps a value read back from our own database (already E.164).
    pub fn from_db(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs: keeps the country code and the last two digits only.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks any number-like string for logging: `+14…34` (the first three and the last two
/// characters). Counts characters, not bytes: the string may come from outside (a
/// webhook's `phoneNumber.number`) and be any text, so slicing it by bytes could cut a
/// multi-byte character and panic.
pub fn mask(number: &str) -> String {
    let n = number.chars().count();
    if n <= 6 {
        return "***".into();
    }
    let head: String = number.chars().take(3).collect();
    let tail: String = number.chars().skip(n - 2).collect();
    format!("{head}…{tail}")
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_are_read_in_the_default_region() {
        assert_eq!(PhoneNumber::parse("(415) 555-2671", "US").unwrap().as_str(), "+14155552671");
        assert_eq!(PhoneNumber::parse("020 7946 0018", "gb").unwrap().as_str(), "+442079460018");
    }

    #[test]
    fn international_numbers_ignore_the_default_region() {
        assert_eq!(PhoneNumber::parse("+91 98765 43210", "US").unwrap().as_str(), "+919876543210");
    }

    #[test]
    fn garbage_and_impossible_numbers_are_rejected() {
        assert_eq!(PhoneNumber::parse("  ", "US"), Err(PhoneError::Empty));
        assert!(matches!(PhoneNumber::parse("hello", "US"), Err(PhoneError::Unparseable(_))));
        assert!(PhoneNumber::parse("+1 555", "US").is_err());
        assert!(PhoneNumber::parse("123", "US").is_err());
        assert!(matches!(PhoneNumber::parse("4155552671", "XX"), Err(PhoneError::UnknownRegion(_))));
    }

    #[test]
    fn mask_keeps_three_leading_and_two_trailing_characters() {
        assert_eq!(mask("+14155552671"), "+14…71");
        assert_eq!(mask("+1415"), "***");
        assert_eq!(mask("номер телефона"), "ном…на");
        assert_eq!(mask("☎☎☎☎☎☎☎"), "☎☎☎…☎☎");
    }

    proptest::proptest! {
        /// Any text at all (a webhook may send anything where a number belongs) is masked
        /// without panicking, and never shown whole.
        #[test]
        fn mask_never_panics_and_never_shows_more_than_five_characters(s in "\\PC{0,40}") {
            let m = mask(&s);
            let shown = m.chars().filter(|&c| c != '…' && c != '*').count();
            proptest::prop_assert!(shown <= 5, "{:?} -> {:?}", s, m);
        }
    }

    #[test]
    fn debug_output_never_shows_the_whole_number() {
        let p = PhoneNumber::parse("+14155552671", "US").unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("5552671"), "{shown}");
    }
}
