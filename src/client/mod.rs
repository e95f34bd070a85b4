//! An MCP client: connect to one server (or every server of an `mcpServers` config) and use
//! its tools, resources and prompts.
//!
//! This is the client the daemon itself uses for its backends ([`crate::backend::Connection`]),
//! with a smaller surface: the same transports, the same inference of the transport from a URL
//! or a config entry, the same paging. Every operation comes in a convenient form that returns
//! a typed view (with the raw JSON always at hand, unknown fields kept) and fetches every page,
//! and the raw form [`Client::request`] returns the exact JSON `result`.
//!
//! [`Client`] is cheap to clone: clones share one connection, which closes when the last clone
//! is dropped (a child process is then stopped and reaped), or at once with [`Client::close`].
//! What a server sends on its own (log messages, progress, list changes, and requests for
//! sampling, elicitation or roots) goes to a [`Handler`]. [`MultiClient`] connects every server of
//! a config and names their tools, prompts and resources as the daemon does.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = mcpmux::client::doc_support::clock_server().await?;
//! # let url = server.url.clone();
//! use mcpmux::client::{Client, ClientOptions};
//! use serde_json::json;
//!
//! // A URL (streamable HTTP, or SSE for a `/sse` path), a command line, or a config entry.
//! let client = Client::connect_url(&url, ClientOptions::default()).await?;
//! println!("connected to {}", client.server_info()["name"]);
//! for tool in client.list_tools().await? {
//!     println!("{}: {}", tool.name(), tool.description().unwrap_or_default());
//! }
//! let result = client.call_tool("add", json!({"a": 2, "b": 3})).await?;
//! assert_eq!(result.text(), "5");
//! assert!(!result.is_error());
//! // The raw form: the exact `result` object.
//! let raw = client.request("tools/call", Some(json!({"name": "add", "arguments": {"a": 1, "b": 1}}))).await?;
//! assert_eq!(raw["content"][0]["text"], "2");
//! client.ping().await?;
//! client.close().await;
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

pub mod args;
#[doc(hidden)]
pub mod doc_support;
mod handler;
mod multi;
mod views;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::backend::client::{CallError, CallOptions, Reply};
use crate::backend::{Connection, Identity, ListKind, StartError};
use crate::config::{RemoteConfig, RemoteKind, Secret, ServerConfig, Settings, StdioConfig, TransportConfig};
use crate::protocol::methods;

pub use handler::{DefaultHandler, Handler, HandlerFuture, LogMessage, Progress, refusal};
pub use multi::MultiClient;
pub use views::{Completion, Prompt, PromptResult, ReadResult, Resource, ResourceTemplate, Tool, ToolResult};

/// A JSON-RPC error a server answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
    /// The error object as sent.
    pub raw: Value,
}

impl RpcError {
    fn from_raw(raw: Value) -> RpcError {
        RpcError {
            code: raw.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: raw.get("message").and_then(Value::as_str).unwrap_or("(no message)").to_owned(),
            data: raw.get("data").cloned(),
            raw,
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to '{server}': {source}")]
    Connect {
        server: String,
        #[source]
        source: StartError,
    },
    #[error("'{server}' answered {method} with an error: {error}")]
    Rpc { server: String, method: String, error: Box<RpcError> },
    #[error("'{server}' did not answer {method} within {after:?}")]
    Timeout { server: String, method: String, after: Duration },
    #[error("the connection to '{server}' ended: {reason}")]
    Closed { server: String, reason: String },
    #[error("{method} to '{server}' failed: {reason}")]
    Failed { server: String, method: String, reason: String },
    #[error("{method} to '{server}' was cancelled")]
    Cancelled { server: String, method: String },
    #[error("'{server}' answered {method} with something that is not JSON: {reason}")]
    InvalidResult { server: String, method: String, reason: String },
    #[error("'{0}' is not an http:// or https:// URL")]
    NotAUrl(String),
    #[error("no {kind} named '{name}'")]
    NotFound { kind: &'static str, name: String },
}

impl ClientError {
    /// The server's JSON-RPC error, when that is what failed.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            ClientError::Rpc { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// How a client connects and behaves.
#[derive(Clone)]
pub struct ClientOptions {
    /// Timeouts and message size limit, as the daemon uses them (`request_timeout`,
    /// `startup_timeout`, `max_message_bytes`). The other settings do not apply to a client.
    pub settings: Settings,
    /// What the server sends on its own goes here.
    pub handler: Arc<dyn Handler>,
    /// Headers sent with every HTTP request (for a URL target), such as `Authorization`.
    pub headers: BTreeMap<String, String>,
    /// `clientInfo` and `capabilities` sent in `initialize`. By default the capabilities are the
    /// daemon's (`roots`, `sampling`, `elicitation`): servers then offer the features that use
    /// them, and the [`Handler`] answers (or refuses) the requests.
    pub identity: Identity,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            settings: Settings::default(),
            handler: Arc::new(DefaultHandler),
            headers: BTreeMap::new(),
            identity: Identity {
                client_info: json!({"name": "mcpmux-client", "title": "mcpmux client", "version": env!("CARGO_PKG_VERSION")}),
                capabilities: Identity::gateway().capabilities,
            },
        }
    }
}

impl ClientOptions {
    /// Uses `handler` for what servers send.
    pub fn handler(mut self, handler: impl Handler) -> Self {
        self.handler = Arc::new(handler);
        self
    }

    /// Gives every request this long to be answered (progress reports extend it).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Gives a server this long to start and answer `initialize`.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.settings.startup_timeout = timeout;
        self
    }

    /// Adds a header sent with every HTTP request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Declares these client capabilities in `initialize` (for example `{}` for none, so a
    /// server does not offer features that need sampling, elicitation or roots).
    pub fn capabilities(mut self, capabilities: Value) -> Self {
        self.identity.capabilities = capabilities;
        self
    }

    /// Sends this `clientInfo` in `initialize` (`name` and `version` at least).
    pub fn client_info(mut self, client_info: Value) -> Self {
        self.identity.client_info = client_info;
        self
    }

    /// Sends `Authorization: Bearer {token}`.
    pub fn bearer_token(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }
}

/// A config entry for a server given by URL, with the daemon's inference (`/sse` path → legacy
/// SSE, otherwise streamable HTTP falling back to SSE).
pub fn url_entry(name: &str, url: &str, headers: &BTreeMap<String, String>) -> Result<ServerConfig, ClientError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ClientError::NotAUrl(url.to_owned()));
    }
    let headers = headers.iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect();
    Ok(entry(name, TransportConfig::Remote(RemoteConfig { url: url.to_owned(), kind: RemoteKind::Auto, headers })))
}

/// A config entry for a server started as `command args…` speaking stdio.
pub fn command_entry<S: AsRef<str>>(name: &str, command: &str, args: &[S]) -> ServerConfig {
    entry(
        name,
        TransportConfig::Stdio(StdioConfig {
            command: command.to_owned(),
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: BTreeMap::new(),
            cwd: None::<PathBuf>,
        }),
    )
}

fn entry(name: &str, transport: TransportConfig) -> ServerConfig {
    ServerConfig {
        name: name.to_owned(),
        prefix: name.to_owned(),
        transport,
        disabled: false,
        request_timeout: None,
        startup_timeout: None,
        isolation: crate::config::Isolation::Shared,
        required: true,
        list_when_down: true,
        ping_interval: None,
        protocol: crate::config::ProtocolChoice::Auto,
    }
}

/// A connection to one MCP server. Clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    conn: Arc<Connection>,
    timeout: Duration,
    handler: Arc<dyn Handler>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let conn = self.conn.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { conn.stop().await });
            }
            // Without a runtime the child is killed as its handle drops.
            Err(_) => drop(conn),
        }
    }
}

impl Client {
    /// Connects to the server a config entry describes and runs `initialize`. The entry's own
    /// timeouts win over `options.settings`.
    pub async fn connect(entry: &ServerConfig, options: ClientOptions) -> Result<Client, ClientError> {
        let name: Arc<str> = Arc::from(entry.name.as_str());
        let owner = Arc::new(handler::HandlerOrigin { server: name.clone(), handler: options.handler.clone() });
        let startup = entry.startup_timeout.unwrap_or(options.settings.startup_timeout);
        let timeout = entry.request_timeout.unwrap_or(options.settings.request_timeout);
        let open = Connection::open_as(&entry.name, entry, &options.settings, Some(owner), &options.identity);
        let (conn, events) = match tokio::time::timeout(startup.max(timeout), open).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(source)) => return Err(ClientError::Connect { server: entry.name.clone(), source }),
            Err(_) => {
                return Err(ClientError::Connect {
                    server: entry.name.clone(),
                    source: StartError::Timeout(startup.max(timeout)),
                });
            }
        };
        tokio::spawn(handler::pump_events(name.clone(), options.handler.clone(), events));
        Ok(Client { inner: Arc::new(Inner { name, conn: Arc::new(conn), timeout, handler: options.handler }) })
    }

    /// Connects to a server by URL, inferring its transport as the daemon does.
    pub async fn connect_url(url: &str, options: ClientOptions) -> Result<Client, ClientError> {
        let entry = url_entry(&host_of(url), url, &options.headers)?;
        Client::connect(&entry, options).await
    }

    /// Starts `command args…` and connects to it over stdio.
    pub async fn connect_command<S: AsRef<str>>(
        command: &str,
        args: &[S],
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let name = std::path::Path::new(command).file_name().and_then(|n| n.to_str()).unwrap_or(command);
        Client::connect(&command_entry(name, command, args), options).await
    }

    fn conn(&self) -> &Connection {
        &self.inner.conn
    }

    /// The server's name (the config key, the URL's host, or the command's file name).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `serverInfo` from `initialize`.
    pub fn server_info(&self) -> &Value {
        &self.conn().info.server_info
    }

    /// `capabilities` from `initialize`.
    pub fn capabilities(&self) -> &Value {
        &self.conn().info.capabilities
    }

    /// `instructions` from `initialize`.
    pub fn instructions(&self) -> Option<&str> {
        self.conn().info.instructions.as_deref()
    }

    /// The protocol version the server chose.
    pub fn protocol_version(&self) -> &str {
        &self.conn().info.protocol_version
    }

    /// The transport in use: `stdio`, `streamable-http` or `sse`.
    pub fn transport(&self) -> &'static str {
        self.conn().transport()
    }

    /// The child's process id, for a server started over stdio.
    pub fn pid(&self) -> Option<u32> {
        self.conn().pid()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.conn().is_closed()
    }

    /// Ends the connection for every clone: pending calls fail, the child is stopped and reaped.
    pub async fn close(&self) {
        self.conn().stop().await;
    }

    /// Sends one request and returns the exact `result` object.
    pub async fn request(&self, method: &str, params: Option<Value>) -> Result<Value, ClientError> {
        self.request_with(method, params, CallOptions::default()).await
    }

    async fn request_with(&self, method: &str, params: Option<Value>, opts: CallOptions) -> Result<Value, ClientError> {
        let server = self.name().to_owned();
        match self.conn().request(method, params, opts, self.inner.timeout).await {
            Ok(Reply::Result(payload)) => serde_json::from_slice(&payload.0).map_err(|e| ClientError::InvalidResult {
                server,
                method: method.to_owned(),
                reason: e.to_string(),
            }),
            Ok(Reply::Error(raw)) => {
                Err(ClientError::Rpc { server, method: method.to_owned(), error: Box::new(RpcError::from_raw(raw)) })
            }
            Err(CallError::Timeout(after)) => Err(ClientError::Timeout { server, method: method.to_owned(), after }),
            Err(CallError::Closed(reason)) => Err(ClientError::Closed { server, reason }),
            Err(CallError::Cancelled) => Err(ClientError::Cancelled { server, method: method.to_owned() }),
            Err(CallError::Failed(reason)) => Err(ClientError::Failed { server, method: method.to_owned(), reason }),
            Err(CallError::Overloaded) => {
                Err(ClientError::Failed { server, method: method.to_owned(), reason: "the send queue is full".into() })
            }
        }
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Option<Value>) -> Result<(), ClientError> {
        self.conn()
            .notify(method, params)
            .map_err(|e| ClientError::Closed { server: self.name().to_owned(), reason: e.to_string() })
    }

    /// `ping`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.request(methods::PING, None).await.map(|_| ())
    }

    /// One page of a list, exactly as the server sent it (`cursor` from the previous page's
    /// `nextCursor`).
    pub async fn list_page(&self, kind: ListKind, cursor: Option<&str>) -> Result<Value, ClientError> {
        self.request(kind.method(), cursor.map(|c| json!({"cursor": c}))).await
    }

    /// Every item of a list, all pages fetched.
    pub async fn list_all(&self, kind: ListKind) -> Result<Vec<Value>, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        // Bounded, against a server that hands out cursors forever.
        for _ in 0..10_000 {
            let page = self.list_page(kind, cursor.as_deref()).await?;
            if let Some(Value::Array(list)) = page.get(kind.key()) {
                items.extend(list.iter().cloned());
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if Some(next) != cursor.as_deref() => cursor = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Every tool (`tools/list`, all pages).
    pub async fn list_tools(&self) -> Result<Vec<Tool>, ClientError> {
        Ok(self.list_all(ListKind::Tools).await?.into_iter().map(Tool::from_raw).collect())
    }

    /// Calls a tool; progress the server reports goes to the handler's
    /// [`on_progress`](Handler::on_progress). A result with `isError` is `Ok`: check
    /// [`ToolResult::is_error`].
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<ToolResult, ClientError> {
        self.call_tool_raw(name, arguments).await.map(ToolResult::from_raw)
    }

    /// [`call_tool`](Client::call_tool), returning the exact `result` object.
    pub async fn call_tool_raw(&self, name: &str, arguments: Value) -> Result<Value, ClientError> {
        let params = json!({"name": name, "arguments": arguments, "_meta": {"progressToken": "mcpmux-client"}});
        let (sink, mut progress) = mpsc::channel::<Value>(64);
        let opts = CallOptions { sink: Some(sink), ..CallOptions::default() };
        let call = self.request_with(methods::TOOLS_CALL, Some(params), opts);
        tokio::pin!(call);
        let handler = self.inner.handler.clone();
        loop {
            tokio::select! {
                biased;
                Some(note) = progress.recv() => {
                    if let Some(params) = note.get("params") {
                        handler.on_progress(self.name(), &Progress::from_params(params));
                    }
                }
                result = &mut call => {
                    // Progress that arrived just before the answer still counts.
                    while let Ok(note) = progress.try_recv() {
                        if let Some(params) = note.get("params") {
                            handler.on_progress(self.name(), &Progress::from_params(params));
                        }
                    }
                    return result;
                }
            }
        }
    }

    /// Every resource (`resources/list`, all pages).
    pub async fn list_resources(&self) -> Result<Vec<Resource>, ClientError> {
        Ok(self.list_all(ListKind::Resources).await?.into_iter().map(Resource::from_raw).collect())
    }

    /// Every resource template (`resources/templates/list`, all pages).
    pub async fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>, ClientError> {
        Ok(self.list_all(ListKind::Templates).await?.into_iter().map(ResourceTemplate::from_raw).collect())
    }

    /// Reads a resource.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResult, ClientError> {
        self.request(methods::RESOURCES_READ, Some(json!({"uri": uri}))).await.map(ReadResult::from_raw)
    }

    /// Every prompt (`prompts/list`, all pages).
    pub async fn list_prompts(&self) -> Result<Vec<Prompt>, ClientError> {
        Ok(self.list_all(ListKind::Prompts).await?.into_iter().map(Prompt::from_raw).collect())
    }

    /// Gets a prompt with its arguments (an object of strings).
    pub async fn get_prompt(&self, name: &str, arguments: Value) -> Result<PromptResult, ClientError> {
        let params = json!({"name": name, "arguments": arguments});
        self.request(methods::PROMPTS_GET, Some(params)).await.map(PromptResult::from_raw)
    }

    /// `completion/complete` for one argument of a prompt (`{"type": "ref/prompt", "name": …}`)
    /// or a resource template (`{"type": "ref/resource", "uri": …}`).
    pub async fn complete(&self, reference: Value, argument: &str, value: &str) -> Result<Completion, ClientError> {
        let params = json!({"ref": reference, "argument": {"name": argument, "value": value}});
        self.request(methods::COMPLETE, Some(params)).await.map(Completion::from_raw)
    }

    /// Tells the server the client's roots changed (`notifications/roots/list_changed`); it
    /// will ask the handler's [`list_roots`](Handler::list_roots) again.
    pub fn roots_changed(&self) -> Result<(), ClientError> {
        self.notify(methods::ROOTS_LIST_CHANGED, None)
    }

    /// `logging/setLevel`.
    pub async fn set_log_level(&self, level: &str) -> Result<(), ClientError> {
        self.request(methods::SET_LEVEL, Some(json!({"level": level}))).await.map(|_| ())
    }
}

/// A name for a server known by URL: its host and port.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() { "server".to_owned() } else { host.to_owned() }
}

/// Wraps every `uri` in a read result's contents for the merged view.
fn wrap_contents(mut result: Value, prefix: &str) -> Value {
    if let Some(Value::Array(contents)) = result.get_mut("contents") {
        for item in contents {
            if let Some(Value::String(uri)) = item.get_mut("uri") {
                *uri = crate::catalog::uri::wrap(prefix, uri);
            }
        }
    }
    result
}

/// An empty arguments object.
pub fn no_arguments() -> Value {
    Value::Object(Map::new())
}
