//! Every contact has a time zone, and we remember where it came from: the value the
//! CSV/API gave, else one derived from the phone number, else the campaign's.
//!
//! The phone half uses libphonenumber's prefix → time-zone map, shipped as
//! `data/phone_timezones.tsv` (regenerate with `scripts/gen_phone_timezones.py`) and compiled
//! in, so deciding a zone needs no I/O. Zone names are checked against jiff's bundled tzdb
//! for the same reason: the answer does not depend on the host's `/usr/share/zoneinfo`.

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
    /// Nothing better was known: the campaign's zone.
    Campaign,
}

text_enum!(TzSource, "time zone source", {
    Explicit => "explicit", AreaCode => "area_code", Country => "country", Campaign => "campaign",
});

/// A contact's IANA time zone and how it was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactZone {
    pub timezone: String,
    pub source: TzSource,
}

#[derive(Debug, thiserror::Error)]
pub enum TzError {
    #[error("unknown time zone {0:?}")]
    Unknown(String),
}

/// Decides a contact's time zone.
///
/// `explicit` is the CSV/API value, an IANA name; `None` or blank means not given. A given
/// name that is not a known zone is an error, not a silent fallback, so the import can
/// report the row. Otherwise the longest table prefix of the number decides:
/// - a +1 number needs a match of at least 1 + area code → [`TzSource::AreaCode`];
/// - any other number → [`TzSource::Country`];
///
/// in both cases only if the match names one zone, or several that share every UTC offset
/// in 2025–2027 (e.g. `44`: Guernsey, Isle of Man, Jersey, London). From such a group the
/// zone listed under the most prefixes in the table is returned (ties: the last in
/// alphabetical order), so `44` gives `Europe/London`. Zones that disagree (an area code
/// split by a zone line, `7` for Russia and Kazakhstan) → `campaign_tz`, [`TzSource::Campaign`].
pub fn contact_timezone(
    explicit: Option<&str>,
    phone: &PhoneNumber,
    campaign_tz: &str,
) -> Result<ContactZone, TzError> {
    if let Some(name) = explicit.map(str::trim).filter(|s| !s.is_empty()) {
        let tz = TZDB.get(name).map_err(|_| TzError::Unknown(name.to_string()))?;
        // The lookup ignores case; hand back the tzdb's own spelling.
        let timezone = tz.iana_name().unwrap_or(name).to_string();
        return Ok(ContactZone { timezone, source: TzSource::Explicit });
    }
    if let Some(zone) = zone_from_phone(phone) {
        return Ok(zone);
    }
    Ok(ContactZone { timezone: campaign_tz.to_string(), source: TzSource::Campaign })
}

fn zone_from_phone(phone: &PhoneNumber) -> Option<ContactZone> {
    let digits = phone.as_str().strip_prefix('+').unwrap_or(phone.as_str());
    // `from_db` wraps whatever was stored; byte slicing below needs plain ASCII digits.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let entry = longest_match(&TABLE, digits)?;
    let source = if entry.prefix.starts_with('1') {
        // "1" alone is all of NANP, from Guam to Newfoundland.
        if entry.prefix.len() < 4 {
            return None;
        }
        TzSource::AreaCode
    } else {
        TzSource::Country
    };
    Some(ContactZone { timezone: entry.zone?.to_string(), source })
}

/// One row of the prefix table.
#[derive(Debug)]
struct Entry {
    prefix: &'static str,
    /// As listed in the data; kept for `Debug` and the table's own tests.
    #[cfg_attr(not(test), allow(dead_code))]
    zones: Vec<&'static str>,
    /// The single zone this prefix stands for; `None` when its zones keep different clocks
    /// (or one is missing from the bundled tzdb).
    zone: Option<&'static str>,
}

static TZDB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

static TABLE: LazyLock<Vec<Entry>> =
    LazyLock::new(|| build_table(include_str!("../data/phone_timezones.tsv")));

/// Equivalence is judged over this window: long enough to cover a campaign's life and a
/// full DST cycle on both hemispheres, fixed so that the answer does not move with the
/// clock. 2025-01-01T00:00Z .. 2028-01-01T00:00Z.
const WINDOW: (Timestamp, Timestamp) =
    (Timestamp::constant(1_735_689_600, 0), Timestamp::constant(1_830_297_600, 0));

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
    let mut loaded: HashMap<&str, Option<TimeZone>> = HashMap::new();
    let mut load =
        |name: &'static str| loaded.entry(name).or_insert_with(|| TZDB.get(name).ok()).clone();

    rows.into_iter()
        .map(|(prefix, zones)| {
            let tzs: Option<Vec<TimeZone>> = zones.iter().map(|&z| load(z)).collect();
            let zone = match tzs {
                Some(tzs) if same_clock(&tzs) => {
                    // max_by_key keeps the last of equals: ties go to the last listed.
                    zones.iter().copied().max_by_key(|z| listed[z])
                }
                _ => None,
            };
            Entry { prefix, zones, zone }
        })
        .collect()
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
        ContactZone { timezone: timezone.to_string(), source }
    }

    fn same_clock_as(a: &str, b: &str) -> bool {
        same_clock(&[TimeZone::get(a).unwrap(), TimeZone::get(b).unwrap()])
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
        assert_eq!(unlisted_exchange, zone(CAMPAIGN, TzSource::Campaign));
    }

    #[test]
    fn canadian_numbers_are_area_codes_too() {
        assert_eq!(zone_for("+1 416 555 0199"), zone("America/Toronto", TzSource::AreaCode));
    }

    #[test]
    fn an_area_code_split_by_a_zone_line_falls_back_to_the_campaign() {
        // 208 (Idaho): the north keeps Pacific time, the south Mountain.
        assert_eq!(zone_for("+1 208 299 1234"), zone(CAMPAIGN, TzSource::Campaign));
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
        assert_eq!(zone_for("+61 8 9222 1234"), zone(CAMPAIGN, TzSource::Campaign));
    }

    #[test]
    fn a_region_code_inside_a_large_country_decides_its_zone() {
        // +7 is Russia and Kazakhstan, eleven clocks; 383 is Novosibirsk.
        assert_eq!(zone_for("+7 383 212 3456"), zone("Asia/Novosibirsk", TzSource::Country));
        // Kazakh mobiles list Almaty and Aqtobe, one clock (UTC+5) since March 2024.
        let kazakh = zone_for("+7 701 234 5678");
        assert_eq!(kazakh.source, TzSource::Country);
        assert!(same_clock_as(&kazakh.timezone, "Asia/Almaty"), "{kazakh:?}");
    }

    #[test]
    fn an_explicit_zone_wins_over_the_phone() {
        let phone = PhoneNumber::parse("+1 212 555 0123", "US").unwrap();
        let got = contact_timezone(Some("Europe/Berlin"), &phone, CAMPAIGN).unwrap();
        assert_eq!(got, zone("Europe/Berlin", TzSource::Explicit));
        let spaced = contact_timezone(Some(" europe/berlin "), &phone, CAMPAIGN).unwrap();
        assert_eq!(spaced, zone("Europe/Berlin", TzSource::Explicit));
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
    fn a_resolved_zone_is_one_of_the_prefixes_zones() {
        for entry in TABLE.iter() {
            if let Some(zone) = entry.zone {
                assert!(entry.zones.contains(&zone), "{entry:?}");
            }
            if entry.zones.len() == 1 {
                assert_eq!(entry.zone, Some(entry.zones[0]), "{entry:?}");
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
