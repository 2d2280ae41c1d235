//! A scripted provider account for tests and benchmarks (feature `testing`): each placement
//! is answered from a script (then accepted), and everything asked of it is recorded. It
//! stands in for a provider wherever the engine, not the provider's wire format, is tested.

use async_trait::async_trait;
use dialtone_core::{CallId, CallStatus, Clock, EventKind, ProviderEvent, ProviderKind, SystemClock};
use dialtone_providers::{ErrorClass, ParsedWebhook, PlaceCall, Placed, Provider, ProviderError, RemoteCall, WebhookError, WebhookRequest};
use jiff::Timestamp;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// How the scripted provider answers one placement request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Creates the call as [`provider_id`] of our id.
    Accept,
    /// Refuses with this error; no call is created.
    Refuse(ProviderError),
    /// The request goes unanswered (a timeout) and no call was created.
    TimeOut,
    /// The request goes unanswered, but the call was created: a lookup by our id finds it.
    TimeOutAfterCreating,
}

impl Answer {
    /// A retryable 503, as from a provider that is down.
    pub fn unavailable() -> Self {
        Answer::Refuse(ProviderError {
            class: ErrorClass::Retryable,
            status: Some(503),
            message: "scripted 503: unavailable".into(),
            retry_after: None,
            concurrency_limited: false,
            unanswered: false,
        })
    }
}

/// The provider call id the scripted provider gives our call `call`: `p-{call}`.
pub fn provider_id(call: &CallId) -> String {
    format!("p-{call}")
}

fn unanswered(message: &str) -> ProviderError {
    ProviderError { class: ErrorClass::Retryable, status: None, message: message.into(), retry_after: None, concurrency_limited: false, unanswered: true }
}

/// A `sim` account that answers placements from its script, then accepts every call. Asked
/// about a call (`get_call`), it says the call is still in progress (unless
/// [`ScriptedProvider::set_status_answer`] says otherwise); a lookup by our id
/// (`find_call`) finds the calls it created; `hang_up` is recorded.
pub struct ScriptedProvider {
    clock: Arc<dyn Clock>,
    script: Mutex<VecDeque<Answer>>,
    lookup_fails: bool,
    /// What a status lookup (`get_call`) says: 0 in progress, 1 ended `completed`, 2 an error.
    status_answer: std::sync::atomic::AtomicU8,
    requests: AtomicUsize,
    lookups: AtomicUsize,
    status_lookups: AtomicUsize,
    placed: Mutex<Vec<(CallId, Timestamp)>>,
    media: Mutex<Vec<(CallId, Option<dialtone_providers::MediaStream>)>>,
    created: Mutex<Vec<CallId>>,
    hung_up: Mutex<Vec<String>>,
    witness: OnceLock<(Arc<dyn dialtone_store::Store>, dialtone_core::WorkspaceId)>,
    seen_at_send: Mutex<Vec<dialtone_store::Call>>,
}

impl Default for ScriptedProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedProvider {
    /// Accepts every call; placements are timed by the system clock.
    pub fn new() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            script: Mutex::new(VecDeque::new()),
            lookup_fails: false,
            status_answer: std::sync::atomic::AtomicU8::new(0),
            requests: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
            status_lookups: AtomicUsize::new(0),
            placed: Mutex::new(vec![]),
            media: Mutex::new(vec![]),
            created: Mutex::new(vec![]),
            hung_up: Mutex::new(vec![]),
            witness: OnceLock::new(),
            seen_at_send: Mutex::new(vec![]),
        }
    }

    /// Answers the next placements with `answers`, in order, before accepting again.
    pub fn answering(self, answers: impl IntoIterator<Item = Answer>) -> Self {
        self.script.lock().unwrap().extend(answers);
        self
    }

    /// Times each placement by `clock` (the engine's injected clock) instead of the system's.
    pub fn timed_by(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Every lookup by our id fails: the provider cannot say whether it holds a call.
    pub fn lookups_fail(mut self) -> Self {
        self.lookup_fails = true;
        self
    }

    /// From now on, a status lookup (`get_call`) says the call ended `completed` (`Some(true)`),
    /// fails as a 429 would (`Some(false)`), or says it is in progress (`None`, the default).
    pub fn set_status_answer(&self, ended: Option<bool>) {
        let v = match ended {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        };
        self.status_answer.store(v, Ordering::SeqCst);
    }

    /// Reads each call from `store` the moment it is asked to place it, as the store holds
    /// it then (see [`ScriptedProvider::seen_at_send`]): how a test sees what was committed
    /// before the request. Set once.
    pub fn witnessing(self, store: Arc<dyn dialtone_store::Store>, ws: dialtone_core::WorkspaceId) -> Self {
        assert!(self.witness.set((store, ws)).is_ok(), "witnessing is set once");
        self
    }

    /// With [`ScriptedProvider::witnessing`]: each call as stored when its placement request came.
    pub fn seen_at_send(&self) -> Vec<dialtone_store::Call> {
        self.seen_at_send.lock().unwrap().clone()
    }

    /// Placement requests received, answered or not.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Lookups by our id (`find_call`).
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Status lookups by provider id (`get_call`).
    pub fn status_lookups(&self) -> usize {
        self.status_lookups.load(Ordering::SeqCst)
    }

    /// Every placement request: our call id and when (by its clock) it came.
    pub fn placed(&self) -> Vec<(CallId, Timestamp)> {
        self.placed.lock().unwrap().clone()
    }

    /// Every placement request: our call id and the media stream it asked for (an agent call's).
    pub fn media(&self) -> Vec<(CallId, Option<dialtone_providers::MediaStream>)> {
        self.media.lock().unwrap().clone()
    }

    /// The calls the provider holds (accepted, or created by a request that timed out).
    pub fn created(&self) -> Vec<CallId> {
        self.created.lock().unwrap().clone()
    }

    /// The provider call ids it was asked to hang up, in order.
    pub fn hung_up(&self) -> Vec<String> {
        self.hung_up.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sim
    }

    async fn place_call(&self, call: &PlaceCall) -> Result<Placed, ProviderError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.placed.lock().unwrap().push((call.call_id.clone(), self.clock.now()));
        self.media.lock().unwrap().push((call.call_id.clone(), call.media));
        if let Some((store, ws)) = self.witness.get() {
            let stored = store.get_call(ws, &call.call_id).await.ok().flatten().expect("the call row exists before it is sent");
            self.seen_at_send.lock().unwrap().push(stored);
        }
        let answer = self.script.lock().unwrap().pop_front().unwrap_or(Answer::Accept);
        match answer {
            Answer::Accept => {
                self.created.lock().unwrap().push(call.call_id.clone());
                Ok(Placed { provider_call_id: provider_id(&call.call_id) })
            }
            Answer::Refuse(e) => Err(e),
            Answer::TimeOut => Err(unanswered("request timed out")),
            Answer::TimeOutAfterCreating => {
                self.created.lock().unwrap().push(call.call_id.clone());
                Err(unanswered("request timed out"))
            }
        }
    }

    async fn get_call(&self, provider_call_id: &str) -> Result<RemoteCall, ProviderError> {
        let n = self.status_lookups.fetch_add(1, Ordering::SeqCst);
        match self.status_answer.load(Ordering::SeqCst) {
            0 => Ok(remote(provider_call_id, None, CallStatus::InProgress, n)),
            1 => {
                let mut r = remote(provider_call_id, None, CallStatus::InProgress, n);
                r.event.kind = EventKind::Ended { outcome: dialtone_core::Outcome::Completed, reason: Some("customer-ended-call".into()) };
                r.event.dedupe_key = format!("reconcile:{provider_call_id}:ended");
                Ok(r)
            }
            _ => Err(ProviderError {
                class: ErrorClass::Retryable,
                status: Some(429),
                message: "too many requests".into(),
                retry_after: None,
                concurrency_limited: false,
                unanswered: false,
            }),
        }
    }

    async fn find_call(&self, call_id: &CallId, _since: Timestamp) -> Result<Option<RemoteCall>, ProviderError> {
        let n = self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.lookup_fails {
            return Err(unanswered("call list unavailable"));
        }
        let found = self.created.lock().unwrap().contains(call_id);
        Ok(found.then(|| remote(&provider_id(call_id), Some(call_id.clone()), CallStatus::Ringing, n)))
    }

    async fn hang_up(&self, provider_call_id: &str) -> Result<(), ProviderError> {
        self.hung_up.lock().unwrap().push(provider_call_id.into());
        Ok(())
    }

    fn verify_webhook(&self, _: &WebhookRequest<'_>, _: Timestamp) -> Result<(), WebhookError> {
        Ok(())
    }

    fn parse_webhook(&self, _: &WebhookRequest<'_>) -> Result<ParsedWebhook, WebhookError> {
        Ok(ParsedWebhook::default())
    }
}

/// The provider's view of a call, as a reconcile event (`n` keeps each lookup's event new).
fn remote(provider_call_id: &str, call_id: Option<CallId>, status: CallStatus, n: usize) -> RemoteCall {
    let text = status.as_str();
    RemoteCall {
        provider_call_id: provider_call_id.into(),
        call_id: call_id.clone(),
        event: ProviderEvent {
            provider_type: "call".into(),
            provider_call_id: Some(provider_call_id.into()),
            call_id,
            kind: EventKind::Progress(status),
            dedupe_key: format!("reconcile:{provider_call_id}:{text}:{n}"),
            occurred_at: None,
            cost: None,
            duration_ms: None,
            report: None,
            raw: serde_json::json!({ "status": text }).into(),
            webhook: None,
        },
    }
}
