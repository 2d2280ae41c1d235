//! Prefixed, time-sortable ids (`cmp_01J…`): the prefix says what a bare id is in a log
//! line or a URL; the ULID body sorts by creation time, which makes cursors cheap.

use serde::{Deserialize, Serialize};
use std::fmt;

/// ULIDs that increase within this process even inside one millisecond, so rows created in
/// a burst (a CSV import, a claim) sort, page and are dialled in the order they were made.
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // The random part overflows only after 2^80 ids in one millisecond.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn new() -> Self {
                Self(format!("{}_{}", $prefix, next_ulid().to_string().to_lowercase()))
            }

            /// Accepts only ids carrying this type's prefix.
            pub fn parse(s: &str) -> Option<Self> {
                let body = s.strip_prefix(concat!($prefix, "_"))?;
                (!body.is_empty() && body.chars().all(|c| c.is_ascii_alphanumeric()))
                    .then(|| Self(s.to_string()))
            }

            /// Wraps a value read back from our own database.
            pub fn from_db(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// In the OpenAPI document: a string, the prefix, `_` and a lower-case ULID.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("An id: `", $prefix, "_` and a lower-case ULID.")))
                    .examples([concat!($prefix, "_01jd0000000000000000000000")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(WorkspaceId, "ws");
prefixed_id!(ApiKeyId, "key");
prefixed_id!(CampaignId, "cmp");
prefixed_id!(ContactId, "ct");
prefixed_id!(CallId, "call");
prefixed_id!(EventId, "evt");
prefixed_id!(
    /// One of our numbers registered for inbound calls (`phone_numbers.id`).
    PhoneNumberId,
    "num"
);
prefixed_id!(
    /// A do-not-call entry (`suppressions.id`).
    SuppressionId,
    "dnc"
);
prefixed_id!(
    /// A workspace's webhook endpoint for outbound events (`webhook_endpoints.id`).
    WebhookEndpointId,
    "ep"
);
prefixed_id!(
    /// One outbound event (a Standard Webhooks message, its `webhook-id`), the same for
    /// every endpoint it goes to and every retry (`webhook_deliveries.message_id`).
    MessageId,
    "msg"
);
prefixed_id!(
    /// One try of delivering a message to an endpoint (`webhook_attempts.id`).
    DeliveryAttemptId,
    "atmpt"
);
prefixed_id!(
    /// An agent for dialtone's own voice pipeline (`agents.id`): greeting, prompts, speech services.
    AgentId,
    "agt"
);
prefixed_id!(
    /// A workspace's own provider account (`workspace_provider_accounts.id`, issue 13).
    ProviderAccountId,
    "pa"
);
prefixed_id!(
    /// One engine process in the shared database: it owns the leases of the calls it claims.
    NodeId,
    "node"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_creation() {
        let a = CallId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = CallId::new();
        assert!(a.as_str().starts_with("call_"));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn ids_made_in_one_burst_still_sort_in_the_order_they_were_made() {
        let ids: Vec<ContactId> = (0..10_000).map(|_| ContactId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "a burst of ids is strictly increasing");
    }

    #[test]
    fn number_suppression_and_node_ids_come_from_the_macro_in_the_stored_format() {
        for (id, prefix) in [(PhoneNumberId::new().to_string(), "num_"), (SuppressionId::new().to_string(), "dnc_"), (NodeId::new().to_string(), "node_")] {
            let body = id.strip_prefix(prefix).unwrap_or_else(|| panic!("{id} starts with {prefix}"));
            let ulid = ulid::Ulid::from_string(body).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(body, ulid.to_string().to_lowercase(), "a lower-case ULID, as the ids already stored");
        }
        assert!(SuppressionId::parse(SuppressionId::new().as_str()).is_some());
        assert!(PhoneNumberId::parse(SuppressionId::new().as_str()).is_none());
    }

    #[test]
    fn parse_rejects_foreign_prefixes() {
        let c = CampaignId::new();
        assert!(CampaignId::parse(c.as_str()).is_some());
        assert!(CallId::parse(c.as_str()).is_none());
        assert!(CampaignId::parse("cmp_").is_none());
        assert!(CampaignId::parse("cmp_a'b").is_none());
    }
}
