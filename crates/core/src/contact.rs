//! Contact status.

use crate::text_enum;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    /// Due now or at `next_attempt_at`.
    Pending,
    /// Has an active call (one at most: a partial unique index makes sure).
    InCall,
    /// Reached a final outcome (completed, voicemail).
    Done,
    /// Every allowed attempt was used without a final outcome.
    Exhausted,
    Dnc,
    /// The provider said the number cannot be reached.
    Invalid,
    Canceled,
}

text_enum!(ContactStatus, "contact status", {
    Pending => "pending", InCall => "in_call", Done => "done", Exhausted => "exhausted",
    Dnc => "dnc", Invalid => "invalid", Canceled => "canceled",
});

impl ContactStatus {
    /// Finished: nothing more will happen to this contact.
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Pending | Self::InCall)
    }
}
