//! The delivery worker for outbound events (`dialtone_store::shared::outbox` holds the
//! outbox and its rules). Every node runs it: each pass claims due deliveries with a lease
//! (`Store::claim_deliveries`; PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's one writer),
//! sends them at most `webhook_concurrency` at a time on its own HTTP client (10 s timeout
//! per try), and records each try (`Store::finish_delivery`), which schedules the retry.
//! It is its own task with its own client and connections' worth of work, so a slow or
//! dead receiver never holds up dialling or ingest. Schedule decisions use the engine's
//! clock; latency is measured on the monotonic clock.
//!
//! Signing is Standard Webhooks (https://www.standardwebhooks.com/): `webhook-id` (the
//! message id, the same on every retry), `webhook-timestamp` (unix seconds of this try),
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per
//! signing secret, space separated: two during a rotation), by the `standardwebhooks` crate.

use crate::{Engine, EngineError};
use dialtone_store::{Claimed, TryResult};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a claim is held: well over one try's timeout, so a live node always finishes
/// first; a dead node's claims are due again after it.
pub const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Most deliveries claimed in one pass.
const CLAIM_LIMIT: u32 = 100;

/// The HTTP client the worker sends with: its own, 10 s per try, no redirects followed (a
/// redirect is a non-2xx answer, retried).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("dialtone-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a reqwest client with rustls builds")
}

/// The `webhook-signature` header value for `body` sent as message `id` at `timestamp`
/// (unix seconds): one `v1,<base64>` per secret (`whsec_…`), space separated. A secret
/// that does not decode is skipped (none is stored that way).
pub fn signature(secrets: &[String], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|s| standardwebhooks::Webhook::new(s).ok())
        .filter_map(|w| w.sign(id, timestamp, body.as_bytes()).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) async fn run(engine: Arc<Engine>, cancel: CancellationToken) {
    let client = client(engine.config.webhook_timeout);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(engine.config.webhook_interval) => {}
        }
        if let Err(e) = engine.deliver_webhooks(&client).await {
            tracing::warn!(error = %e, "webhook delivery pass failed; retrying on the next pass");
        }
    }
}

impl Engine {
    /// One pass of the delivery worker: claims what is due at the engine clock's now, sends
    /// it (at most `webhook_concurrency` at once) and records each try. Returns how many
    /// tries were made.
    pub async fn deliver_webhooks(&self, client: &reqwest::Client) -> Result<usize, EngineError> {
        let now = self.clock.now();
        let claimed = self.store.claim_deliveries(self.node.as_str(), now, LEASE, CLAIM_LIMIT).await?;
        let n = claimed.len();
        let results: Vec<Result<(), EngineError>> =
            futures::stream::iter(claimed).map(|c| self.deliver_one(client, c)).buffer_unordered(self.config.webhook_concurrency.max(1)).collect().await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn deliver_one(&self, client: &reqwest::Client, c: Claimed) -> Result<(), EngineError> {
        let d = &c.delivery;
        let timestamp = self.clock.now().as_second();
        let signature = signature(&c.secrets, d.message_id.as_str(), timestamp, &d.payload);
        let started = Instant::now();
        let answer = client
            .post(&c.url)
            .header("content-type", "application/json")
            .header("webhook-id", d.message_id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await;
        let result = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                TryResult { status_code: Some(status), latency_ms: started.elapsed().as_millis() as u64, response_excerpt: Some(body), error: None }
            }
            Err(e) => {
                let what = if e.is_timeout() { "timeout".to_string() } else { format!("{e}") };
                TryResult { status_code: None, latency_ms: started.elapsed().as_millis() as u64, response_excerpt: None, error: Some(what) }
            }
        };
        if !result.succeeded() {
            tracing::info!(endpoint = %d.endpoint_id, message = %d.message_id, attempt = d.attempts, status = ?result.status_code, error = ?result.error,
                "webhook delivery failed; retried on the schedule");
        }
        self.store.finish_delivery(d, d.attempts, self.node.as_str(), &result, self.clock.now()).await?;
        Ok(())
    }
}
