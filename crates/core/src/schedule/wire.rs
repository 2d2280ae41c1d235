//! Wire spellings shared by schedules and recurrences: times as "HH:MM", weekdays as "mon".."sun".

use jiff::civil::{Time, Weekday};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

pub(crate) fn weekday_str(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

/// Accepts the short spelling and, for people writing config by hand, the full English name.
pub(crate) fn parse_weekday(text: &str) -> Option<Weekday> {
    let text = text.to_ascii_lowercase();
    let full = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    full.iter().position(|name| *name == text || name[..3] == text).map(|i| match i {
        0 => Weekday::Monday,
        1 => Weekday::Tuesday,
        2 => Weekday::Wednesday,
        3 => Weekday::Thursday,
        4 => Weekday::Friday,
        5 => Weekday::Saturday,
        _ => Weekday::Sunday,
    })
}

pub(crate) mod weekdays {
    use super::*;

    pub fn serialize<S: Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(days.iter().map(|d| weekday_str(*d)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| parse_weekday(text).ok_or_else(|| D::Error::custom(format!("unknown weekday {text:?}, expected mon..sun"))))
            .collect()
    }
}

/// "HH:MM", or "HH:MM:SS" when the time has seconds.
pub(crate) mod hhmm {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
        let format = if t.second() == 0 && t.subsec_nanosecond() == 0 { "%H:%M" } else { "%H:%M:%S" };
        s.collect_str(&t.strftime(format))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Time>().map_err(|e| D::Error::custom(format!("invalid time {text:?}, expected HH:MM: {e}")))
    }
}
