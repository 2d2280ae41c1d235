//! The speech services' HTTP side, raw: shapes, refusals and 4xx errors naming the field.
//! (The WebSocket services are driven by dialtone's real clients in the server's tests.)

use dialtone_sim::fixtures;
use dialtone_sim::speech::scripted_reply;
use dialtone_sim::SimConfig;
use serde_json::{json, Value};

use super::support::spawn;

async fn sim() -> dialtone_sim::SimHandle {
    spawn(SimConfig { speech_api_key: Some("k".into()), ..SimConfig::default() }).await
}

#[tokio::test]
async fn chat_answers_json_without_stream_and_names_bad_fields() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "Okay, thank you. Goodbye."}]}]});
    let reply: Value = http.post(&url).bearer_auth("k").json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "Thank you, goodbye!");
    assert_eq!(reply["object"], "chat.completion");

    let missing = http.post(&url).bearer_auth("k").json(&json!({"model": "m"})).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["param"], "messages");
    let bad = http.post(&url).bearer_auth("k").json(&json!({"messages": [{"role": "user"}]})).send().await.unwrap();
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["param"], "messages[0]");
    let garbage = http.post(&url).bearer_auth("k").body("{not json").send().await.unwrap();
    assert_eq!(garbage.status(), 400);

    let refused = http.post(&url).bearer_auth("wrong").json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "invalid_api_key");
    let unsigned = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);

    let stats = sim.sim().speech_stats();
    assert_eq!((stats.chat_requests, stats.unauthorized), (1, 2), "{stats:?}");
    sim.shutdown();
}

#[tokio::test]
async fn chat_streams_server_sent_events_ending_done() {
    let sim = sim().await;
    let body = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Is my appointment today?"}]});
    let response = reqwest::Client::new().post(format!("{}/v1/chat/completions", sim.base_url())).bearer_auth("k").json(&body).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let content: String = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap()["choices"][0]["delta"]["content"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(content, scripted_reply("appointment"));
    assert!(events.len() > 5, "several deltas: {events:?}");
    sim.shutdown();
}

/// A 16-bit mono WAV, by hand (RIFF: "RIFF" size "WAVE", "fmt " 16 PCM, "data").
fn wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend(b"RIFF");
    out.extend((36 + data.len() as u32).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(rate.to_le_bytes());
    out.extend((rate * 2).to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    out
}

fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "simboundary42";
    let mut body = Vec::new();
    for (name, value) in fields {
        let filename = if *name == "file" { "; filename=\"a.wav\"" } else { "" };
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n").as_bytes());
        body.extend(*value);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn transcription_hears_a_clip_in_a_wav_and_names_bad_fields() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/audio/transcriptions", sim.base_url());
    let clip: Vec<i16> = fixtures::pcm("question");
    let post = |fields: Vec<(&'static str, Vec<u8>)>| {
        let borrowed: Vec<(&str, &[u8])> = fields.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let (content_type, body) = multipart(&borrowed);
        http.post(&url).bearer_auth("k").header("content-type", content_type).body(body).send()
    };
    let answer: Value = post(vec![("model", b"whisper-1".to_vec()), ("file", wav(&clip, 8000))]).await.unwrap().json().await.unwrap();
    assert_eq!(answer["text"], fixtures::text("question").unwrap());
    let text = post(vec![("file", wav(&clip, 8000)), ("response_format", b"text".to_vec())]).await.unwrap().text().await.unwrap();
    assert_eq!(text, "What time is my appointment tomorrow?");

    let missing = post(vec![("model", b"whisper-1".to_vec())]).await.unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["param"], "file");
    let not_wav = post(vec![("file", b"ID3 not a wav".to_vec())]).await.unwrap();
    assert_eq!(not_wav.status(), 400);
    assert_eq!(not_wav.json::<Value>().await.unwrap()["error"]["param"], "file");
    sim.shutdown();
}

/// Opens a WebSocket to the simulator with one header and waits (on the paused clock) for
/// the close frame the service sends when nothing arrives.
async fn idle_close(url: String, header: (&'static str, &'static str)) -> (u16, String) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(header.0, header.1.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    loop {
        match socket.next().await {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn streaming_services_close_an_idle_socket_with_their_own_close_frame() {
    let sim = sim().await;
    let ws = sim.base_url().replace("http://", "ws://");
    let started = tokio::time::Instant::now();
    let (code, reason) = idle_close(format!("{ws}/v1/listen?encoding=mulaw&sample_rate=8000"), ("authorization", "Token k")).await;
    assert_eq!(code, 1011);
    assert!(reason.contains("NET-0001"), "{reason}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(10), "Deepgram waits 10 s: {:?}", started.elapsed());

    let started = tokio::time::Instant::now();
    let (code, reason) = idle_close(format!("{ws}/v1/text-to-speech/v/stream-input?output_format=ulaw_8000"), ("xi-api-key", "k")).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("20 seconds"), "{reason}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(20), "ElevenLabs waits 20 s: {:?}", started.elapsed());
    sim.shutdown();
}
