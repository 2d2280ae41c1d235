//! The two kinds of `PATCH` field, written once for every PATCH body: one that `null`
//! clears ([`nullable`]), and one that has nothing to clear, where `null` is refused rather
//! than taken as "leave it" ([`not_null`]).

use serde::{Deserialize, Deserializer};

/// A field that `null` clears: absent → `None` (with `#[serde(default)]`), `null` →
/// `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A field that may be left out but not set to `null` (a name, a schedule: there is no
/// "none" to set). `null` is a 400 naming the field; it used to answer 200 and change
/// nothing. Absent → `None` (with `#[serde(default)]`).
pub fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => Err(serde::de::Error::custom("must not be null: leave the field out to keep its value")),
    }
}
