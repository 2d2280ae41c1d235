use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::media::Callee;

/// How the simulator behaves. `Default` is a well-behaved provider in real time.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where Vapi-shaped webhooks (and inbound `assistant-request`s) are POSTed;
    /// `None` sends none. Twilio and Exotel call back to the URL each call names.
    pub webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer <secret>` (or `X-Vapi-Secret` in legacy mode).
    pub webhook_secret: Option<String>,
    /// Send `X-Vapi-Secret: <secret>` instead of the Bearer header.
    pub legacy_secret_header: bool,
    /// HMAC mode, replacing the secret header: `x-timestamp` (unix ms) and
    /// `x-signature` = hex(HMAC-SHA256(secret, "{x-timestamp}.{raw body}")).
    pub hmac_secret: Option<String>,
    /// When set, every Vapi `/call` route requires `Authorization: Bearer <api_key>`
    /// (not the control URL, whose unguessable id is the credential, as at Vapi).
    pub api_key: Option<String>,
    /// Multiplies every simulated duration: 1.0 is real time, 0.01 is 100x faster.
    pub time_scale: f64,
    /// Uniform range of ringing time in seconds, before scaling.
    pub ring_secs: (f64, f64),
    /// Uniform range of talk time in seconds for answered calls, before scaling.
    pub talk_secs: (f64, f64),
    pub outcomes: OutcomeMix,
    /// Per E.164 number, overrides the mix.
    pub number_outcomes: HashMap<String, SimOutcome>,
    /// Per dialled E.164 number, the scripted callee of a media-stream call; numbers not
    /// listed get [`Callee::Voicemail`] when their outcome is voicemail, else one by their
    /// last digit ([`Callee::by_last_digit`]).
    pub callees: HashMap<String, Callee>,
    pub faults: Faults,
    /// Seeds outcome, duration and fault draws for reproducible runs.
    pub seed: Option<u64>,
    /// Twilio account: `/2010-04-01/Accounts/{sid}/…` requires Basic auth
    /// `sid:token`, and status callbacks are signed with the token.
    /// `None` (either) answers every Twilio route 404.
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    /// Exotel account: `/v1/Accounts/{sid}/…` requires Basic auth `key:token`.
    /// `None` (any of the three) answers every Exotel route 404.
    pub exotel_sid: Option<String>,
    pub exotel_api_key: Option<String>,
    pub exotel_api_token: Option<String>,
    /// The key the speech services require (Deepgram `Authorization: Token`, OpenAI
    /// `Authorization: Bearer`, ElevenLabs `xi-api-key`). `None` accepts any key or none.
    pub speech_api_key: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            webhook_secret: None,
            legacy_secret_header: false,
            hmac_secret: None,
            api_key: None,
            time_scale: 1.0,
            ring_secs: (2.0, 8.0),
            talk_secs: (20.0, 90.0),
            outcomes: OutcomeMix::default(),
            number_outcomes: HashMap::new(),
            callees: HashMap::new(),
            faults: Faults::none(),
            seed: None,
            twilio_account_sid: None,
            twilio_auth_token: None,
            exotel_sid: None,
            exotel_api_key: None,
            exotel_api_token: None,
            speech_api_key: None,
        }
    }
}

/// Relative weights of call outcomes (they need not sum to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeMix {
    pub answered: u32,
    pub no_answer: u32,
    pub busy: u32,
    pub voicemail: u32,
    pub failed: u32,
}

impl Default for OutcomeMix {
    fn default() -> Self {
        Self { answered: 60, no_answer: 20, busy: 8, voicemail: 7, failed: 5 }
    }
}

impl OutcomeMix {
    /// Parses `"answered=60,no_answer=20,busy=10,voicemail=5,failed=5"`.
    /// Keys left out get weight 0, so `"busy=1"` makes every call busy.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut mix = OutcomeMix { answered: 0, no_answer: 0, busy: 0, voicemail: 0, failed: 0 };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("expected key=weight, got `{part}`"))?;
            let weight: u32 = value.trim().parse().map_err(|_| format!("weight for `{}` is not a whole number: `{value}`", key.trim()))?;
            let slot = match key.trim().replace('-', "_").as_str() {
                "answered" => &mut mix.answered,
                "no_answer" => &mut mix.no_answer,
                "busy" => &mut mix.busy,
                "voicemail" => &mut mix.voicemail,
                "failed" => &mut mix.failed,
                other => return Err(format!("unknown outcome `{other}`")),
            };
            *slot = weight;
        }
        if mix.total() == 0 {
            return Err("outcome weights sum to zero".into());
        }
        Ok(mix)
    }

    pub(crate) fn total(&self) -> u64 {
        [self.answered, self.no_answer, self.busy, self.voicemail, self.failed].iter().map(|w| u64::from(*w)).sum()
    }

    /// Maps a draw in `0..total()` to an outcome.
    pub(crate) fn pick(&self, mut draw: u64) -> SimOutcome {
        let weighted = [
            (self.answered, SimOutcome::Answered),
            (self.no_answer, SimOutcome::NoAnswer),
            (self.busy, SimOutcome::Busy),
            (self.voicemail, SimOutcome::Voicemail),
            (self.failed, SimOutcome::Failed),
        ];
        for (weight, outcome) in weighted {
            let weight = u64::from(weight);
            if draw < weight {
                return outcome;
            }
            draw -= weight;
        }
        SimOutcome::Answered
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimOutcome {
    Answered,
    NoAnswer,
    Busy,
    Voicemail,
    Failed,
    /// Never ends by itself and sends no webhooks after in-progress; models a
    /// provider that lost the call, so the engine's reconciliation gets exercised.
    Hang,
}

/// Misbehaviour injected on purpose; every rate is a probability in 0.0..=1.0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Share of call creations (any provider) answered 429; no call is created.
    pub rate_429: f64,
    /// Share of call creations (any provider) answered 503; no call is created.
    pub rate_503: f64,
    /// Added latency range on every provider API response, in real (unscaled) ms.
    pub latency_ms: (u64, u64),
    /// Share of webhooks sent twice.
    pub duplicate_webhooks: f64,
    /// Share of calls whose progress webhooks (ringing/in-progress; Twilio
    /// initiated/ringing/answered; Exotel answered) go out after the ended ones.
    pub out_of_order: f64,
    /// Share of calls whose ended webhooks (Vapi ended status-update and
    /// end-of-call-report; Twilio/Exotel terminal callback) are never sent.
    pub drop_webhooks: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

impl Faults {
    pub fn none() -> Self {
        Self { rate_429: 0.0, rate_503: 0.0, latency_ms: (0, 0), duplicate_webhooks: 0.0, out_of_order: 0.0, drop_webhooks: 0.0 }
    }

    /// A realistic amount of trouble for demos: every recovery path gets used.
    pub fn demo_mix() -> Self {
        Self { rate_429: 0.05, rate_503: 0.03, latency_ms: (0, 30), duplicate_webhooks: 0.10, out_of_order: 0.10, drop_webhooks: 0.05 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_all_weights() {
        let mix = OutcomeMix::parse("answered=60, no_answer=20,busy=10,voicemail=5,failed=5").unwrap();
        assert_eq!(mix, OutcomeMix { answered: 60, no_answer: 20, busy: 10, voicemail: 5, failed: 5 });
    }

    #[test]
    fn parse_rejects_unknown_keys_and_zero_total() {
        assert!(OutcomeMix::parse("answred=1").unwrap_err().contains("answred"));
        assert!(OutcomeMix::parse("busy=0").is_err());
        assert!(OutcomeMix::parse("busy").is_err());
        assert!(OutcomeMix::parse("busy=-1").is_err());
    }

    #[test]
    fn pick_covers_each_bucket() {
        let mix = OutcomeMix { answered: 1, no_answer: 1, busy: 1, voicemail: 1, failed: 1 };
        let picked: Vec<_> = (0..5).map(|d| mix.pick(d)).collect();
        assert_eq!(picked, vec![SimOutcome::Answered, SimOutcome::NoAnswer, SimOutcome::Busy, SimOutcome::Voicemail, SimOutcome::Failed]);
        let only_busy = OutcomeMix::parse("busy=3").unwrap();
        assert!((0..3).all(|d| only_busy.pick(d) == SimOutcome::Busy));
    }
}
