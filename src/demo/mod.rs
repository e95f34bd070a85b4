//! A small MCP server built into the mcpmux binary (`mcpmux demo <personality>`), so the default
//! config serves working backends on a machine with no network, and the test suites have a
//! backend that needs nothing installed.
//!
//! The protocol is implemented by hand on `serde_json::Value`s. [`DemoServer`] is the
//! transport-independent core: one per connection, fed one parsed JSON-RPC message at a time by
//! [`DemoServer::handle`], which sends everything it answers (notifications first, then the
//! response) on an unbounded channel. [`serve_io`] runs it over any newline-delimited byte
//! stream and [`run_stdio`] over stdin/stdout.
//!
//! Personalities ([`PERSONALITIES`]):
//! - `notes`: an in-memory note store — tools `add_note`, `list_notes`, `search_notes`,
//!   `delete_note`; each note is a resource `note://notes/<url-encoded title>` (template
//!   `note://notes/{title}`); prompt `summarize_note`; title completion; sends
//!   `notifications/resources/list_changed` after add/delete.
//! - `clock`: tools `now`, `add`, `echo`, `sleep` (progress, cancellation), `fail` (a -32603
//!   error); resources `clock://uptime` and template `clock://timezones/{offset}`; prompt
//!   `plan_day`.
//! - `conformance`: the fixed names the official MCP conformance suite's server scenarios ask
//!   for (tools `test_simple_text`, `test_sampling`, `test_elicitation`, ...; resources
//!   `test://static-text`, ...; prompts `test_simple_prompt`, ...), including tools that send
//!   requests to the client (`sampling/createMessage`, `elicitation/create`) and wait for the
//!   answer, and resource subscriptions.
//!
//! Requests to the client: a handler calls `Ctx::request_client`, which sends a request with
//! a fresh id of the server's own and waits (bounded) until the client's response to that id is
//! fed back through [`DemoServer::handle`] (or the stdio loop). Tools that wait like this run on
//! their own task in [`serve_io`], so the loop keeps reading and can deliver the response.

mod clock;
mod conformance;
mod notes;
mod util;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use util::{
    INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, RpcError, RpcResult, notification, paginate, success_response,
    type_name,
};

/// The demo personalities `mcpmux demo <personality>` accepts.
pub const PERSONALITIES: &[&str] = &["notes", "clock", "conformance"];

/// Protocol versions the demo server speaks; the last is offered when the client asks for
/// another.
pub const PROTOCOL_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";

/// How long a request to the client (sampling, elicitation) waits for the client's response.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the demo server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("unknown demo personality '{0}' (known: notes, clock, conformance)")]
    UnknownPersonality(String),
    #[error("demo server I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Runs the demo server named `personality` on stdin/stdout until stdin closes.
///
/// Prints one line to stderr once ready. Requests still running when stdin closes (a `sleep`)
/// are dropped without an answer.
pub async fn run_stdio(personality: &str) -> Result<(), DemoError> {
    let server = DemoServer::new(personality)?;
    eprintln!("mcpmux demo server '{}' ready", server.personality());
    serve_io(server, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves `server` over newline-delimited JSON-RPC: one message per line on `input`, one compact
/// JSON message plus `\n` per answer on `output` (flushed after each). Empty lines are skipped,
/// a line that is not JSON is answered with -32700 and id null. Slow requests run concurrently
/// (a `sleep` does not hold up an `echo` sent after it); the others are answered in order.
/// Returns `Ok` at end of input, after dropping the requests still running.
pub async fn serve_io<R, W>(server: DemoServer, input: R, mut output: W) -> Result<(), DemoError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let mut writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let mut line = serde_json::to_string(&msg).map_err(io::Error::from)?;
            line.push('\n');
            output.write_all(line.as_bytes()).await?;
            output.flush().await?;
        }
        Ok::<(), io::Error>(())
    });

    let mut reader = BufReader::new(input);
    let mut buf = Vec::new();
    let mut running = JoinSet::new();
    let read_result = loop {
        tokio::select! {
            // `read_until` is cancel-safe: partial bytes stay in `buf` for the next call.
            read = reader.read_until(b'\n', &mut buf) => match read {
                Err(e) => break Err(e),
                Ok(0) => break Ok(()),
                Ok(_) => {
                    if let Some(job) = accept_line(&server, &buf, &tx) {
                        if job.is_slow() {
                            let tx = tx.clone();
                            running.spawn(async move { job.run(&tx).await });
                        } else {
                            job.run(&tx).await;
                        }
                    }
                    buf.clear();
                }
            },
            // The writer only stops early when the output failed: nothing more can be answered.
            written = &mut writer => {
                running.abort_all();
                let error = writer_outcome(written).err();
                return Err(error.unwrap_or_else(|| io::ErrorKind::BrokenPipe.into()).into());
            }
        }
        while running.try_join_next().is_some() {}
    };

    running.abort_all();
    while running.join_next().await.is_some() {}
    drop(tx);
    let written = writer_outcome(writer.await);
    read_result?;
    written?;
    Ok(())
}

fn writer_outcome(joined: Result<io::Result<()>, tokio::task::JoinError>) -> io::Result<()> {
    joined.map_err(io::Error::other)?
}

/// Parses one input line; answers parse errors itself. `None` when nothing is left to run.
fn accept_line(server: &DemoServer, line: &[u8], out: &mpsc::UnboundedSender<Value>) -> Option<Job> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(msg) => server.accept(msg, out),
        Err(e) => {
            let _ = out.send(RpcError::new(PARSE_ERROR, format!("Parse error: {e}")).into_response(Value::Null));
            None
        }
    }
}

/// The demo MCP server for one connection. Cheap to clone; clones share the connection's state
/// (notes, requests in flight, log level), which is how concurrent requests are served.
#[derive(Debug, Clone)]
pub struct DemoServer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    personality: Personality,
    /// Requests being handled, by the compact JSON of their id, so `notifications/cancelled`
    /// can reach them.
    in_flight: Mutex<HashMap<String, InFlight>>,
    next_generation: AtomicU64,
    /// Set by `logging/setLevel`; no log notifications are sent before the client asks.
    log_level: Mutex<Option<LogLevel>>,
    /// The `capabilities` the client sent in `initialize` (null before).
    client_capabilities: Mutex<Value>,
    /// Requests this server sent to the client and still waits for, by the compact JSON of
    /// their id.
    outgoing: Mutex<HashMap<String, oneshot::Sender<ClientResponse>>>,
    next_outgoing_id: AtomicU64,
    /// Bound on waiting for the client's response to one of them.
    client_request_timeout: Duration,
}

/// The client's answer to a request of ours: its `result`, or its `error` object.
type ClientResponse = Result<Value, Value>;

#[derive(Debug)]
struct InFlight {
    generation: u64,
    cancel: watch::Sender<bool>,
}

#[derive(Debug)]
enum Personality {
    Notes(notes::Notes),
    Clock(clock::Clock),
    Conformance(conformance::Conformance),
}

/// Locks ignoring poisoning: every critical section leaves its data consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DemoServer {
    /// A fresh server (fresh state) for one connection; `personality` is one of
    /// [`PERSONALITIES`].
    pub fn new(personality: &str) -> Result<Self, DemoError> {
        Self::with_client_request_timeout(personality, CLIENT_REQUEST_TIMEOUT)
    }

    /// [`new`](Self::new), waiting at most `timeout` for the client's response to a request of
    /// the server's.
    fn with_client_request_timeout(personality: &str, timeout: Duration) -> Result<Self, DemoError> {
        let personality = match personality {
            "notes" => Personality::Notes(notes::Notes::new()),
            "clock" => Personality::Clock(clock::Clock::new()),
            "conformance" => Personality::Conformance(conformance::Conformance::new()),
            other => return Err(DemoError::UnknownPersonality(other.to_owned())),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                personality,
                in_flight: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(0),
                log_level: Mutex::new(None),
                client_capabilities: Mutex::new(Value::Null),
                outgoing: Mutex::new(HashMap::new()),
                next_outgoing_id: AtomicU64::new(1),
                client_request_timeout: timeout,
            }),
        })
    }

    /// The personality's name.
    pub fn personality(&self) -> &'static str {
        match self.shared.personality {
            Personality::Notes(_) => "notes",
            Personality::Clock(_) => "clock",
            Personality::Conformance(_) => "conformance",
        }
    }

    /// Handles one incoming JSON-RPC message (request, notification or client response, already
    /// parsed) and sends every outgoing message on `out`: notifications and requests to the
    /// client first (progress, list_changed, log, sampling), then the response. Notifications
    /// and client responses get no reply (a client response completes the request of ours it
    /// answers); a request cancelled with `notifications/cancelled` while running gets none
    /// either. Returns once the request is finished. To serve requests concurrently, call
    /// `handle` on clones of this server; a request that waits for the client's response needs
    /// that response handled on another clone while it waits.
    pub async fn handle(&mut self, msg: Value, out: &mpsc::UnboundedSender<Value>) {
        if let Some(job) = self.accept(msg, out) {
            job.run(out).await;
        }
    }

    /// The synchronous first half of [`handle`](Self::handle): validates the envelope, answers
    /// what is wrong with it, handles notifications, and registers a request as in flight (so
    /// a cancellation read right after it finds it) before returning it to be run.
    fn accept(&self, msg: Value, out: &mpsc::UnboundedSender<Value>) -> Option<Job> {
        let reject = |id: Value, message: &str| {
            let _ = out.send(RpcError::new(INVALID_REQUEST, format!("Invalid Request: {message}")).into_response(id));
        };
        let mut obj = match msg {
            Value::Object(obj) => obj,
            Value::Array(_) => {
                reject(Value::Null, "JSON-RPC batches are not supported");
                return None;
            }
            other => {
                reject(Value::Null, &format!("expected a JSON object, got {}", type_name(&other)));
                return None;
            }
        };
        let id = obj.remove("id");
        let valid_id = id.clone().filter(|id| id.is_string() || id.is_number());
        let method = match obj.remove("method") {
            Some(Value::String(method)) => method,
            Some(other) => {
                reject(
                    valid_id.unwrap_or(Value::Null),
                    &format!("\"method\" must be a string, got {}", type_name(&other)),
                );
                return None;
            }
            // A response to a request of ours; one we are not waiting for is dropped.
            None if obj.contains_key("result") || obj.contains_key("error") => {
                self.client_response(id, obj);
                return None;
            }
            None => {
                reject(valid_id.unwrap_or(Value::Null), "no \"method\"");
                return None;
            }
        };
        let params = match obj.remove("params") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(params)) => Ok(params),
            Some(other) => Err(format!("params must be an object, got {}", type_name(&other))),
        };
        let Some(id) = id else {
            // A notification: never answered, even when malformed.
            if let Ok(params) = params {
                self.notification(&method, &params);
            }
            return None;
        };
        let Some(id) = valid_id else {
            reject(Value::Null, &format!("id must be a string or a number, got {}", type_name(&id)));
            return None;
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            reject(id, "\"jsonrpc\" must be \"2.0\"");
            return None;
        }
        let params = match params {
            Ok(params) => params,
            Err(message) => {
                let _ = out.send(RpcError::invalid_params(format!("Invalid params: {message}")).into_response(id));
                return None;
            }
        };

        let key = id.to_string();
        let generation = self.shared.next_generation.fetch_add(1, Ordering::Relaxed);
        let (cancel_tx, cancel_rx) = watch::channel(false);
        // A second request reusing a running request's id takes over its cancellation slot.
        lock(&self.shared.in_flight).insert(key.clone(), InFlight { generation, cancel: cancel_tx });
        Some(Job {
            registration: Registration { shared: Arc::clone(&self.shared), key, generation },
            server: self.clone(),
            id,
            method,
            params,
            cancel: cancel_rx,
        })
    }

    /// Completes the request of ours that a client response answers, if one is waiting.
    fn client_response(&self, id: Option<Value>, mut obj: Map<String, Value>) {
        let Some(id) = id else { return };
        let Some(waiting) = lock(&self.shared.outgoing).remove(&id.to_string()) else { return };
        let response = match obj.remove("error") {
            Some(error) => Err(error),
            None => Ok(obj.remove("result").unwrap_or(Value::Null)),
        };
        let _ = waiting.send(response);
    }

    fn notification(&self, method: &str, params: &Map<String, Value>) {
        if method == "notifications/cancelled"
            && let Some(id) = params.get("requestId")
            && let Some(entry) = lock(&self.shared.in_flight).get(&id.to_string())
        {
            entry.cancel.send_replace(true);
        }
        // `notifications/initialized`, progress, roots/list_changed, ...: nothing to do.
    }

    async fn dispatch(&self, method: &str, params: &Map<String, Value>, ctx: &mut Ctx<'_>) -> RpcResult {
        let personality = &self.shared.personality;
        match method {
            "initialize" => Ok(self.initialize(params)),
            "ping" => Ok(json!({})),
            "logging/setLevel" => {
                let level = util::required_str(params, "level", "logging/setLevel")?;
                let level = LogLevel::parse(level).ok_or_else(|| {
                    RpcError::invalid_params(format!(
                        "Invalid params for logging/setLevel: unknown level '{level}' (expected one of {})",
                        LogLevel::ALL.map(LogLevel::as_str).join(", ")
                    ))
                })?;
                *lock(&self.shared.log_level) = Some(level);
                Ok(json!({}))
            }
            "tools/list" => paginate(personality.tools(), params, "tools"),
            "tools/call" => {
                let name = util::required_str(params, "name", "tools/call")?;
                let empty = Map::new();
                let args = match params.get("arguments") {
                    None | Some(Value::Null) => &empty,
                    Some(Value::Object(args)) => args,
                    Some(other) => {
                        return Err(RpcError::invalid_params(format!(
                            "Invalid params for tools/call: arguments must be an object, got {}",
                            type_name(other)
                        )));
                    }
                };
                match personality {
                    Personality::Notes(notes) => notes.call_tool(ctx, name, args),
                    Personality::Clock(clock) => clock.call_tool(ctx, name, args).await,
                    Personality::Conformance(conformance) => conformance.call_tool(ctx, name, args).await,
                }
            }
            "resources/list" => paginate(personality.resources(), params, "resources"),
            "resources/templates/list" => paginate(personality.resource_templates(), params, "resourceTemplates"),
            "resources/read" => {
                let uri = util::required_str(params, "uri", "resources/read")?;
                match personality {
                    Personality::Notes(notes) => notes.read_resource(uri),
                    Personality::Clock(clock) => clock.read_resource(uri),
                    Personality::Conformance(conformance) => conformance.read_resource(uri),
                }
            }
            "resources/subscribe" | "resources/unsubscribe" => match personality {
                Personality::Conformance(conformance) => {
                    let uri = util::required_str(params, "uri", method)?;
                    conformance.subscribe(uri, method == "resources/subscribe")
                }
                Personality::Notes(_) | Personality::Clock(_) => {
                    Err(RpcError::new(METHOD_NOT_FOUND, format!("Method not found: '{method}'")))
                }
            },
            "prompts/list" => paginate(personality.prompts(), params, "prompts"),
            "prompts/get" => {
                let name = util::required_str(params, "name", "prompts/get")?;
                let args = prompt_arguments(params)?;
                match personality {
                    Personality::Notes(notes) => notes.get_prompt(name, &args),
                    Personality::Clock(clock) => clock.get_prompt(name, &args),
                    Personality::Conformance(_) => conformance::get_prompt(name, &args),
                }
            }
            "completion/complete" => {
                let (reference, argument, value) = completion_request(params)?;
                match personality {
                    Personality::Notes(notes) => notes.complete(&reference, argument, value),
                    Personality::Clock(clock) => clock.complete(&reference, argument, value),
                    Personality::Conformance(_) => conformance::complete(&reference, argument, value),
                }
            }
            other => Err(RpcError::new(METHOD_NOT_FOUND, format!("Method not found: '{other}'"))),
        }
    }

    fn initialize(&self, params: &Map<String, Value>) -> Value {
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let version = requested.filter(|v| PROTOCOL_VERSIONS.contains(v)).unwrap_or(LATEST_PROTOCOL_VERSION);
        let capabilities = params.get("capabilities").cloned().unwrap_or_else(|| json!({}));
        *lock(&self.shared.client_capabilities) = capabilities;
        let personality = &self.shared.personality;
        let name = self.personality();
        json!({
            "protocolVersion": version,
            "capabilities": personality.capabilities(),
            "serverInfo": {
                "name": format!("mcpmux-demo-{name}"),
                "title": format!("mcpmux demo: {name}"),
                "version": env!("CARGO_PKG_VERSION"),
            },
            "instructions": personality.instructions(),
        })
    }
}

impl Personality {
    fn capabilities(&self) -> Value {
        let resources_list_changed = matches!(self, Personality::Notes(_));
        let resources_subscribe = matches!(self, Personality::Conformance(_));
        json!({
            "tools": { "listChanged": false },
            "resources": { "subscribe": resources_subscribe, "listChanged": resources_list_changed },
            "prompts": { "listChanged": false },
            "completions": {},
            "logging": {},
        })
    }

    fn instructions(&self) -> &'static str {
        match self {
            Personality::Notes(_) => notes::INSTRUCTIONS,
            Personality::Clock(_) => clock::INSTRUCTIONS,
            Personality::Conformance(_) => conformance::INSTRUCTIONS,
        }
    }

    fn tools(&self) -> Vec<Value> {
        match self {
            Personality::Notes(_) => notes::tools(),
            Personality::Clock(_) => clock::tools(),
            Personality::Conformance(_) => conformance::tools(),
        }
    }

    fn resources(&self) -> Vec<Value> {
        match self {
            Personality::Notes(notes) => notes.resources(),
            Personality::Clock(_) => clock::resources(),
            Personality::Conformance(_) => conformance::resources(),
        }
    }

    fn resource_templates(&self) -> Vec<Value> {
        match self {
            Personality::Notes(_) => notes::resource_templates(),
            Personality::Clock(_) => clock::resource_templates(),
            Personality::Conformance(_) => conformance::resource_templates(),
        }
    }

    fn prompts(&self) -> Vec<Value> {
        match self {
            Personality::Notes(_) => notes::prompts(),
            Personality::Clock(_) => clock::prompts(),
            Personality::Conformance(_) => conformance::prompts(),
        }
    }

    /// Whether `tools/call` of `tool` may wait, so the stdio loop runs it on its own task.
    fn is_slow_tool(&self, tool: &str) -> bool {
        match self {
            Personality::Notes(_) => false,
            Personality::Clock(_) => clock::is_slow_tool(tool),
            Personality::Conformance(_) => conformance::is_slow_tool(tool),
        }
    }
}

/// `prompts/get` arguments: an optional object of string values.
fn prompt_arguments(params: &Map<String, Value>) -> Result<HashMap<String, String>, RpcError> {
    match params.get("arguments") {
        None | Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Object(args)) => args
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(RpcError::invalid_params(format!(
                    "Invalid params for prompts/get: argument '{k}' must be a string, got {}",
                    type_name(other)
                ))),
            })
            .collect(),
        Some(other) => Err(RpcError::invalid_params(format!(
            "Invalid params for prompts/get: arguments must be an object, got {}",
            type_name(other)
        ))),
    }
}

/// What a `completion/complete` request asks about.
#[derive(Debug)]
enum CompletionRef<'a> {
    Prompt(&'a str),
    Resource(&'a str),
}

fn completion_request(params: &Map<String, Value>) -> Result<(CompletionRef<'_>, &str, &str), RpcError> {
    const WHAT: &str = "completion/complete";
    let Some(Value::Object(reference)) = params.get("ref") else {
        return Err(RpcError::invalid_params("Invalid params for completion/complete: missing object 'ref'"));
    };
    let reference = match util::required_str(reference, "type", "completion/complete ref")? {
        "ref/prompt" => CompletionRef::Prompt(util::required_str(reference, "name", "completion/complete ref/prompt")?),
        "ref/resource" => {
            CompletionRef::Resource(util::required_str(reference, "uri", "completion/complete ref/resource")?)
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "Invalid params for {WHAT}: unknown ref type '{other}' (expected 'ref/prompt' or 'ref/resource')"
            )));
        }
    };
    let Some(Value::Object(argument)) = params.get("argument") else {
        return Err(RpcError::invalid_params("Invalid params for completion/complete: missing object 'argument'"));
    };
    let name = util::required_str(argument, "name", "completion/complete argument")?;
    let value = util::required_str(argument, "value", "completion/complete argument")?;
    Ok((reference, name, value))
}

/// MCP log levels, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// A request accepted by [`DemoServer::accept`], registered as in flight, not yet run.
struct Job {
    server: DemoServer,
    id: Value,
    method: String,
    params: Map<String, Value>,
    cancel: watch::Receiver<bool>,
    registration: Registration,
}

impl Job {
    fn is_slow(&self) -> bool {
        self.method == "tools/call"
            && self
                .params
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|tool| self.server.shared.personality.is_slow_tool(tool))
    }

    async fn run(self, out: &mpsc::UnboundedSender<Value>) {
        let Job { server, id, method, params, cancel, registration } = self;
        let progress_token = params
            .get("_meta")
            .and_then(|meta| meta.get("progressToken"))
            .filter(|token| token.is_string() || token.is_number())
            .cloned();
        let mut ctx = Ctx { out, cancel, progress_token, shared: &server.shared };
        let result = server.dispatch(&method, &params, &mut ctx).await;
        let cancelled = *ctx.cancel.borrow();
        drop(registration);
        if cancelled {
            return; // A cancelled request gets no response.
        }
        let response = match result {
            Ok(result) => success_response(id, result),
            Err(error) => error.into_response(id),
        };
        let _ = out.send(response);
    }
}

/// Removes a request from the in-flight table when it finishes or is dropped (aborted).
struct Registration {
    shared: Arc<Shared>,
    key: String,
    generation: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.shared.in_flight);
        if in_flight.get(&self.key).is_some_and(|entry| entry.generation == self.generation) {
            in_flight.remove(&self.key);
        }
    }
}

/// What a method handler can do besides returning its result.
struct Ctx<'a> {
    out: &'a mpsc::UnboundedSender<Value>,
    cancel: watch::Receiver<bool>,
    progress_token: Option<Value>,
    shared: &'a Shared,
}

impl Ctx<'_> {
    /// Sends a notification ahead of the response.
    fn notify(&self, method: &str, params: Value) {
        let _ = self.out.send(notification(method, params));
    }

    /// Sends `notifications/progress` if the request asked for progress.
    fn progress(&self, progress: u64, total: u64, message: &str) {
        if let Some(token) = &self.progress_token {
            self.notify(
                "notifications/progress",
                json!({ "progressToken": token, "progress": progress, "total": total, "message": message }),
            );
        }
    }

    /// Sends `notifications/message` if the client set a log level at or below `level`.
    fn log(&self, level: LogLevel, logger: &str, data: Value) {
        let enabled = lock(&self.shared.log_level).is_some_and(|min| level >= min);
        if enabled {
            self.notify("notifications/message", json!({ "level": level.as_str(), "logger": logger, "data": data }));
        }
    }

    /// Resolves once the client cancelled this request (never, if it does not).
    async fn cancelled(&mut self) {
        if self.cancel.wait_for(|cancelled| *cancelled).await.is_err() {
            // The slot was taken over by a newer request with the same id: no cancel can come.
            std::future::pending::<()>().await;
        }
    }

    /// Whether the client declared `capability` (`"sampling"`, `"elicitation"`) in `initialize`.
    fn client_supports(&self, capability: &str) -> bool {
        lock(&self.shared.client_capabilities).get(capability).is_some_and(|c| !c.is_null())
    }

    /// Sends the request `method` to the client with a fresh id of this server's and waits for
    /// the client's response, at most the server's client request timeout. Gives up (and tells
    /// the client with `notifications/cancelled`) on timeout or when the request being served
    /// is cancelled.
    async fn request_client(&mut self, method: &str, params: Value) -> Result<Value, ClientRequestError> {
        let shared = self.shared;
        let number = shared.next_outgoing_id.fetch_add(1, Ordering::Relaxed);
        let id = Value::from(number);
        let (tx, rx) = oneshot::channel();
        let waiting = Waiting::register(shared, id.to_string(), tx);
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if self.out.send(request).is_err() {
            return Err(ClientRequestError::Closed);
        }
        let outcome = tokio::select! {
            answer = tokio::time::timeout(shared.client_request_timeout, rx) => match answer {
                Ok(Ok(Ok(result))) => return Ok(result),
                Ok(Ok(Err(error))) => return Err(ClientRequestError::Error(error)),
                Ok(Err(_)) => return Err(ClientRequestError::Closed),
                Err(_) => ClientRequestError::TimedOut(shared.client_request_timeout),
            },
            () = self.cancelled() => ClientRequestError::Cancelled,
        };
        drop(waiting);
        let reason = match outcome {
            ClientRequestError::TimedOut(_) => "timed out waiting for the response",
            _ => "the request it was sent for was cancelled",
        };
        self.notify("notifications/cancelled", json!({ "requestId": id, "reason": reason }));
        Err(outcome)
    }
}

/// Why [`Ctx::request_client`] got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum ClientRequestError {
    /// The client answered with this JSON-RPC error object.
    #[error("the client answered with an error: {0}")]
    Error(Value),
    #[error("no response from the client within {0:?}")]
    TimedOut(Duration),
    #[error("cancelled")]
    Cancelled,
    #[error("the connection is closed")]
    Closed,
}

/// A request of ours waiting for the client's response; leaves the table when dropped.
struct Waiting<'a> {
    shared: &'a Shared,
    key: String,
}

impl<'a> Waiting<'a> {
    fn register(shared: &'a Shared, key: String, tx: oneshot::Sender<ClientResponse>) -> Self {
        lock(&shared.outgoing).insert(key.clone(), tx);
        Self { shared, key }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.shared.outgoing).remove(&self.key);
    }
}
