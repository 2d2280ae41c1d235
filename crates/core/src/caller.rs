//! Caller-ID pools (issue 13): which of a campaign's caller numbers a contact's call goes
//! from. Pure rules; the claim (`dialtone-store`) asks them inside its transaction and
//! enforces the daily limit on the usage rows.
//!
//! - A contact's first attempt picks a number by the campaign's [`CallerStrategy`]; every
//!   later attempt of that contact keeps it (stored on the contact).
//! - [`CallerStrategy::LocalPresence`] prefers the pool numbers with the callee's country
//!   calling code and geographic area code ([`local_area`], libphonenumber's rule); when
//!   the pool has none, or all of them are at their daily limit, the rest of the pool is
//!   tried in the campaign's `fallback_strategy` order.

use crate::text_enum;
use rlibphonenumber::{Region, PHONE_NUMBER_UTIL};
use serde::{Deserialize, Serialize};

/// How a contact's caller number is picked from the campaign's pool at its first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallerStrategy {
    /// The pool in turn: each new contact gets the number after the previous one's.
    #[default]
    RoundRobin,
    /// The number with the fewest calls today (UTC day, every campaign of the workspace);
    /// ties go to the earlier number in the pool.
    LeastUsed,
    /// A number with the callee's country and area code when the pool has one, else the
    /// fallback strategy.
    LocalPresence,
}

text_enum!(CallerStrategy, "caller number strategy", {
    RoundRobin => "round_robin", LeastUsed => "least_used", LocalPresence => "local_presence",
});

/// The country calling code and geographic area code of an E.164 number (`+14152220100`
/// → `("1", "415")`), as libphonenumber splits it. `None` for text that is not an E.164
/// number (a Vapi phone-number id) and for numbers with no geographic area code (most
/// mobile and non-geographic numbers outside North America).
pub fn local_area(number: &str) -> Option<(String, String)> {
    if !number.starts_with('+') {
        return None;
    }
    let parsed = PHONE_NUMBER_UTIL.parse(number, Some(Region::from_code("US").ok()?)).ok()?;
    let nsn = parsed.get_national_significant_number();
    let len = parsed.get_length_of_geographical_area_code();
    if len == 0 || len > nsn.len() {
        return None;
    }
    let digits = &number[1..];
    let country = digits.strip_suffix(nsn.as_str())?.to_string();
    Some((country, nsn[..len].to_string()))
}

/// The order in which to try the pool's numbers (indices into it) for one callee.
///
/// - `RoundRobin`: from `cursor % n` on, wrapping.
/// - `LeastUsed`: by `used[i]` (calls today) ascending, ties by index.
/// - `LocalPresence`: the numbers whose [`local_area`] is the callee's (`areas[i]`, computed
///   once per pool), then the others, each group in `fallback`'s order.
///
/// Every index appears once: a number at its limit is skipped by the caller, which then
/// tries the next.
pub fn candidates(
    strategy: CallerStrategy,
    fallback: CallerStrategy,
    callee_area: Option<&(String, String)>,
    areas: &[Option<(String, String)>],
    used: &[i64],
    cursor: u64,
) -> Vec<usize> {
    let n = used.len();
    let base = |s: CallerStrategy| -> Vec<usize> {
        match s {
            CallerStrategy::LeastUsed => {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| (used[i], i));
                order
            }
            // A fallback of local_presence would loop: read as round-robin.
            CallerStrategy::RoundRobin | CallerStrategy::LocalPresence => {
                let start = if n == 0 { 0 } else { (cursor % n as u64) as usize };
                (0..n).map(|k| (start + k) % n).collect()
            }
        }
    };
    match strategy {
        CallerStrategy::LocalPresence => {
            let order = base(fallback);
            let local = |i: &usize| callee_area.is_some() && areas.get(*i).and_then(|a| a.as_ref()) == callee_area;
            let (mut first, rest): (Vec<usize>, Vec<usize>) = order.into_iter().partition(local);
            first.extend(rest);
            first
        }
        s => base(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn areas(pool: &[&str]) -> Vec<Option<(String, String)>> {
        pool.iter().map(|n| local_area(n)).collect()
    }

    #[test]
    fn local_area_is_country_and_area_code() {
        assert_eq!(local_area("+14152220100"), Some(("1".into(), "415".into())));
        assert_eq!(local_area("+12122220100"), Some(("1".into(), "212".into())));
        assert_eq!(local_area("+442071234567"), Some(("44".into(), "20".into())));
        assert_eq!(local_area("pn_main"), None, "a Vapi phone-number id has no area");
        assert_eq!(local_area("+447911123456"), None, "a UK mobile has no geographic area code");
    }

    #[test]
    fn round_robin_starts_at_the_cursor_and_wraps() {
        let a = areas(&["+14152220100", "+12122220100", "+13122220100"]);
        assert_eq!(candidates(CallerStrategy::RoundRobin, CallerStrategy::RoundRobin, None, &a, &[0, 0, 0], 0), vec![0, 1, 2]);
        assert_eq!(candidates(CallerStrategy::RoundRobin, CallerStrategy::RoundRobin, None, &a, &[0, 0, 0], 4), vec![1, 2, 0]);
    }

    #[test]
    fn least_used_orders_by_calls_today_then_pool_order() {
        let a = areas(&["+14152220100", "+12122220100", "+13122220100"]);
        assert_eq!(candidates(CallerStrategy::LeastUsed, CallerStrategy::RoundRobin, None, &a, &[5, 2, 2], 7), vec![1, 2, 0]);
    }

    #[test]
    fn local_presence_prefers_the_callees_area_then_falls_back() {
        let a = areas(&["+14152220100", "+12122220100", "+12122220101"]);
        let ny = local_area("+12123339999");
        assert_eq!(candidates(CallerStrategy::LocalPresence, CallerStrategy::LeastUsed, ny.as_ref(), &a, &[0, 3, 1], 0), vec![2, 1, 0]);
        let chicago = local_area("+13123339999");
        assert_eq!(
            candidates(CallerStrategy::LocalPresence, CallerStrategy::LeastUsed, chicago.as_ref(), &a, &[4, 3, 1], 0),
            vec![2, 1, 0],
            "no local number: the fallback's order"
        );
        assert_eq!(candidates(CallerStrategy::LocalPresence, CallerStrategy::RoundRobin, chicago.as_ref(), &a, &[4, 3, 1], 1), vec![1, 2, 0]);
    }
}
