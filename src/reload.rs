//! Watching the config file and reloading it.
//!
//! Files change in more ways than a plain write: editors write a temporary file and rename it
//! over the original, Kubernetes swaps a `..data` symlink inside a ConfigMap volume, and a Docker
//! bind mount of a single file may see no event at all when the host replaces the file. So the
//! watcher watches the file's *directory* (any event there triggers a look at the file), and also
//! checks the file's content every couple of seconds. It acts only when the content really
//! changed, after a quiet period, so a burst of writes becomes one reload. `SIGHUP` reloads too.
//!
//! This task is the only one that reloads, and it waits for each reload to finish before it looks
//! again, so reloads never overlap; shutdown takes the same lock as a reload.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{self, EnvLookup};
use crate::gateway::Gateway;

/// How long the file must stay unchanged before it is read for a reload.
pub const QUIET_PERIOD: Duration = Duration::from_millis(150);
/// How often the content is checked even without any event.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Starts watching `path`; changes are applied to `gateway` until it shuts down. `loaded` is
/// the content the running config was read from (a change made while the backends were
/// starting is then still seen). The SIGHUP handler is installed before this returns.
pub fn spawn(
    gateway: Gateway,
    path: PathBuf,
    loaded: Option<Vec<u8>>,
    env: Box<dyn EnvLookup + Send + Sync>,
) -> JoinHandle<()> {
    let hangup = hangup_signal();
    tokio::spawn(async move { watch(gateway, path, loaded, hangup, env).await })
}

async fn watch(
    gateway: Gateway,
    path: PathBuf,
    loaded: Option<Vec<u8>>,
    mut hangup: Hangup,
    env: Box<dyn EnvLookup + Send + Sync>,
) {
    let (tx, mut events) = mpsc::unbounded_channel::<()>();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let _watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the file (as this watcher does) is an event too; only changes count.
        if let Ok(e) = &event
            && matches!(e.kind, notify::EventKind::Access(_))
        {
            return;
        }
        let _ = tx.send(());
    }) {
        Ok(mut w) => match w.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch the config directory; falling back to checking the file every {}s.", POLL_INTERVAL.as_secs());
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "No file watcher available; checking the config file every {}s.", POLL_INTERVAL.as_secs());
            None
        }
    };
    let mut last = loaded;
    if last != read(&path) {
        // Changed while the backends were starting: apply it now.
        last = settle(&path, &mut events).await;
        reload(&gateway, &path, &*env).await;
    }
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.tick().await;
    let shutdown = gateway.shutdown_token().clone();
    loop {
        let forced = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = events.recv() => {
                if e.is_none() {
                    // The watcher is gone; keep polling.
                    tokio::select! { _ = shutdown.cancelled() => return, _ = poll.tick() => {} }
                }
                false
            }
            _ = poll.tick() => false,
            _ = recv_hangup(&mut hangup) => {
                tracing::info!("SIGHUP received: reloading the config.");
                true
            }
        };
        if !forced && read(&path) == last {
            continue;
        }
        let content = settle(&path, &mut events).await;
        if !forced && content == last {
            continue;
        }
        last = content;
        reload(&gateway, &path, &*env).await;
    }
}

/// Waits until the file has not changed for [`QUIET_PERIOD`]; returns its content then.
async fn settle(path: &Path, events: &mut mpsc::UnboundedReceiver<()>) -> Option<Vec<u8>> {
    let mut content = read(path);
    loop {
        tokio::time::sleep(QUIET_PERIOD).await;
        let mut saw_event = false;
        while events.try_recv().is_ok() {
            saw_event = true;
        }
        let now = read(path);
        if !saw_event && now == content {
            return now;
        }
        content = now;
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// Loads and validates the file; applies it only if it is valid.
pub async fn reload(gateway: &Gateway, path: &Path, env: &(dyn EnvLookup + Send + Sync)) {
    match config::load_file(path, env) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                tracing::warn!("Config: {w}");
            }
            let overrides = gateway.config().overrides;
            gateway.apply(cfg.with_overrides(overrides)).await;
        }
        Err(e) => gateway.reload_failed(e.problems.iter().map(ToString::to_string).collect()),
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn recv_hangup(h: &mut Hangup) {
    match h {
        Some(sig) => {
            sig.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv_hangup(_h: &mut Hangup) {
    std::future::pending().await
}
