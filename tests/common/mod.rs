//! Shared test harness: start mcpmux in-process on 127.0.0.1:0 with real backends, talk to it
//! over real HTTP, and find the peer programs the tests run against.
//!
//! Peers (server-everything, the conformance suite, Node 22, the Python SDKs) are installed by
//! `.ci/run` into `tests/peers/`. A test that needs one and does not find it fails with a message
//! saying how to install it; nothing is skipped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every test's overall bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The mcpmux binary Cargo built for these tests.
pub fn mcpmux_exe() -> &'static str {
    env!("CARGO_BIN_EXE_mcpmux")
}

/// Root of the crate.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `path` is a JSON Schema (`*.schema.json`, like `config/mcpmux.schema.json`) rather
/// than a config file: walks over `config/` skip it.
pub fn is_schema_file(path: &std::path::Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.to_ascii_lowercase().ends_with(".schema.json"))
}

/// Where `.ci/run` installs the peers.
pub fn peers_dir() -> PathBuf {
    root().join("tests").join("peers")
}

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} not found at {}; install the test peers first: (cd tests/peers && npm ci && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt), or run .ci/run",
        path.display()
    );
    path
}

/// Node 22 from the `node` npm package (the system Node may be older).
pub fn node22() -> PathBuf {
    require(peers_dir().join("node_modules/.bin/node"), "Node 22 (npm package node@22)")
}

/// The entry script of an npm package's bin, run with Node 22.
pub fn server_everything() -> (String, Vec<String>) {
    let script = require(
        peers_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
        "@modelcontextprotocol/server-everything",
    );
    (node22().display().to_string(), vec![script.display().to_string()])
}

/// The Python of the test virtualenv (with `mcp` and `fastmcp`).
pub fn python() -> PathBuf {
    require(peers_dir().join(".venv/bin/python"), "the test virtualenv's python (mcp, fastmcp)")
}

/// A Python fixture under tests/fixtures.
pub fn fixture(name: &str) -> String {
    require(root().join("tests/fixtures").join(name), "a test fixture").display().to_string()
}

/// The lookup used to expand test configs: the real environment, with `MCPMUX_EXE` pointing at
/// the built binary (in a test, the running executable is the test harness).
pub fn test_env(name: &str) -> Option<String> {
    if name == "MCPMUX_EXE" {
        return Some(mcpmux_exe().to_owned());
    }
    std::env::var(name).ok()
}

/// Parses a config given as JSON.
pub fn config(doc: Value) -> mcpmux::config::Config {
    let text = doc.to_string();
    match mcpmux::config::parse_str(&text, mcpmux::config::Format::Json, &test_env) {
        Ok(c) => c,
        Err(e) => panic!("test config is invalid: {:?}", e.problems),
    }
}

/// A config entry for a built-in demo server.
pub fn demo(personality: &str) -> Value {
    json!({"command": mcpmux_exe(), "args": ["demo", personality]})
}

/// A daemon running in this process.
pub struct Daemon {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), mcpmux::RunError>>>,
}

impl Daemon {
    /// Starts mcpmux with `doc` and returns once every backend is ready or failed.
    pub async fn start(doc: Value) -> Daemon {
        Self::start_config(config(doc)).await
    }

    pub async fn start_config(cfg: mcpmux::config::Config) -> Daemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(mcpmux::run_with(
            cfg,
            listener,
            async move {
                let _ = stop_rx.await;
            },
            move |_, _| {
                let _ = ready_tx.send(());
            },
        ));
        tokio::time::timeout(TEST_TIMEOUT, ready_rx).await.expect("daemon start timed out").ok();
        Daemon { addr, stop: Some(stop_tx), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the daemon and waits until every backend is stopped and reaped.
    pub async fn stop(mut self) -> Result<(), mcpmux::RunError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(TEST_TIMEOUT, task).await.expect("daemon stop timed out").unwrap()
    }

    /// `GET /status` as JSON.
    pub async fn status(&self) -> Value {
        reqwest::get(self.url("/status")).await.unwrap().json().await.unwrap()
    }

    /// PIDs of the backends' child processes, from `/status`.
    pub async fn backend_pids(&self) -> Vec<u32> {
        let status = self.status().await;
        status["backends"].as_array().unwrap().iter().filter_map(|b| b["pid"].as_u64().map(|p| p as u32)).collect()
    }

    /// A client session on `/mcp`.
    pub async fn client(&self) -> Client {
        Client::connect(&self.url("/mcp")).await
    }
}

/// A unique directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mcpmux-{tag}-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// A minimal streamable-HTTP MCP client over reqwest that shows exactly what came back.
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    next_id: u64,
    pub init_result: Value,
}

/// What a POST returned.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// Every JSON-RPC message in the body (one for JSON, each event for SSE).
    pub messages: Vec<Value>,
}

impl Reply {
    /// The final response message (the one with an id).
    pub fn response(&self) -> &Value {
        self.messages.iter().rev().find(|m| m.get("id").is_some()).expect("no response message in reply")
    }
    pub fn result(&self) -> &Value {
        let r = self.response();
        assert!(r.get("error").is_none(), "expected a result, got {r}");
        &r["result"]
    }
    pub fn error(&self) -> &Value {
        let r = self.response();
        assert!(r.get("error").is_some(), "expected an error, got {r}");
        &r["error"]
    }
}

/// Splits an SSE body into the JSON of each `data:` event.
pub fn parse_sse(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> =
                event.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.trim_start()).collect();
            if data.is_empty() || data.iter().all(|d| d.is_empty()) {
                return None;
            }
            serde_json::from_str(&data.join("\n")).ok()
        })
        .collect()
}

impl Client {
    /// Initializes a session (and sends `notifications/initialized`).
    pub async fn connect(url: &str) -> Client {
        let mut c = Client {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            session: None,
            next_id: 1,
            init_result: Value::Null,
        };
        let reply = c
            .send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "mcpmux-tests", "version": "0"}
            }}))
            .await;
        assert_eq!(reply.status, 200, "initialize failed: {reply:?}");
        c.init_result = reply.result().clone();
        let r = c.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(r.status, 202);
        c
    }

    /// POSTs one message with the session header.
    pub async fn send(&mut self, msg: &Value) -> Reply {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(msg.to_string());
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let resp = tokio::time::timeout(TEST_TIMEOUT, req.send()).await.expect("request timed out").unwrap();
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_owned());
        }
        read_reply(resp).await
    }

    /// Sends a request with a fresh id and returns the reply.
    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        let reply = self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        assert_eq!(reply.status, 200, "{method} failed: {reply:?}");
        assert_eq!(reply.response()["id"], json!(id), "response id must match the request id");
        reply
    }

    /// Calls a tool and returns the result.
    pub async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": arguments})).await.result().clone()
    }

    /// Every item of a paged list.
    pub async fn list_all(&mut self, method: &str, key: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let reply = self.request(method, params).await;
            let result = reply.result();
            items.extend(result[key].as_array().unwrap().iter().cloned());
            match result.get("nextCursor") {
                Some(c) if !c.is_null() => cursor = Some(c.clone()),
                _ => return items,
            }
        }
    }

    /// Names of every listed tool.
    pub async fn tool_names(&mut self) -> Vec<String> {
        self.list_all("tools/list", "tools").await.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    }
}

/// Reads a response body as JSON or SSE.
pub async fn read_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = tokio::time::timeout(TEST_TIMEOUT, resp.text()).await.expect("body timed out").unwrap();
    let messages = if content_type.starts_with("text/event-stream") {
        parse_sse(&body)
    } else if body.trim().is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_str(&body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {body}"))]
    };
    Reply { status, content_type, messages }
}

/// The text of the first text content item of a tool result.
pub fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .and_then(|c| c.iter().find(|i| i["type"] == "text"))
        .and_then(|i| i["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How long an HTTP test peer has to start listening.
pub const PEER_START: Duration = Duration::from_secs(30);

/// A test peer serving HTTP on 127.0.0.1; killed (through its handle) when dropped.
pub struct HttpPeer {
    pub child: tokio::process::Child,
    pub port: u16,
}

impl HttpPeer {
    /// Starts `cmd`, which listens on `port`, and waits until it accepts connections.
    pub async fn spawn(mut cmd: tokio::process::Command, port: u16) -> HttpPeer {
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the test peer");
        wait_listening(port, &mut child).await;
        HttpPeer { child, port }
    }

    /// Starts `cmd`, which picks its own port and prints it on its first line of output.
    pub async fn spawn_announcing(mut cmd: tokio::process::Command) -> HttpPeer {
        use tokio::io::AsyncBufReadExt;
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the test peer");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(PEER_START, lines.next_line()).await.expect("the peer did not print its port");
        let port: u16 = first.unwrap().expect("the peer exited before printing its port").trim().parse().unwrap();
        wait_listening(port, &mut child).await;
        HttpPeer { child, port }
    }

    /// server-everything serving `mode` (`streamableHttp` or `sse`) on `port`.
    pub async fn everything(mode: &str, port: u16) -> HttpPeer {
        let (node, args) = server_everything();
        let mut cmd = tokio::process::Command::new(node);
        cmd.args(args).arg(mode).env("PORT", port.to_string());
        HttpPeer::spawn(cmd, port).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Kills the process (by its pid, through the handle) and reaps it.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Waits until `port` accepts connections; fails if `child` exits first or [`PEER_START`] passes.
pub async fn wait_listening(port: u16, child: &mut tokio::process::Child) {
    let deadline = tokio::time::Instant::now() + PEER_START;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the test peer exited before listening on {port}: {status}");
        }
        assert!(tokio::time::Instant::now() < deadline, "the test peer did not listen on {port} within {PEER_START:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the Python fixture `script` with `args` (bounded by [`TEST_TIMEOUT`]) and returns the
/// one JSON object it printed; fails with its output when it exits non-zero.
pub async fn python_json(script: &str, args: &[&str]) -> Value {
    let out = tokio::time::timeout(
        TEST_TIMEOUT,
        tokio::process::Command::new(python()).arg(fixture(script)).args(args).kill_on_drop(true).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{script} did not finish within {TEST_TIMEOUT:?}"))
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} {args:?} failed:\n{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{script} printed no JSON object ({e}): {stdout}"))
}
