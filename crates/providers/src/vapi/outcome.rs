//! Vapi's `endedReason` → our [`Outcome`]. Vapi has well over a hundred reasons and adds
//! more without notice, so anything not named here is `Failed`; the caller keeps the raw
//! reason next to the outcome so nothing is lost.

use dialtone_core::Outcome;

pub fn outcome_for(ended_reason: &str) -> Outcome {
    match ended_reason {
        "customer-did-not-answer" => Outcome::NoAnswer,
        "customer-busy" => Outcome::Busy,
        "voicemail" => Outcome::Voicemail,
        "customer-ended-call"
        | "assistant-ended-call"
        | "assistant-said-end-call-phrase"
        | "assistant-forwarded-call"
        | "exceeded-max-duration"
        | "silence-timed-out" => Outcome::Completed,
        "twilio-reported-customer-misdialed" => Outcome::InvalidNumber,
        "manually-canceled" => Outcome::Canceled,
        // Named for the record: these are failures like any unknown reason, but a reader
        // looking for them should find them here.
        "twilio-failed-to-connect-call" | "call.start.error-subscription-concurrency-limit-reached" => Outcome::Failed,
        r if r.starts_with("pipeline-error-") || r.starts_with("call.in-progress.error-") => Outcome::Failed,
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_md_table() {
        let table = [
            ("customer-did-not-answer", Outcome::NoAnswer),
            ("customer-busy", Outcome::Busy),
            ("voicemail", Outcome::Voicemail),
            ("customer-ended-call", Outcome::Completed),
            ("assistant-ended-call", Outcome::Completed),
            ("assistant-said-end-call-phrase", Outcome::Completed),
            ("assistant-forwarded-call", Outcome::Completed),
            ("exceeded-max-duration", Outcome::Completed),
            ("silence-timed-out", Outcome::Completed),
            ("twilio-failed-to-connect-call", Outcome::Failed),
            ("twilio-reported-customer-misdialed", Outcome::InvalidNumber),
            ("manually-canceled", Outcome::Canceled),
            ("call.start.error-subscription-concurrency-limit-reached", Outcome::Failed),
            ("pipeline-error-openai-llm-failed", Outcome::Failed),
            ("call.in-progress.error-vapifault-transport-never-connected", Outcome::Failed),
        ];
        for (reason, want) in table {
            assert_eq!(outcome_for(reason), want, "{reason}");
        }
    }

    #[test]
    fn unknown_reasons_are_failures() {
        assert_eq!(outcome_for("some-reason-vapi-added-yesterday"), Outcome::Failed);
        assert_eq!(outcome_for(""), Outcome::Failed);
    }
}
