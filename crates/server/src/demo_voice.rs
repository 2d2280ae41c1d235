//! The voice parts of `dialtone demo --voice` and `dialtone bench voice`: the demo's agent,
//! contacts that map to the simulator's scripted callees, and the figures worked out from the
//! simulator's own record of what it heard ([`dialtone_sim::MediaCallRecord`]).

#[cfg(test)]
use dialtone_sim::MediaCallRecord;
use dialtone_sim::{Callee, Histogram, MediaSummary};
use serde_json::{json, Value};

/// The demo's agent as `POST /api/v1/agents` takes it: an appointment reminder on the
/// simulator's speech services (`provider: "sim"`, at `speech.sim_url`).
pub fn demo_agent_json(tts: crate::demo::DemoTts) -> Value {
    let sim = json!({"provider": "sim"});
    json!({
        "name": "Appointment reminder",
        "greeting": "Hi, this is the clinic calling about your appointment tomorrow.",
        "system_prompt": "You remind people of their appointment and answer questions about it briefly.",
        "goodbye": "Thank you, goodbye.",
        "voicemail_message": "Hi, this is the clinic. Please call us back about your appointment tomorrow.",
        "max_duration_secs": 120,
        "stt": sim,
        "llm": sim,
        "tts": {"provider": tts.provider()},
    })
}

/// The default mix of scripted callees for a voice demo: four humans to one of each other kind.
pub const DEFAULT_MIX: [Callee; 9] =
    [Callee::Human, Callee::TalksFirst, Callee::Human, Callee::Silent, Callee::Human, Callee::Voicemail, Callee::BargeIn, Callee::Human, Callee::HangsUpEarly];

/// A number that the simulator's callee rule (last digit, see [`Callee`]) maps to `callee`,
/// distinct for each `n` below 700,000.
pub fn number_for(callee: Callee, n: usize) -> String {
    callee.number_with_prefix(&format!("+1415{}{:03}", 201 + (n / 1_000) % 700, n % 1_000))
}

/// `count` contacts cycling through `mix`, as CSV (`name,phone,callee`).
pub fn voice_csv(count: usize, mix: &[Callee]) -> String {
    let mix = if mix.is_empty() { &DEFAULT_MIX[..] } else { mix };
    let mut out = String::from("name,phone,callee\n");
    for n in 0..count {
        let callee = mix[n % mix.len()];
        out.push_str(&format!("Contact {n},{},{}\n", number_for(callee, n), callee.as_str()));
    }
    out
}

/// Parses `human,barge_in,…` (see [`Callee`]).
pub fn parse_mix(s: &str) -> Result<Vec<Callee>, String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::parse).collect()
}

/// The voice figures of the simulator's summary of every media call: per callee kind (calls,
/// who hung up), and latencies and sizes over all of them.
pub fn summarize(m: &MediaSummary) -> Value {
    let stat = |h: &Histogram| json!({"n": h.n, "p50_ms": h.quantile(0.5), "p95_ms": h.quantile(0.95), "max_ms": h.max});
    json!({
        "calls": m.calls,
        "by_callee": m.by_callee,
        "greeting_latency": stat(&m.greeting_latency_ms),
        "reply_latency": stat(&m.reply_latency_ms),
        "barge_in_to_clear": stat(&m.clear_latency_ms),
        "playout_gap_max_per_call": {"p99_ms": m.playout_gap_max_ms.quantile(0.99), "max_ms": m.playout_gap_max_ms.max, "gaps_over_40_ms": m.playout_gaps},
        "chunk_size_violations": m.chunk_size_violations,
        "voicemails_left": m.voicemails_left,
        "voicemail_calls": m.voicemail_calls,
        "audio_received_s": m.audio_received_ms as f64 / 1000.0,
        // Streams the simulator could not open (the call then ran without media), and why.
        "connect_errors": m.connect_errors,
        "connect_error_example": m.connect_error_example,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_select_their_callee() {
        for callee in Callee::ALL {
            for n in [0, 42, 699_999] {
                let number = number_for(callee, n);
                assert_eq!(Callee::by_last_digit(&number), callee);
                assert!(dialtone_core::PhoneNumber::parse(&number, "US").is_ok(), "{number}");
            }
        }
        let csv = voice_csv(10, &DEFAULT_MIX);
        assert_eq!(csv.lines().count(), 11);
        assert!(csv.lines().nth(10).unwrap().ends_with(",human"), "the mix wraps around");
        assert_eq!(parse_mix("human, barge_in"), Ok(vec![Callee::Human, Callee::BargeIn]));
        assert!(parse_mix("human,robot").is_err());
    }

    #[test]
    fn summary_of_records() {
        let rec = |callee: &str, greeting: Option<u64>, replies: Vec<u64>, by: &str| MediaCallRecord {
            callee: callee.into(),
            connected: true,
            greeting_latency_ms: greeting,
            reply_latencies_ms: replies,
            hung_up_by: Some(by.into()),
            ..MediaCallRecord::default()
        };
        let mut barge = rec("barge_in", Some(300), vec![], "callee");
        barge.clear_latency_ms = Some(220);
        let mut vm = rec("voicemail", Some(400), vec![], "dialtone");
        vm.voicemail_left = Some(true);
        let mut m = MediaSummary::default();
        for r in [rec("human", Some(200), vec![900, 1_100], "dialtone"), rec("talks_first", Some(1_500), vec![800], "callee"), barge, vm] {
            m.add(&r);
        }
        let s = summarize(&m);
        assert_eq!(s["calls"], 4);
        assert_eq!(s["greeting_latency"]["n"], 3, "talks_first's greeting answers its hello: not a greeting latency");
        assert_eq!(s["greeting_latency"]["p50_ms"], 300);
        assert_eq!(s["reply_latency"]["max_ms"], 1_100);
        assert_eq!(s["barge_in_to_clear"]["p95_ms"], 220);
        assert_eq!((s["voicemails_left"].as_u64(), s["voicemail_calls"].as_u64()), (Some(1), Some(1)));
        assert_eq!(s["by_callee"]["human"]["hung_up_by"]["dialtone"], 1);
    }
}
