//! Instants a request gives (`start_at`, `scheduled_for`, `?from=`, `?created_from=`…), read
//! with one rule and refused with one message ([`MESSAGE`]), not the parser's internals.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};

/// What is wrong with an instant that does not parse, after the field's name.
pub const MESSAGE: &str = "not an RFC 3339 instant (e.g. 2026-12-01T09:00:00Z)";

/// `text` as an RFC 3339 instant, or [`MESSAGE`].
pub fn parse(text: &str) -> Result<Timestamp, &'static str> {
    text.parse::<Timestamp>().map_err(|_| MESSAGE)
}

/// A body field holding an instant (`#[serde(deserialize_with = "super::instant::required")]`):
/// anything but an RFC 3339 string is [`MESSAGE`], which the body's error names the field of.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => parse(&s).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom(MESSAGE)),
    }
}

/// [`required`] for an optional field (`#[serde(default, deserialize_with = …)]`): `null`
/// is `None`.
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => parse(&s).map(Some).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom(MESSAGE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_is_rfc_3339_and_anything_else_gets_the_one_message() {
        assert!(parse("2026-12-01T09:00:00Z").is_ok());
        assert_eq!(parse("yesterday"), Err(MESSAGE));
        assert_eq!(parse("2026-12-01"), Err(MESSAGE));
    }
}
