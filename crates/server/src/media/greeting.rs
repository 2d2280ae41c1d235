//! The cache of an agent's fixed lines (greeting, no-response prompt, goodbye, voicemail
//! message) as synthesised audio, so the greeting's first frame leaves within ~300 ms of
//! `start` instead of waiting for a TTS round trip.
//!
//! Keyed by sha256(agent id, TTS provider, voice, model, provider dialect, sample rate,
//! text): editing the agent's text or voice makes a new key, so a stale line is never
//! played. Warmed on first use and by [`GreetingCache::warm`] (called when a call that
//! uses the agent is set up, before the callee answers); bounded to `capacity` entries,
//! the oldest dropped first; `capacity` 0 turns the cache off (nothing is kept).

use dialtone_core::Agent;
use dialtone_voice::speech::{SpeechError, Tts, TtsOptions};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A cache key (see the module docs).
pub type Key = [u8; 32];

/// The key of `text` said by `agent` on a stream of `dialect` (`exotel`, `twilio`) at
/// `sample_rate` Hz.
pub fn key(agent: &Agent, dialect: &str, sample_rate: u32, text: &str) -> Key {
    let mut h = Sha256::new();
    for part in [
        agent.id.as_str(),
        agent.tts.provider.as_str(),
        agent.tts.voice.as_deref().unwrap_or(""),
        agent.tts.model.as_deref().unwrap_or(""),
        dialect,
        &sample_rate.to_string(),
        text,
    ] {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// Synthesised lines, 16-bit PCM at the key's sample rate.
pub struct GreetingCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    audio: HashMap<Key, Arc<Vec<i16>>>,
    order: VecDeque<Key>,
}

impl GreetingCache {
    /// A cache of `capacity` lines; 0: off (`put` keeps nothing).
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// Whether lines are kept at all (`capacity` above 0).
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Vec<i16>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).audio.get(key).cloned()
    }

    pub fn put(&self, key: Key, pcm: Vec<i16>) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.audio.insert(key, Arc::new(pcm)).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.audio.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).audio.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Synthesises `text` with `tts` unless cached; returns the audio.
    /// Errors: the TTS service failed (nothing is cached).
    pub async fn warm(&self, key: Key, tts: &dyn Tts, text: &str, options: &TtsOptions) -> Result<Arc<Vec<i16>>, SpeechError> {
        if let Some(hit) = self.get(&key) {
            return Ok(hit);
        }
        let mut stream = tts.synthesize(text, options).await?;
        let mut pcm = Vec::new();
        while let Some(piece) = stream.next().await {
            pcm.extend(piece?);
        }
        self.put(key, pcm);
        Ok(self.get(&key).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_of_zero_entries_keeps_nothing_and_a_full_one_drops_the_oldest() {
        let off = GreetingCache::new(0);
        off.put([1; 32], vec![1, 2, 3]);
        assert!(!off.enabled() && off.get(&[1; 32]).is_none() && off.is_empty());
        let two = GreetingCache::new(2);
        for k in 1..=3u8 {
            two.put([k; 32], vec![i16::from(k)]);
        }
        assert!(two.enabled());
        assert_eq!((two.get(&[1; 32]), two.get(&[3; 32]).as_deref()), (None, Some(&vec![3])));
    }
}
