//! Attempt accounting, in one place, for both backends.
//!
//! `contacts.attempts` counts the attempts a contact has **spent**: what its retry policy
//! and `max_attempts` judge. Each call row carries its attempt **number**
//! (`calls.attempt`, unique per contact). The rules:
//!
//! - A claim spends one ([`SPEND`], in the claim's own `UPDATE`, the transaction that also
//!   inserts the QUEUED call) and numbers the call [`next_number`]. A scheduled single call
//!   (or its next occurrence) is numbered the same way when its row is inserted, and the
//!   claim that later queues it spends the attempt and keeps that number.
//! - A claim that never reached the provider spends none, and gives its attempt back:
//!   turned away at claim time (do-not-call, the recipient's hours: [`turn_away`], or
//!   [`GIVE_BACK`] in PostgreSQL's batched form), released unsent (the call row is
//!   deleted, so its number is free again: [`give_back`] from `release_unsent`), or
//!   refused by the provider because the account was full ([`give_back`] from the event
//!   rules; the call row stays, ended `failed`, and keeps its number).
//! - Anything else that ends a call (a refusal for good, a timeout, a real end) keeps the
//!   attempt spent.
//!
//! So, for every contact: its calls are numbered 1..n with no repeat and no gap (a released
//! call's number is reused by the next claim; a capacity-refused call keeps its own), and
//! `attempts` equals n minus the calls refused for capacity. The property test in
//! `tests/conformance/attempts.rs` checks this over random interleavings on both backends.
//!
//! Nothing outside this module writes `attempts = attempts ± 1`.

use crate::common::ms;
use crate::sql::{args, Db};
use crate::Result;
use jiff::Timestamp;

/// The `SET` item by which a claim spends one attempt of each contact it claims. Only a
/// claim may use it, in the transaction that inserts the claimed call (so a crash cannot
/// leave an attempt spent with no call to show for it). Unqualified, so it reads the same
/// in SQLite's `UPDATE contacts` and PostgreSQL's `UPDATE contacts c … FROM`.
pub const SPEND: &str = "attempts = attempts + 1";

/// The `SET` item that gives one attempt back. Only for a contact claimed in this very
/// transaction and turned away before any call was inserted for it (PostgreSQL's batched
/// turn-away uses it; everything else goes through [`turn_away`] or [`give_back`]).
pub const GIVE_BACK: &str = "attempts = attempts - 1";

/// The number of the call a claim inserts for a contact: one past the last call's
/// (`last`, `MAX(calls.attempt)`, `None` before the first call), and never below the
/// attempts spent (`spent`, the contact's `attempts` after this claim spent one).
pub fn next_number(last: Option<i64>, spent: i64) -> i64 {
    last.unwrap_or(0).max(spent - 1) + 1
}

/// [`last_number`] of the contact row `contact` (a table name or alias) as an SQL
/// expression, for a claim's `RETURNING` (both backends): no statement of its own.
pub fn last_number_sql(contact: &str) -> String {
    format!("(SELECT MAX(attempt) FROM calls k WHERE k.contact_id = {contact}.id)")
}

/// The last attempt number of `contact`'s calls (`None`: it has none), for [`next_number`].
/// Inside the claim's transaction, so no other claim can number a call between.
pub async fn last_number(mut db: Db<'_>, contact: &str) -> Result<Option<i64>> {
    let (last,): (Option<i64>,) = db.fetch_one("SELECT MAX(attempt) FROM calls WHERE contact_id = $1", args![contact]).await?;
    Ok(last)
}

/// A contact the claim has just claimed (spent one attempt, `in_call`) is turned away before
/// a call is inserted for it: `status` is where it goes (`dnc`, `pending`, `exhausted`),
/// `next` when it is due again (`None` keeps `next_attempt_at`), `reason` its
/// `wait_reason`. Gives the attempt back. Only inside the claim's transaction, for a
/// contact it claimed.
pub async fn turn_away(mut db: Db<'_>, contact: &str, status: &str, next: Option<Timestamp>, reason: Option<&str>, now: Timestamp) -> Result<()> {
    db.execute(
        "UPDATE contacts SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at), wait_reason = $3,
            attempts = attempts - 1, updated_at = $4 WHERE id = $5",
        args![status, next.map(ms), reason, ms(now), contact],
    )
    .await?;
    Ok(())
}

/// Gives back the attempt of `contact`'s call that never reached the provider, or that the
/// provider refused because the account was full: the contact is `pending` again, due at
/// `due` (or `canceled` if its campaign was canceled meanwhile), with `last_outcome` set
/// when given (`None` keeps it).
///
/// Fenced on `status = 'in_call'`: a contact already moved on (canceled, or retried by
/// hand) is left alone and `false` comes back, so an attempt is never given back twice.
/// Use it only in the transaction that ends or deletes that call (`release_unsent`, the
/// event rules for a capacity refusal); it reads the campaign's status, so a backend that
/// must hold that status still (PostgreSQL: `FOR SHARE`) locks the row first.
pub async fn give_back(mut db: Db<'_>, contact: &str, due: Timestamp, last_outcome: Option<&str>, now: Timestamp) -> Result<bool> {
    let n = db
        .execute(
            "UPDATE contacts SET attempts = attempts - 1, next_attempt_at = $1, updated_at = $2, last_outcome = COALESCE($3, last_outcome),
                status = CASE WHEN (SELECT status FROM campaigns WHERE id = contacts.campaign_id) = 'canceled' THEN 'canceled' ELSE 'pending' END
             WHERE id = $4 AND status = 'in_call'",
            args![ms(due), ms(now), last_outcome, contact],
        )
        .await?;
    Ok(n == 1)
}

/// The capacity refusal's [`give_back`]: due again after `CAPACITY_RETRY_MS`, recorded as
/// `failed`. For the event rules, in the transaction that ends the refused call.
pub async fn give_back_refused_for_capacity(db: Db<'_>, contact: &str, now: Timestamp) -> Result<bool> {
    let due = Timestamp::from_millisecond(ms(now) + crate::common::CAPACITY_RETRY_MS).unwrap_or(now);
    give_back(db, contact, due, Some("failed"), now).await
}

#[cfg(test)]
mod tests {
    use super::next_number;

    #[test]
    fn the_first_call_is_number_one_and_each_next_is_one_more() {
        assert_eq!(next_number(None, 1), 1);
        assert_eq!(next_number(Some(1), 2), 2);
        assert_eq!(next_number(Some(4), 5), 5);
    }

    #[test]
    fn a_call_refused_for_capacity_keeps_its_number_though_its_attempt_came_back() {
        // Call 1 refused for capacity: attempts went back to 0, the claim spends it again.
        assert_eq!(next_number(Some(1), 1), 2);
    }

    #[test]
    fn a_released_call_frees_its_number_for_the_next_claim() {
        // Call 2 was released (its row deleted, its attempt given back): the next is 2 again.
        assert_eq!(next_number(Some(1), 2), 2);
    }
}
