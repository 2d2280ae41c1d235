//! `dialtone sim`: the provider simulator as a standalone server.

use clap::Args;
use dialtone_sim::{Faults, OutcomeMix, Sim, SimConfig};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Where to POST Vapi-shaped webhooks (e.g. http://127.0.0.1:8080/webhooks/vapi).
    #[arg(long, env = "DIALTONE_SIM_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Shared secret sent as `Authorization: Bearer` (match dialtone's vapi_webhook_secret).
    #[arg(long, env = "DIALTONE_VAPI_WEBHOOK_SECRET")]
    pub webhook_secret: Option<String>,
    /// Sign webhooks with HMAC-SHA256 instead (x-timestamp / x-signature).
    #[arg(long)]
    pub hmac_secret: Option<String>,
    /// API key required on POST/GET /call (match dialtone's sim_api_key).
    #[arg(long, default_value = "sim")]
    pub api_key: String,
    /// Key the speech services (Deepgram-, OpenAI-, ElevenLabs-compatible) require (match
    /// dialtone's `speech.sim_api_key`); unset accepts any.
    #[arg(long, env = "DIALTONE_SIM_SPEECH_API_KEY")]
    pub speech_api_key: Option<String>,
    /// Multiplies every simulated duration: 1 = real time, 0.01 = 100× faster.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Outcome weights, e.g. answered=60,no_answer=20,busy=8,voicemail=7,failed=5.
    #[arg(long)]
    pub outcomes: Option<String>,
    /// Turn the demo fault mix on (429s, 503s, latency, duplicate, out-of-order and dropped webhooks).
    #[arg(long)]
    pub faults: bool,
    #[arg(long)]
    pub rate_429: Option<f64>,
    #[arg(long)]
    pub rate_503: Option<f64>,
    /// Share of webhooks sent twice.
    #[arg(long)]
    pub duplicate_webhooks: Option<f64>,
    /// Share of calls whose progress webhooks arrive after their end.
    #[arg(long)]
    pub out_of_order: Option<f64>,
    /// Share of calls whose end webhooks are never sent.
    #[arg(long)]
    pub drop_webhooks: Option<f64>,
    /// Added latency on API responses, in ms (uniform 0..N).
    #[arg(long)]
    pub latency_ms: Option<u64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Serve Twilio's API for this account (with --twilio-auth-token).
    #[arg(long)]
    pub twilio_account_sid: Option<String>,
    #[arg(long)]
    pub twilio_auth_token: Option<String>,
    /// Serve Exotel's API for this account (with --exotel-api-key and --exotel-api-token).
    #[arg(long)]
    pub exotel_sid: Option<String>,
    #[arg(long)]
    pub exotel_api_key: Option<String>,
    #[arg(long)]
    pub exotel_api_token: Option<String>,
    /// Scripted callees of media-stream calls per dialled number, e.g.
    /// `+14155550101=human,+14155550102=barge_in`. Other numbers: by their last digit
    /// (0–3, 9 human; 4 talks_first; 5 silent; 6 voicemail; 7 barge_in; 8 hangs_up_early).
    #[arg(long)]
    pub callees: Option<String>,
}

/// `NUMBER=KIND,…` → the sim's per-number callees.
fn parse_callees(s: &str) -> anyhow::Result<std::collections::HashMap<String, dialtone_sim::Callee>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (number, kind) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("--callees: expected NUMBER=KIND, got `{pair}`"))?;
            let callee = kind.parse().map_err(|e: String| anyhow::anyhow!("--callees: {e}"))?;
            Ok((number.trim().to_string(), callee))
        })
        .collect()
}

impl SimArgs {
    pub fn config(&self) -> anyhow::Result<SimConfig> {
        let mut faults = if self.faults { Faults::demo_mix() } else { Faults::none() };
        if let Some(v) = self.rate_429 {
            faults.rate_429 = v;
        }
        if let Some(v) = self.rate_503 {
            faults.rate_503 = v;
        }
        if let Some(v) = self.duplicate_webhooks {
            faults.duplicate_webhooks = v;
        }
        if let Some(v) = self.out_of_order {
            faults.out_of_order = v;
        }
        if let Some(v) = self.drop_webhooks {
            faults.drop_webhooks = v;
        }
        if let Some(v) = self.latency_ms {
            faults.latency_ms = (0, v);
        }
        anyhow::ensure!(self.time_scale > 0.0, "--time-scale must be above 0");
        Ok(SimConfig {
            webhook_url: self.webhook_url.clone(),
            webhook_secret: self.webhook_secret.clone(),
            hmac_secret: self.hmac_secret.clone(),
            api_key: Some(self.api_key.clone()),
            speech_api_key: self.speech_api_key.clone(),
            time_scale: self.time_scale,
            outcomes: match &self.outcomes {
                Some(s) => OutcomeMix::parse(s).map_err(anyhow::Error::msg)?,
                None => OutcomeMix::default(),
            },
            faults,
            seed: self.seed,
            twilio_account_sid: self.twilio_account_sid.clone(),
            twilio_auth_token: self.twilio_auth_token.clone(),
            exotel_sid: self.exotel_sid.clone(),
            exotel_api_key: self.exotel_api_key.clone(),
            exotel_api_token: self.exotel_api_token.clone(),
            callees: self.callees.as_deref().map(parse_callees).transpose()?.unwrap_or_default(),
            ..SimConfig::default()
        })
    }

    pub async fn run(self) -> anyhow::Result<()> {
        let config = self.config()?;
        let listener = tokio::net::TcpListener::bind(&self.listen).await?;
        let addr = listener.local_addr()?;
        eprintln!("dialtone sim listening on http://{addr} (stats: GET /sim/stats)");
        if self.twilio_account_sid.is_some() {
            eprintln!("  Twilio API at http://{addr}/2010-04-01 (set DIALTONE_TWILIO_BASE_URL to it)");
        }
        if self.exotel_sid.is_some() {
            eprintln!("  Exotel API at http://{addr} (set DIALTONE_EXOTEL_BASE_URL to it)");
        }
        Sim::new(config).serve(listener).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callees_flag() {
        let map = parse_callees("+14155550101=human, +14155550102=barge_in").unwrap();
        assert_eq!(map["+14155550102"], dialtone_sim::Callee::BargeIn);
        assert!(parse_callees("+14155550101").unwrap_err().to_string().contains("NUMBER=KIND"));
        assert!(parse_callees("+14155550101=robot").unwrap_err().to_string().contains("robot"));
    }
}
