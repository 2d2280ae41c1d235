//! Media streams end to end: each test plays dialtone with a tiny WebSocket server that the
//! sim connects to once the call is answered. Real time over real sockets (paused tokio time
//! leaps ahead while a socket read is pending, so it gives no exact figures here either):
//! these tests check order, content and sizes, and timing only by lower bounds that load
//! cannot break. Exact timing is tested on the session's virtual clock (media::session).

use std::time::Duration;

use base64::Engine as _;
use dialtone_sim::{Callee, MediaCallRecord, SimConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::support::*;

const EXOPHONE: &str = "08047112233";
const TWILIO_FROM: &str = "+14155550100";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    Exotel,
    Twilio,
}

/// dialtone's end of one media stream.
struct Bot {
    ws: WebSocketStream<TcpStream>,
    wire: Wire,
    start: Value,
    sid: String,
    /// Every message received after `start`, in order.
    log: Vec<Value>,
}

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/voice/stream?call=call_9&campaign=cmp_9", listener.local_addr().unwrap());
    (listener, url)
}

fn decode(payload: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(payload).unwrap()
}

fn loud_pcm(ms: u64) -> Vec<i16> {
    (0..ms * 8).map(|i| if (i / 8) % 2 == 0 { 3_000 } else { -3_000 }).collect()
}

impl Bot {
    async fn accept(listener: &TcpListener, wire: Wire) -> Bot {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut opening = Vec::new();
        for _ in 0..2 {
            opening.push(serde_json::from_str::<Value>(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap());
        }
        assert_eq!(opening[0]["event"], "connected");
        let start = opening.remove(1);
        assert_eq!(start["event"], "start", "{start}");
        let sid_key = if wire == Wire::Exotel { "stream_sid" } else { "streamSid" };
        let sid = start["start"][sid_key].as_str().unwrap().to_string();
        Bot { ws, wire, start, sid, log: Vec::new() }
    }

    /// The next message, or `None` once the socket closed.
    async fn next(&mut self) -> Option<Value> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap();
                    self.log.push(v.clone());
                    return Some(v);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    fn sid_key(&self) -> &'static str {
        if self.wire == Wire::Exotel {
            "stream_sid"
        } else {
            "streamSid"
        }
    }

    /// `ms` of loud audio in the provider's sizes: Exotel 3,200 B chunks, Twilio 160 B frames.
    async fn say(&mut self, ms: u64) {
        let pcm = loud_pcm(ms);
        let (bytes, chunk): (Vec<u8>, usize) = match self.wire {
            Wire::Exotel => (pcm.iter().flat_map(|s| s.to_le_bytes()).collect(), 3_200),
            Wire::Twilio => (pcm.iter().map(|s| audio_codec_algorithms::encode_ulaw(*s)).collect(), 160),
        };
        for piece in bytes.chunks(chunk) {
            let key = self.sid_key();
            let msg = json!({"event": "media", key: self.sid, "media": {"payload": base64::engine::general_purpose::STANDARD.encode(piece)}});
            self.send(msg).await;
        }
    }

    async fn mark(&mut self, name: &str) {
        let key = self.sid_key();
        let msg = json!({"event": "mark", key: self.sid, "mark": {"name": name}});
        self.send(msg).await;
    }

    async fn clear(&mut self) {
        let key = self.sid_key();
        let msg = json!({"event": "clear", key: self.sid});
        self.send(msg).await;
    }

    fn voiced(&self, media: &Value) -> bool {
        let bytes = decode(media["media"]["payload"].as_str().unwrap());
        let samples: Vec<i16> = match self.wire {
            Wire::Exotel => bytes.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect(),
            Wire::Twilio => bytes.iter().map(|b| audio_codec_algorithms::decode_ulaw(*b)).collect(),
        };
        samples.iter().map(|s| i64::from(*s).abs()).max().unwrap_or(0) > 1_000
    }

    /// Reads until mark `name` comes back; panics if the socket closes first.
    async fn wait_mark(&mut self, name: &str) {
        while let Some(v) = self.next().await {
            if v["event"] == "mark" && v["mark"]["name"] == name {
                return;
            }
        }
        panic!("closed before mark {name} came back");
    }

    /// Reads until the callee has spoken and then been silent for 600 ms.
    async fn wait_utterance(&mut self) {
        let frame_ms = if self.wire == Wire::Exotel { 100 } else { 20 };
        let (mut spoke, mut quiet_ms) = (false, 0);
        while let Some(v) = self.next().await {
            if v["event"] != "media" {
                continue;
            }
            if self.voiced(&v) {
                spoke = true;
                quiet_ms = 0;
            } else if spoke {
                quiet_ms += frame_ms;
                if quiet_ms >= 600 {
                    return;
                }
            }
        }
        panic!("closed while waiting for the callee to speak");
    }

    /// Reads until the socket closes; returns whether a `stop` came first.
    async fn until_closed(&mut self) -> bool {
        let mut stopped = false;
        while let Some(v) = self.next().await {
            stopped |= v["event"] == "stop";
        }
        stopped
    }
}

async fn media_record(sim: &dialtone_sim::SimHandle) -> MediaCallRecord {
    wait_until("the media record", || !sim.sim().media_records().is_empty()).await;
    sim.sim().media_records().remove(0)
}

fn config(number: &str, callee: Callee) -> SimConfig {
    SimConfig { callees: [(number.to_string(), callee)].into(), ..all_providers(None) }
}

async fn exotel_dial(sim: &dialtone_sim::SimHandle, number: &str, stream_url: &str) -> String {
    let form = [("From", number), ("CallerId", EXOPHONE), ("StreamUrl", stream_url), ("StreamType", "bidirectional"), ("CustomField", "call_9")];
    let (status, created, _) = FormClient::exotel(sim).post("/Calls/connect.json", &form).await;
    assert_eq!(status, 200, "{created}");
    created["Call"]["Sid"].as_str().unwrap().to_string()
}

async fn twilio_dial(sim: &dialtone_sim::SimHandle, number: &str, stream_url: &str) -> String {
    let url = stream_url.replace('&', "&amp;");
    let twiml = format!(r#"<Response><Connect><Stream url="{url}"><Parameter name="dialtone_call_id" value="call_9"/></Stream></Connect></Response>"#);
    let form = [("To", number), ("From", TWILIO_FROM), ("Twiml", twiml.as_str())];
    let (status, created, _) = FormClient::twilio(sim).post("/Calls.json", &form).await;
    assert_eq!(status, 201, "{created}");
    created["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn exotel_human_converses_and_our_close_ends_the_call() {
    let number = "+919876543211";
    let sim = spawn(config(number, Callee::Human)).await;
    let (listener, url) = listen().await;
    let sid = exotel_dial(&sim, number, &url).await;
    let mut bot = Bot::accept(&listener, Wire::Exotel).await;

    let start = &bot.start["start"];
    assert_eq!(start["call_sid"], sid.as_str());
    assert_eq!(start["custom_parameters"], json!({"call": "call_9", "campaign": "cmp_9"}));
    assert_eq!(start["media_format"], json!({"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}));
    assert_eq!((start["from"].as_str(), start["to"].as_str()), (Some(number), Some(EXOPHONE)));

    bot.say(1_600).await;
    bot.mark("greeting").await;
    bot.wait_mark("greeting").await;
    for turn in ["r1", "r2", "bye"] {
        bot.wait_utterance().await;
        bot.say(1_000).await;
        bot.mark(turn).await;
    }
    // We hang up as our goodbye goes out, before the callee could.
    bot.ws.close(None).await.unwrap();

    let record = media_record(&sim).await;
    assert_eq!(record.clips_played, ["yes_speaking", "question", "thanks_bye"]);
    assert_eq!(record.hung_up_by.as_deref(), Some("dialtone"));
    assert_eq!(record.provider, "exotel");
    assert_eq!(record.callee, "human");
    assert!(record.greeting_latency_ms.is_some(), "{record:?}");
    assert_eq!(record.reply_latencies_ms.len(), 3, "{record:?}");
    assert!(record.reply_latencies_ms.iter().all(|ms| *ms >= 500), "the bot answers after 600 ms of silence: {record:?}");
    assert_eq!(record.marks_echoed[..3], ["greeting", "r1", "r2"]);
    assert_eq!((record.chunk_size_violations, record.bad_messages), (0, 0));
    assert_eq!(record.chunk_sizes.keys().copied().collect::<Vec<_>>(), [3_200]);
    assert_eq!(record.audio_received_ms, 4_600);

    // Every callee chunk was 100 ms of PCM16, at 100 ms spacing of stream time.
    let media: Vec<&Value> = bot.log.iter().filter(|v| v["event"] == "media").collect();
    assert!(media.iter().all(|m| decode(m["media"]["payload"].as_str().unwrap()).len() == 1_600));
    let stamps: Vec<u64> = media.iter().map(|m| m["media"]["timestamp"].as_str().unwrap().parse().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[1] - w[0] == 100), "{stamps:?}");

    let stats = wait_for_stats(&sim, "the call to end", |s| s.ended == 1).await;
    assert_eq!(stats.outcomes.answered, 1);
    let (_, call) = FormClient::exotel(&sim).get(&format!("/Calls/{sid}.json")).await;
    assert_eq!(call["Call"]["Status"], "completed");
}

#[tokio::test]
async fn twilio_frames_come_every_20_ms_of_the_clock() {
    let number = "+14155550125";
    let sim = spawn(config(number, Callee::Silent)).await;
    let (listener, url) = listen().await;
    let dialled = Instant::now();
    twilio_dial(&sim, number, &url).await;
    let mut bot = Bot::accept(&listener, Wire::Twilio).await;
    assert_eq!(bot.start["start"]["customParameters"], json!({"dialtone_call_id": "call_9"}));
    assert_eq!(bot.start["start"]["mediaFormat"], json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}));
    let mut arrivals = Vec::new();
    while arrivals.len() < 101 {
        let v = bot.next().await.unwrap();
        assert_eq!(v["event"], "media");
        assert_eq!(decode(v["media"]["payload"].as_str().unwrap()), vec![0xFF; 160], "a silent callee sends μ-law silence");
        arrivals.push(Instant::now());
    }
    // Frame 100 (stream time 2 s) is never sent before 2 s after the stream started.
    assert!(arrivals[100] - dialled >= Duration::from_secs(2), "sent ahead of real time");
    let stamps: Vec<u64> = bot.log.iter().map(|m| m["media"]["timestamp"].as_str().unwrap().parse().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[1] - w[0] == 20), "{stamps:?}");
    bot.ws.close(None).await.unwrap();
    let record = media_record(&sim).await;
    assert_eq!(record.hung_up_by.as_deref(), Some("dialtone"));
    assert!(record.clips_played.is_empty());
}

#[tokio::test]
async fn twilio_barge_in_is_cleared_and_the_callee_hangs_up() {
    let number = "+14155550127";
    let sim = spawn(all_providers(None)).await; // selected by the last digit, 7
    let (listener, url) = listen().await;
    let sid = twilio_dial(&sim, number, &url).await;
    let mut bot = Bot::accept(&listener, Wire::Twilio).await;
    assert_eq!(bot.start["start"]["callSid"], sid.as_str());

    bot.say(4_000).await;
    bot.mark("greeting").await;
    // Listen until the callee speaks over us, then clear at once.
    loop {
        let v = bot.next().await.unwrap();
        if v["event"] == "media" && bot.voiced(&v) {
            break;
        }
    }
    bot.clear().await;
    bot.wait_mark("greeting").await; // returned by the clear
    bot.wait_utterance().await;
    bot.say(1_000).await;
    bot.mark("r1").await;
    bot.wait_utterance().await;
    bot.say(600).await;
    bot.mark("bye").await;
    assert!(bot.until_closed().await, "stop before the socket closed");

    let record = media_record(&sim).await;
    assert_eq!(record.callee, "barge_in");
    assert_eq!(record.clips_played, ["interrupt", "thanks_bye"]);
    assert!(record.clear_latency_ms.is_some(), "timed from the interrupt's onset: {record:?}");
    assert_eq!(record.clears, 1);
    assert_eq!(record.marks_echoed, ["greeting", "r1", "bye"]);
    assert_eq!(record.hung_up_by.as_deref(), Some("callee"));
    assert_eq!(record.chunk_size_violations, 0);
    assert_eq!(record.custom_parameters["dialtone_call_id"], "call_9");
    // The interrupt started 1 s into our greeting's playback.
    let first_voiced = bot.log.iter().filter(|v| v["event"] == "media").position(|v| bot.voiced(v)).unwrap();
    assert!(first_voiced >= 50, "frame {first_voiced}");

    wait_for_stats(&sim, "the call to end", |s| s.ended == 1).await;
    let (_, call) = FormClient::twilio(&sim).get(&format!("/Calls/{sid}.json")).await;
    assert_eq!(call["status"], "completed");
}

#[tokio::test]
async fn exotel_early_hang_up_sends_stop_after_two_seconds() {
    let number = "+919876543218"; // last digit 8
    let sim = spawn(all_providers(None)).await;
    let (listener, url) = listen().await;
    let dialled = Instant::now();
    exotel_dial(&sim, number, &url).await;
    let mut bot = Bot::accept(&listener, Wire::Exotel).await;
    assert!(bot.until_closed().await);
    assert_eq!(bot.log.last().unwrap()["stop"]["reason"], "callended");
    let chunks = bot.log.iter().filter(|v| v["event"] == "media").count();
    assert_eq!(chunks, 20, "2 s of 100 ms chunks before the stop");
    assert!(dialled.elapsed() >= Duration::from_secs(2));
    let record = media_record(&sim).await;
    assert_eq!((record.callee.as_str(), record.hung_up_by.as_deref()), ("hangs_up_early", Some("callee")));
    assert!(record.duration_ms >= 2_000);
    wait_for_stats(&sim, "the call to end", |s| s.ended == 1).await;
}

#[tokio::test]
async fn twilio_voicemail_records_a_message_after_the_beep() {
    let number = "+14155550126"; // last digit 6
    let sim = spawn(all_providers(None)).await;
    let (listener, url) = listen().await;
    twilio_dial(&sim, number, &url).await;
    let mut bot = Bot::accept(&listener, Wire::Twilio).await;
    // Wait through the greeting and its beep (13.5 s), then leave a 2 s message and hang up.
    let mut frames = 0;
    while frames < 13_600 / 20 {
        frames += usize::from(bot.next().await.unwrap()["event"] == "media");
    }
    bot.say(2_000).await;
    bot.mark("message").await;
    bot.wait_mark("message").await;
    bot.ws.close(None).await.unwrap();
    let record = media_record(&sim).await;
    assert_eq!(record.clips_played, ["voicemail_beep"]);
    assert_eq!(record.voicemail_left, Some(true));
    assert_eq!(record.hung_up_by.as_deref(), Some("dialtone"));
    let stats = wait_for_stats(&sim, "the call to end", |s| s.ended == 1).await;
    assert_eq!(stats.outcomes.voicemail, 1);
}

#[tokio::test]
async fn an_unreachable_stream_is_recorded_and_the_call_runs_without_media() {
    let number = "+919876543211";
    let sim = spawn(all_providers(None)).await;
    let (listener, url) = listen().await;
    drop(listener);
    exotel_dial(&sim, number, &url).await;
    let record = media_record(&sim).await;
    assert!(!record.connected && record.connect_error.is_some(), "{record:?}");
    wait_for_stats(&sim, "the call to end", |s| s.ended == 1).await;
}
