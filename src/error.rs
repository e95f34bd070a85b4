//! The failures mcpmux reports, and the one place they become HTTP statuses and JSON-RPC errors.
//!
//! Each failure is a small type named after what went wrong. [`HttpError`] is a problem with the
//! HTTP exchange itself (answered with a 4xx status); [`RelayError`] is a problem with one
//! JSON-RPC request (answered with 200 and a JSON-RPC error object). Internal detail goes to the
//! log; clients get a clear message.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::jsonrpc::{self, code};

/// A request mcpmux refuses at the HTTP level.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the Accept header must allow application/json or text/event-stream")]
    NotAcceptable,
    #[error("the Accept header must allow text/event-stream")]
    StreamNotAcceptable,
    #[error("the Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("missing Mcp-Session-Id header; send initialize first")]
    MissingSession,
    #[error("session not found; it ended or expired, send initialize again")]
    UnknownSession,
    #[error("unsupported MCP-Protocol-Version '{0}'; supported: {supported}", supported = crate::protocol::all_versions().join(", "))]
    UnsupportedProtocolVersion(String),
    #[error("{0} is not served to clients of protocol 2026-07-28; send POST requests with per-request _meta")]
    MethodNotAllowed(&'static str),
    #[error("Origin '{0}' is not allowed")]
    ForbiddenOrigin(String),
    #[error("Host '{0}' is not allowed")]
    ForbiddenHost(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("parse error: {0}")]
    Parse(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("this session already has an open GET stream")]
    StreamConflict,
    #[error("no backend named '{0}'")]
    UnknownBackend(String),
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::NotAcceptable | HttpError::StreamNotAcceptable => StatusCode::NOT_ACCEPTABLE,
            HttpError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::MissingSession
            | HttpError::UnsupportedProtocolVersion(_)
            | HttpError::Parse(_)
            | HttpError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::UnknownSession | HttpError::UnknownBackend(_) => StatusCode::NOT_FOUND,
            HttpError::ForbiddenOrigin(_) | HttpError::ForbiddenHost(_) => StatusCode::FORBIDDEN,
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::StreamConflict => StatusCode::CONFLICT,
            HttpError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn rpc_code(&self) -> i64 {
        match self {
            HttpError::Parse(_) => code::PARSE_ERROR,
            HttpError::InvalidRequest(_) => code::INVALID_REQUEST,
            HttpError::UnsupportedProtocolVersion(_) => code::UNSUPPORTED_PROTOCOL_VERSION,
            _ => code::BACKEND_UNAVAILABLE,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let data = match &self {
            HttpError::UnsupportedProtocolVersion(v) => {
                Some(json!({"requested": v, "supported": crate::protocol::all_versions()}))
            }
            _ => None,
        };
        let body = jsonrpc::error_bytes(None, &jsonrpc::error_object(self.rpc_code(), self.to_string(), data));
        let mut resp = (self.status(), body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if matches!(self, HttpError::Unauthorized) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, HttpError::MethodNotAllowed(_)) {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        resp
    }
}

/// A request of the stateless era (2026-07-28) refused before it is routed: each answered with
/// the HTTP status and JSON-RPC error code the spec gives it, and the request's id.
#[derive(Debug, thiserror::Error)]
pub enum StatelessError {
    #[error("invalid request metadata: {0}")]
    InvalidMeta(String),
    #[error("header mismatch: {0}")]
    HeaderMismatch(String),
    #[error("unsupported protocol version '{0}'")]
    UnsupportedVersion(String),
    #[error("this request needs the client capability '{capability}', which the request did not declare")]
    MissingCapability { capability: String, required: Value },
    #[error("method '{0}' does not exist in protocol 2026-07-28")]
    Removed(String),
    #[error("this stream needs an Accept header that allows text/event-stream")]
    StreamNotAcceptable,
    /// A routing failure, with the era's codes (resource not found is -32602 since 2026-07-28).
    #[error("{0}")]
    Relay(#[from] RelayError),
}

impl StatelessError {
    pub fn status(&self) -> StatusCode {
        match self {
            StatelessError::InvalidMeta(_)
            | StatelessError::HeaderMismatch(_)
            | StatelessError::UnsupportedVersion(_)
            | StatelessError::MissingCapability { .. } => StatusCode::BAD_REQUEST,
            StatelessError::Removed(_) => StatusCode::NOT_FOUND,
            StatelessError::StreamNotAcceptable => StatusCode::NOT_ACCEPTABLE,
            // The era's errors get the era's statuses, whether mcpmux or the backend says so.
            StatelessError::Relay(e) => match e.to_error_object()["code"].as_i64() {
                Some(code::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
                Some(code::HEADER_MISMATCH | code::MISSING_CLIENT_CAPABILITY | code::UNSUPPORTED_PROTOCOL_VERSION) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::OK,
            },
        }
    }

    pub fn to_error_object(&self) -> Value {
        let (c, data) = match self {
            StatelessError::InvalidMeta(_) => (code::INVALID_PARAMS, None),
            StatelessError::HeaderMismatch(_) => (code::HEADER_MISMATCH, None),
            StatelessError::UnsupportedVersion(v) => (
                code::UNSUPPORTED_PROTOCOL_VERSION,
                Some(json!({"requested": v, "supported": crate::protocol::all_versions()})),
            ),
            StatelessError::MissingCapability { required, .. } => {
                (code::MISSING_CLIENT_CAPABILITY, Some(json!({"requiredCapabilities": required})))
            }
            StatelessError::Removed(_) => (code::METHOD_NOT_FOUND, None),
            StatelessError::StreamNotAcceptable => (code::INVALID_REQUEST, None),
            StatelessError::Relay(e) => {
                let mut obj = e.to_error_object();
                if obj.get("code").and_then(Value::as_i64) == Some(code::RESOURCE_NOT_FOUND) {
                    obj["code"] = code::INVALID_PARAMS.into();
                }
                return obj;
            }
        };
        jsonrpc::error_object(c, self.to_string(), data)
    }

    /// The HTTP response for request `id`.
    pub fn into_response(self, id: Option<&Value>) -> Response {
        let body = jsonrpc::error_bytes(id, &self.to_error_object());
        let mut resp = (self.status(), body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
    }
}

/// A JSON-RPC request that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("method not found: {0}")]
    MethodNotFound(String),
    #[error("invalid params: {0}")]
    InvalidParams(String),
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    #[error("unknown prompt: {0}")]
    UnknownPrompt(String),
    #[error("resource not found: {0}")]
    UnknownResource(String),
    #[error("backend '{backend}' is unavailable: {reason}")]
    BackendUnavailable { backend: String, reason: String },
    #[error("backend '{backend}' did not answer within {}", fmt_duration(.after))]
    Timeout { backend: String, after: Duration },
    #[error("backend '{backend}' closed the connection before answering: {reason}")]
    ConnectionLost { backend: String, reason: String },
    #[error("the request to backend '{backend}' failed: {reason}")]
    RequestFailed { backend: String, reason: String },
    #[error("request cancelled")]
    Cancelled,
    /// The backend's own error object, passed through unchanged.
    #[error("backend error")]
    Backend(Value),
}

fn fmt_duration(d: &Duration) -> String {
    if d.as_millis().is_multiple_of(1000) { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

impl RelayError {
    /// The JSON-RPC error object sent to the client.
    pub fn to_error_object(&self) -> Value {
        let (c, data) = match self {
            RelayError::Backend(v) => return v.clone(),
            RelayError::MethodNotFound(_) => (code::METHOD_NOT_FOUND, None),
            RelayError::InvalidParams(_) | RelayError::UnknownTool(_) | RelayError::UnknownPrompt(_) => {
                (code::INVALID_PARAMS, None)
            }
            RelayError::UnknownResource(uri) => (code::RESOURCE_NOT_FOUND, Some(json!({"uri": uri}))),
            RelayError::BackendUnavailable { backend, .. }
            | RelayError::ConnectionLost { backend, .. }
            | RelayError::RequestFailed { backend, .. } => {
                (code::BACKEND_UNAVAILABLE, Some(json!({"backend": backend})))
            }
            RelayError::Timeout { backend, .. } => (code::REQUEST_TIMEOUT, Some(json!({"backend": backend}))),
            RelayError::Cancelled => (code::REQUEST_CANCELLED, None),
        };
        jsonrpc::error_object(c, self.to_string(), data)
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "refusing to listen on non-loopback address {0} without an auth token; set mcpmux.authToken (or MCPMUX_AUTH_TOKEN), or allow it explicitly with --allow-unauthenticated"
    )]
    UnauthenticatedPublicListen(std::net::SocketAddr),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}
