//! Backend supervision: one task per backend owns its whole life.
//!
//! The task starts the backend (spawn or connect, `initialize`, list every catalog page),
//! serves its events (`list_changed` → re-list; resource updates, task status and log messages
//! → the right sessions), probes it with `ping` when it is idle (optional), and when the
//! connection ends restarts it with exponential backoff and jitter, re-listing the catalog.
//! Calls in flight on a connection that ends fail at once (the client core fails every pending
//! call when the transport closes). Stopping a backend lets in-flight calls finish up to a
//! grace period, then closes the connection and reaps the child.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::client::{BackendEvent, Reply};
use crate::backend::{Backend, Connection, ListKind, Listing, State, modern};
use crate::config::Settings;
use crate::gateway::Gateway;

/// First wait before restarting a backend that exited; doubled each time up to the cap.
pub const RESTART_BACKOFF_START: Duration = Duration::from_millis(500);
pub const RESTART_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A backend that stayed up this long starts again from the first backoff step.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long a stopping backend's in-flight calls may take to finish.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// A running supervisor.
pub struct Handle {
    pub backend: Arc<Backend>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Handle {
    /// Asks the backend to stop (draining its calls) and waits until it has.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts supervising `backend`. `first_attempt` fires once its first start has succeeded or
/// failed.
pub fn spawn(
    gw: &Gateway,
    backend: Arc<Backend>,
    parent: &CancellationToken,
    first_attempt: oneshot::Sender<()>,
) -> Handle {
    let stop = parent.child_token();
    let task = tokio::spawn(supervise(gw.clone(), backend.clone(), stop.clone(), first_attempt));
    Handle { backend, stop, task }
}

/// Opens a connection and lists its catalog, bounded by the startup timeout.
async fn bring_up(
    backend: &Backend,
    settings: &Settings,
) -> Result<(Connection, mpsc::UnboundedReceiver<BackendEvent>, Listing), String> {
    let cfg = &backend.config;
    let limit = cfg.startup_timeout.unwrap_or(settings.startup_timeout);
    let attempt = async {
        let (conn, events) = Connection::open(&backend.name, cfg, settings, None).await.map_err(|e| e.to_string())?;
        match conn.list_all(limit.max(backend.request_timeout())).await {
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

/// Runs one backend until `stop`: start, serve events, restart with backoff.
async fn supervise(gw: Gateway, backend: Arc<Backend>, stop: CancellationToken, first_attempt: oneshot::Sender<()>) {
    let mut first_attempt = Some(first_attempt);
    let mut backoff = RESTART_BACKOFF_START;
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
                let first = first_attempt.take();
                gw.backend_up(&backend, first.is_none());
                // A stateless-era backend announces changes only on a listen stream.
                conn.start_listening(gw.subscribed_resources(&backend.name));
                if let Some(tx) = first {
                    let _ = tx.send(());
                }
                let reason = serve_events(&gw, &backend, &conn, &mut events, &stop).await;
                backend.set_connection(None);
                if stop.is_cancelled() {
                    drain(&conn, DRAIN_GRACE).await;
                    conn.stop().await;
                    break;
                }
                conn.stop().await;
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
                gw.backend_down(&backend);
            }
            Err(reason) => {
                tracing::error!(backend = %backend.name, error = %reason, "Backend failed to start.");
                let was_ready = first_attempt.is_none();
                backend.update_status(|s| {
                    s.state = State::Failed;
                    s.last_error = Some(reason);
                    s.pid = None;
                });
                if let Some(tx) = first_attempt.take() {
                    let _ = tx.send(());
                }
                if was_ready {
                    gw.backend_down(&backend);
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
    if let Some(tx) = first_attempt.take() {
        let _ = tx.send(());
    }
    backend.close_all_sessions().await;
    backend.update_status(|s| {
        s.state = State::Stopped;
        s.pid = None;
    });
}

/// Waits (bounded) until no call is in flight on `conn`.
async fn drain(conn: &Connection, grace: Duration) {
    let deadline = Instant::now() + grace;
    while conn.pending_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Handles a ready backend's events until its connection ends or it is stopped. Returns why it
/// ended.
async fn serve_events(
    gw: &Gateway,
    backend: &Backend,
    conn: &Connection,
    events: &mut mpsc::UnboundedReceiver<BackendEvent>,
    stop: &CancellationToken,
) -> String {
    let ping_every = backend.config.ping_interval;
    let mut ticker = tokio::time::interval(ping_every.unwrap_or(Duration::from_secs(3600)));
    ticker.tick().await;
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = ticker.tick(), if ping_every.is_some() => {
                if conn.pending_count() == 0 && let Err(reason) = probe(conn, backend.request_timeout()).await {
                    return reason;
                }
                continue;
            }
            _ = stop.cancelled() => return "stopped".to_owned(),
        };
        match event {
            None => return "backend event stream ended".to_owned(),
            Some(BackendEvent::Closed { reason }) => return reason,
            Some(BackendEvent::Notification { method, params }) => {
                let params = if conn.is_modern() { modern::strip_subscription_id(params) } else { params };
                if let Some(kinds) = ListKind::from_list_changed(&method) {
                    relist(gw, backend, conn, kinds).await;
                } else {
                    gw.backend_notification(backend, &method, params);
                }
            }
        }
    }
}

/// Health probe: `ping` (`server/discover` for a stateless-era backend, which has no `ping`)
/// must be answered within the request timeout.
async fn probe(conn: &Connection, timeout: Duration) -> Result<(), String> {
    match conn.probe(timeout.min(Duration::from_secs(10))).await {
        Ok(Reply::Result(_)) | Ok(Reply::Error(_)) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "Backend did not answer a health ping; restarting it.");
            Err(format!("health ping failed: {e}"))
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
