//! `mcpmux-bench`: mcpmux's benchmark suite — the scenario driver and the load client in one
//! binary. `bench/run.sh` builds it (release) and runs `mcpmux-bench run`; `BENCHMARKS.md`
//! describes the method and shows the latest table.
//!
//! ```text
//! mcpmux-bench run [--scenarios s1,s2,s3,s4,s5,s6] [--duration SECS] [--warmup SECS] [--rounds N]
//!                  [--sessions N] [--start-runs N] [--reloads N] [--peers DIR] [--no-pin]
//!                  [--mcpmux PATH] [--echo PATH] [--out FILE] [--smoke]
//! mcpmux-bench load --url URL [--conns N] [--duration SECS] [--warmup SECS]
//!                   [--method call|list] [--tool NAME] [--expect-tools N] [--sut PID]...
//! mcpmux-bench pipe [--conns N] [--duration SECS] [--warmup SECS] [--tool NAME] -- CMD [ARGS...]
//! mcpmux-bench startup --count N -- CMD [ARGS...]
//! ```
//!
//! - `load` is the HTTP load client. It opens one MCP session (`initialize`,
//!   `notifications/initialized`) and shares it between `--conns` keep-alive connections, each
//!   sending `tools/call` (or `tools/list`) with a distinct id back to back for the warm-up, then
//!   for the measured time. Every reply is checked: HTTP 200, a JSON or SSE body, the right id, the
//!   echoed text (or the expected number of tools). It prints one JSON line: calls/s, p50/p90/p99,
//!   errors, and the CPU time used in the measured window by itself, by the `--sut` processes
//!   (with their descendants) and by the whole machine. With one connection it uses blocking
//!   sockets (no event loop between the request and its answer); with more, one tokio thread.
//! - `pipe` is the same over a child's stdin/stdout (newline-delimited JSON-RPC, no HTTP):
//!   `--conns` requests in flight, written together when several free up at once.
//! - `startup` spawns `--count` copies of a stdio server at once (one thread each) and reports
//!   how long each took from spawn to its `initialize` answer, and to its `tools/list` answer.
//! - `run` starts the systems under test, runs `load`/`pipe`/`startup` pinned with `taskset`
//!   (client on CPU 0, the system under test on the others), and prints the table. Every process
//!   it starts is in a process group of its own and is stopped (SIGTERM, then SIGKILL to the
//!   group) and reaped, also on error.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

const PROTOCOL_VERSION: &str = "2025-11-25";
/// Bound on one read, write, connect or call.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a system under test becoming ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Linux `USER_HZ`: the unit of the CPU times in `/proc`.
const TICKS_PER_SECOND: f64 = 100.0;

const USAGE: &str = "usage: mcpmux-bench run [options] | load --url URL [options] | pipe [options] -- CMD... | startup --count N -- CMD...
run options:  --scenarios s1,s2,s3,s4,s5,s6  --duration SECS  --warmup SECS  --rounds N  --sessions N  --start-runs N  --reloads N
              --peers DIR  --no-pin  --mcpmux PATH  --echo PATH  --out FILE  --smoke
load options: --conns N  --duration SECS  --warmup SECS  --method call|list  --tool NAME  --expect-tools N  --sut PID";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("run") => driver::main(rest),
        Some("load") => load::main(rest),
        Some("pipe") => pipe::main(rest),
        Some("startup") => startup::main(rest),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpmux-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A tiny argument reader: `--name value` pairs, flags, and everything after `--`.
struct ArgList {
    pairs: Vec<(String, Option<String>)>,
    trailing: Vec<String>,
}

impl ArgList {
    fn parse(args: &[String], flags: &[&str]) -> Res<ArgList> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        let mut trailing = Vec::new();
        while let Some(a) = it.next() {
            if a == "--" {
                trailing = it.cloned().collect();
                break;
            }
            if !a.starts_with("--") {
                return Err(format!("unexpected argument '{a}'\n{USAGE}"));
            }
            if flags.contains(&a.as_str()) {
                pairs.push((a.clone(), None));
            } else {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                pairs.push((a.clone(), Some(v.clone())));
            }
        }
        Ok(ArgList { pairs, trailing })
    }

    fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.pairs.iter().filter(move |(n, _)| n == name).filter_map(|(_, v)| v.as_deref())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.all(name).last()
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Res<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{name}: '{v}' is not a valid number")),
        }
    }

    fn check_known(&self, known: &[&str]) -> Res<()> {
        match self.pairs.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((n, _)) => Err(format!("unknown option '{n}'\n{USAGE}")),
            None => Ok(()),
        }
    }
}

// =============================================================================================
// HTTP/1.1 and MCP client parts shared by the load client and the driver

mod http {
    use super::*;

    /// `http://HOST:PORT/PATH`, loopback only.
    #[derive(Clone, Debug)]
    pub struct Url {
        pub addr: SocketAddr,
        pub host: String,
        pub path: String,
    }

    impl Url {
        pub fn parse(s: &str) -> Res<Url> {
            let rest = s.strip_prefix("http://").ok_or_else(|| format!("'{s}' is not an http:// URL"))?;
            let (host, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let addr: SocketAddr = host.parse().map_err(|_| format!("'{host}' is not IP:PORT"))?;
            if !addr.ip().is_loopback() {
                return Err(format!("{addr} is not a loopback address; the bench only talks to this machine"));
            }
            Ok(Url { addr, host: host.to_owned(), path: path.to_owned() })
        }
    }

    /// A read buffer: bytes `start..end` of `data` are unread.
    pub struct RBuf {
        data: Vec<u8>,
        start: usize,
        end: usize,
    }

    impl RBuf {
        pub fn new() -> RBuf {
            RBuf { data: vec![0; 64 * 1024], start: 0, end: 0 }
        }

        pub fn filled(&self) -> &[u8] {
            &self.data[self.start..self.end]
        }

        pub fn consume(&mut self, n: usize) {
            self.start += n;
            if self.start >= self.end {
                self.start = 0;
                self.end = 0;
            }
        }

        /// Room to read into (at least 16 KiB).
        pub fn spare(&mut self) -> &mut [u8] {
            if self.data.len() - self.end < 16 * 1024 {
                if self.start > 0 {
                    self.data.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                if self.data.len() - self.end < 16 * 1024 {
                    let n = self.data.len() * 2;
                    self.data.resize(n, 0);
                }
            }
            &mut self.data[self.end..]
        }

        pub fn advance(&mut self, n: usize) {
            self.end += n;
        }
    }

    /// What a reply's head said.
    #[derive(Debug)]
    pub struct Head {
        pub status: u16,
        pub sse: bool,
        pub session: Option<String>,
        pub close: bool,
    }

    pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    /// Parses one complete reply at the start of `buf`, its body (de-chunked) into `body`.
    /// `None` when more bytes are needed; `Some((head, bytes used))` otherwise.
    pub fn parse_reply(buf: &[u8], body: &mut Vec<u8>) -> Res<Option<(Head, usize)>> {
        let Some(end) = find(buf, b"\r\n\r\n") else {
            if buf.len() > 1024 * 1024 {
                return Err("reply head larger than 1 MiB".into());
            }
            return Ok(None);
        };
        let text = std::str::from_utf8(&buf[..end]).map_err(|_| "reply head is not UTF-8")?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line '{status_line}'"))?;
        let mut head = Head { status, sse: false, session: None, close: false };
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| format!("bad content-length '{value}'"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("content-type") {
                head.sse = value.starts_with("text/event-stream");
            } else if name.eq_ignore_ascii_case("mcp-session-id") {
                head.session = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("connection") {
                head.close = value.eq_ignore_ascii_case("close");
            }
        }
        let head_len = end + 4;
        body.clear();
        let used = if chunked {
            match dechunk(&buf[head_len..], body)? {
                Some(n) => head_len + n,
                None => return Ok(None),
            }
        } else {
            let n = length.unwrap_or(0);
            if buf.len() < head_len + n {
                return Ok(None);
            }
            body.extend_from_slice(&buf[head_len..head_len + n]);
            head_len + n
        };
        Ok(Some((head, used)))
    }

    fn dechunk(buf: &[u8], out: &mut Vec<u8>) -> Res<Option<usize>> {
        let mut pos = 0;
        loop {
            let Some(eol) = find(&buf[pos..], b"\r\n") else { return Ok(None) };
            let size_text = std::str::from_utf8(&buf[pos..pos + eol]).map_err(|_| "bad chunk size")?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| format!("bad chunk size '{size_text}'"))?;
            pos += eol + 2;
            if size == 0 {
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
            out.extend_from_slice(&buf[pos..pos + size]);
            pos += size + 2;
        }
    }

    /// The MCP session a client uses.
    #[derive(Clone, Debug)]
    pub struct Session {
        pub id: Option<String>,
        pub version: String,
    }

    /// Appends one HTTP request (`POST` with `body`, or `DELETE`).
    pub fn request(out: &mut Vec<u8>, method: &str, url: &Url, session: &Session, body: &[u8]) {
        let _ = write!(
            out,
            "{method} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {}\r\n",
            url.path, url.host, session.version
        );
        if let Some(id) = &session.id {
            let _ = write!(out, "Mcp-Session-Id: {id}\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
    }

    /// A `tools/call` (`list`: false) or `tools/list` body with this id.
    pub fn call_body(out: &mut Vec<u8>, id: u64, list: bool, tool: &str) {
        out.clear();
        if list {
            let _ = write!(out, r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{}}}}"#);
        } else {
            let _ = write!(
                out,
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"bench-{id}"}}}}}}"#
            );
        }
    }

    /// The JSON-RPC response in a reply body: the body itself, or the SSE event carrying it.
    pub fn response_json<'a>(sse: bool, body: &'a [u8]) -> Res<Cow<'a, [u8]>> {
        if !sse {
            return Ok(Cow::Borrowed(body));
        }
        let text = std::str::from_utf8(body).map_err(|_| "event stream is not UTF-8")?;
        let mut data = String::new();
        let mut found: Option<String> = None;
        let mut dispatch = |data: &mut String| {
            if data.contains("\"id\"") && (data.contains("\"result\"") || data.contains("\"error\"")) {
                found = Some(std::mem::take(data));
            }
            data.clear();
        };
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                dispatch(&mut data);
            } else if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        dispatch(&mut data);
        found.map(|s| Cow::Owned(s.into_bytes())).ok_or_else(|| format!("no response in the event stream: {text}"))
    }

    #[derive(Deserialize)]
    struct RpcReply<'a> {
        #[serde(default)]
        id: Option<u64>,
        #[serde(borrow, default)]
        result: Option<&'a RawValue>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }

    #[derive(Deserialize)]
    struct EchoResult<'a> {
        #[serde(borrow, default)]
        content: Vec<Content<'a>>,
        #[serde(default, rename = "isError")]
        is_error: bool,
    }

    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow, default)]
        text: Option<Cow<'a, str>>,
    }

    #[derive(Deserialize)]
    struct ListResult<'a> {
        #[serde(borrow, default)]
        tools: Vec<ToolName<'a>>,
    }

    #[derive(Deserialize)]
    struct ToolName<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
    }

    fn result_of(json: &[u8], id: u64) -> Res<&RawValue> {
        let r: RpcReply = serde_json::from_slice(json).map_err(|e| format!("reply is not JSON-RPC ({e})"))?;
        if r.id != Some(id) {
            return Err(format!("reply has id {:?}, wanted {id}", r.id));
        }
        if let Some(e) = r.error {
            return Err(format!("error reply: {}", e.get()));
        }
        r.result.ok_or_else(|| "reply has neither result nor error".to_owned())
    }

    /// Checks a `tools/call` echo reply.
    pub fn check_echo(json: &[u8], id: u64) -> Res<()> {
        let result = result_of(json, id)?;
        let r: EchoResult = serde_json::from_str(result.get()).map_err(|e| format!("bad tool result ({e})"))?;
        let text = r.content.first().and_then(|c| c.text.as_deref());
        let want = format!("bench-{id}");
        if r.is_error || text != Some(want.as_str()) {
            return Err(format!("tool result does not echo '{want}': {}", result.get()));
        }
        Ok(())
    }

    /// The tool names in a `tools/list` reply.
    pub fn tool_names(json: &[u8], id: u64) -> Res<Vec<String>> {
        let result = result_of(json, id)?;
        let r: ListResult = serde_json::from_str(result.get()).map_err(|e| format!("bad tools/list result ({e})"))?;
        Ok(r.tools.into_iter().map(|t| t.name.into_owned()).collect())
    }

    /// Checks a `tools/list` reply lists `expect` tools.
    pub fn check_list(json: &[u8], id: u64, expect: usize) -> Res<()> {
        #[derive(Deserialize)]
        struct Count<'a> {
            #[serde(borrow, default)]
            tools: Vec<&'a RawValue>,
        }
        let result = result_of(json, id)?;
        let r: Count = serde_json::from_str(result.get()).map_err(|e| format!("bad tools/list result ({e})"))?;
        if r.tools.len() != expect {
            return Err(format!("tools/list listed {} tools, wanted {expect}", r.tools.len()));
        }
        Ok(())
    }

    /// One blocking keep-alive connection.
    pub struct SyncConn {
        stream: TcpStream,
        rbuf: RBuf,
    }

    impl SyncConn {
        pub fn connect(url: &Url) -> Res<SyncConn> {
            let stream = TcpStream::connect_timeout(&url.addr, IO_TIMEOUT)
                .map_err(|e| format!("cannot connect to {}: {e}", url.addr))?;
            let setup = |s: &TcpStream| -> std::io::Result<()> {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))
            };
            setup(&stream).map_err(|e| e.to_string())?;
            Ok(SyncConn { stream, rbuf: RBuf::new() })
        }

        pub fn roundtrip(&mut self, req: &[u8], body: &mut Vec<u8>) -> Res<Head> {
            self.stream.write_all(req).map_err(|e| format!("sending: {e}"))?;
            loop {
                if let Some((head, used)) = parse_reply(self.rbuf.filled(), body)? {
                    self.rbuf.consume(used);
                    return Ok(head);
                }
                let n = self.stream.read(self.rbuf.spare()).map_err(|e| format!("reading: {e}"))?;
                if n == 0 {
                    return Err("the server closed the connection".into());
                }
                self.rbuf.advance(n);
            }
        }
    }

    /// One tokio keep-alive connection.
    pub struct AsyncConn {
        stream: tokio::net::TcpStream,
        rbuf: RBuf,
    }

    impl AsyncConn {
        pub async fn connect(url: &Url) -> Res<AsyncConn> {
            let stream = tokio::time::timeout(IO_TIMEOUT, tokio::net::TcpStream::connect(url.addr))
                .await
                .map_err(|_| format!("connecting to {} timed out", url.addr))?
                .map_err(|e| format!("cannot connect to {}: {e}", url.addr))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            Ok(AsyncConn { stream, rbuf: RBuf::new() })
        }

        pub async fn roundtrip(&mut self, req: &[u8], body: &mut Vec<u8>) -> Res<Head> {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            self.stream.write_all(req).await.map_err(|e| format!("sending: {e}"))?;
            loop {
                if let Some((head, used)) = parse_reply(self.rbuf.filled(), body)? {
                    self.rbuf.consume(used);
                    return Ok(head);
                }
                let n = self.stream.read(self.rbuf.spare()).await.map_err(|e| format!("reading: {e}"))?;
                if n == 0 {
                    return Err("the server closed the connection".into());
                }
                self.rbuf.advance(n);
            }
        }
    }

    pub fn initialize_body() -> Vec<u8> {
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcpmux-bench", "version": "0"}
        }})
        .to_string()
        .into_bytes()
    }

    /// Reads the session of an `initialize` reply.
    pub fn session_of(head: &Head, body: &[u8]) -> Res<Session> {
        if head.status != 200 {
            return Err(format!("initialize answered HTTP {}: {}", head.status, String::from_utf8_lossy(body)));
        }
        let json = response_json(head.sse, body)?;
        let v: Value = serde_json::from_slice(&json).map_err(|e| format!("initialize reply is not JSON ({e})"))?;
        let version = v
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("initialize failed: {v}"))?
            .to_owned();
        Ok(Session { id: head.session.clone(), version })
    }

    /// `initialize` and `notifications/initialized` on `conn`.
    pub fn open_session(conn: &mut SyncConn, url: &Url) -> Res<Session> {
        let mut req = Vec::new();
        let mut body = Vec::new();
        let none = Session { id: None, version: PROTOCOL_VERSION.to_owned() };
        request(&mut req, "POST", url, &none, &initialize_body());
        let head = conn.roundtrip(&req, &mut body)?;
        let session = session_of(&head, &body)?;
        req.clear();
        request(&mut req, "POST", url, &session, br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let head = conn.roundtrip(&req, &mut body)?;
        if !(200..300).contains(&head.status) {
            return Err(format!("notifications/initialized answered HTTP {}", head.status));
        }
        Ok(session)
    }

    /// One `tools/list` (all in one page is expected) on `conn`: the tool names.
    pub fn list_tools(conn: &mut SyncConn, url: &Url, session: &Session, id: u64) -> Res<Vec<String>> {
        let mut req = Vec::new();
        let mut body = Vec::new();
        let mut call = Vec::new();
        call_body(&mut call, id, true, "");
        request(&mut req, "POST", url, session, &call);
        let head = conn.roundtrip(&req, &mut body)?;
        if head.status != 200 {
            return Err(format!("tools/list answered HTTP {}", head.status));
        }
        tool_names(&response_json(head.sse, &body)?, id)
    }
}

// =============================================================================================
// CPU accounting from /proc

mod cpu {
    use super::*;

    /// utime + stime of a process (all its threads), in ticks.
    pub fn process_ticks(pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // After the command: state (field 3) … utime (14), stime (15).
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    fn parent_of(pid: u32) -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    }

    /// `roots` and every process descending from them.
    pub fn with_descendants(roots: &[u32]) -> Vec<u32> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
                if let Some(ppid) = parent_of(pid) {
                    children.entry(ppid).or_default().push(pid);
                }
            }
        }
        let mut all = Vec::new();
        let mut todo: Vec<u32> = roots.to_vec();
        while let Some(p) = todo.pop() {
            if all.contains(&p) {
                continue;
            }
            all.push(p);
            todo.extend(children.get(&p).into_iter().flatten());
        }
        all
    }

    /// Busy ticks of the whole machine (all CPUs).
    pub fn machine_busy_ticks() -> u64 {
        let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0 };
        let Some(line) = stat.lines().next() else { return 0 };
        let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal …
        [0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum()
    }

    /// CPU used by the system under test, this process and the machine, at one moment.
    #[derive(Clone, Copy)]
    pub struct Snap {
        sut: u64,
        me: u64,
        busy: u64,
    }

    pub fn snap(sut: &[u32]) -> Snap {
        Snap {
            sut: sut.iter().filter_map(|p| process_ticks(*p)).sum(),
            me: process_ticks(std::process::id()).unwrap_or(0),
            busy: machine_busy_ticks(),
        }
    }

    /// Seconds of CPU between two snapshots: (system under test, this client, whole machine).
    pub fn delta(a: Snap, b: Snap) -> (f64, f64, f64) {
        let s = |x: u64, y: u64| y.saturating_sub(x) as f64 / TICKS_PER_SECOND;
        (s(a.sut, b.sut), s(a.me, b.me), s(a.busy, b.busy))
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in microseconds.
fn pct_us(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

/// What one load run measured, as the JSON line `load` and `pipe` print.
struct Measured {
    lat_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    window: Duration,
    cpu: Option<(f64, f64, f64)>,
}

impl Measured {
    fn json(mut self) -> Value {
        self.lat_ns.sort_unstable();
        let n = self.lat_ns.len();
        let secs = self.window.as_secs_f64().max(1e-9);
        let mean = if n == 0 { 0.0 } else { self.lat_ns.iter().sum::<u64>() as f64 / n as f64 / 1000.0 };
        let (sut, client, busy) = self.cpu.unwrap_or((0.0, 0.0, 0.0));
        json!({
            "calls": n,
            "errors": self.errors,
            "first_error": self.first_error,
            "window_s": secs,
            "rate": n as f64 / secs,
            "p50_us": pct_us(&self.lat_ns, 0.50),
            "p90_us": pct_us(&self.lat_ns, 0.90),
            "p99_us": pct_us(&self.lat_ns, 0.99),
            "max_us": pct_us(&self.lat_ns, 1.0),
            "mean_us": mean,
            "sut_cpu_s": sut,
            "client_cpu_s": client,
            "busy_cpu_s": busy,
        })
    }
}

/// The measured window and the CPU snapshots at its ends, taken by whoever crosses them first.
struct Window {
    start: Instant,
    end: Instant,
    sut: Vec<u32>,
    first: Mutex<Option<cpu::Snap>>,
    last: Mutex<Option<cpu::Snap>>,
}

impl Window {
    fn new(warmup: f64, duration: f64, sut_roots: &[u32]) -> Window {
        let now = Instant::now();
        let start = now + Duration::from_secs_f64(warmup);
        Window {
            start,
            end: start + Duration::from_secs_f64(duration),
            sut: cpu::with_descendants(sut_roots),
            first: Mutex::new(None),
            last: Mutex::new(None),
        }
    }

    /// Takes the snapshots when `now` has crossed the window's start or end.
    fn tick(&self, now: Instant) {
        if now >= self.start {
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            if first.is_none() {
                *first = Some(cpu::snap(&self.sut));
            }
        }
        if now >= self.end {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none() {
                *last = Some(cpu::snap(&self.sut));
            }
        }
    }

    fn counts(&self, done: Instant) -> bool {
        done >= self.start && done <= self.end
    }

    fn cpu(&self) -> Option<(f64, f64, f64)> {
        let a = (*self.first.lock().unwrap_or_else(|e| e.into_inner()))?;
        let b = (*self.last.lock().unwrap_or_else(|e| e.into_inner()))?;
        Some(cpu::delta(a, b))
    }
}

// =============================================================================================
// `load`: the HTTP load client

mod load {
    use super::http::{AsyncConn, Session, SyncConn, Url};
    use super::*;

    struct Job {
        url: Url,
        session: Session,
        list: bool,
        tool: String,
        expect_tools: usize,
        counter: AtomicU64,
        window: Window,
    }

    impl Job {
        /// Checks one reply; `Ok(close)` when it is right.
        fn check(&self, head: &http::Head, body: &[u8], id: u64) -> Res<bool> {
            if head.status != 200 {
                return Err(format!("HTTP {}: {}", head.status, String::from_utf8_lossy(body)));
            }
            let json = http::response_json(head.sse, body)?;
            if self.list {
                http::check_list(&json, id, self.expect_tools)?;
            } else {
                http::check_echo(&json, id)?;
            }
            Ok(head.close)
        }
    }

    #[derive(Default)]
    struct Tally {
        lat_ns: Vec<u64>,
        errors: u64,
        first_error: Option<String>,
    }

    impl Tally {
        fn error(&mut self, e: String) {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(e);
            }
        }

        fn merge(&mut self, other: Tally) {
            self.lat_ns.extend(other.lat_ns);
            self.errors += other.errors;
            if self.first_error.is_none() {
                self.first_error = other.first_error;
            }
        }
    }

    pub fn main(args: &[String]) -> Res<()> {
        let a = ArgList::parse(args, &[])?;
        a.check_known(&[
            "--url",
            "--conns",
            "--duration",
            "--warmup",
            "--method",
            "--tool",
            "--expect-tools",
            "--sut",
        ])?;
        let url = Url::parse(a.get("--url").ok_or("load needs --url")?)?;
        let conns: usize = a.num("--conns", 1)?;
        let duration: f64 = a.num("--duration", 5.0)?;
        let warmup: f64 = a.num("--warmup", 1.0)?;
        let list = match a.get("--method").unwrap_or("call") {
            "call" => false,
            "list" => true,
            m => return Err(format!("--method must be call or list, not '{m}'")),
        };
        if !(1..=4096).contains(&conns) || !(0.0..=600.0).contains(&duration) || !(0.0..=600.0).contains(&warmup) {
            return Err("--conns must be 1..=4096, --duration and --warmup 0..=600 seconds".into());
        }
        let sut: Vec<u32> = a.all("--sut").filter_map(|p| p.parse().ok()).collect();

        let mut conn = SyncConn::connect(&url)?;
        let session = http::open_session(&mut conn, &url)?;
        let job = Arc::new(Job {
            url,
            session,
            list,
            tool: a.get("--tool").unwrap_or("echo").to_owned(),
            expect_tools: a.num("--expect-tools", 0)?,
            counter: AtomicU64::new(1),
            window: Window::new(warmup, duration, &sut),
        });
        let tally = if conns == 1 {
            sequential(&job, conn)
        } else {
            drop(conn);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot build the runtime: {e}"))?;
            runtime.block_on(concurrent(job.clone(), conns))
        };
        let measured = Measured {
            lat_ns: tally.lat_ns,
            errors: tally.errors,
            first_error: tally.first_error,
            window: job.window.end - job.window.start,
            cpu: job.window.cpu(),
        };
        println!("{}", measured.json());
        Ok(())
    }

    /// One connection, blocking: nothing between the answer arriving and the client reading it.
    fn sequential(job: &Job, first: SyncConn) -> Tally {
        let mut tally = Tally::default();
        let mut conn = Some(first);
        let (mut req, mut call, mut body) = (Vec::with_capacity(1024), Vec::with_capacity(512), Vec::new());
        loop {
            let now = Instant::now();
            job.window.tick(now);
            if now >= job.window.end {
                break;
            }
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match SyncConn::connect(&job.url) {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        tally.error(e);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                },
            };
            let id = job.counter.fetch_add(1, Ordering::Relaxed);
            http::call_body(&mut call, id, job.list, &job.tool);
            req.clear();
            http::request(&mut req, "POST", &job.url, &job.session, &call);
            let t0 = Instant::now();
            let reply = c.roundtrip(&req, &mut body);
            let t1 = Instant::now();
            match reply.and_then(|head| job.check(&head, &body, id)) {
                Ok(close) => {
                    if job.window.counts(t1) {
                        tally.lat_ns.push((t1 - t0).as_nanos() as u64);
                    }
                    if close {
                        conn = None;
                    }
                }
                Err(e) => {
                    tally.error(format!("call {id}: {e}"));
                    conn = None;
                }
            }
        }
        job.window.tick(Instant::now().max(job.window.end));
        tally
    }

    async fn concurrent(job: Arc<Job>, conns: usize) -> Tally {
        let clock = {
            let job = job.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(job.window.start.into()).await;
                job.window.tick(Instant::now());
                tokio::time::sleep_until(job.window.end.into()).await;
                job.window.tick(Instant::now());
            })
        };
        let workers: Vec<_> = (0..conns).map(|_| tokio::spawn(worker(job.clone()))).collect();
        let mut tally = Tally::default();
        for w in workers {
            match w.await {
                Ok(t) => tally.merge(t),
                Err(e) => tally.error(format!("a connection task failed: {e}")),
            }
        }
        let _ = clock.await;
        tally
    }

    async fn worker(job: Arc<Job>) -> Tally {
        let mut tally = Tally::default();
        let mut conn: Option<AsyncConn> = None;
        let (mut req, mut call, mut body) = (Vec::with_capacity(1024), Vec::with_capacity(512), Vec::new());
        while Instant::now() < job.window.end {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match AsyncConn::connect(&job.url).await {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        tally.error(e);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let id = job.counter.fetch_add(1, Ordering::Relaxed);
            http::call_body(&mut call, id, job.list, &job.tool);
            req.clear();
            http::request(&mut req, "POST", &job.url, &job.session, &call);
            let t0 = Instant::now();
            let reply = tokio::time::timeout(IO_TIMEOUT, c.roundtrip(&req, &mut body)).await;
            let t1 = Instant::now();
            let checked = match reply {
                Err(_) => Err(format!("no answer within {IO_TIMEOUT:?}")),
                Ok(r) => r.and_then(|head| job.check(&head, &body, id)),
            };
            match checked {
                Ok(close) => {
                    if job.window.counts(t1) {
                        tally.lat_ns.push((t1 - t0).as_nanos() as u64);
                    }
                    if close {
                        conn = None;
                    }
                }
                Err(e) => {
                    tally.error(format!("call {id}: {e}"));
                    conn = None;
                }
            }
        }
        tally
    }
}

// =============================================================================================
// `pipe`: the same load over a child's stdin/stdout

mod pipe {
    use super::*;

    struct State {
        in_flight: usize,
        started: HashMap<u64, Instant>,
        writer_done: bool,
    }

    pub fn main(args: &[String]) -> Res<()> {
        let a = ArgList::parse(args, &[])?;
        a.check_known(&["--conns", "--duration", "--warmup", "--tool"])?;
        let conns: usize = a.num("--conns", 1)?;
        let duration: f64 = a.num("--duration", 5.0)?;
        let warmup: f64 = a.num("--warmup", 1.0)?;
        let tool = a.get("--tool").unwrap_or("echo").to_owned();
        if !(1..=4096).contains(&conns) || !(0.0..=600.0).contains(&duration) || !(0.0..=600.0).contains(&warmup) {
            return Err("--conns must be 1..=4096, --duration and --warmup 0..=600 seconds".into());
        }
        let (program, rest) = a.trailing.split_first().ok_or("pipe needs a command after --")?;
        let mut child = Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let result = drive(&mut child, conns, duration, warmup, &tool);
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        println!("{}", result?.json());
        Ok(())
    }

    fn drive(child: &mut Child, conns: usize, duration: f64, warmup: f64, tool: &str) -> Res<Measured> {
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = BufReader::with_capacity(64 * 1024, child.stdout.take().ok_or("no stdout")?);
        let mut line = Vec::with_capacity(4096);
        let mut read = |line: &mut Vec<u8>| -> Res<()> {
            line.clear();
            match stdout.read_until(b'\n', line) {
                Ok(0) => Err("the server closed its stdout".to_owned()),
                Ok(_) => Ok(()),
                Err(e) => Err(format!("reading the server's stdout: {e}")),
            }
        };
        let mut init = http::initialize_body();
        init.push(b'\n');
        stdin.write_all(&init).map_err(|e| format!("writing to the server: {e}"))?;
        read(&mut line)?;
        stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .map_err(|e| format!("writing to the server: {e}"))?;
        let window = Window::new(warmup, duration, &[child.id()]);
        let mut lat_ns = Vec::new();
        let mut errors = 0u64;
        let mut first_error = None;
        let mut note = |e: String, errors: &mut u64| {
            *errors += 1;
            if first_error.is_none() {
                first_error = Some(e);
            }
        };
        let mut call = Vec::with_capacity(512);
        if conns == 1 {
            let mut id = 1u64;
            loop {
                let now = Instant::now();
                window.tick(now);
                if now >= window.end {
                    break;
                }
                http::call_body(&mut call, id, false, tool);
                call.push(b'\n');
                let t0 = Instant::now();
                stdin.write_all(&call).map_err(|e| format!("writing to the server: {e}"))?;
                read(&mut line)?;
                let t1 = Instant::now();
                match http::check_echo(trim(&line), id) {
                    Ok(()) if window.counts(t1) => lat_ns.push((t1 - t0).as_nanos() as u64),
                    Ok(()) => {}
                    Err(e) => note(format!("call {id}: {e}"), &mut errors),
                }
                id += 1;
            }
        } else {
            let state = Arc::new((
                Mutex::new(State { in_flight: 0, started: HashMap::new(), writer_done: false }),
                Condvar::new(),
            ));
            let end = window.end;
            let writer = {
                let state = state.clone();
                let tool = tool.to_owned();
                std::thread::spawn(move || -> Res<()> {
                    let (lock, cv) = &*state;
                    let mut id = 1u64;
                    let mut batch = Vec::with_capacity(64 * 1024);
                    let mut call = Vec::with_capacity(512);
                    let finish = |r: Res<()>| {
                        lock.lock().unwrap_or_else(|e| e.into_inner()).writer_done = true;
                        cv.notify_all();
                        r
                    };
                    loop {
                        let free = {
                            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                            while s.in_flight >= conns && Instant::now() < end {
                                s = cv.wait_timeout(s, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
                            }
                            if Instant::now() >= end {
                                break;
                            }
                            let free = conns - s.in_flight;
                            let now = Instant::now();
                            for k in 0..free as u64 {
                                s.started.insert(id + k, now);
                            }
                            s.in_flight += free;
                            free
                        };
                        batch.clear();
                        for _ in 0..free {
                            http::call_body(&mut call, id, false, &tool);
                            batch.extend_from_slice(&call);
                            batch.push(b'\n');
                            id += 1;
                        }
                        if let Err(e) = stdin.write_all(&batch) {
                            return finish(Err(format!("writing to the server: {e}")));
                        }
                    }
                    finish(Ok(()))
                })
            };
            let (lock, cv) = &*state;
            loop {
                {
                    let s = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if s.writer_done && s.in_flight == 0 {
                        break;
                    }
                }
                if let Err(e) = read(&mut line) {
                    // The writer closes the server's stdin when it is done; the server then exits.
                    let s = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if !(s.writer_done && s.in_flight == 0) {
                        drop(s);
                        note(e, &mut errors);
                    }
                    break;
                }
                let t1 = Instant::now();
                window.tick(t1);
                let id = serde_json::from_slice::<Value>(trim(&line)).ok().and_then(|v| v.get("id")?.as_u64());
                let t0 = {
                    let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                    let t0 = id.and_then(|id| s.started.remove(&id));
                    if t0.is_some() {
                        s.in_flight -= 1;
                    }
                    t0
                };
                cv.notify_one();
                match (id, t0) {
                    (Some(id), Some(t0)) => match http::check_echo(trim(&line), id) {
                        Ok(()) if window.counts(t1) => lat_ns.push((t1 - t0).as_nanos() as u64),
                        Ok(()) => {}
                        Err(e) => note(format!("call {id}: {e}"), &mut errors),
                    },
                    _ => note(format!("unexpected line: {}", String::from_utf8_lossy(&line)), &mut errors),
                }
            }
            window.tick(Instant::now().max(window.end));
            match writer.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => note(e, &mut errors),
                Err(_) => note("the writer thread panicked".into(), &mut errors),
            }
        }
        window.tick(Instant::now().max(window.end));
        Ok(Measured { lat_ns, errors, first_error, window: window.end - window.start, cpu: window.cpu() })
    }

    fn trim(line: &[u8]) -> &[u8] {
        let mut s = line;
        while let [rest @ .., b'\n' | b'\r'] = s {
            s = rest;
        }
        s
    }
}

// =============================================================================================
// `startup`: how long stdio servers take to answer `initialize` on their own

mod startup {
    use super::*;

    pub fn main(args: &[String]) -> Res<()> {
        let a = ArgList::parse(args, &[])?;
        a.check_known(&["--count"])?;
        let count: usize = a.num("--count", 1)?;
        if !(1..=256).contains(&count) {
            return Err("--count must be 1..=256".into());
        }
        let argv = a.trailing.clone();
        if argv.is_empty() {
            return Err("startup needs a command after --".into());
        }
        let threads: Vec<_> = (0..count)
            .map(|_| {
                let argv = argv.clone();
                std::thread::spawn(move || one(&argv))
            })
            .collect();
        let mut init_ms = Vec::new();
        let mut ready_ms = Vec::new();
        for t in threads {
            let (i, r) = t.join().map_err(|_| "a startup thread panicked".to_owned())??;
            init_ms.push(i);
            ready_ms.push(r);
        }
        println!("{}", json!({"init_ms": init_ms, "ready_ms": ready_ms}));
        Ok(())
    }

    /// Spawn → `initialize` answered, and → `tools/list` answered, in milliseconds.
    fn one(argv: &[String]) -> Res<(f64, f64)> {
        let t0 = Instant::now();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
        let result = (|| -> Res<(f64, f64)> {
            let mut stdin = child.stdin.take().ok_or("no stdin")?;
            let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
            let mut line = String::new();
            let mut init = http::initialize_body();
            init.push(b'\n');
            stdin.write_all(&init).map_err(|e| e.to_string())?;
            stdout.read_line(&mut line).map_err(|e| e.to_string())?;
            let t_init = t0.elapsed();
            if !line.contains("\"result\"") {
                return Err(format!("initialize failed: {line}"));
            }
            stdin
                .write_all(
                    b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n",
                )
                .map_err(|e| e.to_string())?;
            line.clear();
            stdout.read_line(&mut line).map_err(|e| e.to_string())?;
            let t_ready = t0.elapsed();
            Ok((t_init.as_secs_f64() * 1e3, t_ready.as_secs_f64() * 1e3))
        })();
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        result
    }
}

// =============================================================================================
// `run`: the scenarios

mod driver {
    use super::http::{Session, SyncConn, Url};
    use super::*;

    struct Cfg {
        scenarios: BTreeSet<String>,
        duration: f64,
        warmup: f64,
        sessions: usize,
        start_runs: usize,
        reloads: usize,
        /// Load runs per case, interleaved; the table shows medians.
        rounds: usize,
        mcpmux: PathBuf,
        echo: PathBuf,
        me: PathBuf,
        peers: PathBuf,
        root: PathBuf,
        scratch: PathBuf,
        /// `(client CPUs, system-under-test CPUs)` for taskset, when pinning.
        pin: Option<(String, String)>,
        sut_cpus: usize,
        ncpu: usize,
        commit: String,
        out: Option<PathBuf>,
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Status {
        Info,
        Met,
        Missed,
        Failed,
    }

    struct Row {
        scenario: &'static str,
        case: String,
        result: String,
        target: String,
        status: Status,
    }

    struct Table {
        rows: Vec<Row>,
    }

    impl Table {
        fn info(&mut self, scenario: &'static str, case: impl Into<String>, result: impl Into<String>) {
            self.rows.push(Row {
                scenario,
                case: case.into(),
                result: result.into(),
                target: "—".into(),
                status: Status::Info,
            });
        }

        fn target(
            &mut self,
            scenario: &'static str,
            case: impl Into<String>,
            result: impl Into<String>,
            target: impl Into<String>,
            met: bool,
        ) {
            self.rows.push(Row {
                scenario,
                case: case.into(),
                result: result.into(),
                target: target.into(),
                status: if met { Status::Met } else { Status::Missed },
            });
        }

        fn failed(&mut self, scenario: &'static str, case: impl Into<String>, error: &str) {
            self.rows.push(Row {
                scenario,
                case: case.into(),
                result: format!("FAILED: {}", error.replace('|', "/").replace('\n', " ")),
                target: "—".into(),
                status: Status::Failed,
            });
        }
    }

    pub fn main(args: &[String]) -> Res<()> {
        let a = ArgList::parse(args, &["--no-pin", "--smoke"])?;
        a.check_known(&[
            "--scenarios",
            "--duration",
            "--warmup",
            "--sessions",
            "--start-runs",
            "--reloads",
            "--rounds",
            "--peers",
            "--no-pin",
            "--mcpmux",
            "--echo",
            "--out",
            "--smoke",
        ])?;
        let smoke = a.flag("--smoke");
        let me = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let have_taskset = Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success());
        let pin = (!a.flag("--no-pin") && ncpu >= 2 && have_taskset)
            .then(|| ("0".to_owned(), if ncpu == 2 { "1".to_owned() } else { format!("1-{}", ncpu - 1) }));
        let scenarios: BTreeSet<String> =
            a.get("--scenarios").unwrap_or("s1,s2,s3,s4,s5,s6").split(',').map(|s| s.trim().to_lowercase()).collect();
        if let Some(bad) = scenarios.iter().find(|s| !["s1", "s2", "s3", "s4", "s5", "s6"].contains(&s.as_str())) {
            return Err(format!("unknown scenario '{bad}' (s1 … s6)"));
        }
        let scratch = std::env::temp_dir().join(format!("mcpmux-bench-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let cfg = Cfg {
            scenarios,
            duration: a.num("--duration", if smoke { 0.3 } else { 3.0 })?,
            warmup: a.num("--warmup", if smoke { 0.1 } else { 1.0 })?,
            sessions: a.num("--sessions", if smoke { 200 } else { 10_000 })?,
            start_runs: a.num("--start-runs", if smoke { 1 } else { 5 })?,
            reloads: a.num("--reloads", if smoke { 1 } else { 3 })?,
            rounds: a.num("--rounds", if smoke { 1 } else { 3 })?,
            mcpmux: a.get("--mcpmux").map_or_else(|| dir.join("mcpmux"), PathBuf::from),
            echo: a.get("--echo").map_or_else(|| dir.join("mcpmux-bench-echo"), PathBuf::from),
            me,
            peers: a.get("--peers").map_or_else(|| root.join("target/bench-peers"), PathBuf::from),
            root: root.clone(),
            scratch: scratch.clone(),
            sut_cpus: if pin.is_some() { ncpu - 1 } else { ncpu },
            pin,
            ncpu,
            commit: commit(&root),
            out: a.get("--out").map(PathBuf::from),
        };
        if !(0.05..=600.0).contains(&cfg.duration) || !(0.0..=600.0).contains(&cfg.warmup) {
            return Err("--duration must be 0.05..=600 and --warmup 0..=600 seconds".into());
        }
        if !(1..=100_000).contains(&cfg.sessions)
            || !(1..=50).contains(&cfg.start_runs)
            || cfg.reloads > 20
            || !(1..=20).contains(&cfg.rounds)
        {
            return Err("--sessions must be 1..=100000, --start-runs 1..=50, --reloads 0..=20, --rounds 1..=20".into());
        }
        for (what, p) in [("mcpmux", &cfg.mcpmux), ("mcpmux-bench-echo", &cfg.echo)] {
            if !p.exists() {
                return Err(format!("{what} not found at {} (build it: cargo build --release --bins)", p.display()));
            }
        }
        let result = run(&cfg);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn commit(root: &Path) -> String {
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(root)
                .args(args)
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        match git(&["rev-parse", "--short", "HEAD"]) {
            Some(c) => {
                let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
                if dirty { format!("{c}+dirty") } else { c }
            }
            None => "unknown".into(),
        }
    }

    fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    }

    fn machine() -> String {
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned()))
            .and_then(|k| k.parse::<u64>().ok())
            .map_or_else(String::new, |k| format!(", {:.0} GiB RAM", k as f64 / 1024.0 / 1024.0));
        let kernel =
            std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default();
        format!("{model}{mem}, Linux {kernel}")
    }

    fn now_utc() -> String {
        Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    fn run(cfg: &Cfg) -> Res<()> {
        let mut table = Table { rows: Vec::new() };
        let started = Instant::now();
        let load_before = load_average();
        let busy_before = (cpu::machine_busy_ticks(), Instant::now());
        eprintln!(
            "mcpmux-bench: scenarios {:?}, {} s + {} s warm-up per load run",
            cfg.scenarios, cfg.duration, cfg.warmup
        );
        let want = |s: &str| cfg.scenarios.contains(s);
        if want("s1") || want("s2") {
            latency_and_throughput(cfg, &mut table);
        }
        if want("s3") || want("s4") || want("s5") {
            catalog_memory_start(cfg, &mut table);
        }
        if want("s6") {
            peers(cfg, &mut table);
        }
        let busy_after = cpu::machine_busy_ticks();
        let wall = busy_before.1.elapsed().as_secs_f64();
        let machine_busy =
            (busy_after.saturating_sub(busy_before.0)) as f64 / TICKS_PER_SECOND / wall / cfg.ncpu as f64;
        table.rows.sort_by_key(|r| r.scenario);

        let pin = match &cfg.pin {
            Some((c, s)) => format!("client on CPU {c}, system under test on CPU {s} (taskset)"),
            None => "not pinned".into(),
        };
        let cpus = match &cfg.pin {
            Some((c, s)) => format!("{} ({c} \\| {s})", cfg.ncpu),
            None => cfg.ncpu.to_string(),
        };
        let mut out = String::new();
        let _ = writeln!(out, "## mcpmux benchmarks — {}", now_utc());
        let _ = writeln!(out);
        let _ = writeln!(out, "- machine: {}, {} CPUs; {pin}", machine(), cfg.ncpu);
        let _ = writeln!(out, "- commit: {}", cfg.commit);
        let _ = writeln!(
            out,
            "- load runs: {} s measured after {} s warm-up, {} interleaved rounds per case (medians shown, calls/s range in brackets); S4 {} sessions; S5 {} starts, {} reloads",
            cfg.duration, cfg.warmup, cfg.rounds, cfg.sessions, cfg.start_runs, cfg.reloads
        );
        let _ = writeln!(
            out,
            "- machine load: load average {load_before} before, {} after; all CPUs {:.0}% busy on average during the {:.0} s run (the bench's own processes included)",
            load_average(),
            machine_busy * 100.0,
            wall
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "| Scenario | Case | Result | Target | Met? | CPUs (client \\| SUT) | Commit |");
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
        for r in &table.rows {
            let status = match r.status {
                Status::Info => "—",
                Status::Met => "met",
                Status::Missed => "**missed**",
                Status::Failed => "**FAILED**",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {status} | {cpus} | {} |",
                r.scenario.to_uppercase(),
                r.case,
                r.result,
                r.target,
                cfg.commit
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "SUT CPU = CPU time of the system under test (gateway and backend processes) per call; client = the load \
             client's CPU use. Background = CPU used by everything else on the machine during the window, as a share \
             of all CPUs. Total time {:.0} s.",
            started.elapsed().as_secs_f64()
        );
        print!("{out}");
        if let Some(path) = &cfg.out {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::write(path, &out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let failed = table.rows.iter().filter(|r| r.status == Status::Failed).count();
        if failed > 0 {
            return Err(format!("{failed} measurement(s) failed; see the table"));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Processes

    /// A process the bench started, in a process group of its own; stopped and reaped on drop.
    struct Proc {
        child: Child,
        name: String,
        lines: Option<mpsc::Receiver<String>>,
        log: PathBuf,
    }

    impl Proc {
        /// Starts `argv` (on the system-under-test CPUs when `sut` and pinning). Stdout is read
        /// line by line (`next_line`); stderr goes to a log file in the scratch directory.
        fn start(cfg: &Cfg, name: &str, argv: &[OsString], cpus: Option<&str>, env: &[(&str, &str)]) -> Res<Proc> {
            let log = cfg.scratch.join(format!("{name}.log"));
            let stderr = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
            let mut cmd = match cpus {
                Some(c) => {
                    let mut cmd = Command::new("taskset");
                    cmd.arg("-c").arg(c).args(argv);
                    cmd
                }
                None => {
                    let mut cmd = Command::new(&argv[0]);
                    cmd.args(&argv[1..]);
                    cmd
                }
            };
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(stderr))
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot start {name} ({:?}): {e}", argv[0]))?;
            let (tx, rx) = mpsc::channel();
            if let Some(out) = child.stdout.take() {
                std::thread::spawn(move || {
                    for l in BufReader::new(out).lines().map_while(Result::ok) {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                });
            }
            Ok(Proc { child, name: name.to_owned(), lines: Some(rx), log })
        }

        fn pid(&self) -> u32 {
            self.child.id()
        }

        /// Waits for a stdout line `pick` accepts.
        fn wait_for<T>(&mut self, limit: Duration, mut pick: impl FnMut(&str) -> Option<T>) -> Res<T> {
            let deadline = Instant::now() + limit;
            let rx = self.lines.as_ref().ok_or("stdout is not captured")?;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(l) => {
                        if let Some(t) = pick(&l) {
                            return Ok(t);
                        }
                    }
                    Err(_) => {
                        let status = self.child.try_wait().ok().flatten();
                        return Err(format!(
                            "{} did not become ready within {limit:?} (exit status {status:?}); its log: {}",
                            self.name,
                            self.log_tail()
                        ));
                    }
                }
            }
        }

        fn log_tail(&self) -> String {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        }

        /// SIGTERM to the group, SIGKILL after 5 s; reaped.
        fn stop(&mut self) {
            let group = Pid::from_raw(self.pid() as i32);
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = killpg(group, Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            // Whatever is left of the group (helpers it started) goes too.
            let _ = killpg(group, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn os(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
        args.iter().map(|a| a.as_ref().to_owned()).collect()
    }

    fn sut_cpus(cfg: &Cfg) -> Option<&str> {
        cfg.pin.as_ref().map(|(_, s)| s.as_str())
    }

    /// Starts `mcpmux serve` on `config`; returns it, its URL and the time to "serving".
    fn start_mcpmux(cfg: &Cfg, name: &str, config: &Path) -> Res<(Proc, Url, Duration)> {
        let argv = os(&[&cfg.mcpmux, &"serve", &"--config", &config, &"--listen", &"127.0.0.1:0"]);
        let t0 = Instant::now();
        let mut p = Proc::start(cfg, name, &argv, sut_cpus(cfg), &[("RUST_LOG", "warn")])?;
        let url = p.wait_for(START_TIMEOUT, |l| l.strip_prefix("serving ").map(str::to_owned))?;
        let took = t0.elapsed();
        Ok((p, Url::parse(&url)?, took))
    }

    fn write_config(path: &Path, servers: Value, settings: Value) -> Res<()> {
        let doc = json!({"mcpServers": servers, "mcpmux": settings});
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&doc).unwrap_or_default())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename to {}: {e}", path.display()))
    }

    fn echo_stdio(cfg: &Cfg, tools: usize) -> Value {
        json!({"command": cfg.echo, "args": ["stdio", "--tools", tools.to_string()]})
    }

    fn start_echo_http(cfg: &Cfg) -> Res<(Proc, Url)> {
        let threads = cfg.sut_cpus.to_string();
        let argv = os(&[&cfg.echo, &"http", &"0", &"--threads", &threads]);
        let mut p = Proc::start(cfg, "echo-http", &argv, sut_cpus(cfg), &[])?;
        let port = p.wait_for(START_TIMEOUT, |l| l.strip_prefix("listening ").and_then(|p| p.parse::<u16>().ok()))?;
        Ok((p, Url::parse(&format!("http://127.0.0.1:{port}/mcp"))?))
    }

    /// Runs `mcpmux-bench load|pipe …` on the client CPU and returns its JSON line.
    fn run_client(cfg: &Cfg, args: Vec<OsString>) -> Res<Value> {
        let mut argv: Vec<OsString> = vec![cfg.me.clone().into_os_string()];
        argv.extend(args);
        let mut p = Proc::start(cfg, "client", &argv, cfg.pin.as_ref().map(|(c, _)| c.as_str()), &[])?;
        let limit = Duration::from_secs_f64(cfg.warmup + cfg.duration) + Duration::from_secs(60);
        let line = p.wait_for(limit, |l| l.starts_with('{').then(|| l.to_owned()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match p.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => break None,
            }
        };
        if !status.is_some_and(|s| s.success()) {
            return Err(format!("the load client failed ({status:?}): {}", p.log_tail()));
        }
        serde_json::from_str(&line).map_err(|e| format!("the load client printed bad JSON ({e}): {line}"))
    }

    fn load_args(cfg: &Cfg, url: &Url, conns: usize, tool: &str, sut: &[u32]) -> Vec<OsString> {
        let mut a: Vec<String> = vec![
            "load".into(),
            "--url".into(),
            format!("http://{}{}", url.host, url.path),
            "--conns".into(),
            conns.to_string(),
            "--duration".into(),
            cfg.duration.to_string(),
            "--warmup".into(),
            cfg.warmup.to_string(),
            "--tool".into(),
            tool.into(),
        ];
        for p in sut {
            a.push("--sut".into());
            a.push(p.to_string());
        }
        a.into_iter().map(OsString::from).collect()
    }

    /// One load run's numbers (or the medians of several).
    #[derive(Clone)]
    struct Run {
        rate: f64,
        p50: f64,
        p99: f64,
        sut_us: f64,
        client_pct: f64,
        background: f64,
        errors: u64,
        first_error: String,
    }

    impl Run {
        fn of(cfg: &Cfg, v: &Value) -> Run {
            let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let calls = f("calls");
            let window = f("window_s").max(1e-9);
            Run {
                rate: f("rate"),
                p50: f("p50_us"),
                p99: f("p99_us"),
                sut_us: if calls > 0.0 { f("sut_cpu_s") * 1e6 / calls } else { 0.0 },
                client_pct: f("client_cpu_s") / window * 100.0,
                background: ((f("busy_cpu_s") - f("sut_cpu_s") - f("client_cpu_s")) / window / cfg.ncpu as f64 * 100.0)
                    .max(0.0),
                errors: v.get("errors").and_then(Value::as_u64).unwrap_or(0),
                first_error: v.get("first_error").and_then(Value::as_str).unwrap_or("").replace('|', "/"),
            }
        }

        /// The load client used (nearly) all of its CPU: the rate is a lower bound.
        fn client_bound(&self) -> bool {
            self.client_pct >= 90.0
        }

        /// Each number's median over `runs`.
        fn median_of(runs: &[Run]) -> Run {
            let m = |f: fn(&Run) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
            Run {
                rate: m(|r| r.rate),
                p50: m(|r| r.p50),
                p99: m(|r| r.p99),
                sut_us: m(|r| r.sut_us),
                client_pct: m(|r| r.client_pct),
                background: m(|r| r.background),
                errors: runs.iter().map(|r| r.errors).sum(),
                first_error: runs.iter().map(|r| r.first_error.clone()).find(|e| !e.is_empty()).unwrap_or_default(),
            }
        }

        fn summary(&self, runs: &[Run]) -> String {
            let mut s = format!("{} calls/s", rate_text(self.rate));
            if runs.len() > 1 {
                let lo = runs.iter().map(|r| r.rate).fold(f64::INFINITY, f64::min);
                let hi = runs.iter().map(|r| r.rate).fold(0.0, f64::max);
                let _ = write!(s, " ({}–{})", rate_text(lo), rate_text(hi));
            }
            let _ = write!(
                s,
                "; p50 {}, p99 {}; SUT CPU {:.0} µs/call; client {:.0}% CPU; background {:.0}%",
                us_text(self.p50),
                us_text(self.p99),
                self.sut_us,
                self.client_pct,
                self.background
            );
            if self.client_bound() {
                s.push_str(" (**client-bound**: the one-thread load client, not the server, was the limit)");
            }
            if self.errors > 0 {
                let _ = write!(s, "; **{} errors**: {}", self.errors, self.first_error);
            }
            s
        }
    }

    fn rate_text(r: f64) -> String {
        if r >= 10_000.0 { format!("{:.1}k", r / 1000.0) } else { format!("{r:.0}") }
    }

    fn us_text(us: f64) -> String {
        if us >= 1000.0 { format!("{:.2} ms", us / 1000.0) } else { format!("{us:.0} µs") }
    }

    /// One measured case: a system under test at one concurrency.
    struct Case<'a> {
        scenario: &'static str,
        label: String,
        conns: usize,
        run: Box<dyn Fn() -> Res<Value> + 'a>,
    }

    /// Runs every case `cfg.rounds` times, round by round (so a burst of load from elsewhere on
    /// the machine hits every case alike), adds one row per case with the medians, and returns
    /// the medians of the cases that had no error, by `(label, conns)`.
    fn run_cases(cfg: &Cfg, table: &mut Table, cases: &[Case]) -> HashMap<(String, usize), Run> {
        let mut runs: Vec<Result<Vec<Run>, String>> = cases.iter().map(|_| Ok(Vec::new())).collect();
        for round in 1..=cfg.rounds {
            for (case, slot) in cases.iter().zip(runs.iter_mut()) {
                let Ok(done) = slot else { continue };
                eprintln!("mcpmux-bench: {} round {round}: {}, {} conns", case.scenario, case.label, case.conns);
                match (case.run)() {
                    Ok(v) => done.push(Run::of(cfg, &v)),
                    Err(e) => *slot = Err(e),
                }
            }
        }
        let mut medians = HashMap::new();
        for (case, result) in cases.iter().zip(runs) {
            let name = format!("{}, {} conn{}", case.label, case.conns, if case.conns == 1 { "" } else { "s" });
            match result {
                Err(e) => table.failed(case.scenario, name, &e),
                Ok(runs) => {
                    let m = Run::median_of(&runs);
                    if m.errors > 0 {
                        table.failed(case.scenario, name, &m.summary(&runs));
                    } else {
                        table.info(case.scenario, name, m.summary(&runs));
                        medians.insert((case.label.clone(), case.conns), m);
                    }
                }
            }
        }
        medians
    }

    // -----------------------------------------------------------------------------------------
    // S1 and S2

    const S2_CONNS: [usize; 2] = [32, 256];

    const PIPE: &str = "direct pipe → Rust stdio echo";
    const MUX_STDIO: &str = "mcpmux → Rust stdio echo";
    const HTTP: &str = "direct HTTP → Rust HTTP echo";
    const MUX_HTTP: &str = "mcpmux → Rust HTTP echo";

    fn latency_and_throughput(cfg: &Cfg, table: &mut Table) {
        let scn = if cfg.scenarios.contains("s1") { "s1" } else { "s2" };
        let mut levels = Vec::new();
        if cfg.scenarios.contains("s1") {
            levels.push(1);
        }
        if cfg.scenarios.contains("s2") {
            levels.extend(S2_CONNS);
        }

        // Every system under test is started first (idle ones use no CPU), so that the rounds
        // can go from one to the next.
        let mux_stdio = {
            let config = cfg.scratch.join("stdio.json");
            write_config(&config, json!({"echo": echo_stdio(cfg, 1)}), json!({}))
                .and_then(|()| start_mcpmux(cfg, "mcpmux-stdio", &config))
        };
        let echo = start_echo_http(cfg);
        let mux_http = echo.as_ref().map_err(Clone::clone).and_then(|(_, echo_url)| {
            let config = cfg.scratch.join("http.json");
            let server = json!({"url": format!("http://{}{}", echo_url.host, echo_url.path), "transport": "http"});
            write_config(&config, json!({"echo": server}), json!({}))
                .and_then(|()| start_mcpmux(cfg, "mcpmux-http", &config))
        });

        let mut cases: Vec<Case> = Vec::new();
        for &conns in &levels {
            let scenario = if conns == 1 { "s1" } else { "s2" };
            // Direct pipe: the load client spawns the backend (on the SUT CPUs) and talks to its pipes.
            cases.push(Case {
                scenario,
                label: PIPE.into(),
                conns,
                run: Box::new(move || {
                    let mut a: Vec<OsString> = vec!["pipe".into(), "--conns".into(), conns.to_string().into()];
                    a.extend(["--duration".into(), cfg.duration.to_string().into()]);
                    a.extend(["--warmup".into(), cfg.warmup.to_string().into(), "--".into()]);
                    if let Some(cpus) = sut_cpus(cfg) {
                        a.extend(["taskset".into(), "-c".into(), cpus.into()]);
                    }
                    a.extend([cfg.echo.clone().into_os_string(), "stdio".into()]);
                    run_client(cfg, a)
                }),
            });
            if let Ok((mux, url, _)) = &mux_stdio {
                cases.push(Case {
                    scenario,
                    label: MUX_STDIO.into(),
                    conns,
                    run: Box::new(move || run_client(cfg, load_args(cfg, url, conns, "echo_echo", &[mux.pid()]))),
                });
            }
            if let Ok((echo, echo_url)) = &echo {
                cases.push(Case {
                    scenario,
                    label: HTTP.into(),
                    conns,
                    run: Box::new(move || run_client(cfg, load_args(cfg, echo_url, conns, "echo", &[echo.pid()]))),
                });
                if let Ok((mux, url, _)) = &mux_http {
                    cases.push(Case {
                        scenario,
                        label: MUX_HTTP.into(),
                        conns,
                        run: Box::new(move || {
                            run_client(cfg, load_args(cfg, url, conns, "echo_echo", &[mux.pid(), echo.pid()]))
                        }),
                    });
                }
            }
        }
        if let Err(e) = &mux_stdio {
            table.failed(scn, MUX_STDIO, e);
        }
        match (&echo, &mux_http) {
            (Err(e), _) => table.failed(scn, HTTP, e),
            (Ok(_), Err(e)) => table.failed(scn, MUX_HTTP, e),
            _ => {}
        }
        let results = run_cases(cfg, table, &cases);
        drop(cases);
        drop(mux_http);
        drop(echo);
        drop(mux_stdio);

        // Targets.
        let get = |label: &str, conns: usize| results.get(&(label.to_owned(), conns));
        if cfg.scenarios.contains("s1") {
            if let (Some(m), Some(d)) = (get(MUX_STDIO, 1), get(PIPE, 1)) {
                let extra = m.p50 - d.p50;
                table.target(
                    "s1",
                    "mcpmux → stdio echo vs direct pipe, p50",
                    format!(
                        "{} vs {}: +{extra:.0} µs (p99 {} vs {})",
                        us_text(m.p50),
                        us_text(d.p50),
                        us_text(m.p99),
                        us_text(d.p99)
                    ),
                    "≤ +60 µs",
                    extra <= 60.0,
                );
            }
            if let (Some(m), Some(d)) = (get(MUX_HTTP, 1), get(HTTP, 1)) {
                let ratio = m.p50 / d.p50.max(1e-9);
                table.target(
                    "s1",
                    "mcpmux → HTTP echo vs direct HTTP, p50",
                    format!(
                        "{} vs {}: {ratio:.2}× (p99 {} vs {})",
                        us_text(m.p50),
                        us_text(d.p50),
                        us_text(m.p99),
                        us_text(d.p99)
                    ),
                    "≤ 1.5×",
                    ratio <= 1.5,
                );
            }
        }
        if cfg.scenarios.contains("s2") {
            for conns in S2_CONNS {
                let Some(d) = get(HTTP, conns) else { continue };
                for label in [MUX_HTTP, MUX_STDIO] {
                    if let Some(m) = get(label, conns) {
                        let ratio = m.rate / d.rate.max(1e-9);
                        let bound =
                            if d.client_bound() { " (direct HTTP was client-bound: an upper bound)" } else { "" };
                        table.target(
                            "s2",
                            format!("{label} vs direct HTTP, {conns} conns"),
                            format!("{} vs {} calls/s: {ratio:.2}×{bound}", rate_text(m.rate), rate_text(d.rate)),
                            "≥ 0.6×",
                            ratio >= 0.6,
                        );
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // S3, S4, S5: one daemon with 10 backends × 100 tools

    const BACKENDS: usize = 10;
    const TOOLS_EACH: usize = 100;

    fn catalog_servers(cfg: &Cfg, count: usize) -> Value {
        let mut servers = serde_json::Map::new();
        for i in 0..count {
            servers.insert(format!("b{i}"), echo_stdio(cfg, TOOLS_EACH));
        }
        Value::Object(servers)
    }

    fn vm_rss_kib(pid: u32) -> Res<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        if v.is_empty() { 0.0 } else { v[v.len() / 2] }
    }

    fn catalog_memory_start(cfg: &Cfg, table: &mut Table) {
        let want = |s: &str| cfg.scenarios.contains(s);
        let config = cfg.scratch.join("catalog.json");
        // Everything in one page, so one tools/list is the whole catalog.
        let settings = json!({"pageSize": 10000});
        if let Err(e) = write_config(&config, catalog_servers(cfg, BACKENDS), settings.clone()) {
            table.failed("s3", "config", &e);
            return;
        }

        // S5 start: the backends alone, then mcpmux with them, `start_runs` times each.
        let mut own = Vec::new();
        let mut mux_ms = Vec::new();
        let mut daemon = None;
        for run in 0..cfg.start_runs {
            if want("s5") {
                let mut a: Vec<OsString> =
                    vec!["startup".into(), "--count".into(), BACKENDS.to_string().into(), "--".into()];
                a.extend([
                    cfg.echo.clone().into_os_string(),
                    "stdio".into(),
                    "--tools".into(),
                    TOOLS_EACH.to_string().into(),
                ]);
                let mut argv: Vec<OsString> = vec![cfg.me.clone().into_os_string()];
                argv.extend(a);
                // Pinned like mcpmux: its children share the system-under-test CPUs.
                let r = Proc::start(cfg, "startup", &argv, sut_cpus(cfg), &[])
                    .and_then(|mut p| p.wait_for(START_TIMEOUT, |l| l.starts_with('{').then(|| l.to_owned())));
                match r.and_then(|l| serde_json::from_str::<Value>(&l).map_err(|e| e.to_string())) {
                    Ok(v) => {
                        let max = |k: &str| {
                            v[k].as_array().map_or(0.0, |a| a.iter().filter_map(Value::as_f64).fold(0.0, f64::max))
                        };
                        own.push((max("init_ms"), max("ready_ms")));
                    }
                    Err(e) => {
                        table.failed("s5", "backends' own start", &e);
                        return;
                    }
                }
            }
            match start_mcpmux(cfg, "mcpmux-catalog", &config) {
                Ok((p, url, took)) => {
                    mux_ms.push(took.as_secs_f64() * 1e3);
                    if run + 1 == cfg.start_runs {
                        daemon = Some((p, url));
                    }
                }
                Err(e) => {
                    table.failed("s5", "mcpmux start", &e);
                    return;
                }
            }
        }
        let Some((mux, url)) = daemon else { return };
        if want("s5") && !own.is_empty() {
            let mux_med = median(&mut mux_ms.clone());
            let init_med = median(&mut own.iter().map(|o| o.0).collect::<Vec<_>>());
            let ready_med = median(&mut own.iter().map(|o| o.1).collect::<Vec<_>>());
            let over = mux_med - init_med;
            table.target(
                "s5",
                format!("start: spawn → all {BACKENDS} backends ready (serving), median of {}", cfg.start_runs),
                format!(
                    "mcpmux {mux_med:.1} ms vs slowest backend's own initialize {init_med:.1} ms (+tools/list {ready_med:.1} ms): +{over:.1} ms"
                ),
                "≤ +30 ms",
                over <= 30.0,
            );
        }

        // S4 idle: before any client request.
        std::thread::sleep(Duration::from_millis(300));
        let idle = vm_rss_kib(mux.pid());
        if want("s4") {
            match &idle {
                Ok(kib) => table.target(
                    "s4",
                    format!("idle RSS, {BACKENDS} backends × {TOOLS_EACH} tools (daemon only)"),
                    format!("{:.1} MiB", *kib as f64 / 1024.0),
                    "< 20 MiB",
                    (*kib as f64) < 20.0 * 1024.0,
                ),
                Err(e) => table.failed("s4", "idle RSS", e),
            }
        }

        // S3: tools/list of the whole merged catalog.
        if want("s3") {
            let label = format!("tools/list, {BACKENDS} backends × {TOOLS_EACH} tools");
            let case = Case {
                scenario: "s3",
                label: label.clone(),
                conns: 1,
                run: Box::new(|| {
                    let mut a = load_args(cfg, &url, 1, "", &[mux.pid()]);
                    let expect = (BACKENDS * TOOLS_EACH).to_string();
                    a.extend(["--method".into(), "list".into(), "--expect-tools".into(), expect.into()]);
                    run_client(cfg, a)
                }),
            };
            let mut rows = Table { rows: Vec::new() };
            let results = run_cases(cfg, &mut rows, std::slice::from_ref(&case));
            match (results.get(&(label, 1)), rows.rows.pop()) {
                (Some(m), Some(row)) => {
                    let size = list_size(&url)
                        .map(|b| format!("; {:.0} KiB per answer", b as f64 / 1024.0))
                        .unwrap_or_default();
                    table.target("s3", row.case, format!("{}{size}", row.result), "p50 < 0.5 ms", m.p50 < 500.0);
                }
                (_, Some(row)) => table.rows.push(row),
                (_, None) => table.failed("s3", "tools/list", "no result"),
            }
        }

        // S4 sessions.
        if want("s4") {
            eprintln!("mcpmux-bench: s4: {} sessions", cfg.sessions);
            match sessions(cfg, &url, mux.pid()) {
                Ok((before, after, deleted, took)) => {
                    let per = (after as f64 - before as f64) / cfg.sessions as f64;
                    table.target(
                        "s4",
                        format!("growth per session, {} sessions (initialize; DELETE after)", cfg.sessions),
                        format!(
                            "{per:.2} KiB/session ({:.1} → {:.1} MiB; {:.1} MiB after DELETE; {:.0} sessions/s)",
                            before as f64 / 1024.0,
                            after as f64 / 1024.0,
                            deleted as f64 / 1024.0,
                            cfg.sessions as f64 / took.as_secs_f64()
                        ),
                        "< 16 KiB",
                        per < 16.0,
                    );
                }
                Err(e) => table.failed("s4", "sessions", &e),
            }
        }

        // S5 reload: add a backend, time until a client sees its tools.
        if want("s5") && cfg.reloads > 0 {
            eprintln!("mcpmux-bench: s5: reload");
            match reloads(cfg, &config, &settings, &url) {
                Ok(mut ms) => {
                    let worst = ms.iter().copied().fold(0.0, f64::max);
                    let med = median(&mut ms);
                    table.target(
                        "s5",
                        format!("reload: config write → new backend's tools listed, {} reloads", cfg.reloads),
                        format!("median {med:.0} ms, max {worst:.0} ms"),
                        "≤ 1 s",
                        worst <= 1000.0,
                    );
                }
                Err(e) => table.failed("s5", "reload", &e),
            }
        }
        drop(mux);
    }

    fn list_size(url: &Url) -> Res<usize> {
        let mut conn = SyncConn::connect(url)?;
        let session = http::open_session(&mut conn, url)?;
        let (mut req, mut call, mut body) = (Vec::new(), Vec::new(), Vec::new());
        http::call_body(&mut call, 1, true, "");
        http::request(&mut req, "POST", url, &session, &call);
        conn.roundtrip(&req, &mut body)?;
        Ok(body.len())
    }

    /// Creates `cfg.sessions` sessions, then DELETEs them: RSS before, after, after DELETE.
    fn sessions(cfg: &Cfg, url: &Url, pid: u32) -> Res<(u64, u64, u64, Duration)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build the runtime: {e}"))?;
        let before = vm_rss_kib(pid)?;
        let t0 = Instant::now();
        let ids = runtime.block_on(open_sessions(url.clone(), cfg.sessions))?;
        let took = t0.elapsed();
        std::thread::sleep(Duration::from_millis(200));
        let after = vm_rss_kib(pid)?;
        runtime.block_on(delete_sessions(url.clone(), ids))?;
        std::thread::sleep(Duration::from_millis(200));
        let deleted = vm_rss_kib(pid)?;
        Ok((before, after, deleted, took))
    }

    const SESSION_CONNS: usize = 8;

    async fn open_sessions(url: Url, count: usize) -> Res<Vec<String>> {
        let next = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..SESSION_CONNS)
            .map(|_| {
                let (url, next) = (url.clone(), next.clone());
                tokio::spawn(async move {
                    let mut conn = http::AsyncConn::connect(&url).await?;
                    let none = Session { id: None, version: PROTOCOL_VERSION.to_owned() };
                    let init = http::initialize_body();
                    let (mut req, mut body, mut ids) = (Vec::new(), Vec::new(), Vec::new());
                    while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
                        req.clear();
                        http::request(&mut req, "POST", &url, &none, &init);
                        let head = tokio::time::timeout(IO_TIMEOUT, conn.roundtrip(&req, &mut body))
                            .await
                            .map_err(|_| "initialize timed out".to_owned())??;
                        let s = http::session_of(&head, &body)?;
                        ids.push(s.id.ok_or("initialize gave no Mcp-Session-Id")?);
                    }
                    Ok::<_, String>(ids)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for t in tasks {
            all.extend(t.await.map_err(|e| e.to_string())??);
        }
        Ok(all)
    }

    async fn delete_sessions(url: Url, ids: Vec<String>) -> Res<()> {
        let ids = Arc::new(Mutex::new(ids));
        let tasks: Vec<_> = (0..SESSION_CONNS)
            .map(|_| {
                let (url, ids) = (url.clone(), ids.clone());
                tokio::spawn(async move {
                    let mut conn = http::AsyncConn::connect(&url).await?;
                    let (mut req, mut body) = (Vec::new(), Vec::new());
                    loop {
                        let Some(id) = ids.lock().unwrap_or_else(|e| e.into_inner()).pop() else { return Ok(()) };
                        req.clear();
                        let s = Session { id: Some(id), version: PROTOCOL_VERSION.to_owned() };
                        http::request(&mut req, "DELETE", &url, &s, b"");
                        let head = tokio::time::timeout(IO_TIMEOUT, conn.roundtrip(&req, &mut body))
                            .await
                            .map_err(|_| "DELETE timed out".to_owned())??;
                        if !(200..300).contains(&head.status) {
                            return Err(format!("DELETE answered HTTP {}", head.status));
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// Each reload adds backend `b{10+i}`; returns the time from the config write to a
    /// `tools/list` that has its `echo`, polled every 5 ms.
    fn reloads(cfg: &Cfg, config: &Path, settings: &Value, url: &Url) -> Res<Vec<f64>> {
        let mut conn = SyncConn::connect(url)?;
        let session = http::open_session(&mut conn, url)?;
        let mut times = Vec::new();
        let mut id = 1u64;
        for i in 0..cfg.reloads {
            let count = BACKENDS + i + 1;
            let wanted = format!("b{}_echo", count - 1);
            let t0 = Instant::now();
            write_config(config, catalog_servers(cfg, count), settings.clone())?;
            loop {
                id += 1;
                let names = http::list_tools(&mut conn, url, &session, id)?;
                if names.contains(&wanted) {
                    if names.len() != count * TOOLS_EACH {
                        return Err(format!(
                            "after reload {} tools are listed, wanted {}",
                            names.len(),
                            count * TOOLS_EACH
                        ));
                    }
                    break;
                }
                if t0.elapsed() > Duration::from_secs(20) {
                    return Err(format!("'{wanted}' was not listed within 20 s of the config write"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        Ok(times)
    }

    // -----------------------------------------------------------------------------------------
    // S6: peers in front of the Python echo backend

    const S6_CONNS: usize = 32;

    /// A gateway that was started: the process, its URL and the echo tool's name there.
    type Started = Res<(Proc, Url, String)>;

    fn free_port() -> Res<u16> {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        Ok(l.local_addr().map_err(|e| e.to_string())?.port())
    }

    /// Polls until an MCP session can be opened at `url`.
    fn wait_http(url: &Url, proc: &mut Proc) -> Res<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let attempt = SyncConn::connect(url).and_then(|mut c| http::open_session(&mut c, url));
            match attempt {
                Ok(_) => return Ok(()),
                Err(e) => {
                    if Instant::now() > deadline || !matches!(proc.child.try_wait(), Ok(None)) {
                        return Err(format!(
                            "{} never answered initialize ({e}); its log: {}",
                            proc.name,
                            proc.log_tail()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn peers(cfg: &Cfg, table: &mut Table) {
        let python = cfg.peers.join("venv/bin/python");
        let supergateway = cfg.peers.join("node/node_modules/supergateway/dist/index.js");
        let echo_py = cfg.root.join("bench/echo_server.py");
        let proxy_py = cfg.root.join("bench/fastmcp_proxy.py");
        for p in [&python, &supergateway, &echo_py, &proxy_py] {
            if !p.exists() {
                table.failed(
                    "s6",
                    "peers",
                    &format!(
                        "{} is missing: install the peers with bench/peers.sh {}",
                        p.display(),
                        cfg.peers.display()
                    ),
                );
                return;
            }
        }
        // Every gateway is started first; the rounds then go from one to the next.
        let gateways: [(&str, Started); 3] = [
            (
                "mcpmux",
                (|| {
                    let config = cfg.scratch.join("python.json");
                    write_config(&config, json!({"py": {"command": python, "args": [echo_py]}}), json!({}))?;
                    let (p, url, _) = start_mcpmux(cfg, "mcpmux-python", &config)?;
                    Ok((p, url, "py_echo".to_owned()))
                })(),
            ),
            (
                "supergateway (stateful)",
                (|| {
                    let port = free_port()?;
                    let command = format!("{} {}", python.display(), echo_py.display());
                    let argv = os(&[
                        &"node",
                        &supergateway,
                        &"--stdio",
                        &command,
                        &"--outputTransport",
                        &"streamableHttp",
                        &"--stateful",
                        &"--port",
                        &port.to_string(),
                        &"--logLevel",
                        &"none",
                    ]);
                    let mut p = Proc::start(cfg, "supergateway", &argv, sut_cpus(cfg), &[])?;
                    let url = Url::parse(&format!("http://127.0.0.1:{port}/mcp"))?;
                    wait_http(&url, &mut p)?;
                    Ok((p, url, "echo".to_owned()))
                })(),
            ),
            (
                "FastMCP proxy (shared client)",
                (|| {
                    let argv = os(&[&python, &proxy_py, &python, &echo_py]);
                    let mut p = Proc::start(cfg, "fastmcp-proxy", &argv, sut_cpus(cfg), &[])?;
                    let port = p.wait_for(START_TIMEOUT, |l| l.trim().parse::<u16>().ok())?;
                    let url = Url::parse(&format!("http://127.0.0.1:{port}/mcp"))?;
                    wait_http(&url, &mut p)?;
                    Ok((p, url, "echo".to_owned()))
                })(),
            ),
        ];
        let mut cases = Vec::new();
        for (name, started) in &gateways {
            let label = format!("{name} → Python echo");
            match started {
                Ok((proc, url, tool)) => cases.push(Case {
                    scenario: "s6",
                    label,
                    conns: S6_CONNS,
                    run: Box::new(move || run_client(cfg, load_args(cfg, url, S6_CONNS, tool, &[proc.pid()]))),
                }),
                Err(e) => table.failed("s6", label, e),
            }
        }
        let results = run_cases(cfg, table, &cases);
        drop(cases);
        drop(gateways);
        let rates: Vec<(&str, f64)> = results.iter().map(|((label, _), run)| (label.as_str(), run.rate)).collect();
        let rate = |name: &str| rates.iter().find(|(l, _)| l.starts_with(name)).map(|(_, r)| *r);
        if let Some(m) = rate("mcpmux") {
            for (peer, want) in [("supergateway", 5.0), ("FastMCP", 40.0)] {
                if let Some(p) = rate(peer) {
                    let ratio = m / p.max(1e-9);
                    table.target(
                        "s6",
                        format!("mcpmux vs {peer}, {S6_CONNS} conns"),
                        format!("{} vs {} calls/s: {ratio:.1}×", rate_text(m), rate_text(p)),
                        format!("≥ {want:.0}×"),
                        ratio >= want,
                    );
                }
            }
        }
    }
}
