//! Phone numbers are parsed once, at the edge, into E.164. Nothing inside dialtone ever
//! handles an unparsed number.
//!
//! Parsing and validation are Google's libphonenumber, through `rlibphonenumber` (a
//! complete port, differentially fuzzed against the C++ library, whose metadata follows
//! Google's releases). We moved off the `phonenumber` crate because it refused valid
//! numbers (IN `9188097679`, RU `8 (800) 555-35-35`, IT `391 231 2312`, anything in
//! Arabic-Indic digits), accepted invalid ones, and on some input returned a different
//! number than the one written; `crates/core/tests/phone_corpus.rs` holds dialtone to
//! libphonenumber's answer on thousands of numbers.

use rlibphonenumber::{ParseError, PhoneNumberFormat, Region, PHONE_NUMBER_UTIL};
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
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "+14155552671")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `raw` as written by a person and returns it in E.164 (`+919188097679`).
    ///
    /// A number that starts with `+`, or with the international dialling prefix of
    /// `default_region` (`00`, `011`, `8~10`, ...), carries its own country code; any other
    /// is national and read in `default_region` (ISO 3166 alpha-2, any case, e.g. `US`,
    /// `in`), with its trunk prefix (`0`, `8` in RU, `1` in NANP) and carrier code (BR, CO)
    /// stripped as that country dials. Spaces, dashes, dots, slashes, parentheses and
    /// non-ASCII digits (full-width, Arabic-Indic) are read as people mean them. This is
    /// libphonenumber's `parse` followed by `isValidNumber`: a number must match a range
    /// its country has allocated, not merely have a plausible length.
    ///
    /// Errors: [`PhoneError::Empty`] for blank input, [`PhoneError::UnknownRegion`] when
    /// `default_region` is not a region libphonenumber knows, [`PhoneError::Unparseable`]
    /// when no number can be read (too short, too long, letters, unknown country code),
    /// [`PhoneError::Invalid`] when the number is outside every allocated range.
    pub fn parse(raw: &str, default_region: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        let region = numbering_region(default_region).ok_or_else(|| PhoneError::UnknownRegion(default_region.to_string()))?;
        let parsed = PHONE_NUMBER_UTIL.parse(raw, Some(region)).map_err(|e| PhoneError::Unparseable(reason(&e).into()))?;
        if !PHONE_NUMBER_UTIL.is_valid_number(&parsed) {
            return Err(PhoneError::Invalid);
        }
        Ok(Self(PHONE_NUMBER_UTIL.format(&parsed, PhoneNumberFormat::E164).into_owned()))
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

/// Whether `region` (ISO 3166 alpha-2, any case, e.g. `IN`, `gb`) can be a default region:
/// libphonenumber has a numbering plan for it. `001` (non-geographic numbers) and codes
/// with no plan (`XX`, `ZZ`) cannot.
pub fn is_known_region(region: &str) -> bool {
    numbering_region(region).is_some()
}

fn numbering_region(region: &str) -> Option<Region> {
    // `Region::from_code` takes any two letters; only a region with numbering metadata
    // (and so a country calling code) can read a national number.
    Region::from_code(&region.trim().to_ascii_uppercase()).ok().filter(|r| PHONE_NUMBER_UTIL.get_country_code_for_region(*r).is_some())
}

/// Why libphonenumber could not read a number, in words an API client can act on (the
/// library's own texts are terse, e.g. "Too short Nsn").
fn reason(e: &ParseError) -> &'static str {
    match e {
        ParseError::InvalidCountryCode => "no known country calling code",
        ParseError::NotANumber(_) => "no phone number in it",
        ParseError::TooShortAfterIdd => "too short after the international dialling prefix",
        ParseError::TooShortNsn => "too short",
        ParseError::TooLongNsn => "too long",
    }
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

    /// The numbers issue 9 reports `phonenumber` 0.3.10 refusing; libphonenumber reads each.
    #[test]
    fn numbers_the_old_crate_refused_are_read_as_libphonenumber_reads_them() {
        for (raw, region, e164) in [
            // An Indian mobile whose national number begins with 91, India's country code.
            ("9188097679", "IN", "+919188097679"),
            ("+91 91880 97679", "US", "+919188097679"),
            ("+7 812 315-00-01", "RU", "+78123150001"),
            // 8 is Russia's trunk prefix, 800 its toll-free range.
            ("8 (800) 555-35-35", "RU", "+78005553535"),
            // Italian mobiles start with 3, so 39... is a national number, not +39.
            ("391 231 2312", "IT", "+393912312312"),
            // A Paris landline written internationally, read wherever the list comes from.
            ("+33 1 42 68 53 00", "US", "+33142685300"),
            ("+33 (0)1 42 68 53 00", "FR", "+33142685300"),
            ("01 42 68 53 00", "fr", "+33142685300"),
            // Digits as an Arabic or Japanese keyboard types them.
            ("٠٥٠١٢٣٤٥٦٧", "AE", "+971501234567"),
            ("０９０-１２３４-５６７８", "JP", "+819012345678"),
        ] {
            assert_eq!(PhoneNumber::parse(raw, region).map(|p| p.as_str().to_string()), Ok(e164.to_string()), "{raw} in {region}");
        }
    }

    #[test]
    fn only_regions_with_a_numbering_plan_are_accepted() {
        for region in ["XX", "ZZ", "001", "", "USA", "U1"] {
            assert_eq!(PhoneNumber::parse("4155552671", region), Err(PhoneError::UnknownRegion(region.to_string())), "{region:?}");
        }
        assert!(PhoneNumber::parse("4155552671", " us ").is_ok());
        assert!(is_known_region("IN") && is_known_region("gb") && !is_known_region("001"));
    }

    #[test]
    fn unreadable_input_says_why() {
        assert_eq!(PhoneNumber::parse("1", "US"), Err(PhoneError::Unparseable("no phone number in it".into())));
        assert_eq!(PhoneNumber::parse("+999 123 4567", "US"), Err(PhoneError::Unparseable("no known country calling code".into())));
        assert_eq!(PhoneNumber::parse(&"9".repeat(300), "US"), Err(PhoneError::Unparseable("too long".into())));
        assert_eq!(PhoneNumber::parse("+1 415 555 2671 0000 0000", "US"), Err(PhoneError::Unparseable("too long".into())));
        assert_eq!(PhoneNumber::parse("+1 415 555 26710", "US"), Err(PhoneError::Invalid));
    }

    proptest::proptest! {
        /// Whatever a CSV cell or JSON string holds, parsing answers; it never panics.
        #[test]
        fn parsing_never_panics(raw in "\\PC{0,40}", digits in "[+0-9 ()./-]{0,30}", region in "[A-Za-z]{0,3}") {
            let _ = PhoneNumber::parse(&raw, &region);
            let _ = PhoneNumber::parse(&digits, "IN");
            let _ = PhoneNumber::parse(&digits, &region);
        }
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
