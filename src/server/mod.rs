//! The HTTP side: streamable HTTP at `/mcp` (merged view) and `/servers/{name}/mcp` (one
//! backend, un-prefixed), plus `/healthz`, `/readyz` and `/status`.

mod guard;
mod mcp;
mod modern;
mod sse;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::backend::State as BackendState;
use crate::config::Settings;
use crate::error::RunError;
use crate::gateway::Gateway;

pub use guard::is_loopback_host;

/// How long in-flight requests may take to finish after shutdown starts.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Gateway,
    /// Cancelled when shutdown starts: open streams end so the server can drain. In an `Arc`
    /// because axum clones the state several times per request, and cloning or dropping a
    /// token takes a lock.
    pub closing: Arc<CancellationToken>,
    pub local_addr: SocketAddr,
}

/// Refuses to serve a non-loopback address without a token unless explicitly allowed.
pub fn check_listen(settings: &Settings, addr: SocketAddr) -> Result<(), RunError> {
    if !addr.ip().is_loopback() && settings.auth_token.is_none() && !settings.allow_unauthenticated {
        return Err(RunError::UnauthenticatedPublicListen(addr));
    }
    Ok(())
}

/// The router.
pub fn app(state: AppState) -> Router {
    let max_body = state.gateway.settings().max_body_bytes;
    let mcp = Router::new()
        .route("/mcp", get(mcp::get_stream).post(mcp::post).delete(mcp::delete))
        .route("/servers/{name}/mcp", get(mcp::get_stream_backend).post(mcp::post_backend).delete(mcp::delete_backend))
        .route("/status", get(status))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::check))
        .layer(DefaultBodyLimit::max(max_body));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(mcp)
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish (bounded by
/// [`DRAIN_GRACE`]).
pub async fn serve(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let local_addr = listener.local_addr()?;
    let closing = CancellationToken::new();
    let state = AppState { gateway, closing: Arc::new(closing.clone()), local_addr };
    let router = app(state);
    let signal = closing.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("Shutting down: no new connections; finishing requests in flight.");
        signal.cancel();
    };
    // Small SSE writes must not wait for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, router).with_graceful_shutdown(graceful);
    let deadline = async {
        closing.cancelled().await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    tokio::select! {
        r = server => r.map_err(RunError::from),
        _ = deadline => {
            tracing::warn!("Requests still in flight after the grace period were abandoned.");
            Ok(())
        }
    }
}

/// Ready when every backend marked `required` (all, by default) is ready. The body names the
/// ones that are not, and says how the last config reload went.
async fn readyz(State(app): State<AppState>) -> Response {
    let not_ready: Vec<_> = app
        .gateway
        .backends()
        .values()
        .filter(|b| b.config.required && b.status().state != BackendState::Ready)
        .map(|b| {
            let s = b.status();
            json!({"name": &*b.name, "state": s.state.as_str(), "error": s.last_error})
        })
        .collect();
    let status = if not_ready.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "ready": not_ready.is_empty(),
        "notReady": not_ready,
        "configGeneration": app.gateway.generation(),
        "lastReload": app.gateway.last_reload(),
    });
    (status, axum::Json(body)).into_response()
}

/// Prometheus text format.
async fn metrics(State(app): State<AppState>) -> Response {
    let gw = &app.gateway;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<String>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    };
    let backends = gw.backends();
    metric(
        "mcpmux_backend_up",
        "gauge",
        "1 when the backend is ready.",
        backends
            .values()
            .map(|b| {
                format!(
                    "mcpmux_backend_up{{backend=\"{}\"}} {}",
                    b.name,
                    u8::from(b.status().state == BackendState::Ready)
                )
            })
            .collect(),
    );
    metric(
        "mcpmux_backend_restarts_total",
        "counter",
        "Times the backend was restarted.",
        backends
            .values()
            .map(|b| format!("mcpmux_backend_restarts_total{{backend=\"{}\"}} {}", b.name, b.status().restarts))
            .collect(),
    );
    metric(
        "mcpmux_sessions",
        "gauge",
        "Open client sessions.",
        vec![format!("mcpmux_sessions {}", gw.sessions().len())],
    );
    metric(
        "mcpmux_config_generation",
        "gauge",
        "Config generation (1 at start, +1 per applied change).",
        vec![format!("mcpmux_config_generation {}", gw.generation())],
    );
    metric(
        "mcpmux_config_reload_failures_total",
        "counter",
        "Reloads that were refused or only partly applied.",
        vec![format!("mcpmux_config_reload_failures_total {}", gw.reload_failures())],
    );
    let last_ok = gw.last_reload().map(|r| u8::from(r.ok)).unwrap_or(1);
    metric(
        "mcpmux_config_last_reload_success",
        "gauge",
        "1 when the last reload was applied in full (or none happened).",
        vec![format!("mcpmux_config_last_reload_success {last_ok}")],
    );
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn status(State(app): State<AppState>) -> Response {
    let gw = &app.gateway;
    let snapshot = gw.snapshot();
    let config = &snapshot.config;
    let backends: Vec<_> = config
        .servers
        .values()
        .map(|cfg| match snapshot.backends.get(&cfg.name) {
            Some(b) => {
                let s = b.status();
                let l = b.listing();
                json!({
                    "name": &*b.name,
                    "transport": b.connection().map(|c| c.transport()).unwrap_or_else(|| cfg.transport.kind()),
                    "state": s.state.as_str(),
                    "pid": s.pid,
                    "restarts": s.restarts,
                    "pendingCalls": b.connection().map(|c| c.pending_count()).unwrap_or(0),
                    "lastError": s.last_error,
                    "readyAfterMs": s.ready_after.map(|d| d.as_millis() as u64),
                    "protocolVersion": l.info.protocol_version,
                    "serverInfo": l.info.server_info,
                    "tools": l.tools.len(),
                    "resources": l.resources.len(),
                    "resourceTemplates": l.templates.len(),
                    "prompts": l.prompts.len(),
                    "isolation": match cfg.isolation {
                        crate::config::Isolation::Shared => "shared",
                        crate::config::Isolation::Session => "session",
                    },
                    "sessionConnections": b.isolated_sessions(),
                    "sessionPids": b.isolated_pids(),
                })
            }
            None => {
                json!({"name": cfg.name, "transport": cfg.transport.kind(), "state": "disabled"})
            }
        })
        .collect();
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "callsAwaitingInput": app.gateway.exchanges().len(),
        "commit": crate::cli::BUILD_COMMIT,
        "uptimeMs": gw.uptime().as_millis() as u64,
        "sessions": gw.sessions().len(),
        "configGeneration": snapshot.generation,
        "lastReload": snapshot.last_reload,
        "backends": backends,
    }))
    .into_response()
}
