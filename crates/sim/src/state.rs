//! The simulator's books: calls of every provider, concurrency and counters
//! behind one mutex, so that "active" and the peaks are exact however many
//! requests race.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::config::{SimConfig, SimOutcome};
use crate::stats::{LiveChange, SimStats};
use crate::webhooks::{Outbox, Outgoing};
use crate::{exotel, twilio, vapi};

pub(crate) use crate::ids::{random_hex32, rfc3339_ms, uuid_v7_like};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Ended,
}

/// A step of the lifecycle. `Initiated` leaves the status at queued; only
/// Twilio reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Initiated,
    Ringing,
    InProgress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    Vapi,
    Twilio,
    Exotel,
}

impl Provider {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provider::Vapi => "vapi",
            Provider::Twilio => "twilio",
            Provider::Exotel => "exotel",
        }
    }
}

/// How a call ended, whatever the wire calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Final {
    Answered,
    NoAnswer,
    Busy,
    Voicemail,
    Failed,
    Canceled,
}

impl Final {
    pub(crate) fn from_outcome(outcome: SimOutcome) -> Self {
        match outcome {
            SimOutcome::Answered | SimOutcome::Hang => Final::Answered,
            SimOutcome::NoAnswer => Final::NoAnswer,
            SimOutcome::Busy => Final::Busy,
            SimOutcome::Voicemail => Final::Voicemail,
            SimOutcome::Failed => Final::Failed,
        }
    }

    /// Twilio's terminal status (Exotel's too, except `canceled`).
    pub(crate) fn terminal_status(self) -> &'static str {
        match self {
            Final::Answered | Final::Voicemail => "completed",
            Final::NoAnswer => "no-answer",
            Final::Busy => "busy",
            Final::Failed => "failed",
            Final::Canceled => "canceled",
        }
    }
}

/// The provider-specific part of a call.
pub(crate) enum Detail {
    Vapi(vapi::VapiCall),
    Twilio(twilio::TwilioCall),
    Exotel(exotel::ExotelCall),
}

/// What a provider route hands the books to open a call.
pub(crate) struct NewCall {
    /// The number whose `number_outcomes` entry applies (the contact).
    pub number: String,
    /// Peak key: the caller line (phone number id, From, CallerId, inbound `to`).
    pub line: String,
    pub campaign_id: Option<String>,
    pub dialtone_call_id: Option<String>,
    pub inbound: bool,
    /// What the client asked to dial once the call connects: Vapi `customer.extension`,
    /// Twilio `SendDigits` (recorded in [`SimStats::digits_after_connect`]).
    pub digits: Option<String>,
    pub detail: Detail,
}

pub(crate) struct CallRecord {
    pub id: String,
    pub created_at: Timestamp,
    pub status: CallStatus,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub fin: Option<Final>,
    pub ended_reason: Option<String>,
    pub cost: f64,
    /// Simulated (unscaled) talk seconds, known once the call has ended.
    pub talk_secs: f64,
    pub planned: SimOutcome,
    pub line: String,
    pub campaign_id: Option<String>,
    pub detail: Detail,
    /// Next callback sequence number (Twilio's `SequenceNumber`).
    pub next_seq: u64,
    /// This call's ordered webhook queue; dropped when the call ends so the
    /// sender flushes what it held back and stops.
    outbox: Option<Outbox>,
}

impl CallRecord {
    pub(crate) fn provider(&self) -> Provider {
        match self.detail {
            Detail::Vapi(_) => Provider::Vapi,
            Detail::Twilio(_) => Provider::Twilio,
            Detail::Exotel(_) => Provider::Exotel,
        }
    }

    /// The call as its provider's `GET` renders it.
    pub(crate) fn to_json(&self) -> Value {
        match &self.detail {
            Detail::Vapi(v) => vapi::render(self, v),
            Detail::Twilio(t) => twilio::render(self, t),
            Detail::Exotel(e) => exotel::render(self, e),
        }
    }

    pub(crate) fn send(&self, events: Vec<Outgoing>) {
        if let Some(outbox) = &self.outbox {
            for event in events {
                // A closed outbox means the sim is shutting down; nothing to tell.
                let _ = outbox.send((std::time::Instant::now(), event));
            }
        }
    }

    pub(crate) fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.status == CallStatus::Ended
    }
}

/// Everything random about one call, drawn when it is accepted so that a seed
/// reproduces a run regardless of task scheduling.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub outcome: SimOutcome,
    /// Seconds before scaling.
    pub queue_delay: f64,
    pub ring: f64,
    pub talk: f64,
    pub ended_reason: &'static str,
    pub reorder: bool,
    pub drop_ended: bool,
    /// Seeds the per-webhook duplicate draws.
    pub webhook_seed: u64,
}

pub(crate) enum Admission {
    Rejected429,
    Rejected503,
    Accepted { id: String, call: Value, plan: Plan },
}

/// How a call is being ended: by its plan, or by a hang-up / refusal.
pub(crate) struct Ending {
    pub fin: Final,
    pub reason: String,
    /// `None`: priced from the simulated talk time so far.
    pub cost: Option<f64>,
    /// `None`: simulated time since the call was answered.
    pub talk_secs: Option<f64>,
    pub hangup: bool,
}

pub(crate) struct State {
    rng: StdRng,
    time_scale: f64,
    calls: HashMap<String, CallRecord>,
    /// Ids in creation order, for listing newest first.
    order: Vec<String>,
    seen_dialtone_ids: HashSet<String>,
    active_by_line: HashMap<String, u64>,
    active_by_campaign: HashMap<String, u64>,
    active_by_provider: HashMap<String, u64>,
    stats: SimStats,
    /// Every open and end of a call, in order: the record occupancy is judged by.
    live_log: Vec<LiveChange>,
}

impl State {
    pub(crate) fn new(config: &SimConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            rng,
            time_scale: config.time_scale,
            calls: HashMap::new(),
            order: Vec::new(),
            seen_dialtone_ids: HashSet::new(),
            active_by_line: HashMap::new(),
            active_by_campaign: HashMap::new(),
            active_by_provider: HashMap::new(),
            stats: SimStats::default(),
            live_log: Vec::new(),
        }
    }

    pub(crate) fn stats(&self) -> SimStats {
        self.stats.clone()
    }

    pub(crate) fn live_log(&self) -> Vec<LiveChange> {
        self.live_log.clone()
    }

    pub(crate) fn count_unauthorized(&mut self) {
        self.stats.unauthorized += 1;
    }

    pub(crate) fn count_bad_request(&mut self) {
        self.stats.rejected_400 += 1;
    }

    pub(crate) fn latency(&mut self, range: (u64, u64)) -> u64 {
        let (lo, hi) = range;
        if hi <= lo {
            lo
        } else {
            self.rng.gen_range(lo..=hi)
        }
    }

    /// Decides the faults, then creates the call and opens its concurrency slot,
    /// all under the caller's lock so a racing dial sees either none or all of it.
    /// `id` is the provider's id for the new call.
    pub(crate) fn admit(&mut self, config: &SimConfig, id: String, new: NewCall) -> Admission {
        let faults = &config.faults;
        if self.rng.gen_bool(faults.rate_429.clamp(0.0, 1.0)) {
            self.stats.rejected_429 += 1;
            return Admission::Rejected429;
        }
        if self.rng.gen_bool(faults.rate_503.clamp(0.0, 1.0)) {
            self.stats.rejected_503 += 1;
            return Admission::Rejected503;
        }
        let plan = self.plan(config, &new.number);
        self.open(id, new, plan)
    }

    /// An inbound call rings in: no faults, not a dial, but it holds a slot.
    pub(crate) fn admit_inbound(&mut self, config: &SimConfig, id: String, new: NewCall, outcome: SimOutcome) -> Admission {
        self.stats.inbound_requests += 1;
        let mut plan = self.plan_for(config, outcome);
        plan.queue_delay = 0.0;
        self.open(id, new, plan)
    }

    fn open(&mut self, id: String, new: NewCall, plan: Plan) -> Admission {
        let now = Timestamp::now();
        let provider = match new.detail {
            Detail::Vapi(_) => Provider::Vapi,
            Detail::Twilio(_) => Provider::Twilio,
            Detail::Exotel(_) => Provider::Exotel,
        };
        let stats = &mut self.stats;
        if !new.inbound {
            stats.dials += 1;
            *stats.dials_by_provider.entry(provider.as_str().into()).or_insert(0) += 1;
            stats.first_dial_at_ms.get_or_insert(now.as_millisecond());
            if let Some(digits) = &new.digits {
                stats.digits_after_connect.insert(new.number.clone(), digits.clone());
            }
            match &new.dialtone_call_id {
                None => stats.dials_without_dialtone_id += 1,
                Some(dialtone_id) => {
                    if !self.seen_dialtone_ids.insert(dialtone_id.clone()) {
                        stats.duplicate_dials += 1;
                        stats.duplicate_dial_ids.push(dialtone_id.clone());
                    }
                }
            }
        }
        if plan.outcome == SimOutcome::Hang {
            stats.hanging += 1;
        }

        stats.active += 1;
        stats.peak_concurrent = stats.peak_concurrent.max(stats.active);
        self.live_log.push(LiveChange { at_us: now.as_microsecond(), line: new.line.clone(), delta: 1 });
        open_slot(&mut self.active_by_line, &mut stats.peak_concurrent_by_phone_number, &new.line);
        open_slot(&mut self.active_by_provider, &mut stats.peak_concurrent_by_provider, provider.as_str());
        if let Some(campaign) = &new.campaign_id {
            open_slot(&mut self.active_by_campaign, &mut stats.peak_concurrent_by_campaign, campaign);
        }

        let record = CallRecord {
            id: id.clone(),
            created_at: now,
            status: if new.inbound { CallStatus::Ringing } else { CallStatus::Queued },
            started_at: None,
            ended_at: None,
            fin: None,
            ended_reason: None,
            cost: 0.0,
            talk_secs: 0.0,
            planned: plan.outcome,
            line: new.line,
            campaign_id: new.campaign_id,
            detail: new.detail,
            next_seq: 0,
            outbox: None,
        };
        let call = record.to_json();
        self.calls.insert(id.clone(), record);
        self.order.push(id.clone());
        Admission::Accepted { id, call, plan }
    }

    fn plan(&mut self, config: &SimConfig, number: &str) -> Plan {
        let outcome = match config.number_outcomes.get(number) {
            Some(outcome) => *outcome,
            None if config.outcomes.total() == 0 => SimOutcome::Answered,
            None => config.outcomes.pick(self.rng.gen_range(0..config.outcomes.total())),
        };
        self.plan_for(config, outcome)
    }

    fn plan_for(&mut self, config: &SimConfig, outcome: SimOutcome) -> Plan {
        let queue_delay = self.uniform((0.2, 1.0));
        let (ring, talk) = match outcome {
            // Busy lines reject quickly; failures never ring.
            SimOutcome::Busy => (self.uniform((0.5, 2.0)), 0.0),
            SimOutcome::Failed => (0.0, 0.0),
            SimOutcome::NoAnswer => (self.uniform(config.ring_secs), 0.0),
            SimOutcome::Voicemail => {
                let (lo, hi) = config.talk_secs;
                (self.uniform(config.ring_secs), self.uniform((lo * 0.25, hi * 0.25)))
            }
            SimOutcome::Answered | SimOutcome::Hang => (self.uniform(config.ring_secs), self.uniform(config.talk_secs)),
        };
        let ended_reason = match outcome {
            SimOutcome::Answered if self.rng.gen_bool(0.5) => "customer-ended-call",
            SimOutcome::Answered => "assistant-ended-call",
            SimOutcome::Voicemail => "voicemail",
            SimOutcome::NoAnswer => "customer-did-not-answer",
            SimOutcome::Busy => "customer-busy",
            SimOutcome::Failed => "twilio-failed-to-connect-call",
            SimOutcome::Hang => "",
        };
        let faults = &config.faults;
        Plan {
            outcome,
            queue_delay,
            ring,
            talk,
            ended_reason,
            reorder: self.rng.gen_bool(faults.out_of_order.clamp(0.0, 1.0)),
            drop_ended: self.rng.gen_bool(faults.drop_webhooks.clamp(0.0, 1.0)),
            webhook_seed: self.rng.gen(),
        }
    }

    fn uniform(&mut self, (lo, hi): (f64, f64)) -> f64 {
        if hi > lo {
            self.rng.gen_range(lo..hi)
        } else {
            lo.max(0.0)
        }
    }

    pub(crate) fn attach_outbox(&mut self, id: &str, outbox: Outbox) {
        if let Some(call) = self.calls.get_mut(id) {
            call.outbox = Some(outbox);
        }
    }

    pub(crate) fn call_mut(&mut self, id: &str) -> Option<&mut CallRecord> {
        self.calls.get_mut(id)
    }

    /// Moves a live call forward; `None` if it already ended.
    pub(crate) fn advance(&mut self, id: &str, step: Step) -> Option<&mut CallRecord> {
        let call = self.calls.get_mut(id)?;
        if call.is_ended() {
            return None;
        }
        match step {
            Step::Initiated => {}
            Step::Ringing => call.status = CallStatus::Ringing,
            Step::InProgress => {
                call.status = CallStatus::InProgress;
                call.started_at = Some(Timestamp::now());
            }
        }
        Some(call)
    }

    /// Ends a call and closes its concurrency slot. This happens before any
    /// ended webhook goes out, so a receiver never sees "ended" for a call the
    /// sim still counts as active.
    pub(crate) fn end(&mut self, id: &str, ending: Ending) -> Option<&mut CallRecord> {
        let call = self.calls.get_mut(id)?;
        if call.is_ended() {
            return None;
        }
        let now = Timestamp::now();
        let talk_secs = ending.talk_secs.unwrap_or_else(|| match call.started_at {
            Some(started) if self.time_scale > 0.0 => {
                let real = now.duration_since(started).as_secs_f64();
                (real / self.time_scale).max(0.0)
            }
            _ => 0.0,
        });
        call.status = CallStatus::Ended;
        call.ended_at = Some(now);
        call.fin = Some(ending.fin);
        call.ended_reason = Some(ending.reason);
        call.talk_secs = talk_secs;
        call.cost = ending.cost.unwrap_or_else(|| price(call.started_at.is_some(), talk_secs));

        let stats = &mut self.stats;
        stats.active -= 1;
        stats.ended += 1;
        stats.hangups += u64::from(ending.hangup);
        stats.last_ended_at_ms = Some(now.as_millisecond());
        let counts = &mut stats.outcomes;
        match ending.fin {
            Final::Answered => counts.answered += 1,
            Final::NoAnswer => counts.no_answer += 1,
            Final::Busy => counts.busy += 1,
            Final::Voicemail => counts.voicemail += 1,
            Final::Failed => counts.failed += 1,
            Final::Canceled => counts.canceled += 1,
        }
        self.live_log.push(LiveChange { at_us: now.as_microsecond(), line: call.line.clone(), delta: -1 });
        close_slot(&mut self.active_by_line, &call.line);
        close_slot(&mut self.active_by_provider, call.provider().as_str());
        if let Some(campaign) = &call.campaign_id {
            close_slot(&mut self.active_by_campaign, campaign);
        }
        Some(call)
    }

    /// Closes a call's webhook queue (after its last webhook was queued).
    pub(crate) fn close_outbox(&mut self, id: &str) {
        if let Some(call) = self.calls.get_mut(id) {
            call.outbox = None;
        }
    }

    pub(crate) fn get(&self, id: &str, provider: Provider) -> Option<&CallRecord> {
        self.calls.get(id).filter(|call| call.provider() == provider)
    }

    /// Vapi calls created at or after `since` (if given), newest first.
    pub(crate) fn list_vapi(&self, since: Option<Timestamp>, limit: usize) -> Vec<Value> {
        self.order
            .iter()
            .rev()
            .filter_map(|id| self.calls.get(id))
            .filter(|call| call.provider() == Provider::Vapi)
            .filter(|call| since.is_none_or(|since| call.created_at >= since))
            .take(limit)
            .map(CallRecord::to_json)
            .collect()
    }

    pub(crate) fn inbound_answer(&mut self, kind: InboundAnswer) {
        let stats = &mut self.stats;
        match kind {
            InboundAnswer::Answered => stats.inbound_answered += 1,
            InboundAnswer::Error => stats.inbound_errors += 1,
            InboundAnswer::Timeout => stats.inbound_timeouts += 1,
            InboundAnswer::Invalid => stats.inbound_invalid += 1,
        }
    }

    /// One delivery's result; `took` is request sent → answer (or error).
    pub(crate) fn webhook_result(&mut self, ok: bool, took: std::time::Duration) {
        self.stats.webhook_ack_us.add(took.as_micros() as u64);
        if ok {
            self.stats.webhooks_sent += 1;
        } else {
            self.stats.webhooks_failed += 1;
        }
    }

    pub(crate) fn media_records(&self) -> Vec<crate::stats::MediaCallRecord> {
        self.stats.media.clone()
    }

    /// Files what the sim heard on one media stream.
    pub(crate) fn push_media(&mut self, record: crate::stats::MediaCallRecord) {
        self.stats.push_media(record);
    }

    /// An ended webhook is sent `waited` after the call's lifecycle queued it (a dropped one
    /// is never sent, so not counted).
    pub(crate) fn ended_webhook_waited(&mut self, waited: std::time::Duration) {
        self.stats.ended_webhook_wait_us.add(waited.as_micros() as u64);
    }

    pub(crate) fn webhook_duplicated(&mut self) {
        self.stats.webhooks_duplicated += 1;
    }

    pub(crate) fn webhooks_dropped(&mut self, n: u64) {
        self.stats.webhooks_dropped += n;
    }

    pub(crate) fn call_reordered(&mut self) {
        self.stats.calls_reordered += 1;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InboundAnswer {
    Answered,
    Error,
    Timeout,
    Invalid,
}

/// About $0.09 a minute of simulated talk plus a connection fee.
pub(crate) fn price(connected: bool, talk_secs: f64) -> f64 {
    let dollars = if connected { 0.01 + talk_secs / 60.0 * 0.09 } else { 0.0 };
    (dollars * 10_000.0).round() / 10_000.0
}

fn open_slot(active: &mut HashMap<String, u64>, peaks: &mut BTreeMap<String, u64>, key: &str) {
    let now = active.entry(key.to_string()).or_insert(0);
    *now += 1;
    let peak = peaks.entry(key.to_string()).or_insert(0);
    *peak = (*peak).max(*now);
}

fn close_slot(active: &mut HashMap<String, u64>, key: &str) {
    if let Some(now) = active.get_mut(key) {
        *now -= 1;
        if *now == 0 {
            active.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_and_prices() {
        assert_eq!(Final::from_outcome(SimOutcome::Hang), Final::Answered);
        assert_eq!(Final::Voicemail.terminal_status(), "completed");
        assert_eq!(Final::NoAnswer.terminal_status(), "no-answer");
        assert_eq!(Final::Canceled.terminal_status(), "canceled");
        assert_eq!(price(false, 30.0), 0.0);
        assert_eq!(price(true, 60.0), 0.1);
    }
}
