//! mcpmux: many MCP servers behind one URL.
//!
//! # The parts
//!
//! - [`config`]: the `mcpServers` file (JSON or TOML) → a validated, immutable [`config::Config`].
//! - [`client`]: the public MCP client API (one server, or a whole config), built on [`backend`];
//!   also what the `tools` / `call` / `resources` / `read` / `prompts` / `prompt` commands use.
//! - [`backend`]: one MCP client per backend. [`backend::client`] is the transport-independent
//!   client core (request-id remapping, pending calls, `initialize`, catalog listing); each
//!   transport ([`backend::stdio`], …) only moves JSON-RPC messages.
//! - [`catalog`]: the merged tools / resources / templates / prompts, namespaced by
//!   [`catalog::names`] and [`catalog::uri`], published lock-free for request paths.
//! - [`gateway`]: the live set of backends and the catalog built from them.
//! - [`relay`]: routes one client request to the right backend and rewrites the answer.
//!   Everything it needs about the caller is in a [`relay::RequestContext`], not a session, so the
//!   stateless protocol era fits without a rewrite.
//! - [`supervisor`]: one task per backend: start, events, health pings, restart with backoff.
//! - [`reload`]: watches the config file and applies changes by difference.
//! - [`session`]: downstream sessions (`Mcp-Session-Id`) with idle expiry; a session is also
//!   the [`backend::client::Origin`] that backend requests (sampling, elicitation, roots) and
//!   log messages are routed back to.
//! - [`subscriptions`]: resource subscriptions counted across sessions.
//! - [`server`]: the axum routes: streamable HTTP at `/mcp` and `/servers/{name}/mcp`, health.
//! - [`demo`]: a small MCP server built into the binary, so the default config works offline.
//!
//! # One request, end to end
//!
//! `POST /mcp` with `tools/call` → [`server`] checks Host/Origin/token, body size, `Accept`, the
//! session and the protocol version header, parses the JSON-RPC message → builds a
//! `RequestContext` → [`relay`] looks the exposed tool name up in the current catalog (one
//! atomic load), gets `(backend, original name)`, rewrites the name → [`backend::client`] gives
//! the request a fresh id on that backend's connection, remembers who waits for it, and hands the
//! line to the stdio writer → the backend answers; the reader task matches the id, wakes the
//! caller → the relay restores the client's id, rewrites resource URIs if any → [`server`]
//! answers JSON, or SSE when the backend streamed notifications (progress) first.

pub mod backend;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod jsonrpc;
pub mod mrtr;
pub mod protocol;
pub mod relay;
pub mod reload;
pub mod server;
pub mod session;
pub mod subscriptions;
pub mod supervisor;

use std::future::Future;

use tokio::net::TcpListener;

pub use error::RunError;

/// Runs the daemon on `listener` with `config` until `shutdown` resolves, then drains and
/// stops every backend (children killed and reaped) before returning.
pub async fn run(
    config: config::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_with(config, listener, shutdown, |_, _| {}).await
}

/// [`run`], calling `on_ready` once every backend has started or failed, before serving.
pub async fn run_with(
    config: config::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&gateway::Gateway, std::net::SocketAddr),
) -> Result<(), RunError> {
    let addr = listener.local_addr()?;
    server::check_listen(&config.settings, addr)?;
    let source = config.source.clone();
    // What the running config was read from, taken before the backends start so an edit made
    // meanwhile is not missed.
    let loaded = source.as_ref().and_then(|p| std::fs::read(p).ok());
    let gateway = gateway::Gateway::start(config).await;
    if let Some(path) = source {
        let watcher = reload::spawn(gateway.clone(), path, loaded, Box::new(config::ProcessEnv));
        gateway.track_task(watcher);
    }
    on_ready(&gateway, addr);
    let result = server::serve(gateway.clone(), listener, shutdown).await;
    gateway.shutdown().await;
    result
}
