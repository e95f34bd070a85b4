//! The transport-independent MCP client core: one per backend connection.
//!
//! It gives every outgoing request a fresh id on this connection, remembers who waits for the
//! answer (and where that caller wants the notifications that belong to its request, such as
//! progress), and matches what the backend sends back. A transport only moves lines: it calls
//! [`Peer::dispatch`] for each message read and drains [`Outbox`] for each message to write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::jsonrpc::{self, Kind, Message, Payload, code};
use crate::protocol::methods;

/// Where the messages that belong to one client request go (its SSE stream).
pub type EventSink = mpsc::Sender<Value>;

/// The downstream party a request came from: where a backend's own requests and
/// notifications go when they can be tied to it.
///
/// Over a shared connection mcpmux ties a backend message to a client only when exactly one
/// client has calls in flight on that connection; otherwise it never guesses.
pub trait Origin: Send + Sync {
    /// Identifies the downstream party (a session id).
    fn key(&self) -> &str;
    /// A backend request (sampling, elicitation, roots) for this party. `sink` is the stream
    /// of the one request that is in flight, if there is exactly one. The implementation
    /// must eventually answer through [`Peer::respond`].
    fn forward_request(
        &self,
        peer: Arc<Peer>,
        backend_id: Value,
        method: String,
        params: Option<Value>,
        sink: Option<EventSink>,
    );
    /// A backend notification (a log message) for this party.
    fn forward_notification(&self, backend: &str, method: &str, params: Option<Value>, sink: Option<EventSink>);
    /// The backend withdrew its request `backend_id`.
    fn forward_cancel(&self, peer: &Peer, backend_id: &Value);
    /// This party's call is parked waiting for its client to answer the backend's requests (a
    /// stateless client's multi round-trip): the backend is waiting on it, so a new backend
    /// request on the connection cannot come from that call.
    fn is_waiting(&self) -> bool {
        false
    }
    /// This party is a client session, which `"isolation": "session"` gives a connection of
    /// its own. A stateless client's call is not: it uses the backend's shared connection.
    fn is_session(&self) -> bool {
        true
    }
    /// Asks this party one request on a backend's behalf and waits for its answer: how an
    /// `input_required` result of a stateless-era backend is resolved for a client of the
    /// session era. `Err` is a JSON-RPC error object.
    fn ask(&self, backend: &str, method: String, params: Option<Value>, sink: Option<EventSink>) -> AskFuture {
        let _ = (backend, params, sink);
        Box::pin(std::future::ready(Err(jsonrpc::error_object(
            code::METHOD_NOT_FOUND,
            format!("this client cannot be asked '{method}'"),
            None,
        ))))
    }
}

/// The answer to [`Origin::ask`].
pub type AskFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, Value>> + Send>>;

/// Who a call is made for, as a stateless-era (2026-07-28) backend needs it in each request's
/// `_meta`.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The caller itself speaks the stateless era: an `input_required` result goes back to it
    /// unchanged instead of being resolved by mcpmux through [`Origin::ask`].
    pub modern: bool,
    /// The client's capabilities (`io.modelcontextprotocol/clientCapabilities`).
    pub capabilities: Arc<Value>,
    /// The client's `clientInfo`, when it gave one.
    pub info: Option<Value>,
    /// The log level the client asked for, if any (`io.modelcontextprotocol/logLevel`).
    pub log_level: Option<String>,
}

/// How one request is sent.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// Where progress for the request goes.
    pub sink: Option<EventSink>,
    /// Who asked, for backend requests made while serving it.
    pub origin: Option<Arc<dyn Origin>>,
    /// Cancelled when the client cancels: the backend is told, the call returns `Cancelled`.
    pub cancel: Option<CancellationToken>,
    /// Who the call is for (capabilities, info, era); `None` for mcpmux's own calls.
    pub caller: Option<Arc<Caller>>,
}

/// Capacity of the queue of lines waiting for the transport writer.
const OUTBOX_CAPACITY: usize = 1024;

/// A backend's answer to one request.
#[derive(Debug)]
pub enum Reply {
    /// The `result`, as the backend wrote it.
    Result(Payload),
    /// The backend's `error` object, unchanged.
    Error(Value),
}

/// Why a call got no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Closed(String),
    #[error("the connection's send queue is full")]
    Overloaded,
    #[error("the client cancelled the request")]
    Cancelled,
    /// This one request failed (an HTTP error, an answer over the size limit); the connection
    /// stays up.
    #[error("{0}")]
    Failed(String),
}

/// Something a backend sent that is not tied to one client request.
#[derive(Debug, Clone)]
pub enum BackendEvent {
    /// A notification (`list_changed`, log message, resource update, …).
    Notification { method: String, params: Option<Value> },
    /// The connection ended.
    Closed { reason: String },
}

/// Lines waiting to be written to the backend, in order.
pub type Outbox = mpsc::Receiver<Bytes>;

struct Pending {
    reply: oneshot::Sender<Result<Reply, CallError>>,
    sink: Option<EventSink>,
    origin: Option<Arc<dyn Origin>>,
    /// The caller's own progress token, restored on progress notifications.
    progress_token: Option<Value>,
    /// When the backend last reported progress for this call.
    last_progress: Option<tokio::time::Instant>,
}

/// Shared state of one backend connection.
pub struct Peer {
    me: std::sync::Weak<Peer>,
    name: Arc<str>,
    /// The one party this connection serves, when it serves only one.
    owner: Option<Arc<dyn Origin>>,
    /// Backend requests handed to an origin and not answered yet, by backend id.
    forwarded: Mutex<HashMap<String, Arc<dyn Origin>>>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    outbox: mpsc::Sender<Bytes>,
    events: mpsc::UnboundedSender<BackendEvent>,
    closed: CancellationToken,
    close_reason: Mutex<Option<String>>,
    /// The `x-mcp-header` annotations of the backend's tools (stateless era, streamable HTTP).
    tool_headers: Mutex<Arc<super::modern::ToolHeaders>>,
}

impl Peer {
    /// A new connection core. Returns the peer, the outbox the transport must drain, and the
    /// stream of backend events for the owner.
    pub fn new(name: Arc<str>) -> (Arc<Peer>, Outbox, mpsc::UnboundedReceiver<BackendEvent>) {
        Self::with_owner(name, None)
    }

    /// A connection that belongs to one downstream party: everything the backend sends that is
    /// not tied to a call goes to `owner`.
    pub fn with_owner(
        name: Arc<str>,
        owner: Option<Arc<dyn Origin>>,
    ) -> (Arc<Peer>, Outbox, mpsc::UnboundedReceiver<BackendEvent>) {
        let (outbox_tx, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let peer = Arc::new_cyclic(|me| Peer {
            me: me.clone(),
            name,
            owner,
            forwarded: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            outbox: outbox_tx,
            events: events_tx,
            closed: CancellationToken::new(),
            close_reason: Mutex::new(None),
            tool_headers: Mutex::new(Arc::default()),
        });
        (peer, outbox_rx, events_rx)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Remembers which tool arguments a transport mirrors into headers.
    pub fn set_tool_headers(&self, headers: super::modern::ToolHeaders) {
        *self.tool_headers.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(headers);
    }

    /// Which tool arguments a transport mirrors into headers.
    pub fn tool_headers(&self) -> Arc<super::modern::ToolHeaders> {
        self.tool_headers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fires when the connection has ended.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Sends a request and waits for its reply.
    ///
    /// `params._meta.progressToken`, when present, is replaced by a token unique on this
    /// connection; progress notifications for it are sent to the caller's `sink` (if any) with the
    /// caller's token restored. If the caller stops waiting (the future is dropped), the pending
    /// entry is removed. On timeout the backend is sent `notifications/cancelled`.
    pub async fn request(
        &self,
        method: &str,
        mut params: Option<Value>,
        opts: CallOptions,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        if self.is_closed() {
            return Err(CallError::Closed(self.close_reason()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // The caller's token is always replaced, even when its progress has nowhere to go: a
        // token left as the client wrote it could equal another call's id on this connection.
        let progress_token = params.as_mut().and_then(|p| replace_progress_token(p, id));
        let line = request_line(id, method, params.as_ref());
        let (tx, rx) = oneshot::channel();
        let cancel = opts.cancel.unwrap_or_default();
        self.lock_pending().insert(
            id,
            Pending { reply: tx, sink: opts.sink, origin: opts.origin, progress_token, last_progress: None },
        );
        let mut guard = PendingGuard { peer: self, id, armed: false };
        if let Err(e) = self.outbox.try_send(line) {
            drop(guard);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => CallError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => CallError::Closed(self.close_reason()),
            });
        }
        guard.armed = true;
        let mut rx = rx;
        let mut deadline = tokio::time::Instant::now() + timeout;
        let outcome = loop {
            tokio::select! {
                r = &mut rx => break r.unwrap_or_else(|_| Err(CallError::Closed(self.close_reason()))),
                _ = tokio::time::sleep_until(deadline) => {
                    // Progress for this call moves the deadline: a backend that keeps reporting
                    // progress is working, not stuck.
                    let extended = self.last_progress(id).map(|at| at + timeout);
                    match extended {
                        Some(d) if d > tokio::time::Instant::now() => deadline = d,
                        _ => {
                            guard.armed = false;
                            self.cancel(id, "timeout");
                            break Err(CallError::Timeout(timeout));
                        }
                    }
                }
                _ = cancel.cancelled() => {
                    guard.armed = false;
                    self.cancel(id, "cancelled by the client");
                    break Err(CallError::Cancelled);
                }
            }
        };
        drop(guard);
        outcome
    }

    fn last_progress(&self, id: u64) -> Option<tokio::time::Instant> {
        self.lock_pending().get(&id).and_then(|p| p.last_progress)
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Option<Value>) -> Result<(), CallError> {
        let msg = jsonrpc::notification(method, params);
        self.send_value(&msg)
    }

    /// Tells the backend to stop working on request `id`.
    fn cancel(&self, id: u64, reason: &str) {
        let _ = self.notify(methods::CANCELLED, Some(json!({"requestId": id, "reason": reason})));
    }

    fn send_value(&self, msg: &Value) -> Result<(), CallError> {
        let line = serde_json::to_vec(msg).map_err(|e| CallError::Closed(e.to_string()))?;
        self.outbox.try_send(Bytes::from(line)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CallError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => CallError::Closed(self.close_reason()),
        })
    }

    /// Handles one message read from the backend.
    pub fn dispatch(&self, msg: Message) {
        self.dispatch_inner(msg, None);
    }

    /// Like [`Peer::dispatch`], for a message that arrived on the response stream of mcpmux's
    /// own request `related` (its id on this connection): a backend request or log message is
    /// then tied to that call's caller for certain, instead of by who has calls in flight.
    pub fn dispatch_related(&self, msg: Message, related: u64) {
        self.dispatch_inner(msg, Some(related));
    }

    /// Fails one call without closing the connection (an HTTP error on its request, an answer
    /// over the size limit).
    pub fn fail(&self, id: u64, error: CallError) {
        if let Some(p) = self.lock_pending().remove(&id) {
            let _ = p.reply.send(Err(error));
        }
    }

    /// Whether call `id` is still waiting for its answer.
    pub fn is_pending(&self, id: u64) -> bool {
        self.lock_pending().contains_key(&id)
    }

    fn dispatch_inner(&self, msg: Message, related: Option<u64>) {
        match msg.kind() {
            Kind::Response => self.on_response(msg),
            Kind::Notification => self.on_notification(msg, related),
            Kind::Request => self.on_request(msg, related),
            Kind::Invalid => {
                tracing::warn!(backend = %self.name, "Backend sent a message that is not valid JSON-RPC 2.0; ignored.");
            }
        }
    }

    fn on_response(&self, msg: Message) {
        let Some(id) = msg.id.as_ref().and_then(Value::as_u64) else {
            tracing::warn!(backend = %self.name, id = ?msg.id, "Backend answered a request id mcpmux never sent; ignored.");
            return;
        };
        let Some(pending) = self.lock_pending().remove(&id) else {
            tracing::debug!(backend = %self.name, id, "Backend answered a request nobody waits for any more.");
            return;
        };
        let reply = match (msg.result, msg.error) {
            (Some(r), _) => Reply::Result(Payload::from_raw(r)),
            (None, Some(e)) => Reply::Error(e),
            (None, None) => {
                Reply::Error(jsonrpc::error_object(code::INTERNAL_ERROR, "backend sent an empty response", None))
            }
        };
        let _ = pending.reply.send(Ok(reply));
    }

    fn on_notification(&self, msg: Message, related: Option<u64>) {
        let method = msg.method.unwrap_or_default();
        match method.as_str() {
            methods::PROGRESS => self.on_progress(msg.params),
            methods::CANCELLED => self.on_backend_cancel(msg.params),
            methods::MESSAGE => match self.origin_of(related) {
                Some((origin, sink)) => origin.forward_notification(&self.name, &method, msg.params, sink),
                None => {
                    let _ = self.events.send(BackendEvent::Notification { method, params: msg.params });
                }
            },
            _ => {
                let _ = self.events.send(BackendEvent::Notification { method, params: msg.params });
            }
        }
    }

    /// Who a backend message is for: the caller of call `related` when the transport knows the
    /// message belongs to it, else the one party with calls in flight.
    fn origin_of(&self, related: Option<u64>) -> Option<(Arc<dyn Origin>, Option<EventSink>)> {
        if let Some(id) = related {
            let pending = self.lock_pending();
            if let Some(p) = pending.get(&id)
                && let Some(origin) = &p.origin
            {
                return Some((origin.clone(), p.sink.clone()));
            }
        }
        self.sole_origin()
    }

    /// The one downstream party with calls in flight here, with the stream of its call when it
    /// has exactly one. `None` when there is no such party or more than one.
    fn sole_origin(&self) -> Option<(Arc<dyn Origin>, Option<EventSink>)> {
        let pending = self.lock_pending();
        if let Some(owner) = &self.owner {
            let mut calls = pending.values().filter(|p| p.origin.is_some());
            let sink = match (calls.next(), calls.next()) {
                (Some(only), None) => only.sink.clone(),
                _ => None,
            };
            return Some((owner.clone(), sink));
        }
        let mut found: Option<(Arc<dyn Origin>, Option<EventSink>, usize)> = None;
        for p in pending.values() {
            let Some(o) = &p.origin else { continue };
            if o.is_waiting() {
                continue;
            }
            match &mut found {
                None => found = Some((o.clone(), p.sink.clone(), 1)),
                Some((f, _, n)) if f.key() == o.key() => *n += 1,
                Some(_) => return None,
            }
        }
        found.map(|(o, sink, n)| (o, if n == 1 { sink } else { None }))
    }

    fn on_backend_cancel(&self, params: Option<Value>) {
        let Some(id) = params.as_ref().and_then(|p| p.get("requestId")) else {
            return;
        };
        let origin = self.forwarded.lock().unwrap_or_else(|e| e.into_inner()).remove(&id.to_string());
        if let Some(origin) = origin {
            origin.forward_cancel(self, id);
        }
    }

    fn on_progress(&self, params: Option<Value>) {
        let Some(mut params) = params else { return };
        let Some(id) = params.get("progressToken").and_then(Value::as_u64) else {
            tracing::debug!(backend = %self.name, "Progress for a token mcpmux did not issue; ignored.");
            return;
        };
        let target = {
            let mut pending = self.lock_pending();
            pending.get_mut(&id).and_then(|p| {
                p.last_progress = Some(tokio::time::Instant::now());
                Some((p.sink.clone()?, p.progress_token.clone()?))
            })
        };
        let Some((sink, token)) = target else { return };
        if let Some(obj) = params.as_object_mut() {
            obj.insert("progressToken".into(), token);
        }
        if sink.try_send(jsonrpc::notification(methods::PROGRESS, Some(params))).is_err() {
            tracing::debug!(backend = %self.name, "A client is not reading its stream; a progress notification was dropped.");
        }
    }

    fn on_request(&self, msg: Message, related: Option<u64>) {
        let id = msg.id.unwrap_or(Value::Null);
        let method = msg.method.unwrap_or_default();
        if method == methods::PING {
            self.respond(&id, Ok(Payload::from_value(&json!({}))));
            return;
        }
        let (Some((origin, sink)), Some(me)) = (self.origin_of(related), self.me.upgrade()) else {
            tracing::warn!(backend = %self.name, method = %method, "Backend sent a request that cannot be tied to one client session; refused. Set \"isolation\": \"session\" on this backend to give each session its own connection.");
            self.respond(
                &id,
                Err(jsonrpc::error_object(
                    code::INTERNAL_ERROR,
                    format!("mcpmux cannot tell which client '{method}' is for: no single client session has a request in flight on this connection"),
                    None,
                )),
            );
            return;
        };
        self.forwarded.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), origin.clone());
        origin.forward_request(me, id, method, msg.params, sink);
    }

    /// Answers a request the backend sent (`backend_id` is the backend's own id).
    pub fn respond(&self, backend_id: &Value, outcome: Result<Payload, Value>) {
        self.forwarded.lock().unwrap_or_else(|e| e.into_inner()).remove(&backend_id.to_string());
        let line = match &outcome {
            Ok(result) => jsonrpc::response_bytes(backend_id, result),
            Err(error) => jsonrpc::error_bytes(Some(backend_id), error),
        };
        if self.outbox.try_send(line).is_err() {
            tracing::debug!(backend = %self.name, "Could not answer a backend request; the connection is closing.");
        }
    }

    /// Marks the connection closed: every pending call fails at once with `reason`.
    pub fn close(&self, reason: &str) {
        {
            let mut r = self.close_reason.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_none() {
                *r = Some(reason.to_owned());
            }
        }
        self.closed.cancel();
        let drained: Vec<Pending> = self.lock_pending().drain().map(|(_, p)| p).collect();
        for p in drained {
            let _ = p.reply.send(Err(CallError::Closed(reason.to_owned())));
        }
        let _ = self.events.send(BackendEvent::Closed { reason: reason.to_owned() });
    }

    fn close_reason(&self) -> String {
        self.close_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "connection closed".to_owned())
    }

    /// Number of calls waiting for an answer.
    pub fn pending_count(&self) -> usize {
        self.lock_pending().len()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a pending entry when the caller stops waiting, however that happens.
struct PendingGuard<'a> {
    peer: &'a Peer,
    id: u64,
    /// The request was sent and no cancellation has been sent for it yet.
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let unanswered = self.peer.lock_pending().remove(&self.id).is_some();
        // The caller stopped waiting (its client went away): the backend is told to stop too.
        if unanswered && self.armed && !self.peer.is_closed() {
            self.peer.cancel(self.id, "the client went away");
        }
    }
}

/// Swaps `params._meta.progressToken` for `id`; returns the caller's token.
fn replace_progress_token(params: &mut Value, id: u64) -> Option<Value> {
    let meta = params.get_mut("_meta")?.as_object_mut()?;
    let original = meta.get("progressToken")?.clone();
    meta.insert("progressToken".into(), Value::from(id));
    Some(original)
}

/// A request as sent: serialized straight from the borrowed params, in the key order
/// `jsonrpc`, `id`, `method`, `params`.
#[derive(serde::Serialize)]
struct RequestOut<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
}

fn request_line(id: u64, method: &str, params: Option<&Value>) -> Bytes {
    let request = RequestOut { jsonrpc: "2.0", id, method, params };
    Bytes::from(serde_json::to_vec(&request).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn matches_replies_by_id_and_restores_progress_tokens() {
        let (peer, mut outbox, _events) = Peer::new("t".into());
        let (sink, mut stream) = mpsc::channel(8);
        let p2 = peer.clone();
        let call = tokio::spawn(async move {
            p2.request(
                "tools/call",
                Some(json!({"name": "x", "_meta": {"progressToken": "client-tok"}})),
                CallOptions { sink: Some(sink), ..CallOptions::default() },
                Duration::from_secs(5),
            )
            .await
        });
        let line = outbox.recv().await.unwrap();
        let sent: Value = serde_json::from_slice(&line).unwrap();
        let id = sent["id"].as_u64().unwrap();
        assert_eq!(sent["params"]["_meta"]["progressToken"], json!(id));
        let prog = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{id},"progress":1}}}}"#
        );
        peer.dispatch(Message::parse(prog.as_bytes()).unwrap());
        let got = stream.recv().await.unwrap();
        assert_eq!(got["params"]["progressToken"], json!("client-tok"));
        let resp = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"z":1,"a":2}}}}"#);
        peer.dispatch(Message::parse(resp.as_bytes()).unwrap());
        match call.await.unwrap().unwrap() {
            Reply::Result(p) => assert_eq!(p.as_str(), r#"{"z":1,"a":2}"#),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(peer.pending_count(), 0);
    }

    #[tokio::test]
    async fn close_fails_pending_calls_at_once() {
        let (peer, _outbox, _events) = Peer::new("t".into());
        let p2 = peer.clone();
        let call =
            tokio::spawn(
                async move { p2.request("ping", None, CallOptions::default(), Duration::from_secs(30)).await },
            );
        tokio::time::sleep(Duration::from_millis(20)).await;
        peer.close("backend exited");
        let r = tokio::time::timeout(Duration::from_secs(1), call).await.unwrap().unwrap();
        assert!(matches!(r, Err(CallError::Closed(m)) if m == "backend exited"));
    }

    #[tokio::test]
    async fn timeout_sends_cancellation() {
        let (peer, mut outbox, _events) = Peer::new("t".into());
        let r = peer.request("slow", None, CallOptions::default(), Duration::from_millis(30)).await;
        assert!(matches!(r, Err(CallError::Timeout(_))));
        let _req = outbox.recv().await.unwrap();
        let cancel: Value = serde_json::from_slice(&outbox.recv().await.unwrap()).unwrap();
        assert_eq!(cancel["method"], "notifications/cancelled");
        assert_eq!(peer.pending_count(), 0);
    }
}
