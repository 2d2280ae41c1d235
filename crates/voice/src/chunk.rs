//! Outbound audio chunking: turns the PCM of one of our turns into the payloads the provider
//! plays without gaps.
//!
//! - Exotel AgentStream: 16-bit LE PCM ("slin") chunks of at least 3,200 B, at most 100 KB, and
//!   a multiple of 320 B; anything else plays with 20 ms gaps (/work/shared/VOICE.md §1,
//!   developer.exotel.com/docs/agentstream/websocket-protocol).
//! - Twilio Media Streams: headerless μ-law at 8 kHz in 160 B (20 ms) frames
//!   (twilio.com/docs/voice/media-streams/websocket-messages).
//!
//! The turn's last chunk is padded with silence (PCM 0 / μ-law `0xFF`) up to those sizes, so
//! no audio is dropped and the next turn starts on a frame boundary.

use crate::codec::{pcm_to_le_bytes_into, pcm_to_ulaw_into, ULAW_SILENCE};

/// Exotel: chunk sizes are multiples of this many bytes (10 ms at 16 kHz, 20 ms at 8 kHz slin).
pub const EXOTEL_MULTIPLE_BYTES: usize = 320;
/// Exotel: smallest chunk (bytes; 200 ms of 8 kHz slin).
pub const EXOTEL_MIN_BYTES: usize = 3_200;
/// Exotel: largest chunk (bytes).
pub const EXOTEL_MAX_BYTES: usize = 100_000;
/// Twilio: one 20 ms frame of 8 kHz μ-law (bytes).
pub const TWILIO_FRAME_BYTES: usize = 160;

/// The payload encoding and sizes of one provider's outbound audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Exotel: 16-bit LE PCM; every chunk `chunk_bytes` long except the last, which is padded
    /// to a multiple of 320 B and at least 3,200 B.
    Exotel { chunk_bytes: usize },
    /// Twilio: μ-law, 160 B frames.
    Twilio,
}

/// A chunk size Exotel would not play cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Exotel chunks must be a multiple of {EXOTEL_MULTIPLE_BYTES} B between {EXOTEL_MIN_BYTES} and {EXOTEL_MAX_BYTES} B, not {0} B")]
pub struct BadChunkSize(pub usize);

/// Cuts one turn's 16-bit PCM (at the stream's sample rate) into provider payloads.
///
/// [`Chunker::push`] returns every full chunk as soon as it is complete; [`Chunker::finish`]
/// pads and returns the rest at the end of the turn (before its mark); [`Chunker::clear`] drops
/// what is buffered (barge-in).
#[derive(Debug, Clone)]
pub struct Chunker {
    wire: Wire,
    buf: Vec<u8>,
}

impl Chunker {
    /// Exotel with 3,200 B chunks (200 ms at 8 kHz, 100 ms at 16 kHz).
    pub fn exotel() -> Self {
        Self { wire: Wire::Exotel { chunk_bytes: EXOTEL_MIN_BYTES }, buf: Vec::new() }
    }

    /// Exotel with chunks of `chunk_bytes`.
    ///
    /// # Errors
    /// [`BadChunkSize`] unless `chunk_bytes` is a multiple of 320 within 3,200–100,000 B.
    pub fn exotel_with(chunk_bytes: usize) -> Result<Self, BadChunkSize> {
        if !chunk_bytes.is_multiple_of(EXOTEL_MULTIPLE_BYTES) || !(EXOTEL_MIN_BYTES..=EXOTEL_MAX_BYTES).contains(&chunk_bytes) {
            return Err(BadChunkSize(chunk_bytes));
        }
        Ok(Self { wire: Wire::Exotel { chunk_bytes }, buf: Vec::new() })
    }

    /// Twilio: 160 B μ-law frames (input must be 8 kHz PCM).
    pub fn twilio() -> Self {
        Self { wire: Wire::Twilio, buf: Vec::new() }
    }

    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// Bytes one input sample becomes on the wire (2 for slin, 1 for μ-law).
    pub fn bytes_per_sample(&self) -> usize {
        match self.wire {
            Wire::Exotel { .. } => 2,
            Wire::Twilio => 1,
        }
    }

    /// Bytes buffered, not yet returned in a chunk.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Adds PCM samples; returns the chunks now complete, in order.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Vec<u8>> {
        match self.wire {
            Wire::Exotel { .. } => pcm_to_le_bytes_into(pcm, &mut self.buf),
            Wire::Twilio => pcm_to_ulaw_into(pcm, &mut self.buf),
        }
        let size = self.chunk_bytes();
        let full = self.buf.len() / size * size;
        if full == 0 {
            return Vec::new();
        }
        let chunks = self.buf[..full].chunks_exact(size).map(<[u8]>::to_vec).collect();
        self.buf.drain(..full);
        chunks
    }

    /// Ends the turn: the buffered rest, padded with silence, or `None` if nothing is buffered.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.buf.is_empty() {
            return None;
        }
        let mut last = std::mem::take(&mut self.buf);
        let (len, silence) = match self.wire {
            Wire::Exotel { .. } => (last.len().next_multiple_of(EXOTEL_MULTIPLE_BYTES).max(EXOTEL_MIN_BYTES), 0u8),
            Wire::Twilio => (TWILIO_FRAME_BYTES, ULAW_SILENCE),
        };
        last.resize(len, silence);
        Some(last)
    }

    /// Drops the buffered audio (barge-in: the turn is abandoned).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    fn chunk_bytes(&self) -> usize {
        match self.wire {
            Wire::Exotel { chunk_bytes } => chunk_bytes,
            Wire::Twilio => TWILIO_FRAME_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{le_bytes_to_pcm, pcm_to_ulaw};
    use proptest::prelude::*;

    /// Pushes `pieces` then finishes; returns all chunks.
    fn run(chunker: &mut Chunker, pieces: &[Vec<i16>]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = pieces.iter().flat_map(|p| chunker.push(p)).collect();
        out.extend(chunker.finish());
        out
    }

    fn pieces() -> impl Strategy<Value = Vec<Vec<i16>>> {
        proptest::collection::vec(proptest::collection::vec(any::<i16>(), 0..2500), 0..6)
    }

    #[test]
    fn exotel_sizes_are_validated() {
        assert!(Chunker::exotel_with(3_200).is_ok());
        assert!(Chunker::exotel_with(6_400).is_ok());
        assert_eq!(Chunker::exotel_with(3_000).unwrap_err(), BadChunkSize(3_000));
        assert!(Chunker::exotel_with(3_210).is_err());
        assert!(Chunker::exotel_with(100_160).is_err());
    }

    #[test]
    fn short_exotel_turn_is_padded_to_the_minimum() {
        let mut c = Chunker::exotel();
        assert!(c.push(&[1; 10]).is_empty());
        let last = c.finish().unwrap();
        assert_eq!(last.len(), 3_200);
        assert_eq!(le_bytes_to_pcm(&last[..20]), vec![1; 10]);
        assert!(last[20..].iter().all(|&b| b == 0));
        assert_eq!(c.finish(), None);
    }

    #[test]
    fn long_exotel_tail_is_padded_to_320() {
        let mut c = Chunker::exotel_with(6_400).unwrap();
        assert!(c.push(&[7; 1_700]).is_empty()); // 3,400 B
        assert_eq!(c.finish().unwrap().len(), 3_520);
    }

    #[test]
    fn twilio_tail_is_padded_with_ulaw_silence() {
        let mut c = Chunker::twilio();
        let out = run(&mut c, &[vec![1000; 170]]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1][..10], pcm_to_ulaw(&[1000; 10])[..]);
        assert!(out[1][10..].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn clear_drops_the_buffer() {
        let mut c = Chunker::twilio();
        c.push(&[5; 100]);
        assert_eq!(c.buffered_bytes(), 100);
        c.clear();
        assert_eq!(c.finish(), None);
    }

    proptest! {
        #[test]
        fn exotel_chunks_obey_the_size_rules_and_keep_the_audio(pieces in pieces(), size in 10usize..=40) {
            let size = size * EXOTEL_MULTIPLE_BYTES;
            let mut c = Chunker::exotel_with(size).unwrap();
            let out = run(&mut c, &pieces);
            let all: Vec<i16> = pieces.concat();
            for (i, chunk) in out.iter().enumerate() {
                prop_assert_eq!(chunk.len() % EXOTEL_MULTIPLE_BYTES, 0);
                prop_assert!((EXOTEL_MIN_BYTES..=EXOTEL_MAX_BYTES).contains(&chunk.len()));
                if i + 1 < out.len() {
                    prop_assert_eq!(chunk.len(), size);
                }
            }
            let joined: Vec<i16> = le_bytes_to_pcm(&out.concat());
            prop_assert_eq!(&joined[..all.len()], &all[..]);
            prop_assert!(joined[all.len()..].iter().all(|&s| s == 0));
            // Padding is only what the last chunk needs to reach the size rules.
            let pad = (joined.len() - all.len()) * 2;
            prop_assert!(pad < EXOTEL_MIN_BYTES);
            if out.last().is_some_and(|l| l.len() > EXOTEL_MIN_BYTES) {
                prop_assert!(pad < EXOTEL_MULTIPLE_BYTES);
            }
        }

        #[test]
        fn twilio_frames_are_160_bytes_and_keep_the_audio(pieces in pieces()) {
            let mut c = Chunker::twilio();
            let out = run(&mut c, &pieces);
            let all: Vec<i16> = pieces.concat();
            prop_assert!(out.iter().all(|f| f.len() == TWILIO_FRAME_BYTES));
            let joined = out.concat();
            prop_assert_eq!(joined.len(), all.len().next_multiple_of(TWILIO_FRAME_BYTES));
            prop_assert_eq!(&joined[..all.len()], &pcm_to_ulaw(&all)[..]);
            prop_assert!(joined[all.len()..].iter().all(|&b| b == ULAW_SILENCE));
        }
    }
}
