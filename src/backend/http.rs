//! The streamable HTTP client transport (MCP 2025-03-26 and later).
//!
//! Every outgoing message is one `POST` to the backend's URL. The backend answers a request with
//! a JSON body or with an event stream that carries, in order, the notifications and requests
//! that belong to the request and finally its response; notifications and responses get `202`.
//!
//! # Concurrency
//!
//! `initialize` and `notifications/initialized` are sent in order, one at a time (the session
//! does not exist before the first is answered; servers may refuse requests that overtake the
//! second). Every other message gets a task of its own, bounded by a semaphore, so a slow call
//! never holds up another call to the same backend; the task reads that POST's answer and
//! dispatches what it carries.
//!
//! # Session
//!
//! The `Mcp-Session-Id` issued with the `initialize` answer, and the protocol version from the
//! `initialize` result, are sent on every later request. After `notifications/initialized` a
//! `GET` opens the stream for server-initiated messages (405: the server has none; not asked
//! again). A 404 to a request carrying the session, a 400 whose body mentions the session, or a
//! refused or reset connection means the session is gone: the connection is closed with that
//! reason, every call in flight fails at once, and the gateway's supervisor reconnects,
//! re-initializes and re-lists. `stop` ends the session with `DELETE`.
//!
//! # Stateless era (2026-07-28)
//!
//! A request whose `params._meta` names a stateless protocol version (see
//! [`super::modern`]) is POSTed without a session, with `MCP-Protocol-Version` from its
//! `_meta`, `Mcp-Method`, `Mcp-Name` and the tool arguments annotated with `x-mcp-header`
//! mirrored into headers. No `GET` stream is opened on such a connection (there is no
//! `notifications/initialized`); change notifications arrive on the event stream that answers
//! the `subscriptions/listen` request, which is read for as long as it stays open.
//!
//! # Resumption
//!
//! When a POST's event stream ends before the response (the connection broke, or the server
//! closed it after a priming event to make the client poll), the transport reconnects with
//! `GET` and `Last-Event-ID`, after the server's `retry:` delay (doubled after each fruitless
//! attempt), and keeps reading the same request's stream, until the response arrives or the
//! request's time is up. The standalone GET stream resumes the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::Outbox;
use super::remote::{
    BodyError, Chosen, Ctx, EventReader, Fallback, Head, MAX_CONCURRENT_POSTS, ModernHead, POST_GRACE, SseItem,
    backoff, content_type, deliver, describe, is_event_stream, read_limited, session_gone, snippet,
};
use crate::protocol::{headers, methods};

/// Reconnection delay when the server did not give one with `retry:`.
const DEFAULT_RETRY: Duration = Duration::from_millis(500);
/// Longest wait between attempts to resume a response stream.
const MAX_RESUME_WAIT: Duration = Duration::from_secs(5);
/// Failed `GET`s in a row after which a response stream is given up.
const MAX_RESUME_FAILURES: u32 = 5;
/// Longest wait between attempts to reopen the standalone stream.
const MAX_STANDALONE_WAIT: Duration = Duration::from_secs(30);
/// A standalone stream open this long counts as healthy (its backoff starts over).
const STANDALONE_STABLE: Duration = Duration::from_secs(30);
/// Time allowed to read the end of a response stream once the response has arrived.
const DRAIN: Duration = Duration::from_millis(500);
/// Time allowed for the `DELETE` that ends the session.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a `subscriptions/listen` stream may stay quiet.
const LISTEN_IDLE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Bodies of `202` answers (normally empty) are read up to this size, then dropped.
const SMALL_BODY: usize = 64 * 1024;

/// How a POST went, for the caller that must know.
enum Posted {
    Done,
    /// The `initialize` POST was refused the way an SSE-only server refuses it: the status,
    /// and what the refusal said.
    NotStreamable(StatusCode, String),
}

/// Why a `GET` did not give an event stream.
enum GetError {
    /// 405: the server offers no stream here.
    NotAllowed,
    /// The backend no longer knows the session.
    SessionLost(StatusCode),
    /// The backend could not be reached.
    Unreachable(reqwest::Error),
    /// Anything else (a 409, a 5xx, a timeout): worth another try later.
    Refused(String),
}

/// State of one streamable-HTTP connection.
struct Http {
    ctx: Arc<Ctx>,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<HeaderValue>>,
    /// The backend said it no longer knows the session: no `DELETE` for it.
    lost: AtomicBool,
    /// Requests being POSTed, so a `notifications/cancelled` can stop reading their streams.
    in_flight: Mutex<HashMap<u64, CancellationToken>>,
}

/// Runs the transport until it is stopped or the connection closes. With `probe`, an
/// `initialize` refused with 400, 404 or 405 hands the queue back for the SSE transport.
pub(super) async fn run(ctx: Arc<Ctx>, mut outbox: Outbox, probe: bool) -> Option<Fallback> {
    let http = Arc::new(Http {
        ctx: ctx.clone(),
        session: Mutex::new(None),
        version: Mutex::new(None),
        lost: AtomicBool::new(false),
        in_flight: Mutex::new(HashMap::new()),
    });
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_POSTS));
    let mut tasks = JoinSet::new();
    let mut probing = probe;
    loop {
        let line = tokio::select! {
            _ = ctx.ended() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            line = outbox.recv() => match line {
                Some(line) => line,
                None => break,
            },
        };
        let head = Head::of(&line);
        if let Some(id) = head.cancels {
            http.cancel(id);
        }
        if head.is(methods::INITIALIZE) && head.request_id.is_some() {
            let posted = tokio::select! {
                p = http.post(line.clone(), &head, probing) => p,
                _ = ctx.ended() => break,
            };
            if let Posted::NotStreamable(status, body) = posted {
                return Some(Fallback { outbox, initialize: line, status, body });
            }
            probing = false;
        } else if head.is(methods::INITIALIZED) {
            tokio::select! {
                _ = http.post(line, &head, false) => {}
                _ = ctx.ended() => break,
            }
            tasks.spawn(http.clone().standalone());
        } else {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                _ = ctx.ended() => break,
            };
            let Ok(permit) = permit else { break };
            let http = http.clone();
            tasks.spawn(async move {
                http.post(line, &head, false).await;
                drop(permit);
            });
        }
    }
    tasks.abort_all();
    if ctx.stop.is_cancelled() {
        http.end_session().await;
    }
    None
}

/// Unregisters a request from `in_flight` when its POST task ends.
struct Tracked<'a> {
    http: &'a Http,
    id: u64,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.http.lock_in_flight().remove(&self.id);
    }
}

impl Http {
    fn session(&self) -> Option<HeaderValue> {
        self.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<u64, CancellationToken>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cancel(&self, id: u64) {
        if let Some(token) = self.lock_in_flight().get(&id) {
            token.cancel();
        }
    }

    /// A request to the backend's URL with the static headers, the session and the version.
    fn request(&self, method: Method, session: Option<&HeaderValue>) -> RequestBuilder {
        let mut req = self.ctx.client.request(method, self.ctx.url.clone()).headers(self.ctx.headers.clone());
        if let Some(s) = session {
            req = req.header(headers::SESSION_ID, s.clone());
        }
        if let Some(v) = self.version.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            req = req.header(headers::PROTOCOL_VERSION, v);
        }
        req
    }

    /// A stateless-era POST: no session; the version from the request's `_meta`, and the
    /// method, name and annotated tool arguments mirrored into headers.
    fn modern_request(&self, head: &Head, modern: &ModernHead) -> RequestBuilder {
        let mut map = self.ctx.headers.clone();
        let mirrored = super::modern::mirrored_headers(
            head.method.as_deref().unwrap_or_default(),
            Some(&modern.params),
            &self.ctx.peer.tool_headers(),
        );
        let pairs = std::iter::once((headers::PROTOCOL_VERSION.to_owned(), modern.version.clone())).chain(mirrored);
        for (name, value) in pairs {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                (Ok(n), Ok(v)) => {
                    map.insert(n, v);
                }
                _ => {
                    tracing::debug!(backend = self.ctx.name(), header = %name, "A mirrored header is not a valid HTTP header; not sent.")
                }
            }
        }
        self.ctx.client.request(Method::POST, self.ctx.url.clone()).headers(map)
    }

    /// The backend no longer knows our session: the connection is over.
    fn session_lost(&self, status: StatusCode) {
        self.lost.store(true, Ordering::Relaxed);
        let reason = format!(
            "{} no longer knows the MCP session (HTTP {status}); the backend will be re-initialized",
            self.ctx.shown
        );
        tracing::debug!(backend = self.ctx.name(), reason = %reason, "Remote backend lost the session.");
        self.ctx.peer.close(&reason);
    }

    /// POSTs one message and handles what comes back.
    async fn post(self: &Arc<Self>, line: Bytes, head: &Head, probe: bool) -> Posted {
        let Some(id) = head.request_id else {
            return self.post_inner(line, head, None, probe).await;
        };
        let token = CancellationToken::new();
        self.lock_in_flight().insert(id, token.clone());
        let _tracked = Tracked { http: self, id };
        tokio::select! {
            p = self.post_inner(line, head, Some(id), probe) => p,
            _ = token.cancelled() => Posted::Done,
        }
    }

    async fn post_inner(self: &Arc<Self>, line: Bytes, head: &Head, id: Option<u64>, probe: bool) -> Posted {
        let ctx = &self.ctx;
        let is_init = head.is(methods::INITIALIZE) && id.is_some();
        let sent_session = self.session();
        // No total timeout on the request: a call that keeps reporting progress may run longer
        // than the request timeout. Each wait (for the headers, a JSON body, the next event) is
        // bounded instead; the client core's own timer answers the caller first.
        let limit = ctx.request_timeout + POST_GRACE;
        let build = || {
            let base = match &head.modern {
                Some(modern) => self.modern_request(head, modern),
                None => self.request(Method::POST, sent_session.as_ref()),
            };
            base.header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json, text/event-stream")
                .body(line.clone())
        };
        let resp = match tokio::time::timeout(limit, ctx.send(build)).await {
            Err(_) => return Posted::Done,
            Ok(Ok(r)) => r,
            Ok(Err(e)) if e.is_timeout() && !e.is_connect() => return Posted::Done,
            Ok(Err(e)) => {
                ctx.unreachable_send(&e);
                return Posted::Done;
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let raw = read_limited(resp, SMALL_BODY, true).await.unwrap_or_default();
            // A backend of the stateless era refuses a request (unknown method, a missing
            // capability, a header mismatch) with a 4xx and a JSON-RPC error for it: that error
            // is the answer, passed on as the backend wrote it.
            if let Some(id) = id
                && !is_init
                && answers_with_error(&raw, id)
            {
                deliver(ctx, &raw, Some(id), None);
                return Posted::Done;
            }
            let body = ctx.scrub(String::from_utf8_lossy(&raw).trim());
            if probe && matches!(status.as_u16(), 400 | 404 | 405) {
                return Posted::NotStreamable(status, body);
            }
            if session_gone(status, &body, sent_session.is_some()) {
                self.session_lost(status);
                return Posted::Done;
            }
            let what = if body.is_empty() {
                format!("{} answered HTTP {status}", ctx.shown)
            } else {
                format!("{} answered HTTP {status}: {body}", ctx.shown)
            };
            match id {
                Some(_) if is_init => ctx.peer.close(&what),
                Some(id) => ctx.fail_call(id, what),
                None => tracing::warn!(
                    backend = ctx.name(),
                    method = head.method.as_deref().unwrap_or("(response)"),
                    error = %what,
                    "Remote backend refused a message."
                ),
            }
            return Posted::Done;
        }
        if head.modern.is_some() {
            ctx.chosen.set(Chosen::STREAMABLE_HTTP);
        }
        if is_init && let Some(s) = resp.headers().get(headers::SESSION_ID) {
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
        }
        let Some(id) = id else {
            let _ = tokio::time::timeout(limit, read_limited(resp, SMALL_BODY, true)).await;
            return Posted::Done;
        };
        if is_event_stream(&resp) {
            self.read_stream(resp, id, is_init, head.is(methods::SUBSCRIPTIONS_LISTEN)).await;
        } else if content_type(&resp).starts_with("application/json") {
            let Ok(body) = tokio::time::timeout(limit, read_limited(resp, ctx.max_bytes, false)).await else {
                return Posted::Done;
            };
            match body {
                Ok(body) => {
                    let d = deliver(ctx, &body, Some(id), is_init.then_some(id));
                    if is_init {
                        self.learn(d.protocol_version);
                    }
                    if !d.answers_related {
                        ctx.fail_call(id, format!("{} answered the POST without a response to the request", ctx.shown));
                    }
                }
                Err(BodyError::TooLarge) => ctx.fail_call(id, too_large(ctx)),
                Err(BodyError::Http(e)) if e.is_timeout() => {}
                Err(BodyError::Http(e)) => ctx.unreachable(&e),
            }
        } else {
            ctx.fail_call(id, format!("{} accepted the request without answering it (HTTP {status})", ctx.shown));
        }
        Posted::Done
    }

    /// Takes note of a successful `initialize` answer.
    fn learn(&self, protocol_version: Option<String>) {
        let Some(version) = protocol_version else { return };
        if let Ok(v) = HeaderValue::from_str(&version) {
            *self.version.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        }
        self.ctx.chosen.set(Chosen::STREAMABLE_HTTP);
        tracing::info!(
            backend = self.ctx.name(),
            url = %self.ctx.shown,
            transport = Chosen::STREAMABLE_HTTP,
            protocol_version = %version,
            session = self.session().is_some(),
            "Remote backend connected."
        );
    }

    /// Reads the event stream that answers request `id`, resuming it when it breaks. Gives up
    /// once no event has come for the request timeout (the caller has been answered by then),
    /// except on a `subscriptions/listen` stream (`endless`), which is quiet until something
    /// changes.
    async fn read_stream(&self, resp: Response, id: u64, is_init: bool, endless: bool) {
        let ctx = &self.ctx;
        let idle = if endless { LISTEN_IDLE } else { ctx.request_timeout + POST_GRACE };
        let mut deadline = Instant::now() + idle;
        let mut reader = EventReader::new(resp, ctx.max_bytes);
        let mut idle_rounds = 0u32;
        loop {
            let mut got_event = false;
            let broke = loop {
                let Ok(item) = tokio::time::timeout_at(deadline, reader.next()).await else { return };
                match item {
                    Ok(Some(SseItem::Event { event, data })) => {
                        if event.as_deref().is_some_and(|e| e != "message") {
                            continue;
                        }
                        got_event = true;
                        deadline = Instant::now() + idle;
                        let d = deliver(ctx, &data, Some(id), is_init.then_some(id));
                        if is_init {
                            self.learn(d.protocol_version);
                        }
                        if d.answers_related {
                            self.drain(&mut reader, id).await;
                            return;
                        }
                    }
                    Ok(Some(SseItem::TooLarge { .. })) => {
                        ctx.fail_call(id, too_large(ctx));
                        return;
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            if ctx.is_ended() || broke.as_ref().is_some_and(reqwest::Error::is_timeout) {
                return;
            }
            let Some(last) = reader.last_event_id() else {
                match broke {
                    Some(e) => ctx.unreachable(&e),
                    None => ctx.fail_call(id, format!("{} ended the response stream without answering", ctx.shown)),
                }
                return;
            };
            idle_rounds = if got_event { 0 } else { idle_rounds + 1 };
            if let Some(e) = &broke {
                tracing::debug!(backend = ctx.name(), id, error = %describe(e), "Response stream broke; resuming it.");
            }
            let mut failures = 0u32;
            let resumed = loop {
                let wait = backoff(reader.retry().unwrap_or(DEFAULT_RETRY), idle_rounds + failures, MAX_RESUME_WAIT);
                let now = Instant::now();
                if now + wait >= deadline {
                    // The caller's time is up before another attempt could help.
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ctx.ended() => return,
                }
                match self.get(Some(&last), Some(deadline.saturating_duration_since(Instant::now()))).await {
                    Ok(resp) => break resp,
                    Err(GetError::SessionLost(status)) => {
                        self.session_lost(status);
                        return;
                    }
                    Err(GetError::Unreachable(e)) => {
                        ctx.unreachable(&e);
                        return;
                    }
                    Err(GetError::NotAllowed) => {
                        ctx.fail_call(
                            id,
                            format!(
                                "{} ended the response stream without answering and does not allow resuming it",
                                ctx.shown
                            ),
                        );
                        return;
                    }
                    Err(GetError::Refused(why)) => {
                        failures += 1;
                        if failures >= MAX_RESUME_FAILURES {
                            ctx.fail_call(
                                id,
                                format!("could not resume the response stream from {}: {why}", ctx.shown),
                            );
                            return;
                        }
                    }
                }
            };
            tracing::debug!(backend = ctx.name(), id, last_event_id = %last, "Resumed a response stream.");
            reader.resume(resumed);
        }
    }

    /// Reads what follows a response on its stream (normally just the end), so the
    /// connection can be reused.
    async fn drain(&self, reader: &mut EventReader, id: u64) {
        let ctx = &self.ctx;
        let _ = tokio::time::timeout(DRAIN, async {
            while let Ok(Some(item)) = reader.next().await {
                if let SseItem::Event { event: None, data } = item {
                    deliver(ctx, &data, Some(id), None);
                }
            }
        })
        .await;
    }

    /// Opens an event stream with `GET` (the standalone stream, or a resumed one).
    async fn get(&self, last_event_id: Option<&str>, timeout: Option<Duration>) -> Result<Response, GetError> {
        let sent_session = self.session();
        let mut req = self.request(Method::GET, sent_session.as_ref()).header(ACCEPT, "text/event-stream");
        if let Some(v) = last_event_id.and_then(|l| HeaderValue::from_str(l).ok()) {
            req = req.header(headers::LAST_EVENT_ID, v);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() && !e.is_connect() => return Err(GetError::Refused("timed out".to_owned())),
            Err(e) => return Err(GetError::Unreachable(e)),
        };
        let status = resp.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(GetError::NotAllowed);
        }
        if !status.is_success() {
            let body = self.ctx.scrub(&snippet(resp).await);
            if session_gone(status, &body, sent_session.is_some()) {
                return Err(GetError::SessionLost(status));
            }
            return Err(GetError::Refused(format!("HTTP {status}")));
        }
        if !is_event_stream(&resp) {
            return Err(GetError::Refused("the answer is not an event stream".to_owned()));
        }
        Ok(resp)
    }

    /// Keeps the stream of server-initiated messages open for the life of the connection.
    async fn standalone(self: Arc<Self>) {
        let ctx = self.ctx.clone();
        let mut last: Option<String> = None;
        let mut retry: Option<Duration> = None;
        let mut failures = 0u32;
        loop {
            let got = tokio::select! {
                g = self.get(last.as_deref(), None) => g,
                _ = ctx.ended() => return,
            };
            match got {
                Ok(resp) => {
                    let opened = Instant::now();
                    let mut reader = EventReader::new(resp, ctx.max_bytes);
                    let mut delivered = false;
                    loop {
                        let item = tokio::select! {
                            i = reader.next() => i,
                            _ = ctx.ended() => return,
                        };
                        match item {
                            Ok(Some(SseItem::Event { event, data })) => {
                                if event.as_deref().is_none_or(|e| e == "message") {
                                    deliver(&ctx, &data, None, None);
                                    delivered = true;
                                }
                            }
                            Ok(Some(SseItem::TooLarge { answers })) => match answers {
                                Some(id) => ctx.fail_call(id, too_large(&ctx)),
                                None => tracing::error!(
                                    backend = ctx.name(),
                                    limit = ctx.max_bytes,
                                    "Remote backend sent a message larger than the limit; it was discarded."
                                ),
                            },
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(backend = ctx.name(), error = %describe(&e), "The standalone stream broke.");
                                break;
                            }
                        }
                    }
                    last = reader.last_event_id().or(last);
                    retry = reader.retry().or(retry);
                    failures = if delivered || opened.elapsed() > STANDALONE_STABLE { 0 } else { failures + 1 };
                }
                Err(GetError::NotAllowed) => {
                    tracing::debug!(
                        backend = ctx.name(),
                        "Remote backend offers no stream for server-initiated messages."
                    );
                    return;
                }
                Err(GetError::SessionLost(status)) => {
                    self.session_lost(status);
                    return;
                }
                Err(GetError::Unreachable(e)) => {
                    ctx.unreachable(&e);
                    return;
                }
                Err(GetError::Refused(why)) => {
                    failures += 1;
                    if failures == 3 {
                        tracing::warn!(backend = ctx.name(), reason = %why, "Could not open the stream for server-initiated messages; retrying with backoff.");
                    }
                }
            }
            let wait = backoff(retry.unwrap_or(DEFAULT_RETRY), failures, MAX_STANDALONE_WAIT);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.ended() => return,
            }
        }
    }

    /// Ends the session on the backend (`DELETE`), unless it is already gone.
    async fn end_session(&self) {
        let Some(session) = self.session() else { return };
        if self.lost.load(Ordering::Relaxed) {
            return;
        }
        let req = self.request(Method::DELETE, Some(&session)).timeout(DELETE_TIMEOUT);
        match req.send().await {
            Ok(resp) => {
                tracing::debug!(backend = self.ctx.name(), status = resp.status().as_u16(), "Ended the remote session.")
            }
            Err(e) => {
                tracing::debug!(backend = self.ctx.name(), error = %describe(&e), "Could not end the remote session.")
            }
        }
    }
}

fn too_large(ctx: &Ctx) -> String {
    format!(
        "the answer from {} is larger than the {}-byte limit (maxMessageBytes); it was discarded",
        ctx.shown, ctx.max_bytes
    )
}

/// Whether `body` is a JSON-RPC error response to request `id`.
fn answers_with_error(body: &[u8], id: u64) -> bool {
    crate::jsonrpc::Message::parse(body.trim_ascii()).is_ok_and(|m| {
        m.method.is_none() && m.error.is_some() && m.id.as_ref().and_then(serde_json::Value::as_u64) == Some(id)
    })
}
