//! The callee's audio on its way to the STT session, without losing any of it.
//!
//! The session's channel is bounded (the service may be slow). When it is full, audio waits
//! here, in order, merged into one message per run of audio, and is handed over as soon as
//! the channel has room (the driver calls [`SttFeed::flush`] on every turn of its loop, which
//! inbound frames drive every 20–100 ms). Memory is bounded by [`SttFeed::max_samples`]: only
//! past that (the STT service stalled for that long) is the oldest audio shed, counted and
//! logged. `Finalize` keeps its place behind the audio before it and is never shed.

use dialtone_voice::speech::SttInput;
use std::collections::VecDeque;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

/// Audio held for a stalled STT session before the oldest is shed: 60 s at 8 kHz
/// (480,000 samples, 960 KB per call).
pub const MAX_BACKLOG_SAMPLES: usize = 60 * 8000;

/// Audio messages merged while waiting are at most this long (1 s at 8 kHz), so one send
/// never carries an unbounded buffer.
const MAX_MERGED_SAMPLES: usize = 8000;

/// What waits for the STT channel.
#[derive(Debug)]
pub struct SttFeed {
    backlog: VecDeque<SttInput>,
    /// Audio samples in `backlog`.
    samples: usize,
    /// The bound on `samples` (see [`MAX_BACKLOG_SAMPLES`]).
    pub max_samples: usize,
    /// Samples shed so far because the bound was reached.
    pub shed_samples: u64,
}

impl Default for SttFeed {
    fn default() -> Self {
        Self::new(MAX_BACKLOG_SAMPLES)
    }
}

impl SttFeed {
    pub fn new(max_samples: usize) -> Self {
        Self { backlog: VecDeque::new(), samples: 0, max_samples, shed_samples: 0 }
    }

    /// Samples waiting.
    pub fn waiting_samples(&self) -> usize {
        self.samples
    }

    /// Hands `input` to the session, or queues it behind what waits. Returns the samples
    /// shed by this call (0 unless the backlog was over its bound).
    pub fn push(&mut self, tx: &Sender<SttInput>, input: SttInput) -> u64 {
        self.flush(tx);
        if self.backlog.is_empty() {
            match tx.try_send(input) {
                Ok(()) => return 0,
                // The session is gone: nothing will read it.
                Err(TrySendError::Closed(_)) => return 0,
                Err(TrySendError::Full(input)) => self.enqueue(input),
            }
        } else {
            self.enqueue(input);
        }
        self.shed()
    }

    /// Sends what waits while the channel has room. Idempotent; never blocks.
    pub fn flush(&mut self, tx: &Sender<SttInput>) {
        while let Some(front) = self.backlog.pop_front() {
            let len = audio_len(&front);
            match tx.try_send(front) {
                Ok(()) => self.samples -= len,
                Err(TrySendError::Full(front)) => {
                    self.backlog.push_front(front);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    self.samples = 0;
                    return;
                }
            }
        }
    }

    fn enqueue(&mut self, input: SttInput) {
        self.samples += audio_len(&input);
        match (self.backlog.back_mut(), input) {
            (Some(SttInput::Audio(last)), SttInput::Audio(more)) if last.len() + more.len() <= MAX_MERGED_SAMPLES => last.extend_from_slice(&more),
            (_, input) => self.backlog.push_back(input),
        }
    }

    /// Drops the oldest audio while over the bound; `Finalize` markers stay.
    fn shed(&mut self) -> u64 {
        let mut shed = 0u64;
        while self.samples > self.max_samples {
            let Some(i) = self.backlog.iter().position(|x| matches!(x, SttInput::Audio(_))) else { break };
            let over = self.samples - self.max_samples;
            let Some(SttInput::Audio(audio)) = self.backlog.get_mut(i) else { break };
            let cut = over.min(audio.len());
            audio.drain(..cut);
            if audio.is_empty() {
                self.backlog.remove(i);
            }
            self.samples -= cut;
            shed += cut as u64;
        }
        self.shed_samples += shed;
        shed
    }
}

fn audio_len(input: &SttInput) -> usize {
    match input {
        SttInput::Audio(a) => a.len(),
        SttInput::Finalize => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn frame(n: i16) -> SttInput {
        SttInput::Audio(vec![n; 160])
    }

    /// Everything that reached the receiver, audio flattened, `Finalize` as `i16::MIN`.
    fn received(rx: &mut mpsc::Receiver<SttInput>) -> Vec<i16> {
        let mut out = vec![];
        while let Ok(x) = rx.try_recv() {
            match x {
                SttInput::Audio(a) => out.extend(a),
                SttInput::Finalize => out.push(i16::MIN),
            }
        }
        out
    }

    #[test]
    fn a_full_channel_loses_no_audio_and_keeps_the_order() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut feed = SttFeed::default();
        let mut expected = vec![];
        for n in 0..100 {
            assert_eq!(feed.push(&tx, frame(n)), 0);
            expected.extend(vec![n; 160]);
            if n == 49 {
                feed.push(&tx, SttInput::Finalize);
                expected.push(i16::MIN);
            }
        }
        assert_eq!(feed.waiting_samples(), 100 * 160 - 2 * 160, "two frames went straight in");
        let mut got = received(&mut rx);
        while feed.waiting_samples() > 0 || !feed.backlog.is_empty() {
            feed.flush(&tx);
            got.extend(received(&mut rx));
        }
        assert_eq!(got, expected, "every sample, in order, Finalize in its place");
        assert_eq!(feed.shed_samples, 0);
    }

    #[test]
    fn a_stalled_session_sheds_only_past_the_bound_and_counts_it() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut feed = SttFeed::new(1600);
        let mut shed = 0;
        for n in 0..20 {
            shed += feed.push(&tx, frame(n));
        }
        feed.push(&tx, SttInput::Finalize);
        // 1 frame in the channel, 10 frames (1,600 samples) kept, 9 shed (the oldest).
        assert_eq!((shed, feed.shed_samples, feed.waiting_samples()), (9 * 160, 9 * 160, 1600));
        let mut got = received(&mut rx);
        while !feed.backlog.is_empty() {
            feed.flush(&tx);
            got.extend(received(&mut rx));
        }
        let mut expected = vec![0; 160];
        expected.extend((10..20).flat_map(|n| vec![n; 160]));
        expected.push(i16::MIN);
        assert_eq!(got, expected);
    }

    #[test]
    fn a_closed_session_drops_what_waits() {
        let (tx, rx) = mpsc::channel(1);
        let mut feed = SttFeed::default();
        feed.push(&tx, frame(1));
        feed.push(&tx, frame(2));
        drop(rx);
        feed.push(&tx, frame(3));
        assert_eq!(feed.waiting_samples(), 0);
        assert_eq!(feed.shed_samples, 0, "nothing is counted as shed: no one reads it");
    }
}
