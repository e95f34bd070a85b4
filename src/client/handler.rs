//! What a client does with what servers send on their own: log messages, progress, list
//! changes, and requests (sampling, elicitation, roots).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::backend::ListKind;
use crate::backend::client::{EventSink, Origin, Peer};
use crate::jsonrpc::{self, Payload, code};
use crate::protocol::methods;

/// The answer a handler gives to a server request: the `result` object, or a JSON-RPC `error`
/// object (see [`refusal`]).
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, Value>> + Send>>;

/// A `notifications/message` a server sent.
#[derive(Debug, Clone)]
pub struct LogMessage {
    /// `debug`, `info`, `notice`, `warning`, `error`, `critical`, `alert` or `emergency`.
    pub level: String,
    /// The logger name, when the server gave one.
    pub logger: Option<String>,
    /// The message (any JSON).
    pub data: Value,
    /// The notification's params as sent.
    pub raw: Value,
}

impl LogMessage {
    pub fn from_params(params: Option<Value>) -> LogMessage {
        let raw = params.unwrap_or(Value::Null);
        LogMessage {
            level: raw.get("level").and_then(Value::as_str).unwrap_or("info").to_owned(),
            logger: raw.get("logger").and_then(Value::as_str).map(str::to_owned),
            data: raw.get("data").cloned().unwrap_or(Value::Null),
            raw,
        }
    }

    /// The message as one line of text (a JSON string as is, anything else as JSON).
    pub fn text(&self) -> String {
        match &self.data {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// A `notifications/progress` for a call this client made.
#[derive(Debug, Clone)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
    /// The notification's params as sent.
    pub raw: Value,
}

impl Progress {
    pub fn from_params(params: &Value) -> Progress {
        Progress {
            progress: params.get("progress").and_then(Value::as_f64).unwrap_or(0.0),
            total: params.get("total").and_then(Value::as_f64),
            message: params.get("message").and_then(Value::as_str).map(str::to_owned),
            raw: params.clone(),
        }
    }
}

/// The JSON-RPC error object a client sends when it does not handle a server request.
pub fn refusal(method: &str) -> Value {
    jsonrpc::error_object(code::METHOD_NOT_FOUND, format!("this client does not handle '{method}'"), None)
}

/// Receives what a server sends outside of answers. Every method has a default: notifications
/// are ignored and requests are refused with a JSON-RPC error, so an implementation overrides
/// only what it supports. `server` is the server's name (the config key, or what the client was
/// given).
///
/// ```
/// use mcpmux::client::{Handler, HandlerFuture, LogMessage};
/// use serde_json::json;
///
/// /// Prints log messages and lists one root.
/// struct MyHandler;
///
/// impl Handler for MyHandler {
///     fn on_log(&self, server: &str, message: &LogMessage) {
///         eprintln!("[{server}] {}: {}", message.level, message.text());
///     }
///     fn list_roots(&self, _server: &str) -> HandlerFuture {
///         Box::pin(async { Ok(json!({"roots": [{"uri": "file:///tmp", "name": "tmp"}]})) })
///     }
/// }
/// # let _ = MyHandler;
/// ```
pub trait Handler: Send + Sync + 'static {
    /// A log message (`notifications/message`).
    fn on_log(&self, server: &str, message: &LogMessage) {
        let _ = (server, message);
    }

    /// Progress for a `tools/call` this client is waiting for.
    fn on_progress(&self, server: &str, progress: &Progress) {
        let _ = (server, progress);
    }

    /// The server's list of `kind` changed (`notifications/…/list_changed`).
    fn on_list_changed(&self, server: &str, kind: ListKind) {
        let _ = (server, kind);
    }

    /// Any other notification (`notifications/resources/updated`, …).
    fn on_notification(&self, server: &str, method: &str, params: Option<&Value>) {
        let _ = (server, method, params);
    }

    /// The connection ended.
    fn on_closed(&self, server: &str, reason: &str) {
        let _ = (server, reason);
    }

    /// `sampling/createMessage`: the server asks for an LLM completion.
    fn create_message(&self, server: &str, params: Value) -> HandlerFuture {
        let _ = (server, params);
        Box::pin(async { Err(refusal("sampling/createMessage")) })
    }

    /// `elicitation/create`: the server asks the user for input.
    fn elicit(&self, server: &str, params: Value) -> HandlerFuture {
        let _ = (server, params);
        Box::pin(async { Err(refusal("elicitation/create")) })
    }

    /// `roots/list`: the server asks which roots the client exposes.
    fn list_roots(&self, server: &str) -> HandlerFuture {
        let _ = server;
        Box::pin(async { Err(refusal("roots/list")) })
    }

    /// Any other server request.
    fn on_request(&self, server: &str, method: &str, params: Option<Value>) -> HandlerFuture {
        let _ = (server, params);
        let error = refusal(method);
        Box::pin(async move { Err(error) })
    }
}

/// A shared handler: keep an `Arc` to read what it recorded while the client uses it.
impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn on_log(&self, server: &str, message: &LogMessage) {
        (**self).on_log(server, message)
    }
    fn on_progress(&self, server: &str, progress: &Progress) {
        (**self).on_progress(server, progress)
    }
    fn on_list_changed(&self, server: &str, kind: ListKind) {
        (**self).on_list_changed(server, kind)
    }
    fn on_notification(&self, server: &str, method: &str, params: Option<&Value>) {
        (**self).on_notification(server, method, params)
    }
    fn on_closed(&self, server: &str, reason: &str) {
        (**self).on_closed(server, reason)
    }
    fn create_message(&self, server: &str, params: Value) -> HandlerFuture {
        (**self).create_message(server, params)
    }
    fn elicit(&self, server: &str, params: Value) -> HandlerFuture {
        (**self).elicit(server, params)
    }
    fn list_roots(&self, server: &str) -> HandlerFuture {
        (**self).list_roots(server)
    }
    fn on_request(&self, server: &str, method: &str, params: Option<Value>) -> HandlerFuture {
        (**self).on_request(server, method, params)
    }
}

/// The handler used when none is given: ignores notifications, refuses requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultHandler;

impl Handler for DefaultHandler {}

/// Connects a [`Handler`] to one connection: the connection's owner, so every server request
/// and log message on it reaches the handler.
pub(crate) struct HandlerOrigin {
    pub(crate) server: Arc<str>,
    pub(crate) handler: Arc<dyn Handler>,
}

impl Origin for HandlerOrigin {
    fn key(&self) -> &str {
        &self.server
    }

    fn forward_request(
        &self,
        peer: Arc<Peer>,
        backend_id: Value,
        method: String,
        params: Option<Value>,
        _sink: Option<EventSink>,
    ) {
        let handler = self.handler.clone();
        let server = self.server.clone();
        let answer = match method.as_str() {
            "sampling/createMessage" => handler.create_message(&server, params.unwrap_or_else(|| json!({}))),
            "elicitation/create" => handler.elicit(&server, params.unwrap_or_else(|| json!({}))),
            "roots/list" => handler.list_roots(&server),
            other => handler.on_request(&server, other, params),
        };
        let respond = async move {
            let outcome = answer.await.map(|result| Payload::from_value(&result));
            peer.respond(&backend_id, outcome);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(respond);
            }
            Err(_) => {
                tracing::warn!(server = %self.server, "A server request arrived outside a runtime; not answered.")
            }
        }
    }

    fn forward_notification(&self, backend: &str, method: &str, params: Option<Value>, _sink: Option<EventSink>) {
        if method == methods::MESSAGE {
            self.handler.on_log(backend, &LogMessage::from_params(params));
        } else {
            self.handler.on_notification(backend, method, params.as_ref());
        }
    }

    fn forward_cancel(&self, _peer: &Peer, _backend_id: &Value) {}
}

/// Hands a connection's events to the handler until the connection ends.
pub(crate) async fn pump_events(
    server: Arc<str>,
    handler: Arc<dyn Handler>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<crate::backend::client::BackendEvent>,
) {
    use crate::backend::client::BackendEvent;
    while let Some(event) = events.recv().await {
        match event {
            BackendEvent::Notification { method, params } => {
                if method == methods::MESSAGE {
                    handler.on_log(&server, &LogMessage::from_params(params));
                } else if let Some(kinds) = ListKind::from_list_changed(&method) {
                    for kind in kinds {
                        handler.on_list_changed(&server, *kind);
                    }
                } else {
                    handler.on_notification(&server, &method, params.as_ref());
                }
            }
            BackendEvent::Closed { reason } => {
                handler.on_closed(&server, &reason);
                break;
            }
        }
    }
}
