//! A fake provider on 127.0.0.1:0 that records every request and answers from a script
//! (one canned answer per request, the last one repeated).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
    Router,
};
use base64::Engine as _;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: String,
}

pub fn canned(status: u16, body: serde_json::Value) -> Canned {
    Canned { status, headers: vec![], body: body.to_string() }
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The form body as (name, value) pairs, decoded, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// `Authorization: Basic …` decoded to `user:password`.
    pub fn basic_auth(&self) -> Option<String> {
        let b64 = self.authorization.as_deref()?.strip_prefix("Basic ")?;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()
    }
}

#[derive(Clone)]
struct Fake {
    script: Arc<Vec<Canned>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(State(fake): State<Fake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let header = |k: &str| headers.get(k).map(|v| v.to_str().unwrap().to_string());
    let n = {
        let mut seen = fake.seen.lock().unwrap();
        seen.push(Seen {
            method,
            path: uri.path().to_string(),
            authorization: header("authorization"),
            content_type: header("content-type"),
            body: body.to_vec(),
        });
        seen.len() - 1
    };
    let c = &fake.script[n.min(fake.script.len() - 1)];
    let mut out = HeaderMap::new();
    out.insert("content-type", "application/json".parse().unwrap());
    for (k, v) in &c.headers {
        out.insert(*k, v.parse().unwrap());
    }
    (StatusCode::from_u16(c.status).unwrap(), out, c.body.clone())
}

/// Starts the fake: its base URL and what it has seen.
pub async fn serve(script: Vec<Canned>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    assert!(!script.is_empty());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(answer).with_state(Fake { script: Arc::new(script), seen: seen.clone() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

/// A base URL nobody listens on: bind, read the port, drop.
pub fn refused_base_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
