//! Ingest: one writer task group-commits webhook events. Each webhook waits for the
//! commit that holds its events, so a 2xx is only ever sent for what is on disk.

use crate::Engine;
use dialtone_core::ProviderEvent;
use dialtone_store::Applied;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(crate) struct Job {
    events: Vec<ProviderEvent>,
    reply: oneshot::Sender<Result<Vec<Applied>, IngestError>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("could not store the events: {0}")]
    Store(String),
    #[error("the engine is shutting down")]
    ShuttingDown,
}

impl Engine {
    /// Stores and applies `events`; returns once they are committed.
    pub async fn ingest(&self, events: Vec<ProviderEvent>) -> Result<Vec<Applied>, IngestError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let (reply, done) = oneshot::channel();
        self.ingest_tx.send(Job { events, reply }).await.map_err(|_| IngestError::ShuttingDown)?;
        done.await.map_err(|_| IngestError::ShuttingDown)?
    }
}

/// The group-committing writer: takes whatever is waiting (up to `ingest_batch` events)
/// and commits it in one transaction, so the batch grows with the load.
pub(crate) async fn writer(engine: Arc<Engine>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut n = jobs[0].events.len();
        while n < engine.config.ingest_batch {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.events.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        commit(&engine, jobs).await;
        engine.ingest_busy_ns.fetch_add(started.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn commit(engine: &Engine, jobs: Vec<Job>) {
    let all: Vec<ProviderEvent> = jobs.iter().flat_map(|j| j.events.iter().cloned()).collect();
    match store_batch(engine, &all).await {
        Ok(applied) => {
            let mut rest = applied.into_iter();
            for job in jobs {
                let mine: Vec<Applied> = rest.by_ref().take(job.events.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) if jobs.len() > 1 => {
            // One bad event must not fail its neighbours: commit each webhook on its own.
            tracing::warn!(error = %e, jobs = jobs.len(), "group commit failed; committing one by one");
            for job in jobs {
                let result = store_batch(engine, &job.events).await;
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Stores and applies `events`, and the content reports (summary, recording, transcript)
/// they carry on the calls they matched, before the webhook is answered; wakes the
/// dispatcher once a call has ended. A backend with one writer (SQLite) writes the reports
/// in the events' transaction (`Store::apply_events_with_reports`: one commit per batch in
/// the queue every engine write waits in). Elsewhere they are a write of their own after
/// the batch, one transaction for all of the batch's reports, and the dispatcher is woken
/// between the two: reports never move a call, so they stay out of the state machine's
/// batch (folded into it, the batch's row locks crossed the claims' on PostgreSQL). A
/// failure fails the batch's webhooks: the provider's retry finds the events duplicates,
/// but their reports are saved again (a duplicate still names its call).
async fn store_batch(engine: &Engine, events: &[ProviderEvent]) -> Result<Vec<Applied>, IngestError> {
    let now = engine.clock.now();
    let failed = |what: &str, e: dialtone_store::StoreError| {
        tracing::error!(events = events.len(), error = %e, "could not store {what}");
        IngestError::Store(e.to_string())
    };
    if engine.store.concurrent_writers() <= 1 {
        let applied = engine.store.apply_events_with_reports(events, now).await.map_err(|e| failed("webhook events", e))?;
        after_commit(engine, &applied);
        return Ok(applied);
    }
    let applied = engine.store.apply_events(events, now).await.map_err(|e| failed("webhook events", e))?;
    after_commit(engine, &applied);
    engine.store.save_call_reports(&dialtone_store::reports_of(events, &applied), now).await.map_err(|e| failed("the batch's call reports", e))?;
    Ok(applied)
}

fn after_commit(engine: &Engine, applied: &[Applied]) {
    engine.metrics.record_applied(applied);
    if applied.iter().any(Applied::ended_call) {
        engine.wake_everywhere();
    }
}
