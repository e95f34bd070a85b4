//! Remote backends: the parts both HTTP transports share, and the choice between them.
//!
//! [`start`] builds one HTTP client for the connection (rustls, the standard proxy variables,
//! a connect timeout, the config's static headers marked sensitive) and spawns the transport
//! task. A plain `http://` backend with no proxy configured also gets a direct client (`Direct`)
//! for its POSTs: reqwest's per-request layers (redirects, retries, URL re-parsing) cost about a
//! sixth of the instructions of a relayed call. Which transport it runs:
//!
//! - `transport: "http"` / `"streamable-http"` → [`super::http`] (MCP 2025-03-26 and later);
//! - `transport: "sse"` → [`super::sse`] (the legacy 2024-11-05 HTTP+SSE transport);
//! - no `transport`: a URL whose path ends in `/sse` → SSE; otherwise streamable HTTP, falling
//!   back to SSE when the `initialize` POST is answered 400, 404 or 405 (what an SSE-only server
//!   says to a POST on its stream URL). The choice is logged and shown by
//!   [`RemoteHandle::chosen`].
//!
//! Also here: a server-sent-events parser bounded by `max_message_bytes`, bounded body reads,
//! and error descriptions that never contain header values or URL query strings.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::client::{Outbox, Peer};
use crate::config::{RemoteConfig, RemoteKind, Secret};
use crate::jsonrpc::Message;

/// The `User-Agent` of every request.
const AGENT: &str = concat!("mcpmux/", env!("CARGO_PKG_VERSION"));
/// Time allowed to open a TCP (and TLS) connection to a remote backend.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A POST may run this much longer than the request timeout, so that the client core's own
/// timer (which answers -32001 and tells the backend to cancel) always fires first.
pub(super) const POST_GRACE: Duration = Duration::from_secs(2);
/// Outgoing messages being POSTed at the same time, per connection.
pub(super) const MAX_CONCURRENT_POSTS: usize = 64;
/// How long `stop` waits for the transport to end its session.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Error bodies are quoted up to this many characters.
const SNIPPET_CHARS: usize = 200;

/// Headers mcpmux sets itself; a config entry cannot override them.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "transfer-encoding",
    "connection",
];

/// Which transport a remote connection ended up speaking. Cheap to clone.
#[derive(Clone, Default)]
pub struct Chosen(Arc<OnceLock<&'static str>>);

impl Chosen {
    pub const STREAMABLE_HTTP: &'static str = "streamable-http";
    pub const SSE: &'static str = "sse";

    /// `"streamable-http"`, `"sse"`, or `"http"` while it is still being inferred.
    pub fn get(&self) -> &'static str {
        self.0.get().copied().unwrap_or("http")
    }

    pub(super) fn set(&self, kind: &'static str) {
        let _ = self.0.set(kind);
    }
}

/// A running remote transport. Dropping it stops the transport without waiting; prefer
/// [`RemoteHandle::stop`], which also ends the remote session.
pub struct RemoteHandle {
    stop: CancellationToken,
    done: Option<oneshot::Receiver<()>>,
    chosen: Chosen,
}

impl RemoteHandle {
    /// The transport in use (see [`Chosen::get`]).
    pub fn chosen(&self) -> Chosen {
        self.chosen.clone()
    }

    /// Stops every task of the transport; a streamable-HTTP session is ended with `DELETE`.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(STOP_GRACE, done).await;
        }
    }
}

impl Drop for RemoteHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A pooled HTTP/1.1 client with nothing between the request and the connection: the POST
/// path to plain-HTTP backends.
pub(super) type Direct = hyper_util::client::legacy::Client<HttpConnector, reqwest::Body>;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error(transparent)]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Direct(#[from] hyper_util::client::legacy::Error),
}

impl SendError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Client(e) if e.is_timeout())
    }

    pub fn is_connect(&self) -> bool {
        match self {
            SendError::Client(e) => e.is_connect(),
            SendError::Direct(e) => e.is_connect(),
        }
    }

    /// What failed and the root cause, without the URL.
    fn describe(&self) -> String {
        match self {
            SendError::Client(e) => describe(e),
            SendError::Direct(e) if e.is_connect() => with_root_cause("could not connect", e),
            SendError::Direct(e) => with_root_cause("request failed", e),
        }
    }
}

/// What both transports share for one connection.
pub(super) struct Ctx {
    pub peer: Arc<Peer>,
    pub client: reqwest::Client,
    /// POSTs go through this instead of `client` when set (see [`direct_client`]), until a
    /// POST is redirected.
    pub direct: Option<Direct>,
    /// A direct POST was redirected: later ones go through reqwest from the start.
    redirected: AtomicBool,
    pub url: Url,
    /// The URL for logs and errors: no credentials, no query.
    pub shown: String,
    /// The config's static headers, marked sensitive.
    pub headers: HeaderMap,
    /// Their values, to scrub from anything quoted back from the backend.
    secrets: Vec<String>,
    pub max_bytes: usize,
    pub request_timeout: Duration,
    /// Set by [`RemoteHandle::stop`].
    pub stop: CancellationToken,
    pub chosen: Chosen,
}

impl Ctx {
    pub fn name(&self) -> &str {
        self.peer.name()
    }

    /// `text` with every configured header value replaced, cut to a short snippet.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.trim().to_owned();
        for s in &self.secrets {
            if !s.is_empty() {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        if out.chars().count() > SNIPPET_CHARS {
            out = out.chars().take(SNIPPET_CHARS).collect::<String>() + "…";
        }
        out
    }

    /// Resolves when the transport should end: stopped, or the connection closed.
    pub async fn ended(&self) {
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = self.peer.closed().cancelled() => {}
        }
    }

    pub fn is_ended(&self) -> bool {
        self.stop.is_cancelled() || self.peer.is_closed()
    }

    /// Sends the request `build` makes: through the [`Direct`] client when there is one, else
    /// through reqwest. A redirect answered to a direct request is followed by sending the
    /// request again through reqwest, whose policy decides (same host only), and so are all
    /// later requests of the connection.
    pub async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Response, SendError> {
        let direct = match &self.direct {
            Some(d) if !self.redirected.load(Ordering::Relaxed) => d,
            _ => return Ok(build().send().await?),
        };
        let req = build().header(USER_AGENT, HeaderValue::from_static(AGENT)).build()?;
        let resp = direct.request(axum::http::Request::try_from(req)?).await?;
        if resp.status().is_redirection() {
            self.redirected.store(true, Ordering::Relaxed);
            return Ok(build().send().await?);
        }
        Ok(Response::from(resp.map(reqwest::Body::wrap)))
    }

    /// Ends the connection because a request to the backend failed.
    pub fn unreachable_send(&self, e: &SendError) {
        self.lost(&e.describe());
    }

    /// Ends the connection because the backend cannot be reached any more.
    pub fn unreachable(&self, e: &reqwest::Error) {
        self.lost(&describe(e));
    }

    fn lost(&self, why: &str) {
        let reason = format!("lost the connection to {}: {why}", self.shown);
        tracing::debug!(backend = self.name(), reason = %reason, "Remote backend is unreachable.");
        self.peer.close(&reason);
    }

    /// Fails one pending call, leaving the connection up.
    pub fn fail_call(&self, id: u64, message: String) {
        self.peer.fail(id, crate::backend::client::CallError::Failed(message));
    }
}

/// Starts the transport for `cfg`. Fails only on a configuration the HTTP client rejects (an
/// invalid URL or header); connection problems surface through `initialize`.
pub fn start(
    peer: Arc<Peer>,
    outbox: Outbox,
    cfg: &RemoteConfig,
    max_message_bytes: usize,
    request_timeout: Duration,
) -> Result<RemoteHandle, String> {
    let url = Url::parse(&cfg.url).map_err(|e| format!("invalid url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported url scheme '{}': use http or https", url.scheme()));
    }
    let shown = shown_url(&url);
    let headers = static_headers(peer.name(), &cfg.headers)?;
    let client = build_client(&url)?;
    let direct = direct_client(&url);
    let stop = CancellationToken::new();
    let chosen = Chosen::default();
    let kind = match cfg.kind {
        RemoteKind::Auto if url.path().trim_end_matches('/').ends_with("/sse") => RemoteKind::Sse,
        k => k,
    };
    match kind {
        RemoteKind::StreamableHttp => chosen.set(Chosen::STREAMABLE_HTTP),
        RemoteKind::Sse => chosen.set(Chosen::SSE),
        RemoteKind::Auto => {}
    }
    let ctx = Arc::new(Ctx {
        peer,
        client,
        direct,
        redirected: AtomicBool::new(false),
        url,
        shown,
        secrets: cfg.headers.values().map(|s| s.expose().to_owned()).collect(),
        headers,
        max_bytes: max_message_bytes,
        request_timeout,
        stop: stop.clone(),
        chosen: chosen.clone(),
    });
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(async move {
        match kind {
            RemoteKind::Sse => super::sse::run(ctx.clone(), outbox, None, None).await,
            RemoteKind::StreamableHttp => {
                super::http::run(ctx.clone(), outbox, false).await;
            }
            RemoteKind::Auto => {
                if let Some(fallback) = super::http::run(ctx.clone(), outbox, true).await {
                    tracing::info!(
                        backend = ctx.name(),
                        url = %ctx.shown,
                        status = fallback.status.as_u16(),
                        "Remote backend does not take streamable HTTP POSTs; trying the legacy HTTP+SSE transport."
                    );
                    // Should SSE fail too, say what the streamable-HTTP attempt got.
                    let sep = if fallback.body.is_empty() { "" } else { ": " };
                    let note =
                        format!("a streamable HTTP initialize POST got HTTP {}{sep}{}", fallback.status, fallback.body);
                    super::sse::run(ctx.clone(), fallback.outbox, Some(fallback.initialize), Some(note)).await;
                }
            }
        }
        let _ = done_tx.send(());
    });
    Ok(RemoteHandle { stop, done: Some(done_rx), chosen })
}

/// What the streamable-HTTP transport hands back when the backend refused its `initialize` POST
/// and the transport was inferred: the queue and the message to send over SSE instead.
pub(super) struct Fallback {
    pub outbox: Outbox,
    pub initialize: Bytes,
    pub status: StatusCode,
    /// The start of the refusal's body (scrubbed).
    pub body: String,
}

fn build_client(url: &Url) -> Result<reqwest::Client, String> {
    let host = url.host_str().map(str::to_owned);
    // Static headers may hold credentials: never follow a redirect to another host.
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 || attempt.url().host_str() != host.as_deref() {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(redirects)
        .user_agent(AGENT)
        .build()
        .map_err(|e| format!("could not build the HTTP client: {}", describe(&e)))
}

/// Variables through which reqwest would send plain-HTTP requests to a proxy.
const PROXY_ENV: &[&str] = &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

/// The [`Direct`] client for a plain `http://` URL, unless a proxy is configured (reqwest
/// keeps deciding whether to use it).
fn direct_client(url: &Url) -> Option<Direct> {
    if url.scheme() != "http" || PROXY_ENV.iter().any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty())) {
        return None;
    }
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Some(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
}

fn static_headers(backend: &str, headers: &std::collections::BTreeMap<String, Secret>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header name '{name}' is not valid"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            tracing::warn!(backend, header = %header, "This header is set by mcpmux itself; the configured value is ignored.");
            continue;
        }
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|_| format!("the value of header '{name}' is not a valid HTTP header value"))?;
        value.set_sensitive(true);
        map.append(header, value);
    }
    Ok(map)
}

/// `scheme://host:port/path`: what logs and errors show of a URL.
pub(super) fn shown_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A reqwest error without its URL: what failed and the root cause.
pub(super) fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    with_root_cause(what, e)
}

/// `what: root cause` (the innermost source of `e`), or just `what`.
fn with_root_cause(what: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut root: Option<&dyn std::error::Error> = None;
    let mut next = e.source();
    while let Some(s) = next {
        root = Some(s);
        next = s.source();
    }
    match root {
        Some(r) => format!("{what}: {r}"),
        None => what.to_owned(),
    }
}

/// What a backend's refusal says about the session: whether the backend no longer knows the
/// session we sent (404, or 400 that mentions the session).
pub(super) fn session_gone(status: StatusCode, body: &str, sent_session: bool) -> bool {
    sent_session
        && (status == StatusCode::NOT_FOUND
            || (status == StatusCode::BAD_REQUEST && body.to_ascii_lowercase().contains("session")))
}

/// The first bytes of an error body, as text.
pub(super) async fn snippet(resp: Response) -> String {
    match read_limited(resp, 4096, true).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    }
}

/// Why a body could not be read.
pub(super) enum BodyError {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads a whole body of at most `max` bytes; with `truncate`, a longer one is cut instead.
pub(super) async fn read_limited(mut resp: Response, max: usize, truncate: bool) -> Result<Vec<u8>, BodyError> {
    if !truncate && resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Http)? {
        if body.len() + chunk.len() > max {
            if truncate {
                body.extend_from_slice(&chunk[..max - body.len()]);
                return Ok(body);
            }
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The parts of an outgoing message the transports look at.
pub(super) struct Head {
    /// mcpmux's id, when the message is a request.
    pub request_id: Option<u64>,
    pub method: Option<String>,
    /// For `notifications/cancelled`: the request it cancels.
    pub cancels: Option<u64>,
    /// For a request of the stateless era (its `_meta` names the protocol version).
    pub modern: Option<Box<ModernHead>>,
}

/// What a stateless-era request mirrors into its HTTP headers.
pub(super) struct ModernHead {
    pub version: String,
    pub params: Value,
}

impl Head {
    pub fn of(line: &[u8]) -> Head {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default)]
            id: Option<Value>,
            #[serde(default)]
            method: Option<String>,
            #[serde(default, borrow)]
            params: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Cancel {
            #[serde(rename = "requestId")]
            request_id: Option<Value>,
        }
        let Ok(raw) = serde_json::from_slice::<Raw>(line) else {
            return Head { request_id: None, method: None, cancels: None, modern: None };
        };
        let cancels = match (raw.method.as_deref(), raw.params) {
            (Some(crate::protocol::methods::CANCELLED), Some(p)) => {
                serde_json::from_str::<Cancel>(p.get()).ok().and_then(|c| c.request_id).and_then(|v| v.as_u64())
            }
            _ => None,
        };
        let request_id = if raw.method.is_some() { raw.id.as_ref().and_then(Value::as_u64) } else { None };
        let modern = match raw.params {
            Some(p) if request_id.is_some() && p.get().contains(crate::protocol::meta::PROTOCOL_VERSION) => {
                serde_json::from_str::<Value>(p.get()).ok().and_then(|params| {
                    let version = params
                        .get("_meta")?
                        .get(crate::protocol::meta::PROTOCOL_VERSION)?
                        .as_str()
                        .filter(|v| crate::protocol::is_modern(v))?
                        .to_owned();
                    Some(Box::new(ModernHead { version, params }))
                })
            }
            _ => None,
        };
        Head { request_id, method: raw.method, cancels, modern }
    }

    pub fn is(&self, method: &str) -> bool {
        self.method.as_deref() == Some(method)
    }
}

/// What one delivered message was, as far as the transport cares.
pub(super) struct Delivered {
    /// It answered request `related`.
    pub answers_related: bool,
    /// The `protocolVersion` of an `initialize` result it carried.
    pub protocol_version: Option<String>,
}

/// Parses `data` (one message, or a batch) and hands each message to the client core.
/// `related` is the request whose response stream carried it; `init_id` the id of an
/// `initialize` request whose result the caller wants to look into.
pub(super) fn deliver(ctx: &Ctx, data: &[u8], related: Option<u64>, init_id: Option<u64>) -> Delivered {
    let mut out = Delivered { answers_related: false, protocol_version: None };
    let text = data.trim_ascii();
    if text.is_empty() {
        return out;
    }
    let messages: Vec<Message> = if text.first() == Some(&b'[') {
        match serde_json::from_slice::<Vec<&RawValue>>(text) {
            Ok(items) => items.iter().filter_map(|r| Message::parse(r.get().as_bytes()).ok()).collect(),
            Err(e) => {
                tracing::warn!(backend = ctx.name(), error = %e, "Remote backend sent a batch that is not valid JSON; ignored.");
                return out;
            }
        }
    } else {
        match Message::parse(text) {
            Ok(m) => vec![m],
            Err(e) => {
                tracing::warn!(backend = ctx.name(), error = %e, "Remote backend sent a message that is not valid JSON; ignored.");
                return out;
            }
        }
    };
    for msg in messages {
        let is_response = msg.method.is_none();
        let id = msg.id.as_ref().and_then(Value::as_u64);
        if is_response && id.is_some() && id == related {
            out.answers_related = true;
        }
        if is_response && id.is_some() && id == init_id {
            out.protocol_version = msg
                .result
                .as_ref()
                .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
                .and_then(|v| v.get("protocolVersion").and_then(Value::as_str).map(str::to_owned));
        }
        dispatch_related(&ctx.peer, msg, related);
    }
    out
}

/// Hands a message to the client core, saying which request's stream it came on, so a backend
/// request or log message on it reaches exactly that call's client.
fn dispatch_related(peer: &Peer, msg: Message, related: Option<u64>) {
    match related {
        Some(id) => peer.dispatch_related(msg, id),
        None => peer.dispatch(msg),
    }
}

/// One item read off an event stream.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SseItem {
    /// An event with data (`event` is its type, `None` for the default `message`).
    Event { event: Option<String>, data: Vec<u8> },
    /// An event larger than the limit; its data was discarded. `answers` is the id of the
    /// response it was, when its first bytes show one.
    TooLarge { answers: Option<u64> },
}

/// How much of an oversized event is kept to find its id.
const HEAD_BYTES: usize = 160;

/// The id of a JSON-RPC response from the first bytes of its text: `"id": N` followed by
/// `"result"` or `"error"` (every SDK writes `jsonrpc`, `id`, then `result`/`error`).
pub(super) fn response_id_in(head: &[u8]) -> Option<u64> {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
    };
    let at = text.find("\"id\"")?;
    let rest = text[at + 4..].trim_start().strip_prefix(':')?.trim_start();
    let digits: &str = &rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())];
    let after = &rest[digits.len()..];
    if !(after.contains("\"result\"") || after.contains("\"error\"")) || text.contains("\"method\"") {
        return None;
    }
    digits.parse().ok()
}

/// An incremental `text/event-stream` parser. Events with no data (keep-alives, priming events
/// that only carry an id) are not reported; their id and `retry:` still count.
pub(super) struct SseParser {
    max: usize,
    line: Vec<u8>,
    line_too_long: bool,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    pending_cr: bool,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    too_large: bool,
    /// The first bytes of an oversized event's data, to find which call it answered.
    big_head: Vec<u8>,
    id: Option<String>,
    retry: Option<Duration>,
}

impl SseParser {
    pub fn new(max: usize) -> Self {
        SseParser {
            max,
            line: Vec::new(),
            line_too_long: false,
            pending_cr: false,
            data: Vec::new(),
            has_data: false,
            event: None,
            too_large: false,
            big_head: Vec::new(),
            id: None,
            retry: None,
        }
    }

    /// The id of the last event seen, for `Last-Event-ID`.
    pub fn last_event_id(&self) -> Option<&str> {
        self.id.as_deref().filter(|s| !s.is_empty())
    }

    /// The reconnection delay the server asked for.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Parses `chunk`, appending complete events to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut VecDeque<SseItem>) {
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while !chunk.is_empty() {
            let Some(i) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                self.push_part(chunk);
                return;
            };
            self.push_part(&chunk[..i]);
            let cr = chunk[i] == b'\r';
            chunk = &chunk[i + 1..];
            if cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.pending_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            self.end_line(&line, out);
            self.line = line;
            self.line.clear();
        }
    }

    fn push_part(&mut self, part: &[u8]) {
        if self.line_too_long {
            return;
        }
        if self.line.len() + part.len() > self.max.saturating_add(16) {
            // Keep the start: enough to tell the field and the message's id.
            let keep = (HEAD_BYTES + 8).saturating_sub(self.line.len()).min(part.len());
            self.line.extend_from_slice(&part[..keep]);
            self.line_too_long = true;
        } else {
            self.line.extend_from_slice(part);
        }
    }

    fn end_line(&mut self, line: &[u8], out: &mut VecDeque<SseItem>) {
        if std::mem::take(&mut self.line_too_long) {
            if let Some(v) = line.strip_prefix(b"data:") {
                let v = v.strip_prefix(b" ").unwrap_or(v);
                self.keep_head(v);
            }
            self.too_large = true;
            self.data.clear();
            return;
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.too_large {
                    return;
                }
                if self.data.len() + value.len() + 1 > self.max {
                    self.keep_head(value);
                    self.too_large = true;
                    self.data = Vec::new();
                    return;
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => self.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"retry" => {
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|s| s.parse::<u64>().ok()) {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }

    /// Remembers the start of an oversized event's data (once per event).
    fn keep_head(&mut self, value: &[u8]) {
        if self.big_head.is_empty() {
            self.big_head.extend_from_slice(&self.data[..self.data.len().min(HEAD_BYTES)]);
            let room = HEAD_BYTES.saturating_sub(self.big_head.len());
            self.big_head.extend_from_slice(&value[..value.len().min(room)]);
        }
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseItem>) {
        let event = self.event.take();
        if std::mem::take(&mut self.too_large) {
            self.data.clear();
            self.has_data = false;
            out.push_back(SseItem::TooLarge { answers: response_id_in(&std::mem::take(&mut self.big_head)) });
            return;
        }
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        let data = std::mem::take(&mut self.data);
        if data.trim_ascii().is_empty() {
            return;
        }
        out.push_back(SseItem::Event { event, data });
    }
}

/// Reads events from a response body; [`EventReader::resume`] continues on a new response
/// (after a reconnection) with the same `Last-Event-ID` state.
pub(super) struct EventReader {
    resp: Option<Response>,
    parser: SseParser,
    queue: VecDeque<SseItem>,
}

impl EventReader {
    pub fn new(resp: Response, max: usize) -> Self {
        EventReader { resp: Some(resp), parser: SseParser::new(max), queue: VecDeque::new() }
    }

    pub fn resume(&mut self, resp: Response) {
        self.resp = Some(resp);
    }

    /// The next item; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseItem>, reqwest::Error> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Ok(Some(item));
            }
            let Some(resp) = self.resp.as_mut() else { return Ok(None) };
            match resp.chunk().await {
                Ok(Some(chunk)) => self.parser.feed(&chunk, &mut self.queue),
                Ok(None) => {
                    self.resp = None;
                    return Ok(None);
                }
                Err(e) => {
                    self.resp = None;
                    return Err(e);
                }
            }
        }
    }

    pub fn last_event_id(&self) -> Option<String> {
        self.parser.last_event_id().map(str::to_owned)
    }

    pub fn retry(&self) -> Option<Duration> {
        self.parser.retry()
    }
}

/// Whether a response is an event stream.
pub(super) fn is_event_stream(resp: &Response) -> bool {
    content_type(resp).starts_with("text/event-stream")
}

pub(super) fn content_type(resp: &Response) -> String {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// `base` doubled `failures` times, at most `cap`.
pub(super) fn backoff(base: Duration, failures: u32, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << failures.min(16)).min(cap)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]], max: usize) -> (Vec<SseItem>, SseParser) {
        let mut p = SseParser::new(max);
        let mut out = VecDeque::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        (out.into_iter().collect(), p)
    }

    fn ev(event: Option<&str>, data: &str) -> SseItem {
        SseItem::Event { event: event.map(str::to_owned), data: data.as_bytes().to_vec() }
    }

    #[test]
    fn parses_events_across_chunks_and_line_endings() {
        let (items, p) = parse(
            &[b"id: 1\nretry: 250\ndata: \n\n", b"event: message\r\nda", b"ta: {\"a\":1}\r", b"\n\r\n", b": ping\n\n"],
            1000,
        );
        assert_eq!(items, vec![ev(Some("message"), "{\"a\":1}")]);
        assert_eq!(p.last_event_id(), Some("1"));
        assert_eq!(p.retry(), Some(Duration::from_millis(250)));
        let (items, _) = parse(&[b"data: a\ndata: b\n\nevent: endpoint\ndata: /m?x=1\n\n"], 1000);
        assert_eq!(items, vec![ev(None, "a\nb"), ev(Some("endpoint"), "/m?x=1")]);
    }

    #[test]
    fn oversized_events_are_reported_and_skipped() {
        let big = format!("data: {}\n\n", "x".repeat(100));
        let (items, _) = parse(&[big.as_bytes(), b"data: ok\n\n"], 50);
        assert_eq!(items, vec![SseItem::TooLarge { answers: None }, ev(None, "ok")]);
        let many = "data: 0123456789\n".repeat(10) + "\n";
        let (items, _) = parse(&[many.as_bytes(), b"data: ok\n\n"], 50);
        assert_eq!(items, vec![SseItem::TooLarge { answers: None }, ev(None, "ok")]);
        let resp = format!("data: {{\"jsonrpc\":\"2.0\",\"id\": 12,\"result\":{{\"x\":\"{}\"}}}}\n\n", "y".repeat(500));
        let (items, _) = parse(&[&resp.as_bytes()[..30], &resp.as_bytes()[30..]], 100);
        assert_eq!(items, vec![SseItem::TooLarge { answers: Some(12) }]);
        let req =
            format!("data: {{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"x\",\"params\":\"{}\"}}\n\n", "y".repeat(500));
        let (items, _) = parse(&[req.as_bytes()], 100);
        assert_eq!(items, vec![SseItem::TooLarge { answers: None }]);
    }

    #[test]
    fn outgoing_heads() {
        let h = Head::of(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}"#);
        assert_eq!((h.request_id, h.method.as_deref(), h.cancels), (Some(7), Some("tools/call"), None));
        let h = Head::of(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#);
        assert_eq!((h.request_id, h.cancels), (None, Some(7)));
        let h = Head::of(br#"{"jsonrpc":"2.0","id":"b-1","result":{}}"#);
        assert_eq!((h.request_id, h.method), (None, None));
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let u = Url::parse("https://user:pw@example.com:8443/mcp?key=secret#f").unwrap();
        assert_eq!(shown_url(&u), "https://example.com:8443/mcp");
    }
}
