//! The gateway: the live set of backends, the catalog built from them, and the sessions.
//!
//! Each backend is run by its own supervisor task ([`crate::supervisor`]). Whenever a
//! backend's listing changes the catalog is rebuilt and swapped in, and every session that sees
//! a changed list is told with a `list_changed` notification.
//!
//! Lifecycle changes of the set of backends — start, reload, shutdown — go through one lock
//! (`control`) and so happen one at a time, in order. A reload computes the difference between
//! the running config and the new one by backend name: added backends are started, removed ones
//! drain and stop, changed ones are started anew and swapped in once ready (the old one then
//! drains), unchanged ones are not touched.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, ListKind, State};
use crate::catalog::{Catalog, Source};
use crate::config::{Config, ServerConfig, Settings};
use crate::error::RelayError;
use crate::jsonrpc;
use crate::protocol::methods;
use crate::session::{Scope, Session, SessionRegistry, level_rank};
use crate::subscriptions::{Change, Subscriptions};
use crate::supervisor;
use serde_json::{Value, json};

/// Shared handle to the running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ArcSwap<Settings>,
    /// Config, backends, generation and last reload, published together.
    state: ArcSwap<Snapshot>,
    catalog: ArcSwap<Catalog>,
    sessions: SessionRegistry,
    /// Serializes catalog rebuilds so notifications follow the order of changes.
    rebuild: Mutex<()>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    started: Instant,
    subscriptions: Subscriptions,
    /// The `logging/setLevel` level last sent to each backend.
    log_levels: Mutex<HashMap<String, String>>,
    /// `(backend, backend task id)` → the session that created the task, for status updates.
    task_owners: Mutex<HashMap<(String, String), String>>,
    /// The running supervisors; held for the whole of every lifecycle change.
    control: tokio::sync::Mutex<BTreeMap<String, supervisor::Handle>>,
    reload_failures: AtomicU64,
    /// Stateless calls parked until the client retries with its input.
    exchanges: Arc<crate::mrtr::Exchanges>,
}

/// What the gateway runs, as one consistent picture: readers never see the backends of one
/// generation with the config or reload report of another.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub backends: Arc<BTreeMap<String, Arc<Backend>>>,
    /// 1 at start, +1 per reload that changed something.
    pub generation: u64,
    /// What the last reload did, if there was one.
    pub last_reload: Option<ReloadReport>,
}

/// The outcome of one reload.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    /// Milliseconds since the gateway started.
    pub at_ms: u64,
    pub ok: bool,
    pub generation: u64,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
    /// Every problem: config errors with their locations, backends that failed to start.
    pub problems: Vec<String>,
    /// Settings that changed but need a restart to take effect.
    pub needs_restart: Vec<String>,
}

/// One row of the start-up table.
#[derive(Debug, Clone)]
pub struct BackendReport {
    pub name: String,
    pub transport: &'static str,
    /// The protocol version the backend speaks (empty until it has been up).
    pub protocol: String,
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
            state: ArcSwap::from_pointee(Snapshot {
                config: Arc::new(config.clone()),
                backends: Arc::new(BTreeMap::new()),
                generation: 1,
                last_reload: None,
            }),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            rebuild: Mutex::new(()),
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            started: Instant::now(),
            subscriptions: Subscriptions::default(),
            log_levels: Mutex::new(HashMap::new()),
            task_owners: Mutex::new(HashMap::new()),
            control: tokio::sync::Mutex::new(BTreeMap::new()),
            reload_failures: AtomicU64::new(0),
            exchanges: Arc::default(),
        });
        let gateway = Gateway { inner };
        {
            let mut handles = gateway.inner.control.lock().await;
            let servers: Vec<ServerConfig> = config.enabled_servers().cloned().collect();
            let started = gateway.start_backends(&servers, &settings).await;
            let mut backends = BTreeMap::new();
            for (name, handle) in started {
                backends.insert(name.clone(), handle.backend.clone());
                handles.insert(name, handle);
            }
            let config = gateway.config();
            gateway.inner.state.store(Arc::new(Snapshot {
                config,
                backends: Arc::new(backends),
                generation: 1,
                last_reload: None,
            }));
        }
        for server in config.servers.values().filter(|s| s.disabled) {
            tracing::info!(backend = %server.name, "Backend is disabled in the config; not started.");
        }
        gateway.rebuild_catalog();
        gateway.spawn_session_sweeper();
        gateway
    }

    /// Starts supervisors for `servers` in parallel; returns once each has become ready or failed.
    async fn start_backends(&self, servers: &[ServerConfig], settings: &Settings) -> Vec<(String, supervisor::Handle)> {
        let mut started = Vec::new();
        let mut first_attempts = Vec::new();
        for server in servers {
            let backend = Arc::new(Backend::new(server.clone(), settings));
            let (tx, rx) = oneshot::channel();
            first_attempts.push(rx);
            started.push((server.name.clone(), supervisor::spawn(self, backend, &self.inner.shutdown, tx)));
        }
        futures_util::future::join_all(first_attempts).await;
        started
    }

    /// Applies a new, already validated config: starts what was added, stops what was removed,
    /// replaces what changed (new one ready first), leaves the rest alone.
    pub async fn apply(&self, new: Config) -> ReloadReport {
        let mut handles = self.inner.control.lock().await;
        let old = self.config();
        let mut report = ReloadReport {
            at_ms: self.uptime().as_millis() as u64,
            ok: true,
            generation: self.generation(),
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            unchanged: 0,
            problems: Vec::new(),
            needs_restart: Vec::new(),
        };
        if new.settings.listen != old.settings.listen {
            report.needs_restart.push(format!("listen ({} → {})", old.settings.listen, new.settings.listen));
        }
        if new.settings.max_body_bytes != old.settings.max_body_bytes {
            report.needs_restart.push("maxBodyBytes".to_owned());
        }
        for what in &report.needs_restart {
            tracing::warn!(setting = %what, "A changed setting takes effect only after a restart.");
        }
        let effective = |c: &Config, name: &str| {
            c.enabled_servers().find(|s| s.name == name).map(|s| {
                (
                    s.clone(),
                    s.request_timeout.unwrap_or(c.settings.request_timeout),
                    s.startup_timeout.unwrap_or(c.settings.startup_timeout),
                    c.settings.max_message_bytes,
                )
            })
        };
        let names: std::collections::BTreeSet<String> =
            old.enabled_servers().chain(new.enabled_servers()).map(|s| s.name.clone()).collect();
        let mut to_start = Vec::new();
        for name in &names {
            match (effective(&old, name), effective(&new, name)) {
                (None, Some((cfg, ..))) => {
                    report.added.push(name.clone());
                    to_start.push(cfg);
                }
                (Some(_), None) => report.removed.push(name.clone()),
                (Some(a), Some(b)) if a != b => {
                    report.changed.push(name.clone());
                    to_start.push(b.0);
                }
                _ => report.unchanged += 1,
            }
        }
        let changed_anything = !(report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty());
        let settings_changed = new.settings != old.settings;
        self.inner.settings.store(Arc::new(new.settings.clone()));
        self.inner.sessions.set_idle_timeout(new.settings.session_idle_timeout);

        let started = self.start_backends(&to_start, &new.settings).await;
        let mut retired = Vec::new();
        for (name, handle) in started {
            let ready = handle.backend.status().state == State::Ready;
            if report.changed.contains(&name) && !ready {
                // Keep serving with the previous instance rather than swap in a broken one.
                let why = handle.backend.status().last_error.unwrap_or_default();
                report.problems.push(format!(
                    "backend '{name}' did not start with its new config ({why}); the previous instance keeps serving"
                ));
                retired.push(handle);
                continue;
            }
            if report.added.contains(&name) && !ready {
                let why = handle.backend.status().last_error.unwrap_or_default();
                report.problems.push(format!("backend '{name}' failed to start: {why}"));
            }
            if let Some(old_handle) = handles.insert(name, handle) {
                retired.push(old_handle);
            }
        }
        for name in &report.removed {
            if let Some(h) = handles.remove(name) {
                retired.push(h);
            }
        }
        let backends: BTreeMap<String, Arc<Backend>> =
            handles.iter().map(|(n, h)| (n.clone(), h.backend.clone())).collect();
        let mut stored = new;
        stored.warnings.clear();
        if changed_anything || settings_changed {
            report.generation += 1;
        }
        report.ok = report.problems.is_empty();
        if !report.ok {
            self.inner.reload_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.state.store(Arc::new(Snapshot {
            config: Arc::new(stored),
            backends: Arc::new(backends),
            generation: report.generation,
            last_reload: Some(report.clone()),
        }));
        self.rebuild_catalog();
        self.apply_log_levels();
        drop(handles);
        // The old instances drain their calls and stop in the background.
        for h in retired {
            tokio::spawn(h.stop());
        }
        tracing::info!(
            added = ?report.added, removed = ?report.removed, changed = ?report.changed,
            unchanged = report.unchanged, generation = report.generation, "Config reloaded."
        );
        report
    }

    /// Records a reload that could not be applied (an invalid file): nothing changed.
    pub fn reload_failed(&self, problems: Vec<String>) {
        for p in &problems {
            tracing::error!(problem = %p, "The new config is invalid; the previous one keeps serving.");
        }
        self.inner.reload_failures.fetch_add(1, Ordering::Relaxed);
        let current = self.snapshot();
        let report = ReloadReport {
            at_ms: self.uptime().as_millis() as u64,
            ok: false,
            generation: current.generation,
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            unchanged: 0,
            problems,
            needs_restart: Vec::new(),
        };
        self.inner.state.store(Arc::new(Snapshot {
            config: current.config.clone(),
            backends: current.backends.clone(),
            generation: current.generation,
            last_reload: Some(report),
        }));
    }

    /// Config, backends, generation and last reload as one consistent picture.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.state.load_full()
    }

    /// The last reload's outcome, if any.
    pub fn last_reload(&self) -> Option<ReloadReport> {
        self.inner.state.load().last_reload.clone()
    }

    /// Config generation: 1 at start, +1 per reload that changed something.
    pub fn generation(&self) -> u64 {
        self.inner.state.load().generation
    }

    /// Reloads that failed (invalid file, or a backend that would not start).
    pub fn reload_failures(&self) -> u64 {
        self.inner.reload_failures.load(Ordering::Relaxed)
    }

    /// A backend (re)connected. After a restart its catalog may differ, so it is rebuilt, the
    /// log level and subscriptions are sent again.
    pub(crate) fn backend_up(&self, backend: &Backend, restarted: bool) {
        self.inner.log_levels.lock().unwrap_or_else(|e| e.into_inner()).remove(&*backend.name);
        if restarted {
            self.rebuild_catalog();
            self.apply_log_levels();
            // A stateless-era backend hears of its subscriptions on the listen stream the
            // supervisor opens.
            if !is_modern(backend) {
                for uri in self.inner.subscriptions.resources_of(&backend.name) {
                    self.spawn_backend_request(&backend.name, methods::SUBSCRIBE, json!({"uri": uri}));
                }
            }
        }
    }

    /// The resources clients are subscribed to on `backend`.
    pub(crate) fn subscribed_resources(&self, backend: &str) -> Vec<String> {
        self.inner.subscriptions.resources_of(backend)
    }

    /// Tells a stateless-era backend's listen stream which resources clients subscribe to.
    fn sync_listen(&self, backend: &Backend) {
        if let Some(conn) = backend.connection() {
            conn.set_resource_subscriptions(self.inner.subscriptions.resources_of(&backend.name));
        }
    }

    /// A backend went down. Its entries stay listed unless it says `listWhenDown: false`.
    pub(crate) fn backend_down(&self, backend: &Backend) {
        if !backend.config.list_when_down {
            self.rebuild_catalog();
        }
    }

    /// A notification from a backend that is not tied to one call.
    pub(crate) fn backend_notification(&self, backend: &Backend, method: &str, params: Option<Value>) {
        match method {
            methods::TASK_STATUS => self.task_status(backend, params),
            methods::RESOURCES_UPDATED => self.resource_updated(backend, params),
            methods::MESSAGE => {
                for s in self.inner.sessions.in_scope(Some(&backend.name)) {
                    crate::backend::client::Origin::forward_notification(
                        &*s,
                        &backend.name,
                        method,
                        params.clone(),
                        None,
                    );
                }
            }
            _ => tracing::debug!(backend = %backend.name, method = %method, "Backend notification not relayed."),
        }
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.inner.settings.load_full()
    }

    pub fn config(&self) -> Arc<Config> {
        self.inner.state.load().config.clone()
    }

    /// The current catalog (one atomic load).
    pub fn catalog(&self) -> arc_swap::Guard<Arc<Catalog>> {
        self.inner.catalog.load()
    }

    pub fn backend(&self, name: &str) -> Option<Arc<Backend>> {
        self.inner.state.load().backends.get(name).cloned()
    }

    pub fn backends(&self) -> Arc<BTreeMap<String, Arc<Backend>>> {
        self.inner.state.load().backends.clone()
    }

    /// Stateless calls parked until their retry.
    pub fn exchanges(&self) -> &Arc<crate::mrtr::Exchanges> {
        &self.inner.exchanges
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
                    protocol: listing.info.protocol_version.clone(),
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
            .filter(|b| b.config.list_when_down || b.status().state == State::Ready)
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
        self.inner.exchanges.clear();
        let handles: Vec<supervisor::Handle> = {
            let mut control = self.inner.control.lock().await;
            std::mem::take(&mut *control).into_values().collect()
        };
        futures_util::future::join_all(handles.into_iter().map(supervisor::Handle::stop)).await;
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.lock_tasks());
        futures_util::future::join_all(tasks).await;
        tracing::info!("Every backend is stopped.");
    }

    /// Ends a session (client DELETE) and releases what it held.
    pub fn end_session(&self, id: &str) {
        if let Some(s) = self.inner.sessions.remove(id) {
            self.after_session_end(&s);
        }
    }

    fn after_session_end(&self, session: &Session) {
        self.inner.task_owners.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, owner| owner != &session.id);
        let mut modern_changed = std::collections::BTreeSet::new();
        for (backend, uri) in self.inner.subscriptions.remove_session(&session.id) {
            match self.backend(&backend) {
                Some(b) if is_modern(&b) => {
                    modern_changed.insert(backend);
                }
                _ => self.spawn_backend_request(&backend, methods::UNSUBSCRIBE, json!({"uri": uri})),
            }
        }
        for name in modern_changed {
            if let Some(b) = self.backend(&name) {
                self.sync_listen(&b);
            }
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
        if is_modern(&b) {
            // The stateless era has no resources/subscribe: the listen stream is reopened
            // with the new list of resources.
            self.sync_listen(&b);
            return Ok(());
        }
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
            // A stateless-era backend has no logging/setLevel: each request carries the level.
            if b.listing().info.capabilities.get("logging").is_none_or(Value::is_null) || is_modern(b) {
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

    /// Keeps a background task to wait for at shutdown.
    pub fn track_task(&self, task: JoinHandle<()>) {
        self.lock_tasks().push(task);
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Address-independent URL path of the merged endpoint, for the start-up table.
    pub fn mcp_url(addr: SocketAddr) -> String {
        format!("http://{addr}/mcp")
    }
}

/// Whether the backend's current connection speaks the stateless era.
fn is_modern(backend: &Backend) -> bool {
    backend.connection().map(|c| c.is_modern()).unwrap_or_else(|| backend.listing().info.is_modern())
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
