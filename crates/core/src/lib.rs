//! dialtone-core: the domain of dialtone as plain data with methods that decide things.
//! No I/O, no async, no SQL: everything here is unit- and property-tested on its own.

pub mod agent;
pub mod attempt;
pub mod call;
pub mod caller;
pub mod campaign;
pub mod clock;
pub mod contact;
pub mod event;
pub mod frequency;
pub mod ids;
pub mod phone;
pub mod phone_ext;
pub mod retry;
pub mod schedule;
pub mod timezone;

pub use agent::{Agent, Speaker, SpeechService, TranscriptTurn};
pub use attempt::{AttemptState, Step as AttemptStep, WrongOrder};
pub use call::{CallStatus, Direction, Outcome, Transition};
pub use caller::CallerStrategy;
pub use campaign::{CampaignKind, CampaignStatus, Mode, ProviderKind};
pub use clock::{Clock, ManualClock, SystemClock};
pub use contact::ContactStatus;
pub use event::{AnsweredBy, CallReport, EventKind, ProviderEvent, RawJson, WebhookRoute};
pub use frequency::{Frequency, Recurrence, RecurrenceError};
pub use ids::{
    AgentId, ApiKeyId, CallId, CampaignId, ContactId, DeliveryAttemptId, EventId, MessageId, NodeId, PhoneNumberId, ProviderAccountId, SuppressionId,
    WebhookEndpointId, WorkspaceId,
};
pub use phone::{PhoneError, PhoneNumber};
pub use phone_ext::{parse_with_extension, split_extension, Extension, ExtensionError};
pub use retry::RetryPolicy;
pub use schedule::{
    avoid_period, avoid_period_in_all, is_open_for, is_open_in_all, next_open_for, next_open_in_all, LocalHours, Schedule, ScheduleError, Window,
};
pub use timezone::{contact_timezone, ContactZone, TzError, TzSource};

/// A text value at a database or wire edge did not name a known variant.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

/// utoipa, for [`text_enum!`] and the ids to describe themselves in the OpenAPI document
/// of crates that do not depend on it by name.
#[doc(hidden)]
pub use utoipa as __utoipa;

/// Implements `as_str`, `FromStr` and `Display` for a fieldless enum with fixed spellings,
/// and its OpenAPI schema (`utoipa::ToSchema`): a string, one of those spellings.
#[macro_export]
macro_rules! text_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            pub const fn as_str(&self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $crate::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err($crate::UnknownVariant { kind: $kind, value: other.to_string() }),
                }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl $crate::__utoipa::PartialSchema for $ty {
            fn schema() -> $crate::__utoipa::openapi::RefOr<$crate::__utoipa::openapi::schema::Schema> {
                $crate::__utoipa::openapi::ObjectBuilder::new()
                    .schema_type($crate::__utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("A ", $kind, ".")))
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }
        impl $crate::__utoipa::ToSchema for $ty {}
    };
}
