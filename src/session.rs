//! Downstream sessions: one per `initialize` from a client over streamable HTTP.
//!
//! A session remembers what the client negotiated (version, capabilities, info), which view it
//! sees (the merged `/mcp` or one backend's `/servers/{name}/mcp`), and the GET stream the
//! client may open for messages that belong to no request. The registry ends sessions that see
//! no request for the idle timeout; ending a session closes its stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::backend::client::{AskFuture, Caller, EventSink, Origin, Peer};
use crate::jsonrpc::{self, Payload, code};
use crate::protocol::methods;

/// Which part of the gateway a client talks to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `/mcp`: every backend, namespaced.
    Merged,
    /// `/servers/{name}/mcp`: one backend, names and URIs as the backend has them.
    Backend(String),
}

/// Capacity of a session's GET stream queue; messages beyond it are dropped (and logged).
pub const STREAM_CAPACITY: usize = 256;

/// One client session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub scope: Scope,
    pub protocol_version: String,
    pub client_capabilities: Arc<Value>,
    pub client_info: Value,
    /// Milliseconds since the registry's epoch at the last request.
    last_seen: AtomicU64,
    /// The open GET stream, if any.
    stream: Mutex<Option<mpsc::Sender<Value>>>,
    /// Level the client asked for with `logging/setLevel`.
    pub log_level: Mutex<Option<String>>,
    /// The caller as backends see this session's requests, built once per log level (so a
    /// request does not copy `client_info`).
    caller: Mutex<Option<Arc<Caller>>>,
    /// The client's requests in flight, by their id (as JSON text), for cancellation.
    in_flight: Mutex<HashMap<String, CancellationToken>>,
    /// Backend requests sent to this client and not answered yet, by the id mcpmux gave them.
    server_requests: Arc<Mutex<HashMap<u64, ServerRequest>>>,
    next_server_request: AtomicU64,
    /// Backends that asked this client for its roots (they get `roots/list_changed`).
    roots_askers: Mutex<std::collections::BTreeSet<String>>,
}

/// A request sent to the client on a backend's behalf, and who waits for its answer.
#[derive(Debug)]
enum ServerRequest {
    /// A session-era backend's own request: the answer goes back to it under its id.
    Forwarded { peer: std::sync::Weak<Peer>, backend_id: Value },
    /// One input request of a stateless-era backend's `input_required` result
    /// ([`Origin::ask`]): the answer goes to the waiting call.
    Asked(oneshot::Sender<Result<Value, Value>>),
}

/// Removes an [`Origin::ask`] entry whose waiter gave up (timeout, cancellation) and tells the
/// client to stop working on it.
struct AskGuard {
    requests: Arc<Mutex<HashMap<u64, ServerRequest>>>,
    id: u64,
    /// Where the request went, for the cancellation.
    channel: Option<mpsc::Sender<Value>>,
}

impl Drop for AskGuard {
    fn drop(&mut self) {
        let removed = self.requests.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        if removed.is_some()
            && let Some(tx) = &self.channel
        {
            let _ = tx.try_send(jsonrpc::notification(methods::CANCELLED, Some(json!({"requestId": self.id}))));
        }
    }
}

/// Log levels from least to most severe (RFC 5424 names, as MCP uses them).
pub const LOG_LEVELS: &[&str] = &["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/// Position of a level in [`LOG_LEVELS`]; unknown levels count as the most severe.
pub fn level_rank(level: &str) -> usize {
    LOG_LEVELS.iter().position(|l| *l == level).unwrap_or(LOG_LEVELS.len())
}

/// The capability a client needs to receive `method`, when it lacks it.
pub(crate) fn missing_capability(caps: &Value, method: &str, params: Option<&Value>) -> Option<&'static str> {
    let has = |name: &str| caps.get(name).is_some_and(|v| !v.is_null());
    match method {
        "sampling/createMessage" if !has("sampling") => Some("sampling"),
        "roots/list" if !has("roots") => Some("roots"),
        "elicitation/create" => {
            if !has("elicitation") {
                return Some("elicitation");
            }
            let url_mode = params.and_then(|p| p.get("mode")).and_then(Value::as_str) == Some("url");
            let e = &caps["elicitation"];
            // An empty `elicitation: {}` means form mode only.
            if url_mode && e.get("url").is_none() {
                return Some("elicitation.url");
            }
            if !url_mode && e.get("url").is_some() && e.get("form").is_none() {
                return Some("elicitation.form");
            }
            None
        }
        _ => None,
    }
}

impl Session {
    /// Attaches a GET stream; fails if one is already open.
    pub fn attach_stream(&self) -> Option<mpsc::Receiver<Value>> {
        let mut slot = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|s| !s.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        *slot = Some(tx);
        Some(rx)
    }

    /// Sends a message on the GET stream. Returns false when no stream is open or it is full.
    pub fn send(&self, msg: Value) -> bool {
        let slot = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(tx) => tx.try_send(msg).is_ok(),
            None => false,
        }
    }

    fn close_stream(&self) {
        self.stream.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Sends `msg` on the request stream `sink` when it is still open, else on the GET stream.
    fn deliver(&self, msg: Value, sink: Option<&EventSink>) -> bool {
        if let Some(sink) = sink {
            match sink.try_send(msg) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m)) => return self.send(m),
            }
        }
        self.send(msg)
    }

    /// Who this session's requests are made for, as a stateless-era backend sees it: the
    /// client's capabilities, info and current log level. Shared between requests until the
    /// log level changes.
    pub fn caller(&self) -> Arc<Caller> {
        let level = self.log_level.lock().unwrap_or_else(|e| e.into_inner());
        let mut cached = self.caller.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cached.as_ref()
            && c.log_level == *level
        {
            return c.clone();
        }
        let caller = Arc::new(Caller {
            modern: false,
            capabilities: self.client_capabilities.clone(),
            info: (!self.client_info.is_null()).then(|| self.client_info.clone()),
            log_level: level.clone(),
        });
        *cached = Some(caller.clone());
        caller
    }

    /// Registers a client request in flight; the token fires if the client cancels it.
    pub fn track_request(&self, id: &Value) -> CancellationToken {
        let token = CancellationToken::new();
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), token.clone());
        token
    }

    pub fn untrack_request(&self, id: &Value) {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id.to_string());
    }

    /// The client cancelled request `id`.
    pub fn cancel_request(&self, id: &Value) -> bool {
        match self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).get(&id.to_string()) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// The client answered a request a backend sent it. Returns false if no such request.
    pub fn answer_server_request(&self, id: &Value, outcome: Result<Payload, Value>) -> bool {
        let Some(key) = id.as_u64() else { return false };
        let entry = self.server_requests.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        match entry {
            Some(ServerRequest::Forwarded { peer, backend_id }) => match peer.upgrade() {
                Some(peer) => {
                    peer.respond(&backend_id, outcome);
                    true
                }
                None => false,
            },
            Some(ServerRequest::Asked(waiter)) => {
                let answer = outcome.and_then(|p| {
                    serde_json::from_slice::<Value>(&p.0).map_err(|e| {
                        jsonrpc::error_object(
                            code::INVALID_REQUEST,
                            format!("the client's answer is not JSON: {e}"),
                            None,
                        )
                    })
                });
                waiter.send(answer).is_ok()
            }
            None => false,
        }
    }

    /// The channel a message for the client goes on: the request stream `sink` while it is
    /// open, else the GET stream.
    fn channel(&self, sink: Option<&EventSink>) -> Option<mpsc::Sender<Value>> {
        match sink {
            Some(s) if !s.is_closed() => Some(s.clone()),
            _ => self.stream.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Backends that asked this client for roots.
    pub fn roots_askers(&self) -> Vec<String> {
        self.roots_askers.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// Whether a log message at `level` passes this session's `logging/setLevel`.
    pub fn wants_log(&self, level: &str) -> bool {
        match self.log_level.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
            Some(min) => level_rank(level) >= level_rank(min),
            None => true,
        }
    }

    /// Ends what is pending: backend requests waiting for this client get an error.
    fn fail_pending(&self) {
        let pending: Vec<ServerRequest> =
            self.server_requests.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, r)| r).collect();
        let ended = || jsonrpc::error_object(code::INTERNAL_ERROR, "the client session ended", None);
        for r in pending {
            match r {
                ServerRequest::Forwarded { peer, backend_id } => {
                    if let Some(peer) = peer.upgrade() {
                        peer.respond(&backend_id, Err(ended()));
                    }
                }
                ServerRequest::Asked(waiter) => {
                    let _ = waiter.send(Err(ended()));
                }
            }
        }
        for (_, t) in self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            t.cancel();
        }
    }
}

impl Origin for Session {
    fn key(&self) -> &str {
        &self.id
    }

    fn forward_request(
        &self,
        peer: Arc<Peer>,
        backend_id: Value,
        method: String,
        params: Option<Value>,
        sink: Option<EventSink>,
    ) {
        if let Some(missing) = missing_capability(&self.client_capabilities, &method, params.as_ref()) {
            peer.respond(
                &backend_id,
                Err(jsonrpc::error_object(
                    code::METHOD_NOT_FOUND,
                    format!("the client did not declare the '{missing}' capability"),
                    None,
                )),
            );
            return;
        }
        if method == "roots/list" {
            self.roots_askers.lock().unwrap_or_else(|e| e.into_inner()).insert(peer.name().to_owned());
        }
        let id = self.next_server_request.fetch_add(1, Ordering::Relaxed);
        self.server_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, ServerRequest::Forwarded { peer: Arc::downgrade(&peer), backend_id: backend_id.clone() });
        let msg = jsonrpc::request(id, &method, params);
        if !self.deliver(msg, sink.as_ref()) {
            self.server_requests.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            peer.respond(
                &backend_id,
                Err(jsonrpc::error_object(
                    code::INTERNAL_ERROR,
                    "the client has no open stream to receive this request",
                    None,
                )),
            );
        }
    }

    fn forward_notification(&self, backend: &str, method: &str, params: Option<Value>, sink: Option<EventSink>) {
        let mut params = params;
        if method == methods::MESSAGE {
            let level = params.as_ref().and_then(|p| p.get("level")).and_then(Value::as_str).unwrap_or("info");
            if !self.wants_log(level) {
                return;
            }
            if self.scope == Scope::Merged
                && let Some(obj) = params.as_mut().and_then(Value::as_object_mut)
            {
                let logger = match obj.get("logger").and_then(Value::as_str) {
                    Some(l) => format!("{backend}/{l}"),
                    None => backend.to_owned(),
                };
                obj.insert("logger".into(), logger.into());
            }
        }
        self.deliver(jsonrpc::notification(method, params), sink.as_ref());
    }

    fn forward_cancel(&self, peer: &Peer, backend_id: &Value) {
        let found = {
            let mut map = self.server_requests.lock().unwrap_or_else(|e| e.into_inner());
            let key = map
                .iter()
                .find(|(_, r)| match r {
                    ServerRequest::Forwarded { peer: p, backend_id: b } => {
                        b == backend_id && std::ptr::eq(p.as_ptr(), peer)
                    }
                    ServerRequest::Asked(_) => false,
                })
                .map(|(k, _)| *k);
            key.and_then(|k| map.remove(&k).map(|_| k))
        };
        if let Some(id) = found {
            self.send(jsonrpc::notification(methods::CANCELLED, Some(json!({"requestId": id}))));
        }
    }

    fn ask(&self, backend: &str, method: String, params: Option<Value>, sink: Option<EventSink>) -> AskFuture {
        let refuse = |message: String| -> AskFuture {
            Box::pin(std::future::ready(Err(jsonrpc::error_object(code::METHOD_NOT_FOUND, message, None))))
        };
        if let Some(missing) = missing_capability(&self.client_capabilities, &method, params.as_ref()) {
            return refuse(format!("the client did not declare the '{missing}' capability"));
        }
        if method == "roots/list" {
            self.roots_askers.lock().unwrap_or_else(|e| e.into_inner()).insert(backend.to_owned());
        }
        let Some(channel) = self.channel(sink.as_ref()) else {
            return Box::pin(std::future::ready(Err(jsonrpc::error_object(
                code::INTERNAL_ERROR,
                "the client has no open stream to receive this request",
                None,
            ))));
        };
        let id = self.next_server_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.server_requests.lock().unwrap_or_else(|e| e.into_inner()).insert(id, ServerRequest::Asked(tx));
        let msg = jsonrpc::request(id, &method, params);
        let guard = AskGuard { requests: self.server_requests.clone(), id, channel: Some(channel.clone()) };
        let sent = match channel.try_send(msg) {
            Ok(()) => true,
            // The request stream just closed: the GET stream, if one is open, takes it.
            Err(mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m)) => {
                sink.is_some() && self.send(m)
            }
        };
        if !sent {
            self.server_requests.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Box::pin(std::future::ready(Err(jsonrpc::error_object(
                code::INTERNAL_ERROR,
                "the client has no open stream to receive this request",
                None,
            ))));
        }
        Box::pin(async move {
            let _guard = guard;
            rx.await
                .unwrap_or_else(|_| Err(jsonrpc::error_object(code::INTERNAL_ERROR, "the client session ended", None)))
        })
    }
}

/// All live sessions.
pub struct SessionRegistry {
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    epoch: Instant,
    idle_timeout: AtomicU64,
}

impl SessionRegistry {
    pub fn new(idle_timeout: Duration) -> Self {
        SessionRegistry {
            sessions: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
            idle_timeout: AtomicU64::new(idle_timeout.as_millis() as u64),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Creates a session with a fresh random id.
    pub fn create(
        &self,
        scope: Scope,
        protocol_version: String,
        client_capabilities: Value,
        client_info: Value,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            scope,
            protocol_version,
            client_capabilities: Arc::new(client_capabilities),
            client_info,
            last_seen: AtomicU64::new(self.now_ms()),
            stream: Mutex::new(None),
            log_level: Mutex::new(None),
            caller: Mutex::new(None),
            in_flight: Mutex::new(HashMap::new()),
            server_requests: Arc::new(Mutex::new(HashMap::new())),
            next_server_request: AtomicU64::new(1),
            roots_askers: Mutex::new(std::collections::BTreeSet::new()),
        });
        self.write().insert(session.id.clone(), session.clone());
        session
    }

    /// Looks a session up and marks it as used now.
    pub fn touch(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.read().get(id).cloned()?;
        s.last_seen.store(self.now_ms(), Ordering::Relaxed);
        Some(s)
    }

    /// Ends a session: its stream closes and what waited on it fails. Returns it if it existed.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let removed = self.write().remove(id);
        if let Some(s) = &removed {
            s.close_stream();
            s.fail_pending();
        }
        removed
    }

    /// Ends every session idle for longer than the timeout and returns them.
    pub fn expire_idle(&self) -> Vec<Arc<Session>> {
        let limit = self.idle_timeout.load(Ordering::Relaxed);
        let now = self.now_ms();
        let expired: Vec<Arc<Session>> = {
            let mut map = self.write();
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, s)| now.saturating_sub(s.last_seen.load(Ordering::Relaxed)) > limit)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for s in &expired {
            s.close_stream();
            s.fail_pending();
            tracing::debug!(session = %s.id, "Session expired after being idle.");
        }
        expired
    }

    /// A session by id, without marking it used.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.read().get(id).cloned()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.read().values().cloned().collect()
    }

    pub fn set_idle_timeout(&self, d: Duration) {
        self.idle_timeout.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout.load(Ordering::Relaxed))
    }

    /// Sessions that see `scope` (the merged view sees every backend).
    pub fn in_scope(&self, backend: Option<&str>) -> Vec<Arc<Session>> {
        self.read()
            .values()
            .filter(|s| match (&s.scope, backend) {
                (Scope::Merged, _) => true,
                (Scope::Backend(b), Some(name)) => b == name,
                (Scope::Backend(_), None) => false,
            })
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends every session (shutdown).
    pub fn clear(&self) {
        let all: Vec<Arc<Session>> = self.write().drain().map(|(_, s)| s).collect();
        for s in all {
            s.close_stream();
            s.fail_pending();
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn idle_sessions_expire_and_used_ones_stay() {
        let reg = SessionRegistry::new(Duration::from_millis(30));
        let idle = reg.create(Scope::Merged, "2025-11-25".into(), json!({}), json!({}));
        let busy = reg.create(Scope::Merged, "2025-11-25".into(), json!({}), json!({}));
        let mut stream = idle.attach_stream().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        reg.touch(&busy.id).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(reg.expire_idle().len(), 1);
        assert!(reg.touch(&idle.id).is_none());
        assert!(reg.touch(&busy.id).is_some());
        assert!(stream.try_recv().is_err(), "expired session's stream is closed");
    }

    #[tokio::test]
    async fn ask_delivers_on_the_request_stream_and_waits_for_the_answer() {
        let reg = SessionRegistry::new(Duration::from_secs(60));
        let s = reg.create(Scope::Merged, "2025-11-25".into(), json!({"elicitation": {}}), json!({}));
        let (sink, mut stream) = mpsc::channel(4);
        let answer = s.ask("b", "elicitation/create".into(), Some(json!({"message": "?"})), Some(sink));
        let asked = stream.recv().await.unwrap();
        assert_eq!(asked["method"], "elicitation/create");
        assert_eq!(asked["params"]["message"], "?");
        let result = Payload::from_value(&json!({"action": "accept", "content": {"x": 1}}));
        assert!(s.answer_server_request(&asked["id"], Ok(result)));
        assert_eq!(answer.await.unwrap()["content"]["x"], 1);

        // Without the capability the client is not asked at all.
        let refused = s.ask("b", "sampling/createMessage".into(), None, None).await.unwrap_err();
        assert!(refused["message"].as_str().unwrap().contains("sampling"), "{refused}");

        // A waiter that gives up leaves nothing behind and the client is told to stop.
        let mut get = s.attach_stream().unwrap();
        let dropped = s.ask("b", "elicitation/create".into(), None, None);
        let asked = get.recv().await.unwrap();
        drop(dropped);
        assert_eq!(get.recv().await.unwrap()["method"], "notifications/cancelled");
        assert!(!s.answer_server_request(&asked["id"], Ok(Payload::from_value(&json!({})))));

        // The session ending fails what is still waiting.
        let pending = s.ask("b", "elicitation/create".into(), None, None);
        reg.remove(&s.id);
        assert!(pending.await.is_err());
    }

    #[test]
    fn one_get_stream_per_session() {
        let reg = SessionRegistry::new(Duration::from_secs(60));
        let s = reg.create(Scope::Backend("x".into()), "2025-11-25".into(), json!({}), json!({}));
        let rx = s.attach_stream().unwrap();
        assert!(s.attach_stream().is_none());
        drop(rx);
        assert!(s.attach_stream().is_some(), "a closed stream can be replaced");
        assert_eq!(reg.in_scope(Some("x")).len(), 1);
        assert_eq!(reg.in_scope(Some("y")).len(), 0);
    }
}
