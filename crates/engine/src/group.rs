//! Group commit for the placers' per-call writes: the placing mark on a backend with one
//! writer (SQLite), where every commit waits for its own WAL sync and all writers queue
//! behind one another, and the dialed mark on every backend (`Engine::mark_dialed`). While
//! one commit is in flight, the writes that arrive queue up, and the first of them to get
//! the turn commits them all in one transaction. Each caller still returns only once its
//! own write is committed, so the order a placer keeps (fence committed, then the request)
//! is the same as alone.

use dialtone_store::{Result, StoreError};
use std::future::Future;
use std::sync::Mutex;
use tokio::sync::oneshot;

type Waiting<I, O> = Vec<(I, oneshot::Sender<Result<O>>)>;

pub(crate) struct Group<I, O> {
    queue: Mutex<Waiting<I, O>>,
    /// Held by the caller committing a batch.
    turn: tokio::sync::Mutex<()>,
}

impl<I: Clone, O> Default for Group<I, O> {
    fn default() -> Self {
        Self { queue: Mutex::new(vec![]), turn: tokio::sync::Mutex::new(()) }
    }
}

impl<I: Clone, O> Group<I, O> {
    /// Writes `item` with whatever else is waiting: `many` writes a batch in one transaction
    /// (results in order), `one` a single item (used when the batch failed, so one bad item
    /// fails alone).
    pub(crate) async fn write<M, MF, S, SF>(&self, item: I, many: M, one: S) -> Result<O>
    where
        M: FnOnce(Vec<I>) -> MF,
        MF: Future<Output = Result<Vec<O>>>,
        S: Fn(I) -> SF,
        SF: Future<Output = Result<O>>,
    {
        let (tx, mut rx) = oneshot::channel();
        self.queue.lock().unwrap().push((item, tx));
        // The batch in flight may take our write with it: then it answers before our turn.
        let turn = tokio::select! {
            biased;
            result = &mut rx => return result.unwrap_or_else(|_| Err(abandoned())),
            turn = self.turn.lock() => turn,
        };
        if let Ok(result) = rx.try_recv() {
            return result;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap());
        let (items, replies): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
        let results: Vec<Result<O>> = match items.len() {
            1 => vec![one(items[0].clone()).await],
            n => match many(items.clone()).await {
                Ok(results) if results.len() == n => results.into_iter().map(Ok).collect(),
                _ => {
                    let mut each = Vec::with_capacity(n);
                    for item in items {
                        each.push(one(item).await);
                    }
                    each
                }
            },
        };
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
        drop(turn);
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }
}

/// The caller committing a batch was dropped before it answered (the engine shutting down).
fn abandoned() -> StoreError {
    StoreError::Conflict("a grouped write was abandoned before it committed".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::Notify;

    #[tokio::test]
    async fn writes_that_arrive_during_a_commit_are_committed_together_and_each_gets_its_own_answer() {
        let group: Arc<Group<u32, u32>> = Arc::default();
        let (batches, release) = (Arc::new(Mutex::new(vec![])), Arc::new(Notify::new()));
        let write = |item: u32| {
            let (group, batches, release) = (group.clone(), batches.clone(), release.clone());
            tokio::spawn(async move {
                let many = |items: Vec<u32>| async move {
                    batches.lock().unwrap().push(items.clone());
                    release.notified().await;
                    Ok(items.iter().map(|i| i * 10).collect())
                };
                let one = |i: u32| async move { Ok(i * 10) };
                group.write(item, many, one).await.unwrap()
            })
        };
        // A write queued by hand makes the first commit a batch of two, held until released.
        let (tx0, rx0) = oneshot::channel();
        group.queue.lock().unwrap().push((0, tx0));
        let first = write(1);
        while batches.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        // Three more arrive while it commits: they wait, queued.
        let rest = [write(3), write(4), write(5)];
        while group.queue.lock().unwrap().len() < 3 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        while batches.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        assert_eq!((rx0.await.unwrap().unwrap(), first.await.unwrap()), (0, 10));
        let [c, d, e] = rest;
        assert_eq!((c.await.unwrap(), d.await.unwrap(), e.await.unwrap()), (30, 40, 50));
        let batches = batches.lock().unwrap().clone();
        assert_eq!(batches, vec![vec![0, 1], vec![3, 4, 5]], "one commit for all that queued behind the first");
    }

    #[tokio::test]
    async fn a_failed_batch_is_written_item_by_item_so_one_bad_item_fails_alone() {
        let group: Group<u32, u32> = Group::default();
        let singles = AtomicUsize::new(0);
        let many = |_: Vec<u32>| async { Err(StoreError::not_found("call", "call_1")) };
        let one = |i: u32| {
            singles.fetch_add(1, Ordering::SeqCst);
            async move {
                if i == 2 {
                    Err(StoreError::not_found("call", "call_1"))
                } else {
                    Ok(i)
                }
            }
        };
        // Queue three items by hand, as if they had arrived during an earlier commit.
        let (tx2, rx2) = oneshot::channel();
        let (tx3, rx3) = oneshot::channel();
        group.queue.lock().unwrap().extend([(2, tx2), (3, tx3)]);
        assert_eq!(group.write(1, many, one).await.unwrap(), 1);
        assert!(rx2.await.unwrap().is_err(), "the bad item fails");
        assert_eq!(rx3.await.unwrap().unwrap(), 3, "its neighbour is written");
        assert_eq!(singles.load(Ordering::SeqCst), 3);
    }
}
