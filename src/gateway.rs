//! The gateway: the live set of backends, the catalog built from them, and the sessions.
//!
//! Each backend is run by its own supervisor task ([`supervise`]), which owns the backend's
//! lifecycle: start, initialize, list, watch for events (`list_changed`, exit), restart with
//! backoff, stop. Whenever a backend's listing changes the catalog is rebuilt and swapped in,
//! and every session that sees a changed list is told with a `list_changed` notification.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::client::BackendEvent;
use crate::backend::{Backend, Connection, ListKind, State};
use crate::catalog::{Catalog, Source};
use crate::config::{Config, ServerConfig, Settings};
use crate::error::RelayError;
use crate::jsonrpc;
use crate::protocol::methods;
use crate::session::{Scope, Session, SessionRegistry, level_rank};
use crate::subscriptions::{Change, Subscriptions};
use serde_json::{Value, json};

/// First wait before restarting a backend that exited; doubled each time up to the cap.
const RESTART_BACKOFF_START: Duration = Duration::from_millis(500);
const RESTART_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A backend that stayed up this long starts again from the first backoff step.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Shared handle to the running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ArcSwap<Settings>,
    backends: ArcSwap<BTreeMap<String, Arc<Backend>>>,
    catalog: ArcSwap<Catalog>,
    sessions: SessionRegistry,
    /// Serializes catalog rebuilds so notifications follow the order of changes.
    rebuild: Mutex<()>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    started: Instant,
    config: ArcSwap<Config>,
    subscriptions: Subscriptions,
    /// The `logging/setLevel` level last sent to each backend.
    log_levels: Mutex<HashMap<String, String>>,
    /// `(backend, backend task id)` → the session that created the task, for status updates.
    task_owners: Mutex<HashMap<(String, String), String>>,
}

/// One row of the start-up table.
#[derive(Debug, Clone)]
pub struct BackendReport {
    pub name: String,
    pub transport: &'static str,
    pub state: State,
    pub tools: usize,
    pub resources: usize,
    pub prompts: usize,
    pub ready_after: Option<Duration>,
    pub error: Option<String>,
}

impl Gateway {
    /// Starts every enabled backend in parallel and returns once each has become ready or
    /// failed (each is bounded by its startup timeout). A failed backend does not stop the rest.
    pub async fn start(config: Config) -> Gateway {
        let settings = config.settings.clone();
        let inner = Arc::new(Inner {
            sessions: SessionRegistry::new(settings.session_idle_timeout),
            settings: ArcSwap::from_pointee(settings.clone()),
            backends: ArcSwap::from_pointee(BTreeMap::new()),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            rebuild: Mutex::new(()),
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            started: Instant::now(),
            config: ArcSwap::from_pointee(config.clone()),
            subscriptions: Subscriptions::default(),
            log_levels: Mutex::new(HashMap::new()),
            task_owners: Mutex::new(HashMap::new()),
        });
        let gateway = Gateway { inner };
        let mut backends = BTreeMap::new();
        let mut first_attempts = Vec::new();
        for server in config.enabled_servers() {
            let backend = Arc::new(Backend::new(server.clone(), &settings));
            backends.insert(server.name.clone(), backend.clone());
            let (tx, rx) = oneshot::channel();
            first_attempts.push(rx);
            let handle = tokio::spawn(supervise(gateway.clone(), backend, tx));
            gateway.lock_tasks().push(handle);
        }
        for server in config.servers.values().filter(|s| s.disabled) {
            tracing::info!(backend = %server.name, "Backend is disabled in the config; not started.");
        }
        gateway.inner.backends.store(Arc::new(backends));
        futures_util::future::join_all(first_attempts).await;
        gateway.rebuild_catalog();
        gateway.spawn_session_sweeper();
        gateway
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.inner.settings.load_full()
    }

    pub fn config(&self) -> Arc<Config> {
        self.inner.config.load_full()
    }

    /// The current catalog (one atomic load).
    pub fn catalog(&self) -> arc_swap::Guard<Arc<Catalog>> {
        self.inner.catalog.load()
    }

    pub fn backend(&self, name: &str) -> Option<Arc<Backend>> {
        self.inner.backends.load().get(name).cloned()
    }

    pub fn backends(&self) -> Arc<BTreeMap<String, Arc<Backend>>> {
        self.inner.backends.load_full()
    }

    pub fn sessions(&self) -> &SessionRegistry {
        &self.inner.sessions
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Fires when the gateway is shutting down.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The start-up table rows.
    pub fn report(&self) -> Vec<BackendReport> {
        self.backends()
            .values()
            .map(|b| {
                let status = b.status();
                let listing = b.listing();
                BackendReport {
                    name: b.name.to_string(),
                    transport: b.config.transport.kind(),
                    state: status.state,
                    tools: listing.tools.len(),
                    resources: listing.resources.len() + listing.templates.len(),
                    prompts: listing.prompts.len(),
                    ready_after: status.ready_after,
                    error: status.last_error,
                }
            })
            .collect()
    }

    /// Rebuilds the catalog from every backend's listing, swaps it in, and sends `list_changed`
    /// to the sessions that see a changed list.
    pub fn rebuild_catalog(&self) {
        let _serial = self.inner.rebuild.lock().unwrap_or_else(|e| e.into_inner());
        let settings = self.settings();
        let sources: Vec<Source> = self
            .backends()
            .values()
            .map(|b| Source { backend: b.name.clone(), prefix: b.config.prefix.clone(), listing: b.listing() })
            .collect();
        let new = Arc::new(Catalog::build(&sources, &settings.separator, settings.page_size));
        let old = self.inner.catalog.swap(new.clone());
        self.announce_changes(&old, &new);
    }

    fn announce_changes(&self, old: &Catalog, new: &Catalog) {
        let merged = new.merged().changed_since(old.merged());
        if !merged.is_empty() {
            for s in self.inner.sessions.in_scope(None) {
                notify_list_changed(&s, &merged);
            }
        }
        for (name, _) in self.backends().iter() {
            let (Some(n), o) = (new.backend_view(name), old.backend_view(name)) else {
                continue;
            };
            let changed = match o {
                Some(o) => n.changed_since(o),
                None => Vec::new(),
            };
            if changed.is_empty() {
                continue;
            }
            for s in self.inner.sessions.in_scope(Some(name)) {
                if matches!(s.scope, crate::session::Scope::Backend(_)) {
                    notify_list_changed(&s, &changed);
                }
            }
        }
    }

    fn spawn_session_sweeper(&self) {
        let gw = self.clone();
        let handle = tokio::spawn(async move {
            loop {
                let every =
                    (gw.inner.sessions.idle_timeout() / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
                tokio::select! {
                    _ = gw.inner.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(every) => {
                        for s in gw.inner.sessions.expire_idle() {
                            gw.after_session_end(&s);
                        }
                    }
                }
            }
        });
        self.lock_tasks().push(handle);
    }

    /// Stops every backend (children stopped and reaped) and ends every session.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.sessions.clear();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.lock_tasks());
        futures_util::future::join_all(tasks).await;
        futures_util::future::join_all(self.backends().values().map(|b| b.close_all_sessions())).await;
    }

    /// Ends a session (client DELETE) and releases what it held.
    pub fn end_session(&self, id: &str) {
        if let Some(s) = self.inner.sessions.remove(id) {
            self.after_session_end(&s);
        }
    }

    fn after_session_end(&self, session: &Session) {
        self.inner.task_owners.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, owner| owner != &session.id);
        for (backend, uri) in self.inner.subscriptions.remove_session(&session.id) {
            self.spawn_backend_request(&backend, methods::UNSUBSCRIBE, json!({"uri": uri}));
        }
        for b in self.backends().values().filter(|b| b.config.isolation == crate::config::Isolation::Session) {
            let b = b.clone();
            let id = session.id.clone();
            tokio::spawn(async move { b.close_session(&id).await });
        }
    }

    /// A client's roots changed: tell the backends that asked it for roots.
    pub fn roots_changed(&self, session: &Session) {
        for name in session.roots_askers() {
            if let Some(conn) = self.backend(&name).and_then(|b| b.connection()) {
                let _ = conn.notify(methods::ROOTS_LIST_CHANGED, None);
            }
        }
    }

    /// Subscribes `session` to a backend resource; the backend is asked only for the first.
    pub async fn subscribe(
        &self,
        session: &Session,
        backend: &str,
        uri: String,
        subscribe: bool,
    ) -> Result<(), RelayError> {
        let key = (backend.to_owned(), uri.clone());
        let b = self.backend(backend).ok_or_else(|| RelayError::BackendUnavailable {
            backend: backend.to_owned(),
            reason: "not configured".into(),
        })?;
        let change = if subscribe {
            self.inner.subscriptions.add(&key, &session.id)
        } else {
            self.inner.subscriptions.remove(&key, &session.id)
        };
        let method = match change {
            Change::First => methods::SUBSCRIBE,
            Change::Last => methods::UNSUBSCRIBE,
            Change::None => return Ok(()),
        };
        let result = b.call(method, Some(json!({"uri": uri})), Default::default()).await;
        if result.is_err() && subscribe {
            self.inner.subscriptions.remove(&key, &session.id);
        }
        result.map(|_| ())
    }

    /// A backend says a resource changed: tell exactly the sessions subscribed to it.
    fn resource_updated(&self, backend: &Backend, params: Option<Value>) {
        let Some(uri) = params.as_ref().and_then(|p| p.get("uri")).and_then(Value::as_str) else { return };
        let key = (backend.name.to_string(), uri.to_owned());
        let prefix = backend.config.prefix.clone();
        for id in self.inner.subscriptions.subscribers(&key) {
            let Some(session) = self.inner.sessions.get(&id) else { continue };
            let mut p = params.clone().unwrap_or_else(|| json!({}));
            if session.scope == Scope::Merged {
                p["uri"] = Value::String(crate::catalog::uri::wrap(&prefix, uri));
            }
            session.send(crate::jsonrpc::notification(methods::RESOURCES_UPDATED, Some(p)));
        }
    }

    /// Remembers that `session` created task `task_id` on `backend`.
    pub fn remember_task(&self, backend: &str, task_id: &str, session: &str) {
        self.inner
            .task_owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((backend.to_owned(), task_id.to_owned()), session.to_owned());
    }

    /// A backend's task changed status: tell the session that created it, with its task id.
    fn task_status(&self, backend: &Backend, params: Option<Value>) {
        let Some(mut params) = params else { return };
        let Some(task_id) = params.get("taskId").and_then(Value::as_str).map(str::to_owned) else { return };
        let key = (backend.name.to_string(), task_id.clone());
        let terminal =
            matches!(params.get("status").and_then(Value::as_str), Some("completed" | "failed" | "cancelled"));
        let owner = {
            let mut owners = self.inner.task_owners.lock().unwrap_or_else(|e| e.into_inner());
            if terminal { owners.remove(&key) } else { owners.get(&key).cloned() }
        };
        let Some(session) = owner.and_then(|id| self.inner.sessions.get(&id)) else { return };
        if session.scope == Scope::Merged {
            params["taskId"] = Value::String(crate::relay::wrap_task_id(&backend.config.prefix, &task_id));
        }
        session.send(crate::jsonrpc::notification(methods::TASK_STATUS, Some(params)));
    }

    /// Sends backends the most verbose level any session asked for; mcpmux filters per session.
    pub fn apply_log_levels(&self) {
        let wanted = self
            .inner
            .sessions
            .all()
            .iter()
            .filter_map(|s| s.log_level.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .min_by_key(|l| level_rank(l));
        let Some(level) = wanted else { return };
        for (name, b) in self.backends().iter() {
            if b.listing().info.capabilities.get("logging").is_none_or(Value::is_null) {
                continue;
            }
            let changed = {
                let mut sent = self.inner.log_levels.lock().unwrap_or_else(|e| e.into_inner());
                if sent.get(name) == Some(&level) {
                    false
                } else {
                    sent.insert(name.clone(), level.clone());
                    true
                }
            };
            if changed {
                self.spawn_backend_request(name, methods::SET_LEVEL, json!({"level": level}));
            }
        }
    }

    fn spawn_backend_request(&self, backend: &str, method: &'static str, params: Value) {
        let Some(b) = self.backend(backend) else { return };
        tokio::spawn(async move {
            if let Err(e) = b.call(method, Some(params), Default::default()).await {
                tracing::debug!(backend = %b.name, method, error = %e, "Backend did not accept a gateway request.");
            }
        });
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Address-independent URL path of the merged endpoint, for the start-up table.
    pub fn mcp_url(addr: SocketAddr) -> String {
        format!("http://{addr}/mcp")
    }
}

fn notify_list_changed(session: &crate::session::Session, kinds: &[ListKind]) {
    let mut methods_sent = Vec::new();
    for k in kinds {
        let method = match k {
            ListKind::Tools => methods::TOOLS_LIST_CHANGED,
            ListKind::Prompts => methods::PROMPTS_LIST_CHANGED,
            ListKind::Resources | ListKind::Templates => methods::RESOURCES_LIST_CHANGED,
        };
        if !methods_sent.contains(&method) {
            methods_sent.push(method);
            session.send(jsonrpc::notification(method, None));
        }
    }
}

/// Opens a connection and lists its catalog, bounded by the startup timeout.
async fn bring_up(
    backend: &Backend,
    settings: &Settings,
) -> Result<(Connection, mpsc::UnboundedReceiver<BackendEvent>, crate::backend::Listing), String> {
    let cfg: &ServerConfig = &backend.config;
    let limit = cfg.startup_timeout.unwrap_or(settings.startup_timeout);
    let attempt = async {
        let (conn, events) = Connection::open(&backend.name, cfg, settings, None).await.map_err(|e| e.to_string())?;
        match conn.list_all(backend.request_timeout()).await {
            Ok(listing) => Ok((conn, events, listing)),
            Err(e) => {
                conn.stop().await;
                Err(e.to_string())
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("did not become ready within {}s", limit.as_secs_f32())),
    }
}

/// Runs one backend for the life of the gateway: start, serve events, restart with backoff.
async fn supervise(gw: Gateway, backend: Arc<Backend>, first_attempt: oneshot::Sender<()>) {
    let mut first_attempt = Some(first_attempt);
    let mut backoff = RESTART_BACKOFF_START;
    let stop = gw.inner.shutdown.clone();
    loop {
        let started = Instant::now();
        let settings = gw.settings();
        let outcome = tokio::select! {
            r = bring_up(&backend, &settings) => Some(r),
            _ = stop.cancelled() => None,
        };
        let Some(outcome) = outcome else { break };
        match outcome {
            Ok((conn, mut events, listing)) => {
                let conn = Arc::new(conn);
                backend.set_listing(listing);
                backend.set_connection(Some(conn.clone()));
                backend.mark_ready(started, conn.pid());
                tracing::info!(backend = %backend.name, after_ms = started.elapsed().as_millis() as u64, "Backend is ready.");
                gw.inner.log_levels.lock().unwrap_or_else(|e| e.into_inner()).remove(&*backend.name);
                if let Some(tx) = first_attempt.take() {
                    let _ = tx.send(());
                } else {
                    gw.rebuild_catalog();
                    gw.apply_log_levels();
                    for uri in gw.inner.subscriptions.resources_of(&backend.name) {
                        gw.spawn_backend_request(&backend.name, methods::SUBSCRIBE, json!({"uri": uri}));
                    }
                }
                let reason = serve_events(&gw, &backend, &conn, &mut events, &stop).await;
                backend.set_connection(None);
                conn.stop().await;
                if stop.is_cancelled() {
                    break;
                }
                if started.elapsed() > STABLE_AFTER {
                    backoff = RESTART_BACKOFF_START;
                }
                tracing::warn!(backend = %backend.name, reason = %reason, "Backend connection ended; it will be restarted.");
                backend.update_status(|s| {
                    s.state = State::Restarting;
                    s.last_error = Some(reason);
                    s.restarts += 1;
                    s.pid = None;
                });
            }
            Err(reason) => {
                tracing::error!(backend = %backend.name, error = %reason, "Backend failed to start.");
                backend.update_status(|s| {
                    s.state = State::Failed;
                    s.last_error = Some(reason);
                    s.pid = None;
                });
                if let Some(tx) = first_attempt.take() {
                    let _ = tx.send(());
                }
            }
        }
        let wait = with_jitter(backoff);
        backoff = (backoff * 2).min(RESTART_BACKOFF_CAP);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => break,
        }
        backend.update_status(|s| {
            if s.state == State::Failed {
                s.restarts += 1;
            }
        });
    }
    backend.update_status(|s| {
        s.state = State::Stopped;
        s.pid = None;
    });
}

/// Handles a ready backend's events until its connection ends or the gateway stops.
async fn serve_events(
    gw: &Gateway,
    backend: &Backend,
    conn: &Connection,
    events: &mut mpsc::UnboundedReceiver<BackendEvent>,
    stop: &CancellationToken,
) -> String {
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = stop.cancelled() => return "gateway shutting down".to_owned(),
        };
        match event {
            None => return "backend event stream ended".to_owned(),
            Some(BackendEvent::Closed { reason }) => return reason,
            Some(BackendEvent::Notification { method, params }) => {
                if let Some(kinds) = ListKind::from_list_changed(&method) {
                    relist(gw, backend, conn, kinds).await;
                } else if method == methods::TASK_STATUS {
                    gw.task_status(backend, params);
                } else if method == methods::RESOURCES_UPDATED {
                    gw.resource_updated(backend, params);
                } else if method == methods::MESSAGE {
                    for s in gw.inner.sessions.in_scope(Some(&backend.name)) {
                        crate::backend::client::Origin::forward_notification(
                            &*s,
                            &backend.name,
                            &method,
                            params.clone(),
                            None,
                        );
                    }
                } else {
                    tracing::debug!(backend = %backend.name, method = %method, params = ?params, "Backend notification not relayed.");
                }
            }
        }
    }
}

async fn relist(gw: &Gateway, backend: &Backend, conn: &Connection, kinds: &[ListKind]) {
    let mut listing = (*backend.listing()).clone();
    for kind in kinds {
        match conn.list(*kind, backend.request_timeout()).await {
            Ok(items) => match kind {
                ListKind::Tools => listing.tools = items,
                ListKind::Resources => listing.resources = items,
                ListKind::Templates => listing.templates = items,
                ListKind::Prompts => listing.prompts = items,
            },
            Err(e) => {
                tracing::warn!(backend = %backend.name, error = %e, "Re-listing after list_changed failed; keeping the previous list.")
            }
        }
    }
    backend.set_listing(listing);
    gw.rebuild_catalog();
}

/// Up to 25% random jitter, so backends that failed together do not restart together.
fn with_jitter(d: Duration) -> Duration {
    let r = uuid::Uuid::new_v4().as_u128() as u64 % 1000;
    d + d.mul_f64(r as f64 / 4000.0)
}
