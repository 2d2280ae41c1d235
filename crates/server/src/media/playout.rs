//! Paced outbound audio on a thread of its own (issue 12: "frame send jitter p99 < 20 ms").
//!
//! A session's inbound work (decoding, gain control, VAD, the beep detector: ~1.5 ms of CPU
//! per call-second) runs on the shared runtime's workers. When hundreds of calls' frames
//! arrive together, a worker's run queue holds tens of milliseconds of that work, and a
//! session whose next chunk is due waits behind it: measured at 600 calls, a bare 20 ms
//! timer on the shared runtime woke p99 65–101 ms late, and the chunk sends with it.
//!
//! So the sending is not done by the session's task. Each session hands its socket's write
//! half to a [`Writer`] task on the playout thread: a current-thread runtime that does
//! nothing but keep each stream's queue paced (`send_ahead` before the audio already sent
//! has played) and write due frames. The thread sleeps between sends, so the kernel
//! scheduler wakes it ahead of busy threads (CFS favours a thread that has slept), and its
//! timers are never behind a queue of VAD work. The session still decides *what* is said
//! (chunks encoded, marks, `clear`); the writer only decides *when*, in the order given.
//!
//! Written here, not taken from a crate: it is the pacing rule of docs/voice.md applied to
//! an axum WebSocket's sink; no crate paces another task's sink.

use super::jitter::SendJitter;
use axum::extract::ws::{Message, WebSocket};
use futures::stream::SplitSink;
use futures::SinkExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// The playout thread: a current-thread tokio runtime running every session's [`Writer`]
/// task. Stopped (its tasks dropped, which drops their sockets' write halves) when the
/// `Playout` is dropped.
pub struct Playout {
    handle: tokio::runtime::Handle,
    _stop: oneshot::Sender<()>,
}

impl Playout {
    /// Starts the thread (`dialtone-playout`). Err: the OS refused a thread or the runtime.
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name("dialtone-playout".into()).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            })
        })?;
        Ok(Self { handle, _stop: stop })
    }

    /// Hands `sink` to a new writer task on the playout thread. Frames queued on the returned
    /// [`Writer`] are sent in order; audio at most `send_ahead` ahead of real time, each
    /// audio frame's lateness (actual − scheduled send time) recorded in `jitter`.
    pub fn writer(&self, sink: SplitSink<WebSocket, Message>, send_ahead: Duration, jitter: Arc<SendJitter>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let gone = Arc::new(Gone::default());
        let task = WriterTask { sink, rx, queue: VecDeque::new(), played_until: Instant::now(), send_ahead, jitter, gone: gone.clone() };
        self.handle.spawn(task.run());
        Writer { tx, gone }
    }
}

/// Set once when the socket refuses a write (or the playout thread is gone).
#[derive(Default)]
struct Gone {
    flag: AtomicBool,
    notify: Notify,
}

impl Gone {
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

enum Cmd {
    /// One audio frame, encoded (the dialect's JSON), that plays for `play`; not to be sent
    /// before `queued_at` (when it existed) nor more than `send_ahead` ahead.
    Audio { text: String, play: Duration, queued_at: Instant },
    /// A frame sent in order, unpaced (a `mark`).
    InOrder(String),
    /// Drops the audio and marks not yet sent, then sends this frame at once (`clear`).
    Clear(String),
    /// Answered, in order, once everything queued before it is sent: with the time the
    /// audio sent so far will have finished playing.
    Drained(oneshot::Sender<Instant>),
    /// Sends a close frame and answers when it is written (or failed).
    Close(oneshot::Sender<()>),
}

/// The session's side of its writer task. Dropping it ends the task once what is queued
/// has been sent.
pub struct Writer {
    tx: mpsc::UnboundedSender<Cmd>,
    gone: Arc<Gone>,
}

impl Writer {
    /// Queues an audio frame (see [`Cmd::Audio`]).
    pub fn audio(&self, text: String, play: Duration, queued_at: Instant) {
        self.command(Cmd::Audio { text, play, queued_at });
    }

    /// Queues a frame sent right after what is queued before it (a `mark`).
    pub fn in_order(&self, text: String) {
        self.command(Cmd::InOrder(text));
    }

    /// Drops every queued frame not yet sent and sends `text` (`clear`) at once; the audio
    /// clock restarts from now.
    pub fn clear(&self, text: String) {
        self.command(Cmd::Clear(text));
    }

    /// Waits until every frame queued so far is sent; the time the audio will have finished
    /// playing. `None`: the socket is gone.
    pub async fn drained(&self) -> Option<Instant> {
        let (tx, rx) = oneshot::channel();
        self.command(Cmd::Drained(tx));
        tokio::select! {
            until = rx => until.ok(),
            _ = self.gone() => None,
        }
    }

    /// Sends a close frame after what is queued; returns when it is written or failed.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        self.command(Cmd::Close(tx));
        tokio::select! {
            _ = rx => {}
            _ = self.gone() => {}
        }
    }

    /// Resolves when the socket has refused a write (the provider closed it).
    pub async fn gone(&self) {
        loop {
            let notified = self.gone.notify.notified();
            if self.gone.flag.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    fn command(&self, cmd: Cmd) {
        if self.tx.send(cmd).is_err() {
            self.gone.set();
        }
    }
}

struct WriterTask {
    sink: SplitSink<WebSocket, Message>,
    rx: mpsc::UnboundedReceiver<Cmd>,
    /// Audio, in-order frames and drain requests not yet sent, in order.
    queue: VecDeque<Cmd>,
    /// Real time at which the audio sent so far will have finished playing.
    played_until: Instant,
    send_ahead: Duration,
    jitter: Arc<SendJitter>,
    gone: Arc<Gone>,
}

impl WriterTask {
    async fn run(mut self) {
        let mut open = true;
        while open || !self.queue.is_empty() {
            if self.send_due().await.is_err() {
                self.gone.set();
                return;
            }
            let send_at = self.next_send_at();
            tokio::select! {
                cmd = self.rx.recv(), if open => match cmd {
                    Some(cmd) => {
                        if self.take(cmd).await.is_err() {
                            self.gone.set();
                            return;
                        }
                    }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(send_at.unwrap_or_else(far_future)), if send_at.is_some() => {}
            }
        }
    }

    async fn take(&mut self, cmd: Cmd) -> Result<(), axum::Error> {
        match cmd {
            Cmd::Clear(text) => {
                // Drain requests stay: they are answered as soon as nothing precedes them.
                self.queue.retain(|c| matches!(c, Cmd::Drained(_)));
                self.played_until = Instant::now();
                self.sink.send(Message::Text(text.into())).await
            }
            Cmd::Close(done) => {
                // Sent after what is queued, like any frame.
                self.queue.push_back(Cmd::Close(done));
                Ok(())
            }
            other => {
                self.queue.push_back(other);
                Ok(())
            }
        }
    }

    /// When the queue's head may be sent: audio `send_ahead` before what is sent has
    /// played, and not before it was queued; anything else at once.
    fn next_send_at(&self) -> Option<Instant> {
        match self.queue.front()? {
            Cmd::Audio { queued_at, .. } => Some(self.played_until.checked_sub(self.send_ahead).map_or(*queued_at, |at| at.max(*queued_at))),
            _ => Some(Instant::now()),
        }
    }

    /// Sends what the pacing allows now.
    async fn send_due(&mut self) -> Result<(), axum::Error> {
        loop {
            let Some(at) = self.next_send_at() else { return Ok(()) };
            let now = Instant::now();
            if at > now {
                return Ok(());
            }
            match self.queue.pop_front() {
                Some(Cmd::Audio { text, play, .. }) => {
                    self.jitter.record(now - at);
                    self.played_until = self.played_until.max(now) + play;
                    self.sink.send(Message::Text(text.into())).await?;
                }
                Some(Cmd::InOrder(text)) | Some(Cmd::Clear(text)) => self.sink.send(Message::Text(text.into())).await?,
                Some(Cmd::Drained(answer)) => {
                    let _ = answer.send(self.played_until);
                }
                Some(Cmd::Close(done)) => {
                    let result = self.sink.send(Message::Close(None)).await;
                    let _ = done.send(());
                    result?;
                }
                None => return Ok(()),
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
