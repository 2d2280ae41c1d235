//! The caller-ID pool and throttle fields that `POST /campaigns`, `PATCH /campaigns/{id}`
//! and `POST /batches` share (issue 13), and the caller (`phone_number_id`) of a campaign,
//! a single call or an assistant, checked once here. The rules that pick a number are
//! `dialtone_core::caller`; the claim applies them (`dialtone_store`'s `callers`).

use super::ApiError;
use dialtone_core::{CallerStrategy, PhoneNumber, ProviderKind};
use dialtone_store::CallerPool;
use std::collections::HashSet;

/// Most numbers one pool may hold.
pub const MAX_CALLER_NUMBERS: usize = 1000;

/// Most characters of a phone-number id (`phone_number_id` on Vapi or the simulator).
pub const MAX_PHONE_NUMBER_ID: usize = 100;

/// The range of `calls_per_minute`.
pub const CALLS_PER_MINUTE: std::ops::RangeInclusive<u32> = 1..=10_000;

/// `caller_numbers`, `caller_number_strategy` and `fallback_strategy` as a request gives them.
#[derive(Debug, Default)]
pub struct PoolFields {
    pub numbers: Option<Vec<String>>,
    pub strategy: Option<String>,
    pub fallback: Option<String>,
}

impl PoolFields {
    pub fn is_empty(&self) -> bool {
        self.numbers.is_none() && self.strategy.is_none() && self.fallback.is_none()
    }

    /// The pool these fields make over `current` (what the campaign has; default for a new
    /// one). Numbers are read in `region` when written nationally and kept in E.164; on
    /// Vapi (and the simulator) an entry that is not a number is a Vapi phone-number id and
    /// kept as given (it has no area code, so `local_presence` falls back for it).
    ///
    /// Errors: 400 naming `caller_numbers` (empty entry, unreadable number on Twilio or
    /// Exotel, a number twice, over [`MAX_CALLER_NUMBERS`]), `caller_number_strategy` or
    /// `fallback_strategy` (unknown; `local_presence` as a fallback; a strategy without numbers).
    pub fn resolve(self, current: CallerPool, provider: ProviderKind, region: &str) -> Result<CallerPool, ApiError> {
        let mut pool = current;
        let strategy_given = self.strategy.is_some() || self.fallback.is_some();
        if let Some(numbers) = self.numbers {
            if numbers.len() > MAX_CALLER_NUMBERS {
                return Err(ApiError::invalid("caller_numbers", format!("at most {MAX_CALLER_NUMBERS} numbers")));
            }
            let ids_allowed = takes_number_ids(provider);
            let mut seen = HashSet::with_capacity(numbers.len());
            let mut out = Vec::with_capacity(numbers.len());
            for (i, raw) in numbers.iter().enumerate() {
                let raw = raw.trim();
                if raw.is_empty() {
                    return Err(ApiError::invalid("caller_numbers", format!("number {} is empty", i + 1)));
                }
                let number = match PhoneNumber::parse(raw, region) {
                    Ok(n) => n.as_str().to_string(),
                    Err(_) if ids_allowed && !raw.starts_with('+') => raw.to_string(),
                    Err(e) => return Err(ApiError::invalid("caller_numbers", format!("number {} ({raw}): {e}", i + 1))),
                };
                if !seen.insert(number.clone()) {
                    return Err(ApiError::invalid("caller_numbers", format!("{number} is listed twice")));
                }
                out.push(number);
            }
            pool.numbers = out;
        }
        if let Some(s) = self.strategy {
            pool.strategy = s.parse().map_err(|_| ApiError::invalid("caller_number_strategy", "must be round_robin, least_used or local_presence"))?;
        }
        if let Some(s) = self.fallback {
            pool.fallback = match s.parse() {
                Ok(CallerStrategy::LocalPresence) => {
                    return Err(ApiError::invalid("fallback_strategy", "must be round_robin or least_used (what local_presence falls back to)"))
                }
                Ok(f) => f,
                Err(_) => return Err(ApiError::invalid("fallback_strategy", "must be round_robin or least_used")),
            };
        }
        // Removing the pool (`[]`) without naming a strategy resets them to the defaults.
        if pool.numbers.is_empty() && !strategy_given {
            pool.strategy = CallerStrategy::default();
            pool.fallback = CallerStrategy::default();
        }
        if pool.numbers.is_empty() && (pool.strategy != CallerStrategy::RoundRobin || pool.fallback != CallerStrategy::RoundRobin) {
            return Err(ApiError::invalid("caller_number_strategy", "needs caller_numbers (a pool to pick from)"));
        }
        Ok(pool)
    }
}

/// Whether `provider` names a caller by an id of its own (a Vapi phone-number id; the
/// simulator speaks Vapi's wire format) rather than by the number itself (Twilio's `From`,
/// Exotel's `CallerId`).
fn takes_number_ids(provider: ProviderKind) -> bool {
    matches!(provider, ProviderKind::Vapi | ProviderKind::Sim)
}

/// Checks a caller (`phone_number_id`) for `provider`. On Twilio and Exotel it is a phone
/// number, read as [`PhoneNumber::parse`] reads `caller_numbers`: in `region` when written
/// nationally, or, with no region (a single call or an assistant has none), only with `+`
/// and its country code; returned in E.164. On Vapi and the simulator it is a phone-number
/// id, at most [`MAX_PHONE_NUMBER_ID`] characters, returned trimmed.
///
/// Errors: 400 naming `phone_number_id` (empty, too long, or not a valid number where one
/// is needed).
pub fn caller_id(provider: ProviderKind, raw: &str, region: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ApiError::invalid("phone_number_id", "must not be empty"));
    }
    if takes_number_ids(provider) {
        if raw.chars().count() > MAX_PHONE_NUMBER_ID {
            return Err(ApiError::invalid("phone_number_id", format!("must be at most {MAX_PHONE_NUMBER_ID} characters")));
        }
        return Ok(raw.to_string());
    }
    let region = match region {
        Some(r) => r,
        None if raw.starts_with('+') => "US",
        None => {
            return Err(ApiError::invalid(
                "phone_number_id",
                format!("on {provider} the caller's number: must start with + and the country code, e.g. +14155552671"),
            ))
        }
    };
    PhoneNumber::parse(raw, region)
        .map(|n| n.as_str().to_string())
        .map_err(|e| ApiError::invalid("phone_number_id", format!("on {provider} the caller's number (E.164, or national in default_region): {raw}: {e}")))
}

/// Checks `calls_per_minute`: 400 naming it outside [`CALLS_PER_MINUTE`].
pub fn check_calls_per_minute(n: Option<u32>) -> Result<Option<u32>, ApiError> {
    match n {
        Some(n) if !CALLS_PER_MINUTE.contains(&n) => {
            Err(ApiError::invalid("calls_per_minute", format!("must be between {} and {}", CALLS_PER_MINUTE.start(), CALLS_PER_MINUTE.end())))
        }
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(list: &[&str]) -> PoolFields {
        PoolFields { numbers: Some(list.iter().map(|s| s.to_string()).collect()), ..Default::default() }
    }

    #[test]
    fn numbers_are_read_in_e164_and_ids_are_kept_only_where_the_provider_takes_them() {
        let pool = numbers(&["(415) 222-0100", "+12122220100", "pn_abc"]).resolve(CallerPool::default(), ProviderKind::Vapi, "US").unwrap();
        assert_eq!(pool.numbers, ["+14152220100", "+12122220100", "pn_abc"]);
        for provider in [ProviderKind::Twilio, ProviderKind::Exotel] {
            let e = numbers(&["+14152220100", "pn_abc"]).resolve(CallerPool::default(), provider, "US").unwrap_err();
            assert_eq!(e.details["field"], "caller_numbers", "{provider}: {}", e.message);
            assert!(e.message.contains("number 2"), "{}", e.message);
        }
        let e = numbers(&["+14152220100", "415 222 0100"]).resolve(CallerPool::default(), ProviderKind::Twilio, "US").unwrap_err();
        assert!(e.message.contains("listed twice"), "{}", e.message);
    }

    #[test]
    fn a_caller_is_a_number_on_twilio_and_exotel_and_an_id_on_vapi() {
        // The values the it suite and the demos use.
        assert_eq!(caller_id(ProviderKind::Twilio, "+15005550006", Some("US")).unwrap(), "+15005550006");
        assert_eq!(caller_id(ProviderKind::Exotel, "+918047100000", None).unwrap(), "+918047100000");
        assert_eq!(caller_id(ProviderKind::Sim, " pn_it ", Some("US")).unwrap(), "pn_it");
        // National numbers are read in the region, and kept in E.164.
        assert_eq!(caller_id(ProviderKind::Twilio, "(415) 222-0100", Some("US")).unwrap(), "+14152220100");
        assert_eq!(caller_id(ProviderKind::Exotel, "080 4710 0000", Some("IN")).unwrap(), "+918047100000");
        let vapi_uuid = "3f9d2a1e-6b7c-4d8e-9f00-1a2b3c4d5e6f";
        assert_eq!(caller_id(ProviderKind::Vapi, vapi_uuid, None).unwrap(), vapi_uuid);
        let bad = [
            (ProviderKind::Twilio, "pn_main", Some("US")),
            (ProviderKind::Exotel, "+1234", Some("IN")),
            (ProviderKind::Twilio, "(415) 222-0100", None),
            (ProviderKind::Vapi, "   ", Some("US")),
            (ProviderKind::Sim, &"p".repeat(MAX_PHONE_NUMBER_ID + 1), None),
        ];
        for (provider, raw, region) in bad {
            let e = caller_id(provider, raw, region).unwrap_err();
            assert_eq!(e.details["field"], "phone_number_id", "{provider} {raw:?}: {}", e.message);
        }
        assert!(caller_id(ProviderKind::Sim, &"p".repeat(MAX_PHONE_NUMBER_ID), None).is_ok(), "100 characters are allowed");
    }

    #[test]
    fn fields_not_given_keep_the_current_pool_and_a_fallback_is_never_local_presence() {
        let current = CallerPool { numbers: vec!["+14152220100".into()], strategy: CallerStrategy::LocalPresence, fallback: CallerStrategy::LeastUsed };
        let same = PoolFields { strategy: Some("round_robin".into()), ..Default::default() }.resolve(current.clone(), ProviderKind::Twilio, "US").unwrap();
        assert_eq!((same.numbers.clone(), same.strategy, same.fallback), (current.numbers.clone(), CallerStrategy::RoundRobin, CallerStrategy::LeastUsed));
        let e = PoolFields { fallback: Some("local_presence".into()), ..Default::default() }.resolve(current.clone(), ProviderKind::Twilio, "US").unwrap_err();
        assert_eq!(e.details["field"], "fallback_strategy");
        let none = PoolFields { numbers: Some(vec![]), ..Default::default() }.resolve(current.clone(), ProviderKind::Twilio, "US").unwrap();
        assert_eq!(none, CallerPool::default(), "`[]` removes the pool and its strategies");
        let e = PoolFields { numbers: Some(vec![]), strategy: Some("least_used".into()), ..Default::default() }
            .resolve(current, ProviderKind::Twilio, "US")
            .unwrap_err();
        assert_eq!(e.details["field"], "caller_number_strategy", "a strategy with nothing to pick from");
    }
}
