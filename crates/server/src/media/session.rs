//! The per-call driver: one task per media stream. It owns the socket, the call's
//! [`Conversation`], its STT session and the LLM/TTS work it starts, and does the I/O the
//! conversation asks for (docs/voice.md, "Media streams and the driver").
//!
//! - Inbound `media` → 16-bit PCM → the listener (VAD, beep) and the STT session; `mark` →
//!   `MarkPlayed`; `dtmf` → `Dtmf`; `stop`, a close or a dropped socket → `Stopped`.
//! - `Say` → audio from the line cache or the TTS stream → provider-sized chunks → sent
//!   paced, at most `send_ahead` (300 ms) ahead of real time → a `mark`.
//! - `Clear` → queued audio and TTS under way dropped, `clear` sent. `Reply` → an LLM
//!   stream fed back as `ReplyDelta`/`ReplyDone`. `FinalizeStt` → `SttInput::Finalize`.
//!   `Hangup` → the audio already queued is sent, then the socket is closed (and the
//!   provider's hang-up API called, for safety).
//! - Deadlines: the conversation's `next_deadline()` is on the engine's clock; the driver
//!   looks at that clock at least every `max_tick`.
//!
//! When the conversation ends, however it ends, the transcript and `voicemail_left` are
//! saved on the call and the outcome goes through the engine's ingest path as an
//! [`EventKind::Voice`] event. Every LLM/TTS task lives in the session's `JoinSet` and is
//! aborted when the session returns; dropping the STT session's sender closes it.

use super::audio::{self, SAMPLE_RATE};
use super::playout::Writer;
use super::stt_feed::SttFeed;
use super::wire::{Dialect, Start, StreamIn, StreamOut};
use super::{greeting, Media, SessionGuard, SpeechSet};
use axum::extract::ws::{Message, WebSocket};
use dialtone_core::{Agent, CallId, EventKind, Outcome, ProviderEvent};
use dialtone_engine::Engine;
use dialtone_voice::chunk::Chunker;
use dialtone_voice::conversation::{Action, Conversation, EndReason, Ending, Input, Script, Timing, Utterance, VoiceOutcome};
use dialtone_voice::listen::{Listener, ListenerConfig};
use dialtone_voice::speech::{SttEvent, SttInput, SttOptions, SttSession, TtsOptions};
use futures::stream::SplitStream;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// How a session ended, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEnd {
    pub call_id: Option<CallId>,
    pub ending: Option<Ending>,
}

/// Runs one media stream to its end. `call` is known before the upgrade on Exotel (URL)
/// and read from `start` on Twilio. Never panics on what the socket sends.
#[tracing::instrument(skip_all, fields(provider = dialect.as_str(), call_id))]
pub async fn run(media: Arc<Media>, engine: Arc<Engine>, dialect: Dialect, call: Option<CallId>, mut socket: WebSocket, guard: SessionGuard) -> SessionEnd {
    let _guard = guard;
    let Some((start, stream_sid, call_id)) = wait_for_start(&media, dialect, call, &mut socket).await else {
        let _ = socket.send(Message::Close(None)).await;
        return SessionEnd { call_id: None, ending: None };
    };
    tracing::Span::current().record("call_id", call_id.as_str());
    tracing::debug!(stream_sid, "media stream started");
    let agent = match media.records.agent_for_call(&call_id).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            tracing::warn!("media stream for a call that is unknown, over, or has no agent: closed");
            let _ = socket.send(Message::Close(None)).await;
            return SessionEnd { call_id: Some(call_id), ending: None };
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read the call's agent: stream closed");
            let _ = socket.send(Message::Close(None)).await;
            return SessionEnd { call_id: Some(call_id), ending: None };
        }
    };
    let speech = match media.speech.for_agent(&agent) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the agent's speech services are not available: stream closed");
            let _ = socket.send(Message::Close(None)).await;
            return SessionEnd { call_id: Some(call_id), ending: None };
        }
    };
    let Some((_live, outside)) = media.register(&call_id) else {
        tracing::warn!("a second media stream for a call whose conversation is running here: closed, the first goes on");
        let _ = socket.send(Message::Close(None)).await;
        return SessionEnd { call_id: Some(call_id), ending: None };
    };
    let Some(playout) = media.playout() else {
        let _ = socket.send(Message::Close(None)).await;
        return SessionEnd { call_id: Some(call_id), ending: None };
    };
    // The write half goes to the playout thread, which paces it (see `playout`); this task
    // reads the other half and does the inbound work.
    let (sink, mut stream) = socket.split();
    let writer = playout.writer(sink, media.config.send_ahead, media.send_jitter.clone());
    let mut driver = Driver::new(media.clone(), engine.clone(), dialect, stream_sid, start.call_sid.clone(), agent, speech, writer);
    driver.open_stt().await;
    let ending = driver.run(&mut stream, outside).await;
    driver.writer.close().await;
    drop(stream);
    let provider_sid = driver.provider_sid.clone();
    let transcript = driver.conversation.transcript().to_vec();
    // Ends the LLM/TTS tasks and the STT session before anything slow is awaited.
    drop(driver);
    finish(&media, &engine, dialect, &call_id, provider_sid, ending, &transcript).await;
    SessionEnd { call_id: Some(call_id), ending: Some(ending) }
}

/// Reads frames until `start`; checks the Twilio token there. `None`: the socket closed,
/// timed out or named a call it may not open.
async fn wait_for_start(media: &Media, dialect: Dialect, call: Option<CallId>, socket: &mut WebSocket) -> Option<(Start, String, CallId)> {
    let deadline = Instant::now() + media.config.start_timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.recv()).await.ok()??.ok()?;
        let text = match frame {
            Message::Text(t) => t,
            Message::Close(_) => return None,
            _ => continue,
        };
        let Ok(StreamIn::Start { stream_sid, start }) = StreamIn::parse(&text) else { continue };
        let stream_sid = stream_sid.or_else(|| start.stream_sid.clone()).unwrap_or_default();
        let call_id = match (dialect, call) {
            (_, Some(call)) => call,
            (Dialect::Twilio, None) => {
                let named = start.custom_parameters.get("dialtone_call_id").and_then(|c| CallId::parse(c));
                let token = start.custom_parameters.get("token").map(String::as_str).unwrap_or("");
                match named {
                    Some(c) if media.config.token_ok(&c, token) => c,
                    _ => {
                        tracing::warn!("Twilio stream start without a valid dialtone_call_id and token: closed");
                        return None;
                    }
                }
            }
            (Dialect::Exotel, None) => return None,
        };
        return Some((start, stream_sid, call_id));
    }
}

/// Saves what the conversation left and reports its outcome like a provider event.
async fn finish(
    media: &Media,
    engine: &Engine,
    dialect: Dialect,
    call_id: &CallId,
    provider_sid: Option<String>,
    ending: Ending,
    transcript: &[dialtone_core::TranscriptTurn],
) {
    if let Err(e) = media.records.save_conversation(call_id, transcript, ending.voicemail_left).await {
        tracing::error!(error = %e, "could not save the call's transcript");
    }
    let outcome = outcome(ending.outcome);
    let event = ProviderEvent {
        provider_type: format!("{}-media-stream", dialect.as_str()),
        // The stream's call sid is the provider's, but our id is the one we know names
        // this call: pass only ours, so no mismatch can leave the verdict unapplied.
        provider_call_id: None,
        call_id: Some(call_id.clone()),
        kind: EventKind::Voice { outcome },
        dedupe_key: format!("voice:{call_id}"),
        occurred_at: Some(engine.clock().now()),
        cost: None,
        duration_ms: None,
        report: None,
        raw: serde_json::json!({
            "outcome": outcome,
            "reason": format!("{:?}", ending.reason),
            "voicemail_left": ending.voicemail_left,
            "turns": transcript.len(),
        })
        .into(),
        webhook: None,
    };
    if let Err(e) = engine.ingest(vec![event]).await {
        tracing::error!(error = %e, "could not record the conversation's outcome");
    }
    // Closing the socket ends the call on both providers (Exotel's flow moves on, Twilio
    // runs out of TwiML); the hang-up request is a safety net when the agent hung up. It
    // goes through the account the call was placed on (a workspace's own, or the config's).
    if ending.reason != EndReason::CalleeHungUp {
        let provider = match provider_sid {
            Some(_) => engine.provider_for_call_id(call_id).await,
            None => None,
        };
        if let (Some(sid), Some(provider)) = (provider_sid, provider) {
            match tokio::time::timeout(Duration::from_secs(5), provider.hang_up(&sid)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "hang-up after the stream closed failed (the call may have ended already)"),
                Err(_) => tracing::debug!("hang-up after the stream closed timed out"),
            }
        }
    }
}

/// The call outcome a conversation's outcome is stored as.
pub fn outcome(o: VoiceOutcome) -> Outcome {
    match o {
        VoiceOutcome::Completed => Outcome::Completed,
        VoiceOutcome::NoResponse => Outcome::NoResponse,
        VoiceOutcome::Voicemail => Outcome::Voicemail,
    }
}

/// Queues a chunk of wire audio on the writer, encoded now (base64 and the dialect's
/// JSON), so that sending it at its time is one socket write: no work on the paced path.
fn queue_audio(writer: &Writer, dialect: Dialect, stream_sid: &str, bytes: &[u8]) {
    let text = dialect.encode(stream_sid, &StreamOut::Media { payload: audio::encode_payload(bytes) });
    writer.audio(text, audio::play_time(dialect, bytes.len()), Instant::now());
}

/// Queues a `mark` on the writer, after the audio queued before it.
fn queue_mark(writer: &Writer, dialect: Dialect, stream_sid: &str, name: String) {
    writer.in_order(dialect.encode(stream_sid, &StreamOut::Mark { name }));
}

/// What a TTS task sends back. `gen` is the speech generation it belongs to: a `Clear`
/// starts a new one, and messages of an older one are dropped.
struct TtsMsg {
    gen: u64,
    what: TtsPiece,
}

enum TtsPiece {
    Audio(Vec<i16>),
    Done,
    Failed(String),
}

enum LlmMsg {
    Delta { reply: u64, text: String },
    Done { reply: u64 },
    Failed { reply: u64, error: String },
}

/// A `Say` waiting for (or under) synthesis.
struct Say {
    mark: String,
    text: String,
    kind: Utterance,
    /// Samples of its audio so far (8 kHz).
    samples: usize,
}

struct Driver {
    media: Arc<Media>,
    engine: Arc<Engine>,
    dialect: Dialect,
    stream_sid: String,
    provider_sid: Option<String>,
    agent: Agent,
    speech: SpeechSet,
    conversation: Conversation,
    listener: Listener,
    /// Inbound samples so far and the engine-clock time of the first: the listener's times
    /// come from sample positions (8 kHz), so network jitter does not move them.
    heard_samples: u64,
    stream_started: Option<Timestamp>,
    stt: Option<SttSession>,
    /// Callee audio waiting for room in the STT session's channel.
    stt_feed: SttFeed,
    tasks: JoinSet<()>,
    /// Speech to synthesise after the current one, in order.
    says: VecDeque<Say>,
    /// The `Say` being synthesised, its chunker, the audio collected for the cache.
    speaking: Option<(Say, Chunker, Option<Vec<i16>>, AbortHandle)>,
    gen: u64,
    tts_tx: mpsc::Sender<TtsMsg>,
    tts_rx: mpsc::Receiver<TtsMsg>,
    llm_tx: mpsc::Sender<LlmMsg>,
    llm_rx: mpsc::Receiver<LlmMsg>,
    replies: HashMap<u64, AbortHandle>,
    /// The socket's write half, paced on the playout thread.
    writer: Writer,
    hanging_up: Option<Ending>,
    /// Inputs the driver itself produced (`LineAudio`), fed to the conversation on the next
    /// turn of the loop.
    pending: Vec<Input>,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    fn new(
        media: Arc<Media>,
        engine: Arc<Engine>,
        dialect: Dialect,
        stream_sid: String,
        provider_sid: Option<String>,
        agent: Agent,
        speech: SpeechSet,
        writer: Writer,
    ) -> Self {
        let (tts_tx, tts_rx) = mpsc::channel(64);
        let (llm_tx, llm_rx) = mpsc::channel(64);
        let timing = Timing::default();
        // The conversation ignores speech shorter than `min_barge_in` (coughs, "mhm"), but it
        // learns a segment's length only when the segment ends, 700 ms of silence later. So
        // the listener confirms an onset only after that much voice: a cough never reaches the
        // conversation as an onset, and a real one is acted on (`clear`) as soon as it arrives.
        let onset_ms = u64::try_from(timing.min_barge_in.as_millis()).unwrap_or(200);
        let listener = Listener::new(ListenerConfig { onset_ms, ..ListenerConfig::default() });
        let conversation = Conversation::new(Script::from_agent(&agent), timing);
        Self {
            media,
            engine,
            dialect,
            stream_sid,
            provider_sid,
            agent,
            speech,
            conversation,
            listener,
            heard_samples: 0,
            stream_started: None,
            stt: None,
            stt_feed: SttFeed::default(),
            tasks: JoinSet::new(),
            says: VecDeque::new(),
            speaking: None,
            gen: 0,
            tts_tx,
            tts_rx,
            llm_tx,
            llm_rx,
            replies: HashMap::new(),
            writer,
            hanging_up: None,
            pending: Vec::new(),
        }
    }

    fn now(&self) -> Timestamp {
        self.engine.clock().now()
    }

    async fn open_stt(&mut self) {
        let options = SttOptions { sample_rate: SAMPLE_RATE, language: self.agent.language.clone(), model: self.agent.stt.model.clone() };
        match self.speech.stt.open(&options).await {
            Ok(session) => self.stt = Some(session),
            Err(e) => tracing::warn!(error = %e, "could not open the STT session: the callee's words will not be transcribed"),
        }
    }

    fn tts_options(&self) -> TtsOptions {
        TtsOptions { sample_rate: SAMPLE_RATE, voice: self.agent.tts.voice.clone(), model: self.agent.tts.model.clone(), language: self.agent.language.clone() }
    }

    /// The loop: until the conversation ends or the socket goes.
    async fn run(&mut self, socket: &mut SplitStream<WebSocket>, mut outside: mpsc::Receiver<Input>) -> Ending {
        let now = self.now();
        self.stream_started = Some(now);
        let actions = self.conversation.handle(now, Input::Started);
        self.act(actions);
        loop {
            if let Some(ending) = self.hanging_up {
                if self.speaking.is_none() && self.says.is_empty() {
                    // Everything is queued: wait until it is sent, let the provider play it
                    // (at most `send_ahead`), then close. A socket gone meanwhile ends it too.
                    if let Some(until) = self.writer.drained().await {
                        tokio::time::sleep_until(until).await;
                    }
                    return ending;
                }
            }
            if let Some(stt) = &self.stt {
                self.stt_feed.flush(&stt.audio);
            }
            for input in std::mem::take(&mut self.pending) {
                let now = self.now();
                let actions = self.conversation.handle(now, input);
                self.act(actions);
            }
            // Checked on every turn of the loop, not only when the loop is idle: inbound
            // audio arrives every 20–100 ms and would otherwise starve the timer below.
            let now = self.now();
            if self.conversation.next_deadline().is_some_and(|d| d <= now) {
                let actions = self.conversation.handle(now, Input::Tick);
                self.act(actions);
                continue;
            }
            let deadline = self.conversation.next_deadline();
            let tick = self.tick_wait(deadline);
            let mut from_socket = false;
            let inputs: Vec<Input> = tokio::select! {
                frame = socket.next() => {
                    from_socket = true;
                    match self.on_frame(frame) {
                        Ok(inputs) => inputs,
                        Err(()) => vec![Input::Stopped],
                    }
                }
                Some(msg) = self.tts_rx.recv() => { self.on_tts(msg); vec![] }
                Some(msg) = self.llm_rx.recv() => self.on_llm(msg),
                Some(input) = outside.recv() => vec![input],
                event = recv_stt(&mut self.stt) => match event {
                    Some(Ok(e)) => vec![Input::Stt(e)],
                    Some(Err(e)) => { tracing::warn!(error = %e, "STT session failed"); self.stt = None; vec![] }
                    None => { self.stt = None; vec![] }
                },
                // The provider closed the socket: a write was refused.
                _ = self.writer.gone() => vec![Input::Stopped],
                _ = tokio::time::sleep(tick) => {
                    match deadline {
                        Some(d) if self.now() >= d => vec![Input::Tick],
                        _ => vec![],
                    }
                }
            };
            for input in inputs {
                let stopped = input == Input::Stopped;
                let now = self.now();
                tracing::trace!(?input, %now, "conversation input");
                let actions = self.conversation.handle(now, input);
                self.act(actions);
                if stopped {
                    return self.conversation.ending().unwrap_or_else(|| fallback_ending(&self.conversation));
                }
            }
            if from_socket {
                self.media.frames_handled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Real time until the conversation's next deadline on the engine's clock, at most
    /// `max_tick` (the clock may be moved by hand in tests).
    fn tick_wait(&self, deadline: Option<Timestamp>) -> Duration {
        let max = self.media.config.max_tick;
        let Some(d) = deadline else { return max };
        let left = d.duration_since(self.now());
        if left.is_negative() {
            return Duration::ZERO;
        }
        Duration::try_from(left).unwrap_or(max).min(max)
    }

    /// One inbound frame → the conversation's inputs. Err: the stream is over.
    fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Result<Vec<Input>, ()> {
        let text = match frame {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Err(()),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => return Ok(vec![]),
        };
        let event = match StreamIn::parse(&text) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "media stream frame not understood: ignored");
                return Ok(vec![]);
            }
        };
        Ok(match event {
            StreamIn::Media { media, .. } => {
                if media.track.as_deref().is_some_and(|t| t != "inbound") {
                    return Ok(vec![]);
                }
                let Ok(pcm) = audio::decode_inbound(self.dialect, &media.payload) else { return Ok(vec![]) };
                self.feed_stt(SttInput::Audio(pcm.clone()));
                let started = *self.stream_started.get_or_insert_with(|| self.engine.clock().now());
                let at = started + SignedDuration::from_micros((self.heard_samples * 125) as i64);
                self.heard_samples += pcm.len() as u64;
                let heard = self.listener.push(at, &pcm);
                for h in &heard {
                    tracing::trace!(heard = ?h, now = %self.now(), "heard");
                }
                heard.into_iter().map(Input::Heard).collect()
            }
            StreamIn::Mark { mark, .. } => vec![Input::MarkPlayed { mark: mark.name }],
            StreamIn::Dtmf { dtmf, .. } => dtmf.digit.chars().next().map(|digit| Input::Dtmf { digit }).into_iter().collect(),
            StreamIn::Stop { .. } => return Err(()),
            StreamIn::Connected | StreamIn::Start { .. } | StreamIn::Unknown => vec![],
        })
    }

    /// Hands callee audio (or `Finalize`) to the STT session without losing any: a full
    /// channel queues it in order ([`SttFeed`]); only a session stalled past the feed's bound
    /// sheds its oldest audio, counted in `Media::stt_audio_shed_samples` and logged.
    fn feed_stt(&mut self, input: SttInput) {
        let Some(stt) = &self.stt else { return };
        let shed = self.stt_feed.push(&stt.audio, input);
        if shed > 0 {
            self.media.stt_audio_shed_samples.fetch_add(shed, std::sync::atomic::Ordering::Relaxed);
            if self.stt_feed.shed_samples == shed {
                tracing::warn!(
                    shed_samples = shed,
                    "the STT service has not taken the callee's audio for {} s: the oldest is shed (later sheds of this call are counted, not logged)",
                    self.stt_feed.max_samples / SAMPLE_RATE as usize
                );
            }
        }
    }

    fn on_llm(&mut self, msg: LlmMsg) -> Vec<Input> {
        match msg {
            LlmMsg::Delta { reply, text } if self.replies.contains_key(&reply) => vec![Input::ReplyDelta { reply, text }],
            LlmMsg::Done { reply } if self.replies.remove(&reply).is_some() => vec![Input::ReplyDone { reply }],
            LlmMsg::Failed { reply, error } if self.replies.remove(&reply).is_some() => {
                tracing::warn!(error, reply, "the LLM failed to reply");
                vec![Input::ReplyFailed { reply }]
            }
            _ => vec![],
        }
    }

    fn on_tts(&mut self, msg: TtsMsg) {
        if msg.gen != self.gen {
            return;
        }
        let Some((say, chunker, collected, _)) = self.speaking.as_mut() else { return };
        match msg.what {
            TtsPiece::Audio(pcm) => {
                say.samples += pcm.len();
                if let Some(all) = collected.as_mut() {
                    all.extend_from_slice(&pcm);
                }
                for chunk in chunker.push(&pcm).iter() {
                    queue_audio(&self.writer, self.dialect, &self.stream_sid, chunk);
                }
            }
            TtsPiece::Done | TtsPiece::Failed(_) => {
                if let TtsPiece::Failed(e) = &msg.what {
                    tracing::warn!(error = %e, kind = ?say.kind, "TTS failed; the line is cut short");
                } else if let Some(all) = collected.take() {
                    let key = greeting::key(&self.agent, self.dialect.as_str(), SAMPLE_RATE, &say.text);
                    self.media.cache.put(key, all);
                }
                if let Some(last) = chunker.finish() {
                    queue_audio(&self.writer, self.dialect, &self.stream_sid, &last);
                }
                queue_mark(&self.writer, self.dialect, &self.stream_sid, say.mark.clone());
                self.pending.push(line_audio(&say.mark, say.samples));
                self.speaking = None;
                self.start_next_say();
            }
        }
    }

    /// Starts synthesising the next waiting `Say` (the cache answers fixed lines at once).
    fn start_next_say(&mut self) {
        while self.speaking.is_none() {
            let Some(say) = self.says.pop_front() else { return };
            // Fixed lines only, and only when the cache keeps anything (`greeting_cache_entries`).
            let cacheable = say.kind != Utterance::Reply && self.media.cache.enabled();
            let key = greeting::key(&self.agent, self.dialect.as_str(), SAMPLE_RATE, &say.text);
            let mut chunker = audio::chunker(self.dialect);
            if let Some(pcm) = cacheable.then(|| self.media.cache.get(&key)).flatten() {
                for chunk in chunker.push(&pcm).iter() {
                    queue_audio(&self.writer, self.dialect, &self.stream_sid, chunk);
                }
                if let Some(last) = chunker.finish() {
                    queue_audio(&self.writer, self.dialect, &self.stream_sid, &last);
                }
                self.pending.push(line_audio(&say.mark, pcm.len()));
                queue_mark(&self.writer, self.dialect, &self.stream_sid, say.mark);
                continue;
            }
            let tts = self.speech.tts.clone();
            let tx = self.tts_tx.clone();
            let gen = self.gen;
            let text = say.text.clone();
            let options = self.tts_options();
            let handle = self.tasks.spawn(async move {
                let what = match tts.synthesize(&text, &options).await {
                    Ok(mut stream) => loop {
                        match stream.next().await {
                            Some(Ok(pcm)) => {
                                if tx.send(TtsMsg { gen, what: TtsPiece::Audio(pcm) }).await.is_err() {
                                    return;
                                }
                            }
                            Some(Err(e)) => break TtsPiece::Failed(e.to_string()),
                            None => break TtsPiece::Done,
                        }
                    },
                    Err(e) => TtsPiece::Failed(e.to_string()),
                };
                let _ = tx.send(TtsMsg { gen, what }).await;
            });
            self.speaking = Some((say, chunker, cacheable.then(Vec::new), handle));
        }
    }

    /// Carries out the conversation's actions in order. Frames go to the writer, which
    /// sends them in that order; a socket gone shows in `Writer::gone`.
    fn act(&mut self, actions: Vec<Action>) {
        for action in actions {
            tracing::trace!(?action, "conversation action");
            match action {
                Action::Say { mark, text, kind } => {
                    self.says.push_back(Say { mark, text, kind, samples: 0 });
                    self.start_next_say();
                }
                Action::Clear => {
                    self.gen += 1;
                    self.says.clear();
                    if let Some((_, _, _, handle)) = self.speaking.take() {
                        handle.abort();
                    }
                    self.writer.clear(self.dialect.encode(&self.stream_sid, &StreamOut::Clear));
                }
                Action::Reply { reply, mut request } => {
                    if request.model.is_none() {
                        request.model = self.agent.llm.model.clone();
                    }
                    let llm = self.speech.llm.clone();
                    let tx = self.llm_tx.clone();
                    let handle = self.tasks.spawn(async move {
                        let end = match llm.reply(&request).await {
                            Ok(mut stream) => loop {
                                match stream.next().await {
                                    Some(Ok(text)) => {
                                        if tx.send(LlmMsg::Delta { reply, text }).await.is_err() {
                                            return;
                                        }
                                    }
                                    Some(Err(e)) => break LlmMsg::Failed { reply, error: e.to_string() },
                                    None => break LlmMsg::Done { reply },
                                }
                            },
                            Err(e) => LlmMsg::Failed { reply, error: e.to_string() },
                        };
                        let _ = tx.send(end).await;
                    });
                    self.replies.insert(reply, handle);
                }
                Action::CancelReply { reply } => {
                    if let Some(handle) = self.replies.remove(&reply) {
                        handle.abort();
                    }
                }
                Action::FinalizeStt => self.feed_stt(SttInput::Finalize),
                Action::Hangup(ending) => {
                    self.hanging_up = Some(ending);
                }
            }
        }
    }
}

/// `Input::LineAudio` for a line of `samples` at 8 kHz.
fn line_audio(mark: &str, samples: usize) -> Input {
    Input::LineAudio { mark: mark.to_string(), duration: SignedDuration::from_micros(samples as i64 * 1_000_000 / i64::from(SAMPLE_RATE)) }
}

/// When the conversation did not say how it ended (it had not started): the callee hung
/// up; `completed` when they said anything, `no_response` otherwise.
fn fallback_ending(conversation: &Conversation) -> Ending {
    let spoke = conversation.transcript().iter().any(|t| t.speaker == dialtone_core::Speaker::Callee);
    Ending { outcome: if spoke { VoiceOutcome::Completed } else { VoiceOutcome::NoResponse }, reason: EndReason::CalleeHungUp, voicemail_left: false }
}

async fn recv_stt(stt: &mut Option<SttSession>) -> Option<Result<SttEvent, dialtone_voice::speech::SpeechError>> {
    match stt {
        Some(s) => s.events.recv().await,
        None => std::future::pending().await,
    }
}
