//! Cross-node wake-ups: `LISTEN dialtone_wake` on a connection of its own, forwarded into
//! a bounded channel by a task that outlives connection losses and ends only when the
//! receiver is dropped.

use crate::common::WAKE_CHANNEL;
use crate::Result;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};

/// Wakes waiting to be taken; more are dropped (the dispatcher looks at everything anyway).
const CAPACITY: usize = 8;
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn subscribe(options: PgConnectOptions) -> Result<mpsc::Receiver<()>> {
    // A pool of one for the listener alone: it takes none of the store's connections, is
    // never closed under it, and lives exactly as long as the forwarding task.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(true)
        .connect_lazy_with(options);
    // The first LISTEN must work: a caller told "subscribed" can rely on hearing wakes.
    let listener = listen(&pool).await?;
    let (tx, rx) = mpsc::channel(CAPACITY);
    tokio::spawn(forward(pool, listener, tx));
    Ok(rx)
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(WAKE_CHANNEL).await?;
    Ok(listener)
}

/// Passes one wake on, dropping it if the receiver has some waiting already. False once
/// the receiver is gone.
fn wake(tx: &mpsc::Sender<()>) -> bool {
    !matches!(tx.try_send(()), Err(TrySendError::Closed(())))
}

/// Forwards notifications until the receiver is dropped. Never panics: every error is
/// logged, the listener is rebuilt after a backoff (doubling up to 30 s), and one wake is
/// sent after each reconnect for whatever was missed while the connection was down.
async fn forward(pool: PgPool, listener: PgListener, tx: mpsc::Sender<()>) {
    let mut listener = Some(listener);
    let mut backoff = MIN_BACKOFF;
    loop {
        let Some(l) = listener.as_mut() else {
            let result = tokio::select! {
                _ = tx.closed() => return,
                r = listen(&pool) => r,
            };
            match result {
                Ok(l) => {
                    tracing::info!(channel = WAKE_CHANNEL, "listening for wake-ups again");
                    listener = Some(l);
                    backoff = MIN_BACKOFF;
                    if !wake(&tx) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot listen for wake-ups; retrying");
                    tokio::select! {
                        _ = tx.closed() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        let received = tokio::select! {
            _ = tx.closed() => return,
            r = l.try_recv() => r,
        };
        match received {
            Ok(Some(_)) => {
                backoff = MIN_BACKOFF;
                if !wake(&tx) {
                    return;
                }
            }
            // The connection was lost and the listener has reconnected and re-listened by
            // itself; notifications sent in between are gone, so wake once for them.
            Ok(None) => {
                tracing::info!(channel = WAKE_CHANNEL, "wake-up listener reconnected");
                if !wake(&tx) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "wake-up listener failed; reconnecting");
                // Drop it (and its connection): the pool pings before reuse, so a dead
                // connection is replaced rather than handed back.
                listener = None;
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
