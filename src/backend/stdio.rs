//! The stdio transport: a child process speaking newline-delimited JSON-RPC.
//!
//! The child gets an environment built explicitly (a small inherited set plus the config's
//! `env`), its own process group (so helpers it starts, like `npx`'s node, are stopped with it),
//! and a parent-death signal so it dies with the daemon even if the daemon is killed with
//! SIGKILL. Three tasks serve it: a writer draining the outbox into stdin, a reader parsing
//! stdout lines (bounded in size) into [`Peer::dispatch`], and a stderr reader that logs each
//! line under the backend's name. A fourth waits for the process and, when asked to stop,
//! escalates: close stdin → SIGTERM to the group → SIGKILL to the group, then reaps.

use std::io;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use super::client::{Outbox, Peer};
use crate::config::StdioConfig;
use crate::jsonrpc::Message;

/// Variables a child inherits from the daemon's environment (when set there). Anything else
/// must be given in the entry's `env`.
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TMPDIR",
    "TZ",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
];

/// How long a child has to exit after its stdin closes, and again after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not start '{command}': {source}")]
pub struct SpawnError {
    command: String,
    #[source]
    source: io::Error,
}

/// A running child process. Dropping it does not stop the child; call [`StdioProcess::stop`].
pub struct StdioProcess {
    pid: u32,
    stop: Option<oneshot::Sender<()>>,
    exited: Option<oneshot::Receiver<()>>,
}

impl StdioProcess {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the child (stdin closed, then SIGTERM, then SIGKILL to its group) and waits until it
    /// is reaped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(rx) = self.exited.take() {
            let _ = rx.await;
        }
    }
}

/// Starts the child and wires it to `peer`.
pub fn spawn(
    peer: Arc<Peer>,
    outbox: Outbox,
    cfg: &StdioConfig,
    max_message_bytes: usize,
) -> Result<StdioProcess, SpawnError> {
    let mut cmd = build_command(cfg);
    let mut child = cmd.spawn().map_err(|source| SpawnError { command: cfg.command.clone(), source })?;
    let pid = child.id().unwrap_or(0);
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(SpawnError { command: cfg.command.clone(), source: io::Error::other("child has no stdio pipes") });
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let (exited_tx, exited_rx) = oneshot::channel();
    let (stdin_closed_tx, stdin_closed_rx) = oneshot::channel::<()>();

    tokio::spawn(write_loop(peer.clone(), outbox, stdin, stdin_closed_rx));
    tokio::spawn(read_loop(peer.clone(), stdout, max_message_bytes));
    tokio::spawn(log_stderr(peer.name().to_owned(), stderr));
    tokio::spawn(async move {
        let status = supervise_exit(&mut child, pid, stop_rx, stdin_closed_tx).await;
        peer.close(&status);
        let _ = exited_tx.send(());
    });
    Ok(StdioProcess { pid, stop: Some(stop_tx), exited: Some(exited_rx) })
}

fn build_command(cfg: &StdioConfig) -> Command {
    let mut cmd = Command::new(&cfg.command);
    cmd.args(&cfg.args)
        .env_clear()
        .envs(INHERITED_ENV.iter().filter_map(|k| std::env::var_os(k).map(|v| (*k, v))))
        .envs(&cfg.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &cfg.cwd {
        cmd.current_dir(dir);
    }
    set_parent_death_signal(&mut cmd);
    cmd
}

/// Asks the kernel to SIGKILL the child when the daemon dies, however it dies.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes the prctl system
    // call, which is async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)).map_err(io::Error::from));
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_cmd: &mut Command) {}

/// Waits for the child to exit on its own, or stops it when asked. Returns how it ended.
async fn supervise_exit(
    child: &mut Child,
    pid: u32,
    stop: oneshot::Receiver<()>,
    close_stdin: oneshot::Sender<()>,
) -> String {
    let pgid = Pid::from_raw(pid as i32);
    let status = tokio::select! {
        status = child.wait() => status,
        _ = stop => {
            let _ = close_stdin.send(());
            match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    tracing::debug!(pid, "Child did not exit after its stdin closed; sending SIGTERM.");
                    let _ = killpg(pgid, Signal::SIGTERM);
                    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                        Ok(status) => status,
                        Err(_) => {
                            let _ = killpg(pgid, Signal::SIGKILL);
                            child.wait().await
                        }
                    }
                }
            }
        }
    };
    // Whatever the child started in its group goes with it.
    let _ = killpg(pgid, Signal::SIGKILL);
    match status {
        Ok(s) => format!("process exited ({s})"),
        Err(e) => format!("process wait failed: {e}"),
    }
}

/// Writes queued lines to the child's stdin: each line and its newline go out together, and
/// lines that queued up meanwhile are written in the same flush.
async fn write_loop(peer: Arc<Peer>, mut outbox: Outbox, stdin: ChildStdin, mut stop: oneshot::Receiver<()>) {
    let mut stdin = tokio::io::BufWriter::with_capacity(64 * 1024, stdin);
    loop {
        let line = tokio::select! {
            line = outbox.recv() => line,
            _ = &mut stop => None,
        };
        let Some(line) = line else { break };
        let written = async {
            stdin.write_all(&line).await?;
            stdin.write_all(b"\n").await?;
            for _ in 0..64 {
                let Ok(more) = outbox.try_recv() else { break };
                stdin.write_all(&more).await?;
                stdin.write_all(b"\n").await?;
            }
            stdin.flush().await
        };
        if let Err(e) = written.await {
            tracing::debug!(backend = peer.name(), error = %e, "Writing to the backend's stdin failed.");
            break;
        }
    }
    // Dropping stdin closes it: a well-behaved server exits on EOF.
}

async fn read_loop<R: AsyncRead + Unpin>(peer: Arc<Peer>, stdout: R, max: usize) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        match read_line_limited(&mut reader, &mut line, max).await {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                tracing::error!(
                    backend = peer.name(),
                    limit = max,
                    "Backend sent a message larger than the limit; it was discarded."
                );
            }
            Ok(LineRead::Line) => {
                let text = trim_line(&line);
                if text.is_empty() {
                    continue;
                }
                match Message::parse(text) {
                    Ok(msg) => peer.dispatch(msg),
                    Err(e) => {
                        tracing::warn!(backend = peer.name(), error = %e, "Backend wrote a line to stdout that is not JSON; ignored.")
                    }
                }
            }
            Err(e) => {
                tracing::debug!(backend = peer.name(), error = %e, "Reading the backend's stdout failed.");
                break;
            }
        }
    }
    peer.close("backend closed its stdout");
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line into `buf` (cleared first). A line longer than `max` is consumed up to its
/// end and reported as `TooLong`, so one oversized message cannot exhaust memory.
async fn read_line_limited<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                LineRead::Eof
            } else if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long {
            if buf.len() + used > max + 2 {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long { LineRead::TooLong } else { LineRead::Line });
        }
    }
}

async fn log_stderr<R: AsyncRead + Unpin>(backend: String, stderr: R) {
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                tracing::info!(target: "mcpmux::backend::stderr", backend = %backend, "{line}")
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(backend = %backend, error = %e, "Backend stderr was not valid UTF-8 or failed.");
                break;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limited_reader_splits_lines_and_skips_oversized_ones() {
        let data: &[u8] = b"{\"a\":1}\n0123456789abcdef\n{\"b\":2}\r\ntail";
        let mut r = BufReader::with_capacity(4, data);
        let mut buf = Vec::new();
        assert!(matches!(read_line_limited(&mut r, &mut buf, 10).await.unwrap(), LineRead::Line));
        assert_eq!(trim_line(&buf), b"{\"a\":1}");
        assert!(matches!(read_line_limited(&mut r, &mut buf, 10).await.unwrap(), LineRead::TooLong));
        assert!(matches!(read_line_limited(&mut r, &mut buf, 10).await.unwrap(), LineRead::Line));
        assert_eq!(trim_line(&buf), b"{\"b\":2}");
        assert!(matches!(read_line_limited(&mut r, &mut buf, 10).await.unwrap(), LineRead::Line));
        assert_eq!(trim_line(&buf), b"tail");
        assert!(matches!(read_line_limited(&mut r, &mut buf, 10).await.unwrap(), LineRead::Eof));
    }
}
