//! Latency and idle-memory bench: what does going through mcpmux cost?
//!
//! Run with `cargo bench --bench latency` (optionally `-- --calls N --warmup N`; a quick check
//! that the bench still works is `cargo bench --bench latency -- --calls 50 --warmup 5`).
//!
//! In one run, on this machine, it measures and prints:
//!
//! 1. **direct pipe**: sequential `tools/call echo` (short text, distinct each call) against
//!    `mcpmux demo clock` spawned as a child, over its stdin/stdout (newline-delimited JSON-RPC,
//!    after `initialize` and `notifications/initialized`).
//! 2. **through mcpmux**: the same calls as `tools/call clock_echo`, on one session, against
//!    mcpmux started in this process (`mcpmux::run_with`, 127.0.0.1:0) with that same
//!    `mcpmux demo clock` command as a stdio backend.
//! 3. calls, p50, p90, p99 and mean in microseconds for both, and p50(mcpmux) − p50(direct).
//! 4. **idle RSS** of a separately spawned `mcpmux serve --config config/mcp.json --listen
//!    127.0.0.1:0` (the real binary, default config): `VmRSS` of the daemon's pid only (its
//!    demo children are not counted), read once it has printed `serving http://…` and served one
//!    `tools/list`; then it is sent SIGTERM and reaped.
//!
//! # Choices
//!
//! - **Which binary.** Cargo builds a package's `[[bin]]` targets whenever it builds one of its
//!   benches (or integration tests), and sets `CARGO_BIN_EXE_mcpmux` to the binary's path at
//!   compile time; `cargo bench` therefore builds `target/release/mcpmux` with the same profile
//!   and the bench finds it with `env!`. No guessing from `current_exe()`, no "build it first"
//!   step. `mcpmux demo clock` has to be a real process in both cases anyway (a pipe to a child
//!   is what is being compared), so both cases spawn that same binary.
//! - **The HTTP client** is a minimal HTTP/1.1 client over one blocking, keep-alive
//!   `std::net::TcpStream` (`TCP_NODELAY`, one `write` per request, `Content-Length` or chunked
//!   bodies), not reqwest: it adds next to nothing, like the direct case's blocking pipe client,
//!   so the difference of the two is mcpmux's (HTTP parsing, session, routing, id remapping, the
//!   extra pipe hop and the extra scheduling), not a client library's.
//! - **What is timed**: from the request's first byte written to the last byte of its answer
//!   read. Building the request text happens before, parsing and checking the answer (id and
//!   echoed text, every call) after.
//! - **Bounded and clean.** Counts are bounded; a stuck direct child is killed by a watchdog
//!   after 10 s without progress, HTTP reads and writes time out after 10 s, the spawned daemon
//!   must be up within 30 s. Every process the bench starts is owned by a guard whose `Drop`
//!   stops and reaps it, so error paths (and panics) clean up too; the in-process daemon is
//!   stopped the same way and stops and reaps its own backend child.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

type BenchResult<T> = Result<T, String>;

const MCPMUX_EXE: &str = env!("CARGO_BIN_EXE_mcpmux");
const PROTOCOL_VERSION: &str = "2025-11-25";
/// Bound on any single read or write, and on a call making no progress.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a daemon starting (backends included) or stopping.
const START_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    calls: usize,
    warmup: usize,
}

fn parse_args() -> BenchResult<Args> {
    let mut args = Args { calls: 2000, warmup: 200 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> BenchResult<usize> {
            it.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--calls" => args.calls = number("--calls")?,
            "--warmup" => args.warmup = number("--warmup")?,
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown argument '{other}'; usage: cargo bench --bench latency -- [--calls N] [--warmup N]"
                ));
            }
        }
    }
    if args.calls == 0 || args.calls > 1_000_000 || args.warmup > 1_000_000 {
        return Err("--calls must be 1..=1000000 and --warmup 0..=1000000".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latency bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> BenchResult<()> {
    let args = parse_args()?;
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "mcpmux latency: sequential tools/call echo, 1 client, loopback; {} calls after {} warm-up; {nproc} CPUs",
        args.calls, args.warmup
    );
    println!("binary: {MCPMUX_EXE}");

    let direct = direct_pipe(&args)?;
    let through = through_mcpmux(&args)?;
    let rss = idle_rss()?;

    println!();
    println!("{:<16} {:>7} {:>9} {:>9} {:>9} {:>9}", "path", "calls", "p50 µs", "p90 µs", "p99 µs", "mean µs");
    for (name, s) in [("direct pipe", &direct), ("through mcpmux", &through)] {
        println!("{:<16} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}", name, s.calls, s.p50, s.p90, s.p99, s.mean);
    }
    println!("p50 overhead (mcpmux - direct): {:.1} µs", through.p50 - direct.p50);
    println!("idle RSS of `mcpmux serve --config config/mcp.json` (daemon pid only): {:.1} MiB", rss as f64 / 1024.0);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Statistics

struct Stats {
    calls: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    mean: f64,
}

fn stats(samples: &mut [Duration]) -> Stats {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    // Nearest-rank percentile.
    let pct = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        us(samples[rank - 1])
    };
    let total: Duration = samples.iter().sum();
    Stats {
        calls: samples.len(),
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        mean: us(total) / samples.len() as f64,
    }
}

fn echo_text(i: usize) -> String {
    format!("bench-{i}")
}

/// Checks a `tools/call echo` answer: the right id, the text echoed.
fn check_echo(msg: &Value, id: u64, text: &str) -> BenchResult<()> {
    if msg.get("id") != Some(&json!(id)) {
        return Err(format!("answer has the wrong id (wanted {id}): {msg}"));
    }
    let got = msg.pointer("/result/content/0/text").and_then(Value::as_str);
    if got != Some(text) {
        return Err(format!("answer does not echo '{text}': {msg}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Direct pipe

/// A spawned child, stopped and reaped on drop: stdin closed (the demo exits on EOF), then
/// SIGTERM, then SIGKILL.
struct ChildGuard {
    child: Child,
    what: &'static str,
}

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the child to exit; `None` if it is still running.
    fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// SIGTERM, then SIGKILL after a grace period; always reaps. Returns the exit status.
    fn terminate(&mut self) -> BenchResult<std::process::ExitStatus> {
        drop(self.child.stdin.take());
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM);
        if let Some(status) = self.wait_for(START_TIMEOUT) {
            return Ok(status);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(format!("{} (pid {}) ignored SIGTERM and was killed", self.what, self.pid()))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.wait_for(Duration::from_secs(2)).is_some() {
            return;
        }
        let _ = self.terminate();
    }
}

/// A JSON-RPC client over a child's stdin/stdout.
struct PipeClient {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl PipeClient {
    fn send(&mut self, text: &str) -> BenchResult<()> {
        // One write per message: the text already ends with '\n'.
        self.stdin.write_all(text.as_bytes()).map_err(|e| format!("writing to the demo's stdin: {e}"))
    }

    fn read_line(&mut self) -> BenchResult<&str> {
        self.line.clear();
        match self.stdout.read_line(&mut self.line) {
            Ok(0) => Err("the demo server closed its stdout".into()),
            Ok(_) => Ok(&self.line),
            Err(e) => Err(format!("reading the demo's stdout: {e}")),
        }
    }

    /// Reads lines until the response with `id` (skipping notifications).
    fn response(&mut self, id: u64) -> BenchResult<Value> {
        loop {
            let msg: Value = serde_json::from_str(self.read_line()?)
                .map_err(|e| format!("demo wrote a line that is not JSON: {e}"))?;
            if msg.get("id") == Some(&json!(id)) {
                return Ok(msg);
            }
            if msg.get("method").is_none() {
                return Err(format!("unexpected message from the demo: {msg}"));
            }
        }
    }
}

fn request_line(id: u64, method: &str, params: Value) -> String {
    let mut s = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    s.push('\n');
    s
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "mcpmux-latency-bench", "version": "0"}
    })
}

fn direct_pipe(args: &Args) -> BenchResult<Stats> {
    let mut child = Command::new(MCPMUX_EXE)
        .args(["demo", "clock"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {MCPMUX_EXE} demo clock: {e}"))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let mut guard = ChildGuard { child, what: "mcpmux demo clock" };
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        return Err("the demo child has no pipes".into());
    };
    let pid = guard.pid();
    let mut client = PipeClient { stdin, stdout: BufReader::new(stdout), line: String::with_capacity(512) };

    // A blocking pipe read has no timeout: a watchdog kills the child when the client makes no
    // progress for IO_TIMEOUT, which ends the read with EOF. Nothing on the timed path.
    let progress = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let stalled = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut last = (0, Instant::now());
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
                let now = progress.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > IO_TIMEOUT {
                    stalled.store(true, Ordering::Release);
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    return;
                }
            }
        });
        let r = direct_calls(&mut client, args, &progress);
        done.store(true, Ordering::Release);
        r
    });
    if stalled.load(Ordering::Acquire) {
        return Err(format!("the demo server made no progress for {IO_TIMEOUT:?} and was killed"));
    }
    let samples = result?;
    drop(client);
    guard.wait_for(Duration::from_secs(5)).ok_or("the demo server did not exit when its stdin closed")?;
    let mut samples = samples;
    Ok(stats(&mut samples))
}

fn direct_calls(client: &mut PipeClient, args: &Args, progress: &AtomicU64) -> BenchResult<Vec<Duration>> {
    client.send(&request_line(0, "initialize", initialize_params()))?;
    let init = client.response(0)?;
    if init.get("result").is_none() {
        return Err(format!("initialize failed: {init}"));
    }
    client.send("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")?;

    let mut samples = Vec::with_capacity(args.calls);
    for i in 0..args.warmup + args.calls {
        let id = 1 + i as u64;
        let text = echo_text(i);
        let line = request_line(id, "tools/call", json!({"name": "echo", "arguments": {"text": text}}));
        let start = Instant::now();
        client.send(&line)?;
        client.read_line()?;
        let elapsed = start.elapsed();
        progress.fetch_add(1, Ordering::Relaxed);
        let msg: Value =
            serde_json::from_str(&client.line).map_err(|e| format!("demo wrote a line that is not JSON: {e}"))?;
        check_echo(&msg, id, &text)?;
        if i >= args.warmup {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

// ---------------------------------------------------------------------------------------------
// 2. Through mcpmux (in this process)

/// mcpmux running on its own runtime in this process; stopped (backends stopped and reaped) on
/// drop.
struct InProcessDaemon {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), mcpmux::RunError>>>,
}

impl InProcessDaemon {
    fn start(config: mcpmux::config::Config) -> BenchResult<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build a runtime: {e}"))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| format!("cannot listen on 127.0.0.1:0: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let task = runtime.spawn(mcpmux::run_with(
            config,
            listener,
            async move {
                let _ = stop_rx.await;
            },
            move |_, _| {
                let _ = ready_tx.send(());
            },
        ));
        let mut daemon = InProcessDaemon { runtime, addr, stop: Some(stop_tx), task: Some(task) };
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            let stopped = daemon.shutdown();
            return Err(format!("mcpmux did not become ready within {START_TIMEOUT:?} ({stopped:?})"));
        }
        Ok(daemon)
    }

    /// Stops the daemon and waits for it (and its backends) to finish.
    fn shutdown(&mut self) -> BenchResult<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match self.runtime.block_on(async { tokio::time::timeout(START_TIMEOUT, task).await }) {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("mcpmux stopped with an error: {e}")),
            Ok(Err(e)) => Err(format!("the mcpmux task failed: {e}")),
            Err(_) => Err("mcpmux did not stop in time".into()),
        }
    }
}

impl Drop for InProcessDaemon {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn through_mcpmux(args: &Args) -> BenchResult<Stats> {
    let doc = json!({
        "mcpServers": {"clock": {"command": MCPMUX_EXE, "args": ["demo", "clock"]}}
    });
    let env = |name: &str| (name == "MCPMUX_EXE").then(|| MCPMUX_EXE.to_owned());
    let config = mcpmux::config::parse_str(&doc.to_string(), mcpmux::config::Format::Json, &env)
        .map_err(|e| format!("bench config is invalid: {:?}", e.problems))?;
    let mut daemon = InProcessDaemon::start(config)?;
    let samples = {
        let mut client = HttpClient::connect(daemon.addr)?;
        client.initialize()?;
        let mut samples = Vec::with_capacity(args.calls);
        for i in 0..args.warmup + args.calls {
            let id = 1 + i as u64;
            let text = echo_text(i);
            let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "clock_echo", "arguments": {"text": text}}})
            .to_string();
            let (elapsed, reply) = client.post(&body)?;
            if reply.status != 200 {
                return Err(format!("tools/call answered {}: {}", reply.status, reply.text()));
            }
            check_echo(&reply.message()?, id, &text)?;
            if i >= args.warmup {
                samples.push(elapsed);
            }
        }
        samples
    };
    daemon.shutdown()?;
    let mut samples = samples;
    Ok(stats(&mut samples))
}

/// A minimal HTTP/1.1 client for one MCP session over one keep-alive connection.
struct HttpClient {
    host: String,
    write: TcpStream,
    read: BufReader<TcpStream>,
    session: Option<String>,
    request: Vec<u8>,
}

struct HttpReply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl HttpReply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON-RPC response in the body: the JSON itself, or the last SSE event with an id.
    fn message(&self) -> BenchResult<Value> {
        let ct = self.headers.get("content-type").map_or("", String::as_str);
        if ct.starts_with("text/event-stream") {
            let text = self.text();
            text.split("\n\n")
                .filter_map(|event| {
                    let data: Vec<&str> =
                        event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                    serde_json::from_str::<Value>(&data.join("\n")).ok()
                })
                .filter(|m| m.get("id").is_some())
                .last()
                .ok_or_else(|| format!("no response in the event stream: {text}"))
        } else {
            serde_json::from_slice(&self.body).map_err(|e| format!("body is not JSON ({e}): {}", self.text()))
        }
    }
}

impl HttpClient {
    fn connect(addr: SocketAddr) -> BenchResult<Self> {
        let stream =
            TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let setup = |s: &TcpStream| -> std::io::Result<()> {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))
        };
        setup(&stream).map_err(|e| e.to_string())?;
        let read = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(HttpClient {
            host: addr.to_string(),
            write: stream,
            read: BufReader::with_capacity(64 * 1024, read),
            session: None,
            request: Vec::with_capacity(1024),
        })
    }

    /// `initialize` (keeps the session id) and `notifications/initialized`.
    fn initialize(&mut self) -> BenchResult<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": initialize_params()})
        .to_string();
        let (_, reply) = self.post(&body)?;
        if reply.status != 200 {
            return Err(format!("initialize answered {}: {}", reply.status, reply.text()));
        }
        let session = reply.headers.get("mcp-session-id").ok_or("initialize answer has no Mcp-Session-Id")?;
        self.session = Some(session.clone());
        let init = reply.message()?;
        let (_, r) = self.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        if r.status != 202 {
            return Err(format!("notifications/initialized answered {}", r.status));
        }
        Ok(init)
    }

    /// POSTs `body` to `/mcp`; returns the time from the first byte written to the last byte
    /// read, and the reply.
    fn post(&mut self, body: &str) -> BenchResult<(Duration, HttpReply)> {
        self.request.clear();
        let r = &mut self.request;
        let _ = write!(
            r,
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {PROTOCOL_VERSION}\r\n",
            self.host
        );
        if let Some(s) = &self.session {
            let _ = write!(r, "Mcp-Session-Id: {s}\r\n");
        }
        let _ = write!(r, "Content-Length: {}\r\n\r\n{body}", body.len());
        let start = Instant::now();
        self.write.write_all(&self.request).map_err(|e| format!("sending the request: {e}"))?;
        let reply = self.read_reply()?;
        Ok((start.elapsed(), reply))
    }

    fn read_reply(&mut self) -> BenchResult<HttpReply> {
        let mut line = String::new();
        let mut next_line = |read: &mut BufReader<TcpStream>| -> BenchResult<String> {
            line.clear();
            match read.read_line(&mut line) {
                Ok(0) => Err("mcpmux closed the connection".to_owned()),
                Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_owned()),
                Err(e) => Err(format!("reading the reply: {e}")),
            }
        };
        let status_line = next_line(&mut self.read)?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line '{status_line}'"))?;
        let mut headers = HashMap::new();
        loop {
            let h = next_line(&mut self.read)?;
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        if headers.get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            return Err("mcpmux closed the keep-alive connection".into());
        }
        let mut body = Vec::new();
        if headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let size_line = next_line(&mut self.read)?;
                let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| format!("bad chunk size '{size_line}'"))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    while !next_line(&mut self.read)?.is_empty() {}
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.read.read_exact(&mut body[start..]).map_err(|e| format!("reading a chunk: {e}"))?;
                next_line(&mut self.read)?;
            }
        } else {
            let len = match headers.get("content-length") {
                Some(v) => v.parse::<usize>().map_err(|_| format!("bad Content-Length '{v}'"))?,
                None => 0,
            };
            body.resize(len, 0);
            self.read.read_exact(&mut body).map_err(|e| format!("reading the body: {e}"))?;
        }
        Ok(HttpReply { status, headers, body })
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Idle RSS of the real daemon

/// VmRSS of `pid` in KiB.
fn vm_rss_kib(pid: u32) -> BenchResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn idle_rss() -> BenchResult<u64> {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/mcp.json");
    let mut child = Command::new(MCPMUX_EXE)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .env("MCPMUX_EXE", MCPMUX_EXE)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {MCPMUX_EXE} serve: {e}"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut guard = ChildGuard { child, what: "mcpmux serve" };
    let pid = guard.pid();

    // Readers drain both pipes on their own threads (they end when the daemon exits).
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let log = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    if let Some(out) = stdout {
        readers.push(std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines_tx.send(l);
            }
        }));
    }
    if let Some(err) = stderr {
        let log = log.clone();
        readers.push(std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&l);
                log.push('\n');
            }
        }));
    }
    let with_log = |e: String| {
        let log = log.lock().unwrap_or_else(|e| e.into_inner());
        format!("{e}; daemon stderr:\n{log}")
    };

    let measured = (|| -> BenchResult<u64> {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(l) => {
                    if let Some(url) = l.strip_prefix("serving ") {
                        break url.to_owned();
                    }
                }
                Err(_) => return Err("mcpmux serve did not print its 'serving' line".into()),
            }
        };
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .and_then(|u| u.strip_suffix("/mcp"))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("cannot read the address in 'serving {url}'"))?;
        let mut client = HttpClient::connect(addr)?;
        client.initialize()?;
        let (_, reply) = client.post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#)?;
        let tools = reply.message()?.pointer("/result/tools").and_then(Value::as_array).map_or(0, Vec::len);
        if reply.status != 200 || tools == 0 {
            return Err(format!("tools/list failed: {} {}", reply.status, reply.text()));
        }
        drop(client);
        vm_rss_kib(pid)
    })()
    .map_err(with_log);

    // SIGTERM by pid, then reap (the guard kills it if it does not stop).
    let stopped = guard.terminate();
    drop(guard);
    for r in readers {
        let _ = r.join();
    }
    let rss = measured?;
    let status = stopped.map_err(with_log)?;
    if status.signal() == Some(Signal::SIGTERM as i32) {
        // The measurement stands. Most likely the daemon had no SIGTERM handler yet: `mcpmux
        // serve` installs it when the server first polls its shutdown future, which on a busy
        // machine can come after `serving` was printed. Worth knowing, not failing the bench for.
        eprintln!("warning: mcpmux serve was killed by SIGTERM instead of shutting down gracefully");
    } else if !status.success() {
        return Err(with_log(format!("mcpmux serve exited with {status} after SIGTERM")));
    }
    Ok(rss)
}
