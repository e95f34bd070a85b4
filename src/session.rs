//! Downstream sessions: one per `initialize` from a client over streamable HTTP.
//!
//! A session remembers what the client negotiated (version, capabilities, info), which view it
//! sees (the merged `/mcp` or one backend's `/servers/{name}/mcp`), and the GET stream the
//! client may open for messages that belong to no request. The registry ends sessions that see
//! no request for the idle timeout; ending a session closes its stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

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
    /// Set once the client sent `notifications/initialized`.
    pub initialized: AtomicBool,
    /// Milliseconds since the registry's epoch at the last request.
    last_seen: AtomicU64,
    /// The open GET stream, if any.
    stream: Mutex<Option<mpsc::Sender<Value>>>,
    /// Level the client asked for with `logging/setLevel`.
    pub log_level: Mutex<Option<String>>,
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
            initialized: AtomicBool::new(false),
            last_seen: AtomicU64::new(self.now_ms()),
            stream: Mutex::new(None),
            log_level: Mutex::new(None),
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

    /// Ends a session. Returns whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        let removed = self.write().remove(id);
        if let Some(s) = &removed {
            s.close_stream();
        }
        removed.is_some()
    }

    /// Ends every session idle for longer than the timeout; returns how many.
    pub fn expire_idle(&self) -> usize {
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
            tracing::debug!(session = %s.id, "Session expired after being idle.");
        }
        expired.len()
    }

    pub fn set_idle_timeout(&self, d: Duration) {
        self.idle_timeout
            .store(d.as_millis() as u64, Ordering::Relaxed);
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
        assert_eq!(reg.expire_idle(), 1);
        assert!(reg.touch(&idle.id).is_none());
        assert!(reg.touch(&busy.id).is_some());
        assert!(
            stream.try_recv().is_err(),
            "expired session's stream is closed"
        );
    }

    #[test]
    fn one_get_stream_per_session() {
        let reg = SessionRegistry::new(Duration::from_secs(60));
        let s = reg.create(
            Scope::Backend("x".into()),
            "2025-11-25".into(),
            json!({}),
            json!({}),
        );
        let rx = s.attach_stream().unwrap();
        assert!(s.attach_stream().is_none());
        drop(rx);
        assert!(
            s.attach_stream().is_some(),
            "a closed stream can be replaced"
        );
        assert_eq!(reg.in_scope(Some("x")).len(), 1);
        assert_eq!(reg.in_scope(Some("y")).len(), 0);
    }
}
