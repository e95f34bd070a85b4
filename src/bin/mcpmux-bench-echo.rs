//! `mcpmux-bench-echo`: a minimal, fast MCP echo server for mcpmux's benchmarks (`bench/run.sh`).
//!
//! ```text
//! mcpmux-bench-echo stdio [--tools N]
//! mcpmux-bench-echo http PORT [--tools N] [--threads N]
//! ```
//!
//! - `stdio`: newline-delimited JSON-RPC on stdin/stdout. Reads in large chunks, answers every
//!   complete line of a chunk, and writes all the answers with one write: requests a client
//!   pipelines are answered in one system call. Exits on EOF.
//! - `http PORT`: streamable HTTP on `127.0.0.1:PORT` (0: any free port), any path. Prints
//!   `listening PORT` on stdout once bound. A hand-written HTTP/1.1 server on tokio: keep-alive,
//!   `Content-Length` or chunked request bodies, every request answered with JSON
//!   (`Content-Length`); `initialize` issues an `Mcp-Session-Id` (later requests are not checked
//!   against it), notifications and responses get `202`, `GET` gets `405` (no server-initiated
//!   stream), `DELETE` gets `200`. `--threads` sets the tokio worker threads (default 1).
//!
//! It serves `initialize`, `ping`, `tools/list` and `tools/call`. `--tools N` lists N tools
//! (default 1): `echo`, then `tool_001` … `tool_{N-1}`; every one of them returns its `text`
//! argument as one text content item (the raw JSON string is copied, not re-encoded). The
//! `tools/list` answer is serialized once at start.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str =
    "usage: mcpmux-bench-echo stdio [--tools N] | mcpmux-bench-echo http PORT [--tools N] [--threads N]";
const LATEST_VERSION: &str = "2025-11-25";
/// Largest request accepted (line or HTTP body).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpmux-bench-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts {
    mode: String,
    port: u16,
    tools: usize,
    threads: usize,
}

fn parse_opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or(USAGE)?;
    let mut opts = Opts { mode, port: 0, tools: 1, threads: 1 };
    if opts.mode == "http" {
        opts.port = args.next().and_then(|p| p.parse().ok()).ok_or(USAGE)?;
    } else if opts.mode != "stdio" {
        return Err(USAGE.into());
    }
    while let Some(a) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok()).ok_or_else(|| format!("{a} needs a number"))?;
        match a.as_str() {
            "--tools" if (1..=100_000).contains(&value) => opts.tools = value,
            "--threads" if (1..=64).contains(&value) => opts.threads = value,
            _ => return Err(format!("bad argument '{a} {value}'; {USAGE}")),
        }
    }
    Ok(opts)
}

fn run() -> Result<(), String> {
    let opts = parse_opts()?;
    let server = Arc::new(Server::new(opts.tools));
    if opts.mode == "stdio" {
        return serve_stdio(&server).map_err(|e| format!("stdio: {e}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .enable_io()
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;
    runtime.block_on(serve_http(server, opts.port))
}

// ---------------------------------------------------------------------------------------------
// MCP

/// One JSON-RPC message, borrowed from the input.
#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Args<'a>>,
    #[serde(borrow, default, rename = "protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Args<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
}

/// What a message needs from the transport besides the bytes written.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// A response was appended.
    Answered { initialize: bool },
    /// A notification or a response: nothing to answer.
    Nothing,
}

struct Server {
    tools: usize,
    /// `"result":{...}` of `tools/list`, serialized once.
    list_result: Vec<u8>,
}

const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

impl Server {
    fn new(tools: usize) -> Server {
        let schema = json!({
            "type": "object",
            "properties": {"text": {"type": "string", "description": "Text to echo back."}},
            "required": ["text"],
        });
        let list: Vec<Value> = (0..tools)
            .map(|i| {
                let (name, description) = if i == 0 {
                    ("echo".to_owned(), "Returns the text unchanged.".to_owned())
                } else {
                    (
                        format!("tool_{i:03}"),
                        format!("Generated tool {i} for catalog benchmarks; returns the text unchanged."),
                    )
                };
                json!({"name": name, "description": description, "inputSchema": schema})
            })
            .collect();
        let list_result = serde_json::to_vec(&json!({"tools": list})).unwrap_or_default();
        Server { tools, list_result }
    }

    fn is_tool(&self, name: &str) -> bool {
        if name == "echo" {
            return true;
        }
        name.strip_prefix("tool_").and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n >= 1 && n < self.tools)
    }

    /// Handles one message; appends the answer (no trailing newline) to `out`.
    fn handle(&self, text: &[u8], out: &mut Vec<u8>) -> Outcome {
        let msg: Msg = match serde_json::from_slice(text) {
            Ok(m) => m,
            Err(e) => {
                error(out, None, -32700, &format!("parse error: {e}"));
                return Outcome::Answered { initialize: false };
            }
        };
        let (Some(id), Some(method)) = (msg.id, msg.method.as_deref()) else {
            return Outcome::Nothing;
        };
        match method {
            "tools/call" => {
                let params = msg.params.as_ref();
                let name = params.and_then(|p| p.name.as_deref()).unwrap_or_default();
                let text = params.and_then(|p| p.arguments.as_ref()).and_then(|a| a.text);
                match text {
                    Some(t) if self.is_tool(name) && t.get().starts_with('"') => {
                        begin(out, id);
                        out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
                        out.extend_from_slice(t.get().as_bytes());
                        out.extend_from_slice(b"}]}}");
                    }
                    _ if !self.is_tool(name) => error(out, Some(id), -32602, &format!("unknown tool '{name}'")),
                    _ => error(out, Some(id), -32602, "arguments.text must be a string"),
                }
            }
            "tools/list" => {
                begin(out, id);
                out.extend_from_slice(&self.list_result);
                out.push(b'}');
            }
            "initialize" => {
                let asked = msg.params.as_ref().and_then(|p| p.protocol_version.as_deref());
                let version = asked.filter(|v| SUPPORTED_VERSIONS.contains(v)).unwrap_or(LATEST_VERSION);
                let result = json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "mcpmux-bench-echo", "version": "0"},
                });
                begin(out, id);
                out.extend_from_slice(result.to_string().as_bytes());
                out.push(b'}');
                return Outcome::Answered { initialize: true };
            }
            "ping" => {
                begin(out, id);
                out.extend_from_slice(b"{}}");
            }
            other => error(out, Some(id), -32601, &format!("method not found: {other}")),
        }
        Outcome::Answered { initialize: false }
    }
}

/// `{"jsonrpc":"2.0","id":ID,"result":` — the caller writes the result and the closing `}`.
fn begin(out: &mut Vec<u8>, id: &RawValue) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(br#","result":"#);
}

fn error(out: &mut Vec<u8>, id: Option<&RawValue>, code: i64, message: &str) {
    let id = id.map_or("null", RawValue::get);
    let message = Value::String(message.to_owned());
    out.extend_from_slice(
        format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#).as_bytes(),
    );
}

// ---------------------------------------------------------------------------------------------
// stdio

fn serve_stdio(server: &Server) -> std::io::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stdin.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = trim(&buf[start..start + nl]);
            if !line.is_empty() && server.handle(line, &mut out) != Outcome::Nothing {
                out.push(b'\n');
            }
            start += nl + 1;
        }
        buf.drain(..start);
        if buf.len() > MAX_MESSAGE {
            return Err(std::io::Error::other("a line is longer than the limit"));
        }
        if !out.is_empty() {
            // Stdout is line-buffered: one buffer holding many lines goes out in one write.
            stdout.write_all(&out)?;
            stdout.flush()?;
            out.clear();
        }
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let mut s = line;
    while let [rest @ .., b'\r' | b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP

async fn serve_http(server: Arc<Server>, port: u16) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("listening {port}");
    let _ = std::io::stdout().flush();
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| format!("accept: {e}"))?;
        let server = server.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let _ = connection(&server, stream).await;
        });
    }
}

/// A request head, parsed.
struct Request {
    method: Method,
    head_len: usize,
    body: Body,
    close: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Get,
    Delete,
    Other,
}

enum Body {
    Length(usize),
    Chunked,
}

async fn connection(server: &Server, mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut payload: Vec<u8> = Vec::with_capacity(4 * 1024);
    let mut body: Vec<u8> = Vec::with_capacity(4 * 1024);
    loop {
        // Answer every complete request in the buffer, then write the answers at once.
        let mut close = false;
        while let Some(req) = parse_head(&buf).map_err(std::io::Error::other)? {
            body.clear();
            let used = match req.body {
                Body::Length(n) => {
                    if n > MAX_MESSAGE {
                        return Err(std::io::Error::other("body too large"));
                    }
                    if buf.len() < req.head_len + n {
                        break;
                    }
                    body.extend_from_slice(&buf[req.head_len..req.head_len + n]);
                    req.head_len + n
                }
                Body::Chunked => match dechunk(&buf[req.head_len..], &mut body).map_err(std::io::Error::other)? {
                    Some(n) => req.head_len + n,
                    None => break,
                },
            };
            buf.drain(..used);
            respond(server, req.method, &body, &mut payload, &mut out);
            if req.close {
                close = true;
                break;
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        if buf.len() > MAX_MESSAGE + 64 * 1024 {
            return Err(std::io::Error::other("request too large"));
        }
        buf.reserve(16 * 1024);
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

fn respond(server: &Server, method: Method, body: &[u8], payload: &mut Vec<u8>, out: &mut Vec<u8>) {
    match method {
        Method::Post => {
            payload.clear();
            match server.handle(trim(body), payload) {
                Outcome::Nothing => out.extend_from_slice(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"),
                Outcome::Answered { initialize } => {
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n");
                    if initialize {
                        out.extend_from_slice(b"mcp-session-id: mcpmux-bench-echo-session\r\n");
                    }
                    out.extend_from_slice(format!("content-length: {}\r\n\r\n", payload.len()).as_bytes());
                    out.extend_from_slice(payload);
                }
            }
        }
        Method::Get => out
            .extend_from_slice(b"HTTP/1.1 405 Method Not Allowed\r\nallow: POST, DELETE\r\ncontent-length: 0\r\n\r\n"),
        Method::Delete => out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
        Method::Other => out.extend_from_slice(
            b"HTTP/1.1 405 Method Not Allowed\r\nallow: GET, POST, DELETE\r\ncontent-length: 0\r\n\r\n",
        ),
    }
}

/// Parses a request head when the buffer holds all of it.
fn parse_head(buf: &[u8]) -> Result<Option<Request>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err("request head too large".into());
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "request head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let method = match request_line.split(' ').next() {
        Some("POST") => Method::Post,
        Some("GET") => Method::Get,
        Some("DELETE") => Method::Delete,
        _ => Method::Other,
    };
    let mut close = request_line.ends_with("HTTP/1.0");
    let mut body = Body::Length(0);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body = Body::Length(value.parse().map_err(|_| format!("bad content-length '{value}'"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            body = Body::Chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some(Request { method, head_len: end + 4, body, close }))
}

/// Decodes a complete chunked body into `out`; returns the bytes it took, `None` if incomplete.
fn dechunk(buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, String> {
    let mut pos = 0;
    loop {
        let Some(eol) = find(&buf[pos..], b"\r\n") else { return Ok(None) };
        let size_text = std::str::from_utf8(&buf[pos..pos + eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
            .map_err(|_| format!("bad chunk size '{size_text}'"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailers (none expected), then the blank line.
            let Some(end) = find(&buf[pos..], b"\r\n") else { return Ok(None) };
            if end == 0 {
                return Ok(Some(pos + 2));
            }
            let Some(end) = find(&buf[pos..], b"\r\n\r\n") else { return Ok(None) };
            return Ok(Some(pos + end + 4));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if out.len() + size > MAX_MESSAGE {
            return Err("body too large".into());
        }
        out.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
