//! Streamable HTTP (2025-11-25, also 2025-06-18 and 2025-03-26): POST, GET and DELETE on the
//! MCP endpoint.
//!
//! A POSTed request is answered with plain JSON when the backend sends nothing but the result,
//! and switches to an SSE stream as soon as anything that belongs to the request (progress)
//! arrives first, when the client accepts SSE.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{AppState, modern, sse};
use std::sync::Arc;

use crate::error::{HttpError, RelayError};
use crate::jsonrpc::{self, Kind, Message};
use crate::protocol::{self, headers as h, methods};
use crate::relay::RequestContext;
use crate::session::{Scope, Session};

/// Interval of keep-alive comments on GET streams.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Messages that may queue on one request's stream before the oldest are dropped.
pub(super) const REQUEST_STREAM_CAPACITY: usize = 64;

pub async fn post(State(app): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    handle_post(app, Scope::Merged, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn post_backend(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let scope = match backend_scope(&app, name) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    handle_post(app, scope, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn get_stream(State(app): State<AppState>, headers: HeaderMap) -> Response {
    handle_get(app, Scope::Merged, headers).unwrap_or_else(IntoResponse::into_response)
}

pub async fn get_stream_backend(State(app): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    match backend_scope(&app, name) {
        Ok(scope) => handle_get(app, scope, headers).unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    }
}

pub async fn delete(State(app): State<AppState>, headers: HeaderMap) -> Response {
    handle_delete(app, Scope::Merged, headers).unwrap_or_else(IntoResponse::into_response)
}

pub async fn delete_backend(State(app): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    match backend_scope(&app, name) {
        Ok(scope) => handle_delete(app, scope, headers).unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    }
}

fn backend_scope(app: &AppState, name: String) -> Result<Scope, HttpError> {
    if app.gateway.backend(&name).is_some() { Ok(Scope::Backend(name)) } else { Err(HttpError::UnknownBackend(name)) }
}

/// What the client's `Accept` header allows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Accepts {
    pub(super) json: bool,
    pub(super) sse: bool,
    /// SSE is listed before JSON: the client would rather read a stream.
    sse_first: bool,
}

impl Accepts {
    pub(super) fn prefers_sse(self) -> bool {
        self.sse && (self.sse_first || !self.json)
    }
}

fn accepts(headers: &HeaderMap) -> Accepts {
    let Some(value) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Accepts { json: true, sse: true, sse_first: false };
    };
    let mut a = Accepts { json: false, sse: false, sse_first: false };
    for part in value.split(',') {
        let media = part.split(';').next().unwrap_or_default().trim();
        let is = |m: &str| media.eq_ignore_ascii_case(m);
        if is("*/*") {
            a.json = true;
            a.sse = true;
        } else if is("application/json") || is("application/*") {
            a.json = true;
        } else if is("text/event-stream") || is("text/*") {
            a.sse_first |= !a.json;
            a.sse = true;
        }
    }
    a
}

/// The MCP headers as `HeaderName`s: a lookup by `&str` parses and lowercases the name first.
static SESSION_ID: HeaderName = HeaderName::from_static(h::SESSION_ID);
static PROTOCOL_VERSION: HeaderName = HeaderName::from_static(h::PROTOCOL_VERSION);

/// Finds the session a request names, checking it belongs to this endpoint.
fn find_session(app: &AppState, scope: &Scope, headers: &HeaderMap) -> Result<Arc<Session>, HttpError> {
    let id = headers.get(&SESSION_ID).and_then(|v| v.to_str().ok()).ok_or(HttpError::MissingSession)?;
    let session = app.gateway.sessions().touch(id).ok_or(HttpError::UnknownSession)?;
    if &session.scope != scope {
        return Err(HttpError::UnknownSession);
    }
    Ok(session)
}

/// Checks `MCP-Protocol-Version` when present; absent means the session's version.
fn check_version_header(headers: &HeaderMap) -> Result<(), HttpError> {
    match headers.get(&PROTOCOL_VERSION) {
        None => Ok(()),
        Some(v) => {
            let v = v.to_str().unwrap_or_default();
            if protocol::is_supported(v) { Ok(()) } else { Err(HttpError::UnsupportedProtocolVersion(v.to_owned())) }
        }
    }
}

async fn handle_post(
    app: AppState,
    scope: Scope,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let accept = accepts(&headers);
    if !accept.json && !accept.sse {
        return Err(HttpError::NotAcceptable);
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && !ct.as_bytes().get(..16).is_some_and(|p| p.eq_ignore_ascii_case(b"application/json"))
    {
        return Err(HttpError::UnsupportedMediaType);
    }
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::PayloadTooLarge { limit: app.gateway.settings().max_body_bytes }
        } else {
            HttpError::InvalidRequest(r.body_text())
        }
    })?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(HttpError::InvalidRequest(
            "JSON-RPC batches are not supported; send one message per request".into(),
        ));
    }
    let msg = Message::parse(&body).map_err(|e| HttpError::Parse(e.to_string()))?;
    let kind = msg.kind();
    if modern::is_stateless(&headers, &msg) {
        return Ok(Box::pin(modern::handle(app, scope, &headers, msg, accept)).await);
    }
    if kind == Kind::Request && msg.method.as_deref() == Some(methods::INITIALIZE) {
        return initialize(&app, scope, msg, accept);
    }
    if kind == Kind::Notification && modern::is_stateless_client(&headers) {
        // 2026-07-28 defines no client notifications over HTTP; accepted and ignored.
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    check_version_header(&headers)?;
    match kind {
        Kind::Invalid => Err(HttpError::InvalidRequest("not a JSON-RPC 2.0 request, notification or response".into())),
        Kind::Notification => {
            let session = find_session(&app, &scope, &headers)?;
            on_notification(&app, &session, msg);
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Kind::Response => {
            let session = find_session(&app, &scope, &headers)?;
            let id = msg.id.clone().unwrap_or(Value::Null);
            let outcome = match (msg.result, msg.error) {
                (Some(r), _) => Ok(jsonrpc::Payload::from_raw(r)),
                (None, Some(e)) => Err(e),
                (None, None) => Err(jsonrpc::error_object(jsonrpc::code::INTERNAL_ERROR, "empty response", None)),
            };
            if !session.answer_server_request(&id, outcome) {
                tracing::debug!(session = %session.id, id = %id, "Client answered a request nobody waits for.");
            }
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Kind::Request => {
            let session = find_session(&app, &scope, &headers)?;
            Ok(request(app, scope, session, msg, accept).await)
        }
    }
}

fn on_notification(app: &AppState, session: &Arc<Session>, msg: Message) {
    match msg.method.as_deref() {
        Some(methods::CANCELLED) => {
            if let Some(id) = msg.params.as_ref().and_then(|p| p.get("requestId")) {
                session.cancel_request(id);
            }
        }
        Some(methods::ROOTS_LIST_CHANGED) => app.gateway.roots_changed(session),
        _ => {}
    }
}

fn initialize(app: &AppState, scope: Scope, msg: Message, accept: Accepts) -> Result<Response, HttpError> {
    let id = msg.id.unwrap_or(Value::Null);
    let params = msg.params.unwrap_or(Value::Null);
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let result = match app.gateway.initialize_result(&scope, requested) {
        Ok(r) => r,
        Err(e) => {
            return Ok(json_or_sse(jsonrpc::error_bytes(Some(&id), &e.to_error_object()), accept));
        }
    };
    let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(protocol::LATEST_VERSION).to_owned();
    let session = app.gateway.sessions().create(
        scope,
        version,
        params.get("capabilities").cloned().unwrap_or_else(|| serde_json::json!({})),
        params.get("clientInfo").cloned().unwrap_or(Value::Null),
    );
    tracing::debug!(session = %session.id, client = ?session.client_info, "Session started.");
    let body = jsonrpc::response_bytes(&id, &jsonrpc::Payload::from_value(&result));
    let mut resp = json_or_sse(body, accept);
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        resp.headers_mut().insert(h::SESSION_ID, v);
    }
    Ok(resp)
}

/// One message as the whole response: JSON when the client takes it, else a one-event stream.
pub(super) fn json_or_sse(message: Bytes, accept: Accepts) -> Response {
    if accept.json && !accept.prefers_sse() {
        ([(header::CONTENT_TYPE, "application/json")], message).into_response()
    } else {
        sse_response(Body::from(sse::event(&message)))
    }
}

pub(super) fn sse_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Serves a request: JSON if the result comes first, SSE once anything else does (or from the
/// start when the client prefers SSE). A request the client cancels gets no result.
async fn request(app: AppState, scope: Scope, session: Arc<Session>, msg: Message, accept: Accepts) -> Response {
    let id = msg.id.unwrap_or(Value::Null);
    let method = msg.method.unwrap_or_default();
    let (tx, rx) = mpsc::channel::<Value>(REQUEST_STREAM_CAPACITY);
    let tracked = Tracked::new(session.clone(), &id);
    let ctx = RequestContext {
        protocol_version: session.protocol_version.clone(),
        client_capabilities: session.client_capabilities.clone(),
        scope,
        cancel: Some(tracked.token.clone()),
        caller: session.caller(),
        origin: None,
        session: Some(session),
        // Without SSE nothing can be streamed for this request; related messages then go to
        // the session's GET stream.
        events: accept.sse.then_some(tx),
    };
    let gateway = app.gateway.clone();
    let work = async move {
        let _tracked = tracked;
        let outcome = gateway.handle_request(&ctx, &method, msg.params).await;
        match outcome {
            Ok(payload) => Finish::Body(jsonrpc::response_bytes(&id, &payload)),
            Err(RelayError::Cancelled) => Finish::Cancelled,
            Err(e) => {
                tracing::debug!(method = %method, error = %e, "Request failed.");
                Finish::Body(jsonrpc::error_bytes(Some(&id), &e.to_error_object()))
            }
        }
    };
    stream_or_json(Box::pin(work), rx, accept).await
}

/// How the work behind one request ended.
pub(super) enum Finish {
    /// The response message.
    Body(Bytes),
    /// Cancelled by the client: no response.
    Cancelled,
    /// A refusal with its own HTTP status, and the message to send instead once a stream has
    /// started.
    Refused { response: Response, body: Bytes },
}

/// Answers a request with plain JSON when `work` finishes before anything else arrives on
/// `rx` (and the client does not prefer SSE), else with an SSE stream: the messages from `rx`
/// as they come, then the response.
///
/// `work` comes boxed: it holds the whole relay path (kilobytes of state), which should be
/// moved once, into its box, rather than with every future that carries it.
pub(super) async fn stream_or_json(
    mut work: Pin<Box<dyn Future<Output = Finish> + Send>>,
    mut rx: mpsc::Receiver<Value>,
    accept: Accepts,
) -> Response {
    let first = if accept.prefers_sse() {
        None
    } else {
        tokio::select! {
            done = &mut work => return match done {
                Finish::Body(body) => json_or_sse(body, accept),
                Finish::Cancelled => cancelled_response(accept),
                Finish::Refused { response, .. } => response,
            },
            first = rx.recv(), if accept.sse => first,
        }
    };
    let stream = async_stream::stream! {
        if let Some(m) = first {
            yield Ok::<Bytes, std::convert::Infallible>(sse::event_value(&m));
        }
        loop {
            tokio::select! {
                biased;
                Some(m) = rx.recv() => yield Ok(sse::event_value(&m)),
                done = &mut work => {
                    while let Ok(m) = rx.try_recv() {
                        yield Ok(sse::event_value(&m));
                    }
                    match done {
                        Finish::Body(body) | Finish::Refused { body, .. } => yield Ok(sse::event(&body)),
                        Finish::Cancelled => {}
                    }
                    break;
                }
            }
        }
    };
    sse_response(Body::from_stream(stream))
}

/// A cancelled request gets no result: an empty stream when the client takes SSE, else the
/// one answer JSON allows, a "cancelled" error.
fn cancelled_response(accept: Accepts) -> Response {
    if accept.sse {
        sse_response(Body::empty())
    } else {
        let err = jsonrpc::error_object(jsonrpc::code::REQUEST_CANCELLED, "request cancelled", None);
        ([(header::CONTENT_TYPE, "application/json")], jsonrpc::error_bytes(None, &err)).into_response()
    }
}

/// Keeps a client request registered for cancellation while it runs.
struct Tracked {
    session: Arc<Session>,
    id: Value,
    token: tokio_util::sync::CancellationToken,
}

impl Tracked {
    fn new(session: Arc<Session>, id: &Value) -> Tracked {
        let token = session.track_request(id);
        Tracked { session, id: id.clone(), token }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.session.untrack_request(&self.id);
    }
}

fn handle_get(app: AppState, scope: Scope, headers: HeaderMap) -> Result<Response, HttpError> {
    if modern::is_stateless_client(&headers) {
        return Err(HttpError::MethodNotAllowed("GET"));
    }
    if !accepts(&headers).sse {
        return Err(HttpError::StreamNotAcceptable);
    }
    check_version_header(&headers)?;
    let session = find_session(&app, &scope, &headers)?;
    let mut rx = session.attach_stream().ok_or(HttpError::StreamConflict)?;
    let closing = app.closing.clone();
    let stream = async_stream::stream! {
        let mut ticker = tokio::time::interval(KEEP_ALIVE);
        ticker.tick().await;
        yield Ok::<Bytes, std::convert::Infallible>(sse::keep_alive());
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => yield Ok(sse::event_value(&m)),
                    None => break,
                },
                _ = ticker.tick() => yield Ok(sse::keep_alive()),
                _ = closing.cancelled() => break,
            }
        }
    };
    Ok(sse_response(Body::from_stream(stream)))
}

fn handle_delete(app: AppState, scope: Scope, headers: HeaderMap) -> Result<Response, HttpError> {
    if modern::is_stateless_client(&headers) {
        return Err(HttpError::MethodNotAllowed("DELETE"));
    }
    let session = find_session(&app, &scope, &headers)?;
    app.gateway.end_session(&session.id);
    tracing::debug!(session = %session.id, "Session ended by the client.");
    Ok(StatusCode::OK.into_response())
}
