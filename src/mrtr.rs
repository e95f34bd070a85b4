//! Multi round-trip requests for clients of the stateless era (2026-07-28) in front of backends
//! of the session era.
//!
//! A session-era backend asks for input by sending the client a request (`elicitation/create`,
//! `sampling/createMessage`, `roots/list`) while it works on a call. A stateless client cannot
//! receive one: it expects the call's result to say `resultType: "input_required"` with the
//! requests inside, and then retries the call with `inputResponses`. mcpmux bridges the two: the
//! backend call keeps running in a task of its own ([`Live`]); when the backend asks, the
//! client's HTTP request is answered `input_required` and the running call is parked under a
//! random `requestState`. The retry finds it by that state, answers the backend's requests with
//! the client's `inputResponses`, and waits for the call again — which may ask again.
//!
//! A parked call that no retry picks up within the exchange timeout is cancelled and its
//! backend requests are answered with an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::backend::client::{EventSink, Origin, Peer};
use crate::error::RelayError;
use crate::jsonrpc::{self, Payload, code};
use crate::protocol::methods;
use crate::session::{self, Scope};

/// Prefix of the `requestState` values mcpmux mints; anything else belongs to a backend.
pub const STATE_PREFIX: &str = "mcpmux-mrtr:";

/// Capacity of the queue of notifications (progress, logs) of one call.
const EVENTS_CAPACITY: usize = 64;

/// A request a backend sent while serving a stateless client's call.
pub struct Ask {
    peer: Arc<Peer>,
    backend_id: Value,
    pub method: String,
    pub params: Option<Value>,
}

impl Ask {
    pub fn answer(self, outcome: Result<Payload, Value>) {
        self.peer.respond(&self.backend_id, outcome);
    }
}

/// What the origin of a stateless call reports to the call's driver.
pub enum Signal {
    /// The backend needs input from the client.
    Ask(Ask),
    /// The backend asked for something the client did not declare it can give.
    Missing { capability: &'static str, ask: Ask },
}

/// The downstream party of one stateless call, as backends see it.
struct CallOrigin {
    key: String,
    capabilities: Arc<Value>,
    log_level: Option<String>,
    merged: bool,
    signals: mpsc::UnboundedSender<Signal>,
    /// Set while the call is parked with backend requests unanswered.
    waiting: Arc<AtomicBool>,
}

impl Origin for CallOrigin {
    fn key(&self) -> &str {
        &self.key
    }

    fn forward_request(
        &self,
        peer: Arc<Peer>,
        backend_id: Value,
        method: String,
        params: Option<Value>,
        _sink: Option<EventSink>,
    ) {
        let missing = session::missing_capability(&self.capabilities, &method, params.as_ref());
        let ask = Ask { peer, backend_id, method, params };
        let signal = match missing {
            Some(capability) => Signal::Missing { capability, ask },
            None => Signal::Ask(ask),
        };
        if let Err(mpsc::error::SendError(signal)) = self.signals.send(signal) {
            let ask = match signal {
                Signal::Ask(a) | Signal::Missing { ask: a, .. } => a,
            };
            ask.answer(Err(jsonrpc::error_object(code::INTERNAL_ERROR, "the client's request has ended", None)));
        }
    }

    fn forward_notification(&self, backend: &str, method: &str, params: Option<Value>, sink: Option<EventSink>) {
        let Some(sink) = sink else { return };
        let mut params = params;
        if method == methods::MESSAGE {
            // 2026-07-28: no log messages for a request that did not ask for a level.
            let Some(min) = &self.log_level else { return };
            let level = params.as_ref().and_then(|p| p.get("level")).and_then(Value::as_str).unwrap_or("info");
            if session::level_rank(level) < session::level_rank(min) {
                return;
            }
            if self.merged
                && let Some(obj) = params.as_mut().and_then(Value::as_object_mut)
            {
                let logger = match obj.get("logger").and_then(Value::as_str) {
                    Some(l) => format!("{backend}/{l}"),
                    None => backend.to_owned(),
                };
                obj.insert("logger".into(), logger.into());
            }
        }
        let _ = sink.try_send(jsonrpc::notification(method, params));
    }

    fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }

    fn is_session(&self) -> bool {
        false
    }

    fn forward_cancel(&self, _peer: &Peer, backend_id: &Value) {
        tracing::debug!(origin = %self.key, backend_id = %backend_id, "A backend withdrew a request it sent during a stateless call.");
    }
}

/// Which client request an exchange belongs to: a retry must repeat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub method: String,
    /// `params.name` (tools, prompts) or `params.uri` (resources), as the client wrote it.
    pub target: String,
    pub scope: Scope,
}

impl Binding {
    pub fn of(method: &str, params: Option<&Value>, scope: &Scope) -> Binding {
        let target = params
            .and_then(|p| p.get("name").or_else(|| p.get("uri")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Binding { method: method.to_owned(), target, scope: scope.clone() }
    }
}

/// A backend call running for a stateless client.
pub struct Live {
    pub result: oneshot::Receiver<Result<Payload, RelayError>>,
    pub signals: mpsc::UnboundedReceiver<Signal>,
    pub events: mpsc::Receiver<Value>,
    cancel: CancellationToken,
    pub binding: Binding,
    next_key: u64,
    waiting: Arc<AtomicBool>,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Nobody will read the answer any more: stop the backend's work (a no-op once done).
        self.cancel.cancel();
    }
}

/// What a new [`Live`] call needs handed to the relay.
pub struct CallParts {
    pub origin: Arc<dyn Origin>,
    pub events: EventSink,
    pub cancel: CancellationToken,
    pub result: oneshot::Sender<Result<Payload, RelayError>>,
}

static NEXT_ORIGIN: AtomicU64 = AtomicU64::new(1);

impl Live {
    /// A call about to start: the parts for the relay, and the handle the driver keeps.
    pub fn start(binding: Binding, capabilities: Arc<Value>, log_level: Option<String>) -> (Live, CallParts) {
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(EVENTS_CAPACITY);
        let (result_tx, result) = oneshot::channel();
        let cancel = CancellationToken::new();
        let waiting = Arc::new(AtomicBool::new(false));
        let origin = CallOrigin {
            waiting: waiting.clone(),
            key: format!("stateless-{}", NEXT_ORIGIN.fetch_add(1, Ordering::Relaxed)),
            capabilities,
            log_level,
            merged: binding.scope == Scope::Merged,
            signals: signals_tx,
        };
        let live = Live { result, signals, events, cancel: cancel.clone(), binding, next_key: 0, waiting };
        let parts = CallParts { origin: Arc::new(origin), events: events_tx, cancel, result: result_tx };
        (live, parts)
    }

    /// A key for one input request, unique in this exchange (`elicitation-1`, `sampling-2`, …).
    pub fn key_for(&mut self, method: &str) -> String {
        self.next_key += 1;
        let kind = method.split('/').next().unwrap_or("input");
        format!("{kind}-{}", self.next_key)
    }
}

/// Backend requests not answered yet, by the key the client sees. Those still here when the
/// exchange ends are answered with an error, so the backend does not wait forever.
#[derive(Default)]
pub struct Outstanding(Vec<(String, Ask)>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        for (_, ask) in self.0.drain(..) {
            ask.answer(Err(jsonrpc::error_object(
                code::INTERNAL_ERROR,
                "the client did not answer the input request in time",
                None,
            )));
        }
    }
}

/// A call waiting for the client's retry.
pub struct Parked {
    pub live: Live,
    pub outstanding: Outstanding,
}

impl Parked {
    pub fn new(live: Live, outstanding: Vec<(String, Ask)>) -> Parked {
        live.waiting.store(!outstanding.is_empty(), Ordering::Release);
        Parked { live, outstanding: Outstanding(outstanding) }
    }

    /// Whether every input request has its answer.
    pub fn is_answered(&self) -> bool {
        self.outstanding.0.is_empty()
    }

    /// The `input_required` result that tells the client what to answer.
    pub fn input_required(&self, state: &str) -> Value {
        let mut requests = Map::new();
        for (key, ask) in &self.outstanding.0 {
            let mut req = Map::new();
            req.insert("method".into(), ask.method.clone().into());
            if let Some(p) = &ask.params {
                req.insert("params".into(), p.clone());
            }
            requests.insert(key.clone(), Value::Object(req));
        }
        json!({"resultType": "input_required", "inputRequests": requests, "requestState": state})
    }

    /// Answers the backend requests the client answered in `responses`; the rest stay.
    pub fn answer(&mut self, responses: Option<&Map<String, Value>>) {
        let Some(responses) = responses else { return };
        let mut kept = Vec::new();
        for (key, ask) in self.outstanding.0.drain(..) {
            match responses.get(&key) {
                Some(answer) => ask.answer(Ok(Payload::from_value(answer))),
                None => kept.push((key, ask)),
            }
        }
        self.live.waiting.store(!kept.is_empty(), Ordering::Release);
        self.outstanding.0 = kept;
    }
}

/// Calls parked until their retry, by `requestState`.
#[derive(Default)]
pub struct Exchanges {
    parked: Mutex<HashMap<String, Parked>>,
}

impl Exchanges {
    /// Parks a call for at most `timeout`; returns the `requestState` that finds it again.
    pub fn park(self: &Arc<Self>, parked: Parked, timeout: Duration) -> String {
        let state = format!("{STATE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        self.lock().insert(state.clone(), parked);
        let me = Arc::downgrade(self);
        let key = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(me) = me.upgrade() {
                let expired = me.lock().remove(&key);
                if expired.is_some() {
                    tracing::debug!("A stateless call waited for its retry longer than {timeout:?}; cancelled.");
                }
            }
        });
        state
    }

    /// Takes the call parked under `state` when `binding` is the request it belongs to.
    pub fn take(&self, state: &str, binding: &Binding) -> Option<Parked> {
        let mut parked = self.lock();
        if &parked.get(state)?.live.binding != binding {
            return None;
        }
        parked.remove(state)
    }

    /// Parks a call again under the state it had (its retry was refused as malformed).
    pub fn restore(&self, state: &str, parked: Parked) {
        self.lock().insert(state.to_owned(), parked);
    }

    /// The `input_required` result for the call parked under `state`.
    pub fn describe(&self, state: &str) -> Option<Value> {
        self.lock().get(state).map(|p| p.input_required(state))
    }

    /// Calls waiting for a retry.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every parked call (shutdown).
    pub fn clear(&self) {
        let all: Vec<Parked> = self.lock().drain().map(|(_, p)| p).collect();
        drop(all);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The capability object a client must declare for `capability` (`"elicitation.url"` →
/// `{"elicitation": {"url": {}}}`).
pub fn required_capability(capability: &str) -> Value {
    match capability.split_once('.') {
        Some((outer, inner)) => json!({ outer: { inner: {} } }),
        None => json!({ capability: {} }),
    }
}
