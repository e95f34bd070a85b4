//! Backends: one MCP client per configured server.
//!
//! A [`Backend`] is the long-lived handle the gateway keeps per config entry: its state, its
//! current [`Connection`] and the catalog it listed. A `Connection` is one live session with the
//! server over some transport; [`client::Peer`] does the protocol work and the transport module
//! ([`stdio`], [`http`] for streamable HTTP, [`sse`] for the legacy HTTP+SSE transport, chosen by
//! [`remote`]) only moves messages.

pub mod client;
pub mod http;
pub mod modern;
pub mod mrtr;
pub mod remote;
pub mod sse;
pub mod stdio;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, mpsc};

use crate::config::{Isolation, ProtocolChoice, ServerConfig, Settings, TransportConfig};
use crate::error::RelayError;
use crate::jsonrpc::Payload;
use crate::protocol::{self, methods};
use client::{BackendEvent, CallError, CallOptions, Origin, Peer, Reply};

/// Where a backend is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Starting,
    Ready,
    Restarting,
    Failed,
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Restarting => "restarting",
            State::Failed => "failed",
            State::Stopped => "stopped",
        }
    }
}

/// What `/status` and the start-up table show about a backend.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub last_error: Option<String>,
    pub ready_after: Option<Duration>,
    pub restarts: u32,
    pub pid: Option<u32>,
}

/// What a backend said about itself in `initialize` (session era) or `server/discover`
/// (stateless era).
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub protocol_version: String,
    pub capabilities: Value,
    pub server_info: Value,
    pub instructions: Option<String>,
}

impl ServerInfo {
    fn has(&self, capability: &str) -> bool {
        self.capabilities.get(capability).is_some_and(|c| !c.is_null())
    }

    /// Whether the backend speaks the stateless (2026-07-28) protocol on this connection.
    pub fn is_modern(&self) -> bool {
        protocol::is_modern(&self.protocol_version)
    }
}

/// Everything a backend lists, as the backend wrote it.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub info: ServerInfo,
    pub tools: Vec<Value>,
    pub resources: Vec<Value>,
    pub templates: Vec<Value>,
    pub prompts: Vec<Value>,
}

/// The four lists, for code that handles them alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Resources,
    Templates,
    Prompts,
}

impl ListKind {
    pub const ALL: [ListKind; 4] = [ListKind::Tools, ListKind::Resources, ListKind::Templates, ListKind::Prompts];

    /// The list method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => methods::TOOLS_LIST,
            ListKind::Resources => methods::RESOURCES_LIST,
            ListKind::Templates => methods::RESOURCES_TEMPLATES_LIST,
            ListKind::Prompts => methods::PROMPTS_LIST,
        }
    }

    /// The key holding the items in the list result.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
            ListKind::Prompts => "prompts",
        }
    }

    /// The capability that says the backend has this list.
    fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Resources | ListKind::Templates => "resources",
            ListKind::Prompts => "prompts",
        }
    }

    /// The list for a `…/list_changed` notification method.
    pub fn from_list_changed(method: &str) -> Option<&'static [ListKind]> {
        match method {
            methods::TOOLS_LIST_CHANGED => Some(&[ListKind::Tools]),
            methods::RESOURCES_LIST_CHANGED => Some(&[ListKind::Resources, ListKind::Templates]),
            methods::PROMPTS_LIST_CHANGED => Some(&[ListKind::Prompts]),
            _ => None,
        }
    }
}

impl Listing {
    pub fn items(&self, kind: ListKind) -> &[Value] {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Resources => &self.resources,
            ListKind::Templates => &self.templates,
            ListKind::Prompts => &self.prompts,
        }
    }

    fn items_mut(&mut self, kind: ListKind) -> &mut Vec<Value> {
        match kind {
            ListKind::Tools => &mut self.tools,
            ListKind::Resources => &mut self.resources,
            ListKind::Templates => &mut self.templates,
            ListKind::Prompts => &mut self.prompts,
        }
    }
}

/// Why a backend could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Spawn(#[from] stdio::SpawnError),
    #[error("initialize failed: {0}")]
    Initialize(String),
    #[error("listing {what} failed: {reason}")]
    List { what: &'static str, reason: String },
    #[error("did not become ready within {0:?}")]
    Timeout(Duration),
}

/// How a connection introduces itself in `initialize`: `clientInfo` and `capabilities`.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub client_info: Value,
    pub capabilities: Value,
}

impl Identity {
    /// The daemon's: it offers backends everything it can route back to a client session.
    pub fn gateway() -> Identity {
        Identity {
            client_info: json!({"name": "mcpmux", "title": "mcpmux gateway", "version": env!("CARGO_PKG_VERSION")}),
            capabilities: client_capabilities(),
        }
    }
}

impl Default for Identity {
    fn default() -> Self {
        Identity::gateway()
    }
}

/// One live session with a backend (for a stateless-era backend: one connection, no session).
pub struct Connection {
    peer: Arc<Peer>,
    transport: transport::TransportHandle,
    pid: Option<u32>,
    pub info: ServerInfo,
    /// The `subscriptions/listen` stream of a stateless-era backend.
    listen: Arc<modern::Listen>,
}

impl Connection {
    /// Starts the transport and runs `initialize` as the gateway. Backend events go to `events`.
    pub async fn open(
        name: &str,
        cfg: &ServerConfig,
        settings: &Settings,
        owner: Option<Arc<dyn Origin>>,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<BackendEvent>), StartError> {
        Self::open_as(name, cfg, settings, owner, &Identity::gateway()).await
    }

    /// [`open`](Connection::open), introducing itself as `identity`.
    pub async fn open_as(
        name: &str,
        cfg: &ServerConfig,
        settings: &Settings,
        owner: Option<Arc<dyn Origin>>,
        identity: &Identity,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<BackendEvent>), StartError> {
        let (peer, outbox, events) = Peer::with_owner(Arc::from(name), owner);
        let timeout = cfg.request_timeout.unwrap_or(settings.request_timeout);
        let (transport, pid) = match &cfg.transport {
            TransportConfig::Stdio(s) => {
                let process = stdio::spawn(peer.clone(), outbox, s, settings.max_message_bytes)?;
                let pid = process.pid();
                (transport::TransportHandle::stdio(process), Some(pid))
            }
            TransportConfig::Remote(r) => {
                let handle = remote::start(peer.clone(), outbox, r, settings.max_message_bytes, timeout)
                    .map_err(StartError::Initialize)?;
                (transport::TransportHandle::remote(handle), None)
            }
        };
        let mut conn = Connection {
            peer,
            transport,
            pid,
            info: ServerInfo::default(),
            listen: Arc::new(modern::Listen::default()),
        };
        // A process that is still starting (an interpreter loading, `npx` fetching) answers
        // `initialize` late: it gets the startup timeout, not the per-request one.
        let startup = cfg.startup_timeout.unwrap_or(settings.startup_timeout);
        let limit = startup.max(timeout);
        let outcome = match cfg.protocol {
            ProtocolChoice::Legacy => conn.initialize(limit, identity).await,
            ProtocolChoice::Modern => conn.discover(limit).await.map_err(|why| {
                StartError::Initialize(format!(
                    "the backend does not speak protocol {} (\"protocol\" is set to it): {why}",
                    protocol::MODERN_VERSION
                ))
            }),
            ProtocolChoice::Auto if !modern::probe_applies(cfg) => conn.initialize(limit, identity).await,
            ProtocolChoice::Auto => conn.detect(name, limit, identity).await,
        };
        match outcome {
            Ok(info) => {
                conn.info = info;
                Ok((conn, events))
            }
            Err(e) => {
                conn.stop().await;
                Err(e)
            }
        }
    }

    /// Finds out which era the backend speaks: `server/discover` first, `initialize` when the
    /// answer is not a stateless-era one. A backend that is silent for [`modern::PROBE_TIMEOUT`]
    /// (one that ignores unknown methods, or one still starting) is sent `initialize` as well,
    /// and whichever answers first decides.
    async fn detect(&self, name: &str, timeout: Duration, identity: &Identity) -> Result<ServerInfo, StartError> {
        let discover = self.discover(timeout);
        tokio::pin!(discover);
        tokio::select! {
            r = &mut discover => {
                return match r {
                    Ok(info) => Ok(info),
                    Err(why) => {
                        tracing::debug!(backend = name, reason = %why, "Backend does not speak the stateless protocol; initializing.");
                        self.initialize(timeout, identity).await
                    }
                };
            }
            _ = tokio::time::sleep(modern::PROBE_TIMEOUT) => {}
        }
        tracing::debug!(backend = name, "No answer to server/discover yet; sending initialize as well.");
        let initialize = self.initialize(timeout, identity);
        tokio::pin!(initialize);
        let mut discover_done = false;
        loop {
            tokio::select! {
                r = &mut discover, if !discover_done => match r {
                    Ok(info) => return Ok(info),
                    Err(_) => discover_done = true,
                },
                r = &mut initialize => match r {
                    Ok(info) => return Ok(info),
                    // A backend of the stateless era refuses `initialize` once it has taken
                    // `server/discover` (and may answer that one later): wait for it.
                    Err(e) if !discover_done => return discover.await.map_err(|_| e),
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// Asks `server/discover`; `Ok` only when the backend offers a stateless version mcpmux
    /// speaks. `Err` says what it answered instead.
    async fn discover(&self, timeout: Duration) -> Result<ServerInfo, String> {
        let params = modern::with_meta(Some(json!({})), None);
        let reply = self.peer.request(methods::DISCOVER, Some(params), CallOptions::default(), timeout).await;
        let result = match reply {
            Ok(Reply::Result(p)) => serde_json::from_slice::<Value>(&p.0).map_err(|e| e.to_string())?,
            Ok(Reply::Error(e)) => return Err(format!("server/discover answered with an error: {e}")),
            Err(e) => return Err(format!("server/discover failed: {e}")),
        };
        modern::server_info(&result)
    }

    async fn initialize(&self, timeout: Duration, identity: &Identity) -> Result<ServerInfo, StartError> {
        let params = json!({
            "protocolVersion": protocol::LATEST_VERSION,
            "capabilities": identity.capabilities,
            "clientInfo": identity.client_info,
        });
        let reply = self.peer.request(methods::INITIALIZE, Some(params), CallOptions::default(), timeout).await;
        let result = match reply {
            Ok(Reply::Result(p)) => {
                serde_json::from_slice::<Value>(&p.0).map_err(|e| StartError::Initialize(e.to_string()))?
            }
            Ok(Reply::Error(e)) => {
                return Err(StartError::Initialize(format!("backend answered with an error: {e}")));
            }
            Err(e) => return Err(StartError::Initialize(e.to_string())),
        };
        let info = ServerInfo {
            protocol_version: result.get("protocolVersion").and_then(Value::as_str).unwrap_or_default().to_owned(),
            capabilities: result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
            server_info: result.get("serverInfo").cloned().unwrap_or_else(|| json!({})),
            instructions: result.get("instructions").and_then(Value::as_str).map(str::to_owned),
        };
        self.peer.notify(methods::INITIALIZED, None).map_err(|e| StartError::Initialize(e.to_string()))?;
        Ok(info)
    }

    /// Lists every page of every list the backend offers.
    pub async fn list_all(&self, timeout: Duration) -> Result<Listing, StartError> {
        let mut listing = Listing { info: self.info.clone(), ..Listing::default() };
        let kinds: Vec<ListKind> = ListKind::ALL.into_iter().filter(|k| self.info.has(k.capability())).collect();
        let results = futures_util::future::join_all(kinds.iter().map(|k| self.list(*k, timeout))).await;
        for (kind, items) in kinds.into_iter().zip(results) {
            *listing.items_mut(kind) = items?;
        }
        Ok(listing)
    }

    /// Lists every page of one list.
    pub async fn list(&self, kind: ListKind, timeout: Duration) -> Result<Vec<Value>, StartError> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..10_000 {
            let params = cursor.as_ref().map(|c| json!({"cursor": c}));
            let fail = |reason: String| StartError::List { what: kind.key(), reason };
            let mut page = match self.request(kind.method(), params, CallOptions::default(), timeout).await {
                Ok(Reply::Result(p)) => serde_json::from_slice::<Value>(&p.0).map_err(|e| fail(e.to_string()))?,
                Ok(Reply::Error(e)) => return Err(fail(e.to_string())),
                Err(e) => return Err(fail(e.to_string())),
            };
            // The page is ours: its items are moved, not copied.
            if let Some(Value::Array(list)) = page.get_mut(kind.key()) {
                items.append(list);
            }
            match page.get("nextCursor") {
                Some(c) if !c.is_null() && Some(c) != cursor.as_ref() => cursor = Some(c.clone()),
                _ => break,
            }
        }
        if kind == ListKind::Tools && self.info.is_modern() {
            self.peer.set_tool_headers(modern::tool_headers(&items));
        }
        Ok(items)
    }

    /// Sends one request on this connection. To a stateless-era backend every request
    /// carries the protocol version, the caller's capabilities and info in `_meta`, and the
    /// methods that era removed are refused here.
    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
        opts: CallOptions,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        if !self.info.is_modern() {
            return self.peer.request(method, params, opts, timeout).await;
        }
        if modern::REMOVED_METHODS.contains(&method) {
            return Err(CallError::Failed(format!(
                "'{method}' does not exist in protocol {}",
                protocol::MODERN_VERSION
            )));
        }
        let params = modern::with_meta(params, opts.caller.as_deref());
        self.peer.request(method, Some(params), opts, timeout).await
    }

    /// Whether this connection speaks the stateless (2026-07-28) protocol.
    pub fn is_modern(&self) -> bool {
        self.info.is_modern()
    }

    /// The protocol version in use on this connection.
    pub fn protocol_version(&self) -> &str {
        &self.info.protocol_version
    }

    /// Opens the `subscriptions/listen` stream of a stateless-era backend (kept open, and
    /// reopened when it ends, for the life of the connection), asking for the resource
    /// `resources` too. Does nothing on a session-era connection or when already listening.
    pub fn start_listening(&self, resources: Vec<String>) {
        if !self.is_modern() {
            return;
        }
        self.listen.start(self.peer.clone(), &self.info.capabilities, resources);
    }

    /// The resources to hear `notifications/resources/updated` for changed: the listen
    /// stream is reopened with the new list.
    pub fn set_resource_subscriptions(&self, resources: Vec<String>) {
        if self.is_modern() {
            self.listen.set_resources(resources);
        }
    }

    /// Health probe: `ping` for a session-era backend, `server/discover` for a stateless one.
    pub async fn probe(&self, timeout: Duration) -> Result<Reply, CallError> {
        if self.is_modern() {
            self.request(methods::DISCOVER, None, CallOptions::default(), timeout).await
        } else {
            self.request(methods::PING, None, CallOptions::default(), timeout).await
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Sends a notification on this connection (a stateless-era backend is not sent the
    /// notifications that era removed).
    pub fn notify(&self, method: &str, params: Option<Value>) -> Result<(), CallError> {
        if self.is_modern() && modern::REMOVED_METHODS.contains(&method) {
            return Ok(());
        }
        self.peer.notify(method, params)
    }

    pub fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    /// Calls waiting for an answer on this connection (the listen stream does not count).
    pub fn pending_count(&self) -> usize {
        self.peer.pending_count().saturating_sub(self.listen.active())
    }

    /// The transport in use: `"stdio"`, `"streamable-http"` or `"sse"` (for `/status`).
    pub fn transport(&self) -> &'static str {
        self.transport.kind()
    }

    /// Ends the connection: pending calls fail, the child is stopped and reaped, a remote
    /// session is ended.
    pub async fn stop(&self) {
        self.listen.stop();
        self.transport.stop().await;
        self.peer.close("backend stopped");
    }
}

/// What mcpmux offers backends: everything it can route back to a client session. A request
/// for a capability the client itself lacks is answered with an error at that point.
pub(crate) fn client_capabilities() -> Value {
    json!({
        "roots": {"listChanged": true},
        "sampling": {},
        "elicitation": {"form": {}, "url": {}},
    })
}

/// A configured backend: its state, its live connection and its catalog.
pub struct Backend {
    pub name: Arc<str>,
    pub config: ServerConfig,
    status: Mutex<Status>,
    connection: ArcSwapOption<Connection>,
    listing: ArcSwap<Listing>,
    request_timeout: Duration,
    settings: Settings,
    /// With `isolation: "session"`: each session's own connection, opened at its first call.
    isolated: Mutex<HashMap<String, Arc<OnceCell<Arc<Connection>>>>>,
}

impl Backend {
    pub fn new(config: ServerConfig, settings: &Settings) -> Backend {
        Backend {
            name: Arc::from(config.name.as_str()),
            request_timeout: config.request_timeout.unwrap_or(settings.request_timeout),
            config,
            status: Mutex::new(Status {
                state: State::Starting,
                last_error: None,
                ready_after: None,
                restarts: 0,
                pid: None,
            }),
            connection: ArcSwapOption::empty(),
            listing: ArcSwap::from_pointee(Listing::default()),
            settings: settings.clone(),
            isolated: Mutex::new(HashMap::new()),
        }
    }

    /// The connection that serves `origin`: its own when this backend isolates sessions, else
    /// the shared one.
    async fn connection_for(&self, origin: Option<&Arc<dyn Origin>>) -> Result<Arc<Connection>, RelayError> {
        let unavailable = |reason: String| RelayError::BackendUnavailable { backend: self.name.to_string(), reason };
        if let (Isolation::Session, Some(origin)) = (self.config.isolation, origin.filter(|o| o.is_session())) {
            let cell = self.lock_isolated().entry(origin.key().to_owned()).or_default().clone();
            let conn = cell
                .get_or_try_init(|| self.open_isolated(origin.clone()))
                .await
                .map_err(|e| unavailable(format!("could not open a connection for this session: {e}")))?;
            if conn.is_closed() {
                self.lock_isolated().remove(origin.key());
                return Err(unavailable("this session's connection ended".into()));
            }
            return Ok(conn.clone());
        }
        self.connection().filter(|c| !c.is_closed()).ok_or_else(|| {
            let status = self.status();
            unavailable(status.last_error.unwrap_or_else(|| status.state.as_str().to_owned()))
        })
    }

    async fn open_isolated(&self, origin: Arc<dyn Origin>) -> Result<Arc<Connection>, StartError> {
        let limit = self.config.startup_timeout.unwrap_or(self.settings.startup_timeout);
        let (conn, mut events) = tokio::time::timeout(
            limit,
            Connection::open(&self.name, &self.config, &self.settings, Some(origin.clone())),
        )
        .await
        .map_err(|_| StartError::Timeout(limit))??;
        tracing::info!(backend = %self.name, session = origin.key(), pid = ?conn.pid(), "Opened a connection for one session.");
        let name = self.name.clone();
        // What this session's connection sends that is not tied to a call still belongs to it.
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    BackendEvent::Notification { method, params } if method == methods::MESSAGE => {
                        origin.forward_notification(&name, &method, params, None);
                    }
                    BackendEvent::Notification { .. } => {}
                    BackendEvent::Closed { .. } => break,
                }
            }
        });
        Ok(Arc::new(conn))
    }

    /// Closes the connection a session had of its own, if any.
    pub async fn close_session(&self, session: &str) {
        let cell = self.lock_isolated().remove(session);
        if let Some(conn) = cell.and_then(|c| c.get().cloned()) {
            conn.stop().await;
        }
    }

    /// Closes every per-session connection (shutdown).
    pub async fn close_all_sessions(&self) {
        let cells: Vec<_> = self.lock_isolated().drain().map(|(_, c)| c).collect();
        for conn in cells.iter().filter_map(|c| c.get()) {
            conn.stop().await;
        }
    }

    /// Number of sessions with a connection of their own.
    pub fn isolated_sessions(&self) -> usize {
        self.lock_isolated().len()
    }

    /// PIDs of the per-session child processes.
    pub fn isolated_pids(&self) -> Vec<u32> {
        self.lock_isolated().values().filter_map(|c| c.get().and_then(|c| c.pid())).collect()
    }

    fn lock_isolated(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<Arc<Connection>>>>> {
        self.isolated.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The catalog this backend last listed.
    pub fn listing(&self) -> Arc<Listing> {
        self.listing.load_full()
    }

    pub fn set_listing(&self, listing: Listing) {
        self.listing.store(Arc::new(listing));
    }

    pub fn connection(&self) -> Option<Arc<Connection>> {
        self.connection.load_full()
    }

    pub fn set_connection(&self, conn: Option<Arc<Connection>>) {
        self.connection.store(conn);
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Sends a request to this backend and maps the failure modes to relay errors.
    ///
    /// A stateless-era backend may answer `tools/call`, `prompts/get` or `resources/read` with
    /// `input_required`: for a caller of the session era (or mcpmux itself) mcpmux asks the
    /// client through its session and retries until the result is complete
    /// ([`mrtr::resolve`]); a caller of the stateless era gets it unchanged.
    pub async fn call(&self, method: &str, params: Option<Value>, opts: CallOptions) -> Result<Payload, RelayError> {
        let conn = self.connection_for(opts.origin.as_ref()).await?;
        let resolve =
            conn.is_modern() && mrtr::MRTR_METHODS.contains(&method) && !opts.caller.as_ref().is_some_and(|c| c.modern);
        if !resolve {
            return self.outcome(conn.request(method, params, opts, self.request_timeout).await);
        }
        let first = self.outcome(conn.request(method, params.clone(), opts.clone(), self.request_timeout).await)?;
        match mrtr::input_required(&first) {
            None => Ok(first),
            Some(asked) => mrtr::resolve(self, &conn, method, params, opts, asked).await,
        }
    }

    /// Maps the outcome of one request to the relay's result.
    fn outcome(&self, reply: Result<Reply, CallError>) -> Result<Payload, RelayError> {
        match reply {
            Ok(Reply::Result(p)) => Ok(p),
            Ok(Reply::Error(e)) => Err(RelayError::Backend(e)),
            Err(CallError::Timeout(after)) => Err(RelayError::Timeout { backend: self.name.to_string(), after }),
            Err(CallError::Closed(reason)) => {
                Err(RelayError::ConnectionLost { backend: self.name.to_string(), reason })
            }
            Err(CallError::Cancelled) => Err(RelayError::Cancelled),
            Err(CallError::Failed(reason)) => Err(RelayError::RequestFailed { backend: self.name.to_string(), reason }),
            Err(CallError::Overloaded) => Err(RelayError::BackendUnavailable {
                backend: self.name.to_string(),
                reason: "too many requests queued".to_owned(),
            }),
        }
    }

    /// Time the backend was started, for the ready-after figure.
    pub fn mark_ready(&self, started: Instant, pid: Option<u32>) {
        self.update_status(|s| {
            s.state = State::Ready;
            s.ready_after = Some(started.elapsed());
            s.last_error = None;
            s.pid = pid;
        });
    }
}
