//! Lingering close for refused requests.
//!
//! A request refused before its body was read (413 over a limit, 401, 415, …) leaves the
//! rest of the body in the socket. hyper then closes the connection, and a TCP close with
//! unread data sends a reset, which can destroy our answer in the client's receive buffer:
//! the client sees "connection reset" instead of the JSON 413. nginx's `lingering_close`
//! solves this by reading and discarding what is left before closing; so do we, bounded
//! by [`MAX_BYTES`] and [`MAX_TIME`] so that a refused upload cannot hold a connection open.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Frame;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// At most this much of an unread body is read and discarded before answering (bytes).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// …and for at most this long.
pub const MAX_TIME: Duration = Duration::from_secs(5);

/// Middleware: hands the handler a body that, if dropped before its end, leaves what is
/// left of it here; that rest is discarded (bounded) before the answer goes out.
pub async fn drain_unread_body(request: Request, next: Next) -> Response {
    let declared = request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let left = Arc::new(Mutex::new(None));
    let request = request.map(|inner| Body::new(Tracked { inner: Some(inner), left: left.clone(), ended: false }));
    let response = next.run(request).await;
    let rest = left.lock().unwrap_or_else(|e| e.into_inner()).take();
    // A body that says it is longer than the drain would read cannot be drained: answering
    // at once beats keeping a client that declared a gigabyte (and may never send it) waiting.
    // (The declared `Content-Length`, since the body's own size hint does not survive the
    // body-timeout wrapper.)
    if let Some(rest) = rest.filter(|_| !matches!(declared, Some(n) if n > MAX_BYTES as u64)) {
        let _ = tokio::time::timeout(MAX_TIME, discard(rest, MAX_BYTES)).await;
    }
    response
}

async fn discard(mut body: Body, max: usize) {
    let mut read = 0usize;
    while read < max {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) | None => return,
        }
    }
}

struct Tracked {
    inner: Option<Body>,
    left: Arc<Mutex<Option<Body>>>,
    /// The body reached its end (or failed): nothing is left to discard.
    ended: bool,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map(HttpBody::size_hint).unwrap_or_default()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            if !self.ended && !inner.is_end_stream() {
                *self.left.lock().unwrap_or_else(|e| e.into_inner()) = Some(inner);
            }
        }
    }
}
