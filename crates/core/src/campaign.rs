//! Campaign status, kind, dialling mode and provider kind.

use crate::text_enum;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    /// Started by the user; no call accepted by the provider yet.
    Starting,
    /// At least one call was accepted (`started_at` is set).
    Dialing,
    Paused,
    Completed,
    Canceled,
}

text_enum!(CampaignStatus, "campaign status", {
    Draft => "draft", Starting => "starting", Dialing => "dialing",
    Paused => "paused", Completed => "completed", Canceled => "canceled",
});

impl CampaignStatus {
    /// The dispatcher claims contacts only for runnable campaigns.
    pub fn is_runnable(self) -> bool {
        matches!(self, Self::Starting | Self::Dialing)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Canceled)
    }

    pub fn can_start(self) -> bool {
        matches!(self, Self::Draft)
    }

    pub fn can_pause(self) -> bool {
        self.is_runnable()
    }

    pub fn can_resume(self) -> bool {
        matches!(self, Self::Paused)
    }

    pub fn can_cancel(self) -> bool {
        !self.is_terminal()
    }

    /// Where `resume` goes: back to `dialing` once a call was accepted, else `starting`.
    pub fn resumed(started: bool) -> Self {
        if started {
            Self::Dialing
        } else {
            Self::Starting
        }
    }
}

/// What a campaign row holds. Only `Campaign` is listed and run by users; the others are
/// hidden campaigns that give single calls and inbound calls the same claim, cap and retry
/// machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// A campaign a user created, with its contacts.
    #[default]
    Campaign,
    /// The per-workspace hidden campaign behind scheduled single calls (one contact each).
    SingleCalls,
    /// The hidden campaign that holds the inbound calls to one of our numbers.
    Inbound,
}

text_enum!(CampaignKind, "campaign kind", { Campaign => "campaign", SingleCalls => "single_calls", Inbound => "inbound" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Keep `max_concurrent` calls in flight.
    #[default]
    Continuous,
    /// Place `max_concurrent` calls, wait until all have ended, then place the next batch.
    Batch,
}

text_enum!(Mode, "mode", { Continuous => "continuous", Batch => "batch" });

impl Mode {
    /// How many new calls may be claimed given the cap and the calls now active.
    pub fn claimable(self, cap: u32, active: u32) -> u32 {
        match self {
            Mode::Continuous => cap.saturating_sub(active),
            Mode::Batch if active == 0 => cap,
            Mode::Batch => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Vapi,
    /// The built-in simulator, reached through Vapi's wire format.
    Sim,
    Twilio,
    Exotel,
}

text_enum!(ProviderKind, "provider", { Vapi => "vapi", Sim => "sim", Twilio => "twilio", Exotel => "exotel" });

impl ProviderKind {
    /// Whether the provider sends its end-of-call report (cost, duration, summary) in a
    /// webhook of its own after the status that ends the call (Vapi's
    /// `end-of-call-report`): Vapi, and the simulator that speaks Vapi's format. Twilio and
    /// Exotel carry the duration in the status callback that ends the call and send no
    /// report (../shared/PROVIDERS.md).
    pub fn reports_later(self) -> bool {
        match self {
            ProviderKind::Vapi | ProviderKind::Sim => true,
            ProviderKind::Twilio | ProviderKind::Exotel => false,
        }
    }

    /// Whether the provider can be asked for a call by dialtone's id (Vapi keeps the id in
    /// the call's `metadata` and lists calls by creation time: `GET /call`), so a call that
    /// may have been sent is adopted or found absent rather than ended `timeout`. Twilio and
    /// Exotel cannot be searched by our id (../shared/PROVIDERS.md).
    pub fn finds_calls_by_our_id(self) -> bool {
        match self {
            ProviderKind::Vapi | ProviderKind::Sim => true,
            ProviderKind::Twilio | ProviderKind::Exotel => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_kinds_keep_their_database_and_wire_spellings() {
        for (kind, text) in [(CampaignKind::Campaign, "campaign"), (CampaignKind::SingleCalls, "single_calls"), (CampaignKind::Inbound, "inbound")] {
            assert_eq!(kind.as_str(), text);
            assert_eq!(text.parse::<CampaignKind>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), text, "serde spells it as the database does");
        }
        assert!("single_call".parse::<CampaignKind>().is_err());
    }

    #[test]
    fn continuous_mode_tops_up_to_the_cap() {
        assert_eq!(Mode::Continuous.claimable(8, 0), 8);
        assert_eq!(Mode::Continuous.claimable(8, 5), 3);
        assert_eq!(Mode::Continuous.claimable(8, 8), 0);
        assert_eq!(Mode::Continuous.claimable(8, 9), 0);
    }

    #[test]
    fn batch_mode_waits_for_the_whole_batch() {
        assert_eq!(Mode::Batch.claimable(8, 0), 8);
        assert_eq!(Mode::Batch.claimable(8, 1), 0);
        assert_eq!(Mode::Batch.claimable(8, 7), 0);
    }

    #[test]
    fn text_round_trips() {
        for s in CampaignStatus::ALL {
            assert_eq!(s.as_str().parse::<CampaignStatus>().unwrap(), *s);
        }
        assert!("running".parse::<CampaignStatus>().is_err());
    }
}
