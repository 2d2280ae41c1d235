//! Which query parameters a route takes: read from the `Deserialize` impl of its query
//! type, so the list the API refuses unknown keys against is the one serde accepts.
//!
//! Written here rather than taken from a crate: the one that does it (`serde-aux`'s
//! `serde_introspect`) would bring chrono and more for these forty lines.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// The field names of struct `T` (`#[serde(rename)]`s applied), or `None` when `T` does not
/// deserialize as a plain struct (a map, or a struct with `#[serde(flatten)]`), whose keys
/// cannot be listed in advance.
pub fn fields<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    match T::deserialize(Probe) {
        Err(Found::Fields(f)) => Some(f),
        _ => None,
    }
}

struct Probe;

#[derive(Debug)]
enum Found {
    Fields(&'static [&'static str]),
    NotAStruct,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probing field names")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found::NotAStruct
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found::NotAStruct)
    }

    fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> Result<V::Value, Found> {
        Err(Found::Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Q {
        limit: Option<u32>,
        #[serde(rename = "before")]
        cursor: Option<String>,
    }

    #[test]
    fn a_structs_fields_are_read_with_their_wire_names() {
        assert_eq!(fields::<Q>(), Some(&["limit", "before"][..]));
        assert_eq!(fields::<std::collections::HashMap<String, String>>(), None);
    }
}
