//! Every contact has a time zone, and we remember where it came from: the value the
//! CSV/API gave, else the zones its phone number could be in, else the campaign's.
//!
//! The phone half uses libphonenumber's prefix → time-zone map, shipped as
//! `data/phone_timezones.tsv` (regenerate with `scripts/gen_phone_timezones.py`) and compiled
//! in, so deciding a zone needs no I/O. Zone names are checked against jiff's bundled tzdb
//! for the same reason: the answer does not depend on the host's `/usr/share/zoneinfo`.
//!
//! A number whose prefix does not pin one clock keeps every candidate zone
//! ([`TzSource::Ambiguous`]): calling hours are then judged in all of them at once
//! (`schedule::next_open_in_all`), so no candidate recipient is called at night.

use crate::{text_enum, PhoneNumber};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Where a contact's time zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TzSource {
    /// Given by the CSV/API.
    Explicit,
    /// A North American (+1) number's area code, or a longer prefix within it.
    AreaCode,
    /// Any other number's country code, or a prefix within it, that names one zone (or
    /// several that keep the same clock).
    Country,
    /// The number could be in any of several zones that keep different clocks (a mobile in
    /// a multi-zone country, an area code split by a zone line, a toll-free number): every
    /// one of them is kept, in [`ContactZone::timezones`], and calling hours must hold in all.
    Ambiguous,
    /// Nothing better was known: the campaign's zone.
    Campaign,
}

text_enum!(TzSource, "time zone source", {
    Explicit => "explicit", AreaCode => "area_code", Country => "country", Ambiguous => "ambiguous",
    Campaign => "campaign",
});

/// A contact's IANA time zone(s) and how they were decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactZone {
    /// One IANA zone. For an ambiguous number it is the candidate its country's prefixes
    /// name most often (e.g. `Australia/Sydney` for an Australian mobile): shown for
    /// reference, never used alone to decide when to call.
    pub timezone: String,
    pub source: TzSource,
    /// Every zone the contact may be in, one per distinct clock, sorted by name: just
    /// `[timezone]` unless `source` is [`TzSource::Ambiguous`] (then two or more).
    pub timezones: Vec<String>,
}

impl ContactZone {
    /// A contact known to be in one zone.
    pub fn single(timezone: impl Into<String>, source: TzSource) -> Self {
        let timezone = timezone.into();
        Self { timezones: vec![timezone.clone()], timezone, source }
    }

    pub fn is_ambiguous(&self) -> bool {
        self.source == TzSource::Ambiguous
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TzError {
    #[error("unknown time zone {0:?}")]
    Unknown(String),
}

/// Decides a contact's time zone(s).
///
/// `explicit` is the CSV/API value, an IANA name; `None` or blank means not given. A given
/// name that is not a known zone is an error, not a silent fallback, so the import can
/// report the row. Otherwise the number decides, the way libphonenumber's
/// `PhoneNumberToTimeZonesMapper.getTimeZonesForNumber` does:
/// - a geographic number (fixed line; a mobile only in the countries whose mobiles are
///   geographic: MX, AR, BR, ID, CN) takes the zones of its longest table prefix;
/// - any other number (mobile, toll-free, VoIP, ...) takes every zone of its country code.
///
/// Zones that share every UTC offset in 2025–2027 count as one (e.g. `44`: Guernsey, Isle of
/// Man, Jersey, London → `Europe/London`; the one listed under the most prefixes stands for
/// the group, ties to the last in alphabetical order). One clock left → [`TzSource::AreaCode`]
/// for a +1 number, [`TzSource::Country`] otherwise; several → [`TzSource::Ambiguous`] with
/// all of them. A number the table does not know at all → `campaign_tz`, [`TzSource::Campaign`].
pub fn contact_timezone(explicit: Option<&str>, phone: &PhoneNumber, campaign_tz: &str) -> Result<ContactZone, TzError> {
    if let Some(name) = explicit.map(str::trim).filter(|s| !s.is_empty()) {
        let tz = TZDB.get(name).map_err(|_| TzError::Unknown(name.to_string()))?;
        // The lookup ignores case; hand back the tzdb's own spelling.
        let timezone = tz.iana_name().unwrap_or(name).to_string();
        return Ok(ContactZone::single(timezone, TzSource::Explicit));
    }
    if let Some(zone) = zone_from_phone(phone) {
        return Ok(zone);
    }
    Ok(ContactZone::single(campaign_tz, TzSource::Campaign))
}

fn zone_from_phone(phone: &PhoneNumber) -> Option<ContactZone> {
    let digits = phone.as_str().strip_prefix('+').unwrap_or(phone.as_str());
    // `from_db` wraps whatever was stored; byte slicing below needs plain ASCII digits.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Country calling codes are prefix-free and the table lists each bare one (with every
    // zone of the country), so the shortest match is the country and the longest the place.
    let country = shortest_match(&TABLE, digits)?;
    let place = longest_match(&TABLE, digits)?;
    // Only a geographic number may be narrowed to its place; asking the phone-number
    // library is the costly part, so it is skipped when the answer would be the same.
    let narrow =
        place.prefix.len() > country.prefix.len() && !place.clocks.is_empty() && place.clocks != country.clocks && is_geographic(phone).unwrap_or(false);
    let clocks = if narrow { &place.clocks } else { &country.clocks };
    let source = match clocks.len() {
        0 => return None,
        1 if country.prefix == "1" => TzSource::AreaCode,
        1 => TzSource::Country,
        _ => TzSource::Ambiguous,
    };
    // `clocks` is sorted and max_by_key keeps the last of equals, as in `collapse`.
    let timezone = clocks.iter().copied().max_by_key(|z| LISTED.get(z).copied().unwrap_or(0))?;
    Some(ContactZone { timezone: timezone.to_string(), source, timezones: clocks.iter().map(|z| z.to_string()).collect() })
}

/// Whether libphonenumber calls the number geographic (`PhoneNumberUtil.isNumberGeographical`,
/// asked of the same library that parses numbers): a fixed line, or a mobile in a country
/// whose mobile numbers are tied to an area (libphonenumber's `GEO_MOBILE_COUNTRIES`: MX, AR,
/// BR, ID, CN). A number of unknown type is not, so it keeps its country's every zone: a
/// guess never narrows the candidates. `None`: the library cannot read it (then it is not
/// geographic either).
///
/// The only use of the phone-number library in this module, so a change of library touches
/// this function alone.
fn is_geographic(phone: &PhoneNumber) -> Option<bool> {
    use rlibphonenumber::PHONE_NUMBER_UTIL;
    let parsed = PHONE_NUMBER_UTIL.parse(phone.as_str(), None).ok()?;
    Some(PHONE_NUMBER_UTIL.is_number_geographical(&parsed))
}

/// One row of the prefix table.
#[derive(Debug)]
struct Entry {
    prefix: &'static str,
    /// As listed in the data; kept for `Debug` and the table's own tests.
    #[cfg_attr(not(test), allow(dead_code))]
    zones: Vec<&'static str>,
    /// The zones with different clocks this prefix stands for, one name per clock, sorted.
    /// Empty if a zone is missing from the bundled tzdb (then the prefix decides nothing).
    clocks: Vec<&'static str>,
}

static TZDB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

static TABLE: LazyLock<Vec<Entry>> = LazyLock::new(|| build_table(include_str!("../data/phone_timezones.tsv")));

/// How many prefixes list each zone: the most listed stands for its clock group.
static LISTED: LazyLock<HashMap<&'static str, usize>> = LazyLock::new(|| {
    let mut listed = HashMap::new();
    for zone in TABLE.iter().flat_map(|e| &e.zones) {
        *listed.entry(*zone).or_default() += 1;
    }
    listed
});

/// Equivalence is judged over this window: long enough to cover a campaign's life and a
/// full DST cycle on both hemispheres, fixed so that the answer does not move with the
/// clock. 2025-01-01T00:00Z .. 2028-01-01T00:00Z.
const WINDOW: (Timestamp, Timestamp) = (Timestamp::constant(1_735_689_600, 0), Timestamp::constant(1_830_297_600, 0));

fn build_table(tsv: &'static str) -> Vec<Entry> {
    let mut rows: Vec<(&'static str, Vec<&'static str>)> = tsv
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (prefix, zones) = line.split_once('\t')?;
            Some((prefix, zones.split(',').collect()))
        })
        .collect();
    // The generator sorts, but the binary search must not depend on it.
    rows.sort_by(|a, b| a.0.cmp(b.0));

    let mut listed: HashMap<&str, usize> = HashMap::new();
    for zone in rows.iter().flat_map(|(_, zones)| zones) {
        *listed.entry(zone).or_default() += 1;
    }
    rows.into_iter()
        .map(|(prefix, zones)| {
            let clocks = collapse(&zones, &listed).unwrap_or_default();
            Entry { prefix, zones, clocks }
        })
        .collect()
}

/// Groups `zones` by clock (see [`same_clock`]) and names each group by its member listed
/// under the most prefixes (ties: the last in alphabetical order); the names come back
/// sorted. `None` if a zone is not in the bundled tzdb.
fn collapse(zones: &[&'static str], listed: &HashMap<&str, usize>) -> Option<Vec<&'static str>> {
    let mut groups: Vec<(TimeZone, Vec<&'static str>)> = Vec::new();
    for &name in zones {
        let tz = TZDB.get(name).ok()?;
        match groups.iter_mut().find(|(rep, _)| same_clock(&[rep.clone(), tz.clone()])) {
            Some((_, members)) => members.push(name),
            None => groups.push((tz, vec![name])),
        }
    }
    let mut clocks: Vec<&'static str> = groups
        .iter()
        .filter_map(|(_, members)| {
            let mut members = members.clone();
            members.sort_unstable();
            // max_by_key keeps the last of equals: ties go to the last listed.
            members.into_iter().max_by_key(|z| listed.get(z).copied().unwrap_or(0))
        })
        .collect();
    clocks.sort_unstable();
    Some(clocks)
}

/// True if every zone shows the same UTC offset at every instant of [`WINDOW`]. Offsets only
/// change at transitions, so checking the start and each zone's transitions is exact.
fn same_clock(zones: &[TimeZone]) -> bool {
    let Some((first, rest)) = zones.split_first() else { return false };
    if rest.is_empty() {
        return true;
    }
    let (start, end) = WINDOW;
    let mut instants = vec![start];
    for tz in zones {
        instants.extend(tz.following(start).map(|t| t.timestamp()).take_while(|&t| t < end));
    }
    instants.iter().all(|&t| {
        let offset = first.to_offset(t);
        rest.iter().all(|tz| tz.to_offset(t) == offset)
    })
}

fn shortest_match<'t>(table: &'t [Entry], digits: &str) -> Option<&'t Entry> {
    (1..=digits.len()).find_map(|n| {
        let prefix = &digits[..n];
        table.binary_search_by(|e| e.prefix.cmp(prefix)).ok().map(|i| &table[i])
    })
}

fn longest_match<'t>(table: &'t [Entry], digits: &str) -> Option<&'t Entry> {
    (1..=digits.len()).rev().find_map(|n| {
        let prefix = &digits[..n];
        table.binary_search_by(|e| e.prefix.cmp(prefix)).ok().map(|i| &table[i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMPAIGN: &str = "America/Chicago";

    fn zone_for(raw: &str) -> ContactZone {
        let phone = PhoneNumber::parse(raw, "US").unwrap();
        contact_timezone(None, &phone, CAMPAIGN).unwrap()
    }

    fn zone(timezone: &str, source: TzSource) -> ContactZone {
        ContactZone::single(timezone, source)
    }

    /// Judged in the bundled tzdb, as the table is: the host's may be older (it may not know
    /// yet that Alberta and British Columbia stop changing their clocks in November 2026).
    fn same_clock_as(a: &str, b: &str) -> bool {
        same_clock(&[TZDB.get(a).unwrap(), TZDB.get(b).unwrap()])
    }

    /// Asserts an ambiguous answer whose candidates keep the clocks of `expected` (one name
    /// per clock, in any spelling of that clock) and nothing else.
    fn assert_candidates(got: &ContactZone, expected: &[&str]) {
        assert_eq!(got.source, TzSource::Ambiguous, "{got:?}");
        assert_eq!(got.timezones.len(), expected.len(), "{got:?} vs {expected:?}");
        for want in expected {
            assert!(got.timezones.iter().any(|z| same_clock_as(z, want)), "{want} missing from {got:?}");
        }
        assert!(got.timezones.contains(&got.timezone), "{got:?}");
    }

    #[test]
    fn us_numbers_take_their_area_codes_zone() {
        assert_eq!(zone_for("(212) 555-0123"), zone("America/New_York", TzSource::AreaCode));
        assert_eq!(zone_for("+1 415 555 2671"), zone("America/Los_Angeles", TzSource::AreaCode));
        assert_eq!(zone_for("+1 808 555 0142"), zone("Pacific/Honolulu", TzSource::AreaCode));
    }

    #[test]
    fn alaska_numbers_keep_alaska_time() {
        // libphonenumber files Anchorage exchanges under America/Juneau (same clock), and
        // area code 907 as a whole under Adak + Anchorage, which differ by an hour.
        let state_office = zone_for("+1 907 269 7500");
        assert_eq!(state_office.source, TzSource::AreaCode);
        assert!(same_clock_as(&state_office.timezone, "America/Anchorage"), "{state_office:?}");

        let unlisted_exchange = zone_for("+1 907 555 1234");
        assert_candidates(&unlisted_exchange, &["America/Adak", "America/Anchorage"]);
    }

    #[test]
    fn canadian_numbers_are_area_codes_too() {
        assert_eq!(zone_for("+1 416 555 0199"), zone("America/Toronto", TzSource::AreaCode));
    }

    #[test]
    fn an_area_code_split_by_a_zone_line_keeps_both_zones() {
        // 208 (Idaho): the north keeps Pacific time, the south Mountain.
        assert_candidates(&zone_for("+1 208 299 1234"), &["America/Los_Angeles", "America/Denver"]);
    }

    #[test]
    fn non_geographic_nanp_numbers_keep_every_us_and_canadian_clock() {
        // Toll-free and personal numbers (800, 888, 500) belong to no area.
        for raw in ["+1 800 555 0199", "+1 888 555 0199", "+1 500 555 0199"] {
            let got = zone_for(raw);
            assert_eq!(got.source, TzSource::Ambiguous, "{raw}: {got:?}");
            for want in [
                "America/St_Johns",
                "America/Halifax",
                "America/New_York",
                "America/Chicago",
                "America/Denver",
                "America/Phoenix",
                "America/Los_Angeles",
                "America/Anchorage",
                "Pacific/Honolulu",
            ] {
                assert!(got.timezones.iter().any(|z| same_clock_as(z, want)), "{raw}: {want} missing from {got:?}");
            }
        }
    }

    #[test]
    fn single_zone_countries_take_the_countrys_zone() {
        assert_eq!(zone_for("+44 20 7946 0018"), zone("Europe/London", TzSource::Country));
        assert_eq!(zone_for("+33 6 12 34 56 78"), zone("Europe/Paris", TzSource::Country));
        let india = zone_for("+91 98765 43210");
        assert_eq!(india.source, TzSource::Country);
        assert!(["Asia/Kolkata", "Asia/Calcutta"].contains(&india.timezone.as_str()), "{india:?}");
    }

    #[test]
    fn zones_that_keep_the_same_clock_count_as_one() {
        // '44' lists Guernsey, Isle of Man, Jersey and London; a Finnish number lists
        // Helsinki and Mariehamn.
        assert_eq!(zone_for("+44 7400 123456"), zone("Europe/London", TzSource::Country));
        assert_eq!(zone_for("+358 40 1234567"), zone("Europe/Helsinki", TzSource::Country));
    }

    #[test]
    fn australia_resolves_where_the_prefix_names_one_zone() {
        assert_eq!(zone_for("+61 2 9374 4000"), zone("Australia/Sydney", TzSource::Country));
        // 08 covers Western and South Australia: 1½ to 2½ hours apart.
        assert_candidates(&zone_for("+61 8 9222 1234"), &["Australia/Perth", "Australia/Adelaide"]);
    }

    #[test]
    fn an_australian_mobile_may_be_anywhere_in_australia() {
        // The example: stored as Sydney, dialled at 06:37 in Perth.
        assert_candidates(
            &zone_for("+61 412 345 678"),
            &[
                "Australia/Adelaide",
                "Australia/Brisbane",
                "Australia/Eucla",
                "Australia/Lord_Howe",
                "Australia/Perth",
                "Australia/Sydney",
                "Indian/Christmas",
                "Indian/Cocos",
            ],
        );
    }

    #[test]
    fn a_russian_mobile_may_be_anywhere_russia_or_kazakhstan_keeps_a_clock() {
        // The example: stored as Moscow, dialled at 03:30 in Vladivostok.
        let got = zone_for("+7 914 123 4567");
        assert_eq!(got.source, TzSource::Ambiguous);
        for want in [
            "Europe/Moscow",
            "Europe/Samara",
            "Asia/Yekaterinburg",
            "Asia/Omsk",
            "Asia/Novosibirsk",
            "Asia/Irkutsk",
            "Asia/Yakutsk",
            "Asia/Vladivostok",
            "Asia/Magadan",
            "Asia/Kamchatka",
            "Asia/Almaty",
        ] {
            assert!(got.timezones.iter().any(|z| same_clock_as(z, want)), "{want} missing from {got:?}");
        }
        assert!(got.timezones.contains(&"Europe/Moscow".to_string()), "{got:?}");
    }

    #[test]
    fn a_region_code_inside_a_large_country_decides_its_zone() {
        // +7 is Russia and Kazakhstan, eleven clocks; 383 is Novosibirsk.
        assert_eq!(zone_for("+7 383 212 3456"), zone("Asia/Novosibirsk", TzSource::Country));
    }

    #[test]
    fn geographic_mobiles_use_their_prefix() {
        // libphonenumber treats Mexican and Indonesian (also Brazilian, Argentine, Chinese)
        // mobiles as geographic: the prefix names the place (33: Guadalajara; 0812: Java).
        assert_eq!(zone_for("+52 33 1234 5678"), zone("America/Mexico_City", TzSource::Country));
        assert_eq!(zone_for("+62 812 3456 7890"), zone("Asia/Jakarta", TzSource::Country));
        // A Congolese mobile is not: Kinshasa and Lubumbashi are an hour apart.
        assert_candidates(&zone_for("+243 81 234 5678"), &["Africa/Kinshasa", "Africa/Lubumbashi"]);
    }

    #[test]
    fn an_explicit_zone_wins_over_the_phone() {
        let phone = PhoneNumber::parse("+1 212 555 0123", "US").unwrap();
        let got = contact_timezone(Some("Europe/Berlin"), &phone, CAMPAIGN).unwrap();
        assert_eq!(got, zone("Europe/Berlin", TzSource::Explicit));
        let spaced = contact_timezone(Some(" europe/berlin "), &phone, CAMPAIGN).unwrap();
        assert_eq!(spaced, zone("Europe/Berlin", TzSource::Explicit));
        let mobile = PhoneNumber::parse("+61 412 345 678", "AU").unwrap();
        let got = contact_timezone(Some("Australia/Perth"), &mobile, CAMPAIGN).unwrap();
        assert_eq!(got, zone("Australia/Perth", TzSource::Explicit));
    }

    #[test]
    fn a_blank_explicit_zone_counts_as_not_given() {
        let phone = PhoneNumber::parse("+1 212 555 0123", "US").unwrap();
        let got = contact_timezone(Some("  "), &phone, CAMPAIGN).unwrap();
        assert_eq!(got, zone("America/New_York", TzSource::AreaCode));
    }

    #[test]
    fn an_unknown_explicit_zone_is_an_error() {
        let phone = PhoneNumber::parse("+1 212 555 0123", "US").unwrap();
        let err = contact_timezone(Some("Mars/Base"), &phone, CAMPAIGN).unwrap_err();
        assert!(matches!(&err, TzError::Unknown(name) if name == "Mars/Base"), "{err}");
    }

    #[test]
    fn a_stored_value_that_is_not_digits_falls_back_instead_of_panicking() {
        let phone = PhoneNumber::from_db("+1२१२५५५०१२३".to_string());
        let got = contact_timezone(None, &phone, CAMPAIGN).unwrap();
        assert_eq!(got, zone(CAMPAIGN, TzSource::Campaign));
    }

    #[test]
    fn every_zone_in_the_table_loads() {
        assert!(TABLE.len() > 3000, "table has {} rows", TABLE.len());
        for entry in TABLE.iter() {
            assert!(!entry.prefix.is_empty() && entry.prefix.bytes().all(|b| b.is_ascii_digit()));
            for name in &entry.zones {
                assert!(TimeZone::get(name).is_ok(), "{} -> {name} (system tzdb)", entry.prefix);
                assert!(TZDB.get(name).is_ok(), "{} -> {name} (bundled tzdb)", entry.prefix);
            }
        }
    }

    #[test]
    fn collapsed_clocks_cover_every_listed_zone_once() {
        for entry in TABLE.iter() {
            assert!(!entry.clocks.is_empty(), "{entry:?}");
            for clock in &entry.clocks {
                assert!(entry.zones.contains(clock), "{entry:?}");
            }
            // Every listed zone keeps the clock of exactly one kept name.
            for zone in &entry.zones {
                let n = entry.clocks.iter().filter(|c| same_clock_as(c, zone)).count();
                assert_eq!(n, 1, "{zone} in {entry:?}");
            }
            if entry.zones.len() == 1 {
                assert_eq!(entry.clocks, entry.zones, "{entry:?}");
            }
        }
    }

    #[test]
    fn a_country_codes_own_row_lists_every_zone_of_its_prefixes() {
        // What makes the shortest match the country-level answer, as in libphonenumber's
        // getCountryLevelTimeZonesforNumber.
        for entry in TABLE.iter() {
            let country = shortest_match(&TABLE, entry.prefix).unwrap();
            assert!(country.prefix.len() <= 3, "{entry:?}");
            for zone in &entry.zones {
                assert!(country.zones.contains(zone), "{zone} of {} missing from {}", entry.prefix, country.prefix);
            }
        }
    }

    #[test]
    fn sources_round_trip_as_text() {
        for source in TzSource::ALL {
            assert_eq!(source.as_str().parse::<TzSource>().unwrap(), *source);
            assert_eq!(serde_json::to_string(source).unwrap(), format!("\"{source}\""));
        }
        assert!("phone".parse::<TzSource>().is_err());
    }
}
