//! What a [`Connection`](super::Connection) stops when it ends: a child process (stdio) or a
//! remote transport's tasks (streamable HTTP, legacy HTTP+SSE), and which of them it is.

use std::sync::Mutex;

use super::remote::RemoteHandle;
use super::stdio::StdioProcess;

/// The transport side of one connection.
pub struct TransportHandle {
    inner: Mutex<Option<Inner>>,
    /// Kept apart from `inner` so the name is still known after `stop`.
    kind: Kind,
}

enum Inner {
    Stdio(StdioProcess),
    Remote(RemoteHandle),
}

enum Kind {
    Stdio,
    Remote(super::remote::Chosen),
}

impl TransportHandle {
    pub fn stdio(process: StdioProcess) -> Self {
        TransportHandle { inner: Mutex::new(Some(Inner::Stdio(process))), kind: Kind::Stdio }
    }

    pub fn remote(handle: RemoteHandle) -> Self {
        let chosen = handle.chosen();
        TransportHandle { inner: Mutex::new(Some(Inner::Remote(handle))), kind: Kind::Remote(chosen) }
    }

    /// `"stdio"`, `"streamable-http"` or `"sse"` (for a remote backend whose transport is still
    /// being inferred: `"http"`).
    pub fn kind(&self) -> &'static str {
        match &self.kind {
            Kind::Stdio => "stdio",
            Kind::Remote(chosen) => chosen.get(),
        }
    }

    /// Stops the child (and reaps it) or the remote transport (ending the remote session).
    /// Later calls do nothing.
    pub async fn stop(&self) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        match inner {
            Some(Inner::Stdio(p)) => p.stop().await,
            Some(Inner::Remote(r)) => r.stop().await,
            None => {}
        }
    }
}
