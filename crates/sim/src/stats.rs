use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A snapshot of what the simulator saw; served at `GET /sim/stats`.
///
/// Benchmarks and tests judge the engine by these numbers (peak concurrency,
/// duplicate dials), so they are all taken under one lock. Dials, duplicates,
/// `active` and the peaks count the calls of every provider (Vapi, Twilio,
/// Exotel) together; `active` and the peaks include inbound calls, as Vapi's
/// account concurrency does.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct SimStats {
    /// Accepted call creations, all providers (Vapi `POST /call` 201, Twilio
    /// `Calls.json` 201, Exotel `connect.json` 200). Inbound calls are not dials.
    pub dials: u64,
    /// Accepted dials per provider: `"vapi"`, `"twilio"`, `"exotel"`.
    pub dials_by_provider: BTreeMap<String, u64>,
    /// Per dialled number, the digits asked for after the call connects (an extension):
    /// Vapi `customer.extension`, Twilio `SendDigits`, as sent.
    pub digits_after_connect: BTreeMap<String, String>,
    pub rejected_429: u64,
    pub rejected_503: u64,
    pub rejected_400: u64,
    pub unauthorized: u64,
    /// Calls accepted (or rung in) and not yet ended, now (hanging calls stay here).
    pub active: u64,
    pub peak_concurrent: u64,
    /// Keyed by the caller line: Vapi `phoneNumberId`, Twilio `From`, Exotel
    /// `CallerId`, and for inbound Vapi calls the number called (`to`).
    pub peak_concurrent_by_phone_number: BTreeMap<String, u64>,
    /// Keyed by dialtone campaign id: Vapi `assistantOverrides.metadata.campaignId`,
    /// Twilio/Exotel the `dialtone_campaign_id` query parameter of the StatusCallback URL.
    pub peak_concurrent_by_campaign: BTreeMap<String, u64>,
    /// `"vapi"`, `"twilio"`, `"exotel"`.
    pub peak_concurrent_by_provider: BTreeMap<String, u64>,
    /// Accepted dials whose dialtone call id had been accepted before, by any
    /// provider (Vapi `metadata.dialtoneCallId`, Twilio StatusCallback URL
    /// `dialtone_call_id`, Exotel `CustomField`).
    pub duplicate_dials: u64,
    pub duplicate_dial_ids: Vec<String>,
    pub dials_without_dialtone_id: u64,
    /// Unix ms of the first accepted dial.
    pub first_dial_at_ms: Option<i64>,
    /// Unix ms of the last call to end.
    pub last_ended_at_ms: Option<i64>,
    pub ended: u64,
    pub outcomes: OutcomeCounts,
    /// Calls that were set to hang forever.
    pub hanging: u64,
    /// Calls ended by a client's hang-up request (Vapi control `end-call`,
    /// Twilio `Status=completed|canceled`).
    pub hangups: u64,
    /// Successful (2xx) deliveries, duplicates and assistant-requests included.
    pub webhooks_sent: u64,
    /// Non-2xx answers and transport errors.
    pub webhooks_failed: u64,
    /// Webhooks withheld by the drop fault.
    pub webhooks_dropped: u64,
    /// Webhooks sent a second time by the duplicate fault.
    pub webhooks_duplicated: u64,
    /// Calls whose progress webhooks were sent after their ended webhooks.
    pub calls_reordered: u64,
    /// Every delivery, request sent → the receiver's answer, in µs (the histogram's values
    /// are µs here: buckets 1 µs wide below 1 ms, 10 µs below 10 ms; over 3.6 s counts as
    /// 3.6 s): the receiver's ack latency,
    /// which for dialtone is the wait for the commit that holds the webhook's events.
    pub webhook_ack_us: Histogram,
    /// Each ended webhook (Vapi's ended status and end-of-call report, Twilio and Exotel's
    /// terminal callback) sent, queued → its request sent, in µs: the wait behind the call's
    /// earlier webhooks, which go strictly one after another, each after the previous one's
    /// answer (as providers deliver a call's webhooks in order).
    pub ended_webhook_wait_us: Histogram,
    /// Inbound calls rung in through `POST /sim/inbound` (one assistant-request each).
    pub inbound_requests: u64,
    /// Answered with `{"assistantId": …}` or `{"assistant": {…}}`.
    pub inbound_answered: u64,
    /// Answered with `{"error": …}`.
    pub inbound_errors: u64,
    /// No answer within 7.5 s.
    pub inbound_timeouts: u64,
    /// Anything else: non-2xx, transport error, a body naming no assistant.
    pub inbound_invalid: u64,
    /// What the simulator heard on the latest media-stream calls (Exotel `StreamUrl`, Twilio
    /// `<Connect><Stream>`), in the order the calls ended: a bounded sample, between
    /// [`MEDIA_RECORDS_KEPT`] and twice that many (the oldest half is dropped when full).
    pub media: Vec<MediaCallRecord>,
    /// Added: every media-stream call's record folded into counts and latency histograms,
    /// in constant memory however long the simulator runs.
    pub media_summary: MediaSummary,
}

/// [`SimStats::media`] keeps at least this many of the latest records (1,000).
pub const MEDIA_RECORDS_KEPT: usize = 1_000;

impl SimStats {
    /// Files one media call's record: into [`Self::media_summary`], and into the bounded
    /// sample [`Self::media`].
    pub fn push_media(&mut self, record: MediaCallRecord) {
        self.media_summary.add(&record);
        if self.media.len() >= 2 * MEDIA_RECORDS_KEPT {
            self.media.drain(..self.media.len() - MEDIA_RECORDS_KEPT + 1);
        }
        self.media.push(record);
    }
}

/// Every media call the simulator heard, aggregated (what `dialtone demo --voice` and
/// `dialtone bench voice` report). Constant size: counts, and latency [`Histogram`]s.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct MediaSummary {
    pub calls: u64,
    /// Per scripted callee kind.
    pub by_callee: BTreeMap<String, CalleeSummary>,
    /// `start` → first non-silent frame, except `talks_first` callees (their greeting
    /// answers their "Hello?").
    pub greeting_latency_ms: Histogram,
    /// Each answered utterance's end of speech → first non-silent audio.
    pub reply_latency_ms: Histogram,
    /// Barge-in onset → `clear`.
    pub clear_latency_ms: Histogram,
    /// Per connected call, its longest playout gap.
    pub playout_gap_max_ms: Histogram,
    /// Gaps over 40 ms, all calls.
    pub playout_gaps: u64,
    pub chunk_size_violations: u64,
    /// Voicemail callees on whose box a message was left / all voicemail callees.
    pub voicemails_left: u64,
    pub voicemail_calls: u64,
    pub audio_received_ms: u64,
    /// Streams the simulator could not open, and the first reason.
    pub connect_errors: u64,
    pub connect_error_example: Option<String>,
}

/// One callee kind's calls in a [`MediaSummary`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct CalleeSummary {
    pub calls: u64,
    pub connect_errors: u64,
    /// `callee`, `dialtone`, `sim`, `error` (or `-`) → calls.
    pub hung_up_by: BTreeMap<String, u64>,
}

impl MediaSummary {
    pub fn add(&mut self, r: &MediaCallRecord) {
        self.calls += 1;
        let callee = self.by_callee.entry(r.callee.clone()).or_default();
        callee.calls += 1;
        *callee.hung_up_by.entry(r.hung_up_by.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
        if let Some(e) = &r.connect_error {
            callee.connect_errors += 1;
            self.connect_errors += 1;
            self.connect_error_example.get_or_insert_with(|| e.clone());
        }
        if r.callee != "talks_first" {
            if let Some(ms) = r.greeting_latency_ms {
                self.greeting_latency_ms.add(ms);
            }
        }
        for ms in &r.reply_latencies_ms {
            self.reply_latency_ms.add(*ms);
        }
        if let Some(ms) = r.clear_latency_ms {
            self.clear_latency_ms.add(ms);
        }
        if r.connected {
            self.playout_gap_max_ms.add(r.playout_gap_max_ms);
        }
        self.playout_gaps += r.playout_gaps;
        self.chunk_size_violations += r.chunk_size_violations;
        if let Some(left) = r.voicemail_left {
            self.voicemail_calls += 1;
            self.voicemails_left += u64::from(left);
        }
        self.audio_received_ms += r.audio_received_ms;
    }
}

/// Millisecond values in buckets: exact below 1 s, 10 ms wide below 10 s, 100 ms below 100 s,
/// 1 s up to an hour (at most 6,300 buckets whatever the count). Quantiles by nearest rank, reported
/// as their bucket's lower bound.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Histogram {
    pub n: u64,
    pub max: Option<u64>,
    /// Bucket lower bound (ms) → values in it.
    pub buckets: BTreeMap<u64, u64>,
}

impl Histogram {
    pub fn add(&mut self, ms: u64) {
        let ms = ms.min(3_600_000);
        let bucket = match ms {
            0..1_000 => ms,
            1_000..10_000 => ms / 10 * 10,
            10_000..100_000 => ms / 100 * 100,
            _ => ms / 1_000 * 1_000,
        };
        *self.buckets.entry(bucket).or_default() += 1;
        self.n += 1;
        self.max = Some(self.max.map_or(ms, |m| m.max(ms)));
    }

    /// The `p`-quantile (0..=1) by nearest rank; `None` when empty.
    pub fn quantile(&self, p: f64) -> Option<u64> {
        let rank = ((self.n as f64 * p).ceil() as u64).clamp(1, self.n.max(1));
        let mut seen = 0;
        for (bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(*bucket);
            }
        }
        None
    }
}

/// What the simulator, playing the callee, heard on one media-stream call. Times are ms on
/// the session's clock (tokio time), counted from the moment the sim sent `start`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct MediaCallRecord {
    /// The provider's call id (Exotel `Sid`, Twilio `CA…`).
    pub call_sid: String,
    /// `"exotel"` or `"twilio"`.
    pub provider: String,
    /// The scripted callee (`human`, `talks_first`, `silent`, `voicemail`, `barge_in`,
    /// `hangs_up_early`; see `dialtone_sim::Callee`).
    pub callee: String,
    /// The dialled number.
    pub number: String,
    pub stream_sid: String,
    /// The WebSocket to the stream URL was opened.
    pub connected: bool,
    /// Why it could not be (then the call ran its planned talk time without media).
    pub connect_error: Option<String>,
    /// Echoed in `start` (Exotel: the StreamUrl's query parameters; Twilio: `<Parameter>`s).
    pub custom_parameters: BTreeMap<String, String>,
    /// `start` sent → first non-silent audio frame received.
    pub greeting_latency_ms: Option<u64>,
    /// For each callee utterance answered: end of its speech → first non-silent audio received.
    pub reply_latencies_ms: Vec<u64>,
    /// Barge-in callee: onset of its interrupting speech → first `clear` received.
    pub clear_latency_ms: Option<u64>,
    pub clears: u64,
    pub marks_received: u64,
    /// Mark names echoed back when playback reached them (or returned by a Twilio `clear`), in order.
    pub marks_echoed: Vec<String>,
    /// `media` messages received from dialtone.
    pub chunks: u64,
    /// Payload size in bytes (decoded) → how many chunks had it.
    pub chunk_sizes: BTreeMap<u32, u64>,
    /// Chunks breaking the provider's size rule: Exotel a multiple of 320 B, ≥ 3,200 B (except
    /// the last before a `mark`, `clear` or the end), ≤ 100,000 B; Twilio exactly 160 B.
    pub chunk_size_violations: u64,
    /// The first 20 offending sizes, in bytes.
    pub violation_sizes: Vec<u32>,
    /// Audio received, in ms (Exotel 16 B/ms PCM16, Twilio 8 B/ms μ-law).
    pub audio_received_ms: u64,
    /// Of which non-silent, in ms (20 ms frames, RMS > 200).
    pub voiced_received_ms: u64,
    /// Longest time the virtual speaker ran dry before audio that resumed within 1 s: an
    /// audible gap mid-speech from late frames.
    pub playout_gap_max_ms: u64,
    /// Gaps counted in `playout_gap_max_ms` longer than 40 ms.
    pub playout_gaps: u64,
    /// The callee's clips in the order it played them.
    pub clips_played: Vec<String>,
    /// Voicemail callee only: ≥ 1 s of non-silent audio arrived after the beep.
    pub voicemail_left: Option<bool>,
    /// `"callee"` (the script hung up: `stop` sent, socket closed), `"dialtone"` (it closed
    /// the socket or ended the call through the API), `"sim"` (stopped), `"error"` (the socket failed).
    pub hung_up_by: Option<String>,
    /// `start` sent → the session ended.
    pub duration_ms: u64,
    /// `media` frames the callee sent.
    pub frames_sent: u64,
    /// Messages from dialtone that were not valid JSON of a known event, or had a bad payload.
    pub bad_messages: u64,
}

/// How calls ended, as the provider reported it on the wire.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct OutcomeCounts {
    /// Answered by a person and completed (a Twilio `Status=completed` hang-up
    /// of an answered call reports `completed`, so it counts here).
    pub answered: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub voicemail: u64,
    /// Includes inbound calls whose assistant-request was refused or unanswered.
    pub failed: u64,
    /// Vapi `manually-canceled` (control `end-call`) and Twilio `canceled`.
    pub canceled: u64,
}

/// One change in the number of live calls, in the order the books saw it (appended under
/// the books' lock, so the order is exact): a call accepted (`+1`) or ended (`-1`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LiveChange {
    /// Unix microseconds.
    pub at_us: i64,
    /// The caller line the call holds a slot on (the key of `peak_concurrent_by_phone_number`).
    pub line: String,
    /// `+1` opened, `-1` ended.
    pub delta: i8,
}

/// How well one line's slots were kept busy, worked out from the simulator's record of live
/// calls ([`LiveChange`]s), so the engine is judged from outside.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Occupancy {
    /// Calls opened on the line.
    pub calls: u64,
    /// Most calls live at once.
    pub peak: u64,
    /// Live calls averaged over time, from the first call opened to the last one ended.
    pub average: f64,
    /// `average / cap` (0 when the cap is 0).
    pub average_of_cap: f64,
    /// From the first call opened to the last one ended, in ms.
    pub span_ms: f64,
    /// `calls / span`.
    pub calls_per_sec: f64,
    /// Refill latency: a call ended → the next call opened on the line, in ms. Ends are
    /// paired first in, first out with the opens that follow them; ends never followed by
    /// an open (the campaign ran out of contacts) are not counted.
    pub refills: u64,
    pub refill_p50_ms: f64,
    pub refill_p99_ms: f64,
    pub refill_max_ms: f64,
}

impl Occupancy {
    /// The figures of `line` in `log` (in the books' order), against `cap`.
    pub fn of(log: &[LiveChange], line: &str, cap: u64) -> Self {
        let mut out = Occupancy::default();
        let (mut live, mut first, mut last, mut area) = (0i64, None::<i64>, 0i64, 0f64);
        let mut pending_ends = std::collections::VecDeque::<i64>::new();
        let mut refills: Vec<f64> = vec![];
        for change in log.iter().filter(|c| c.line == line) {
            if first.is_some() {
                area += live as f64 * (change.at_us - last).max(0) as f64;
            }
            last = change.at_us;
            if change.delta > 0 {
                first.get_or_insert(change.at_us);
                out.calls += 1;
                if let Some(ended) = pending_ends.pop_front() {
                    refills.push((change.at_us - ended).max(0) as f64 / 1000.0);
                }
            } else {
                pending_ends.push_back(change.at_us);
            }
            live = (live + i64::from(change.delta)).max(0);
            out.peak = out.peak.max(live as u64);
        }
        let Some(first) = first else { return out };
        let span_us = (last - first).max(1) as f64;
        out.span_ms = span_us / 1000.0;
        out.average = area / span_us;
        out.average_of_cap = if cap == 0 { 0.0 } else { out.average / cap as f64 };
        out.calls_per_sec = out.calls as f64 / span_us * 1e6;
        refills.sort_by(f64::total_cmp);
        let pct = |p: f64| refills.get(((refills.len() as f64 * p) as usize).min(refills.len().saturating_sub(1))).copied().unwrap_or(0.0);
        out.refills = refills.len() as u64;
        (out.refill_p50_ms, out.refill_p99_ms, out.refill_max_ms) = (pct(0.50), pct(0.99), pct(1.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64, line: &str, delta: i8) -> LiveChange {
        LiveChange { at_us: ms * 1000, line: line.into(), delta }
    }

    #[test]
    fn occupancy_of_a_known_timeline() {
        // Cap 2 on line "a": one call 0–10 ms, another 0–4 ms refilled at 6 ms (2 ms after
        // its end) and ending at 10 ms; line "b" is ignored.
        let log = vec![at(0, "a", 1), at(0, "a", 1), at(1, "b", 1), at(4, "a", -1), at(6, "a", 1), at(10, "a", -1), at(10, "a", -1), at(20, "b", -1)];
        let o = Occupancy::of(&log, "a", 2);
        assert_eq!(o.calls, 3);
        assert_eq!(o.peak, 2);
        // 2 live for 4 ms, 1 for 2 ms, 2 for 4 ms over 10 ms: (8 + 2 + 8) / 10.
        assert!((o.average - 1.8).abs() < 1e-9, "{o:?}");
        assert!((o.average_of_cap - 0.9).abs() < 1e-9);
        assert!((o.span_ms - 10.0).abs() < 1e-9);
        assert!((o.calls_per_sec - 300.0).abs() < 1e-9);
        // Only the end at 4 ms was followed by an open; the two at 10 ms never were.
        assert_eq!(o.refills, 1);
        assert_eq!((o.refill_p50_ms, o.refill_p99_ms, o.refill_max_ms), (2.0, 2.0, 2.0));
    }

    #[test]
    fn refills_pair_ends_with_the_opens_after_them_first_in_first_out() {
        // Two ends at 0 and 1 ms, then opens at 5 and 9 ms: 5 and 8 ms.
        let log = vec![at(-10, "a", 1), at(-10, "a", 1), at(0, "a", -1), at(1, "a", -1), at(5, "a", 1), at(9, "a", 1)];
        let o = Occupancy::of(&log, "a", 2);
        assert_eq!(o.refills, 2);
        assert_eq!((o.refill_p50_ms, o.refill_max_ms), (8.0, 8.0));
        assert_eq!(o.peak, 2);
    }

    #[test]
    fn an_empty_record_has_no_figures() {
        assert_eq!(Occupancy::of(&[], "a", 5), Occupancy::default());
    }
}

#[cfg(test)]
mod media_tests {
    use super::*;

    #[test]
    fn histogram_quantiles_by_nearest_rank_in_bounded_buckets() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=100 {
            h.add(ms);
        }
        assert_eq!((h.quantile(0.5), h.quantile(0.95), h.quantile(1.0), h.max), (Some(50), Some(95), Some(100), Some(100)));
        for ms in 0..1_000_000 {
            h.add(ms);
        }
        assert!(h.buckets.len() <= 6_300, "{} buckets", h.buckets.len());
        assert_eq!((h.quantile(1.0), h.max), (Some(999_000), Some(999_999)), "the top bucket is 1 s wide");
    }

    #[test]
    fn media_records_stay_bounded_while_the_summary_counts_every_call() {
        let mut stats = SimStats::default();
        for n in 0..5_000u64 {
            let callee = if n % 2 == 0 { "human" } else { "voicemail" };
            stats.push_media(MediaCallRecord {
                call_sid: n.to_string(),
                callee: callee.into(),
                connected: true,
                greeting_latency_ms: Some(n % 400),
                voicemail_left: (callee == "voicemail").then_some(true),
                hung_up_by: Some("dialtone".into()),
                ..MediaCallRecord::default()
            });
            assert!(stats.media.len() <= 2 * MEDIA_RECORDS_KEPT);
        }
        assert!(stats.media.len() >= MEDIA_RECORDS_KEPT);
        assert_eq!(stats.media.last().unwrap().call_sid, "4999", "the latest are kept");
        let s = &stats.media_summary;
        assert_eq!((s.calls, s.greeting_latency_ms.n, s.voicemail_calls, s.voicemails_left), (5_000, 5_000, 2_500, 2_500));
        assert_eq!(s.by_callee["human"].hung_up_by["dialtone"], 2_500);
        assert_eq!(s.greeting_latency_ms.quantile(1.0), Some(399));
    }
}
