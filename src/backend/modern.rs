//! Talking the stateless protocol era (2026-07-28) to a backend.
//!
//! No `initialize` and no session: [`Connection::open`](super::Connection::open) asks
//! `server/discover` first, every request carries the protocol version and the caller's
//! capabilities and info in `params._meta` ([`with_meta`]), and change notifications come on
//! one long-lived `subscriptions/listen` request ([`Listen`]). Over streamable HTTP each POST
//! also mirrors the method, the name and annotated tool arguments into headers
//! ([`mirrored_headers`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::client::{CallError, CallOptions, Caller, Peer, Reply};
use crate::config::{RemoteKind, ServerConfig, TransportConfig};
use crate::protocol::{self, meta, methods};

/// How long `server/discover` may go unanswered before `initialize` is sent as well.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Methods (requests and notifications) the stateless era removed: never sent to such a
/// backend.
pub const REMOVED_METHODS: &[&str] = &[
    methods::INITIALIZE,
    methods::INITIALIZED,
    methods::PING,
    methods::SET_LEVEL,
    methods::SUBSCRIBE,
    methods::UNSUBSCRIBE,
    methods::ROOTS_LIST_CHANGED,
];

/// A `listen` request never times out by itself: it ends when the backend ends it, the
/// connection ends, or mcpmux reopens it.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// First wait before reopening a listen stream that ended; doubled up to the cap.
const LISTEN_BACKOFF_START: Duration = Duration::from_millis(500);
const LISTEN_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A listen stream open this long counts as healthy (its backoff starts over).
const LISTEN_STABLE: Duration = Duration::from_secs(30);

/// Whether `server/discover` is worth asking: not over the legacy HTTP+SSE transport, which
/// the stateless era does not use.
pub fn probe_applies(cfg: &ServerConfig) -> bool {
    match &cfg.transport {
        TransportConfig::Stdio(_) => true,
        TransportConfig::Remote(r) => match r.kind {
            RemoteKind::Sse => false,
            RemoteKind::StreamableHttp => true,
            RemoteKind::Auto => !r.url.split(['?', '#']).next().unwrap_or("").trim_end_matches('/').ends_with("/sse"),
        },
    }
}

/// mcpmux's own `clientInfo`.
fn own_info() -> Value {
    json!({"name": "mcpmux", "title": "mcpmux gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// `params` with the stateless era's `_meta` keys filled in: the protocol version, the
/// caller's capabilities and info (mcpmux's own without a caller) and its log level. Keys the
/// caller already sent are kept as they are; nothing else is touched.
pub fn with_meta(params: Option<Value>, caller: Option<&Caller>) -> Value {
    let mut obj = match params {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        // Not an object: nothing can be added; the backend will say what it thinks of it.
        Some(other) => return other,
    };
    let slot = obj.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    if let Some(m) = slot.as_object_mut() {
        m.entry(meta::PROTOCOL_VERSION).or_insert_with(|| protocol::MODERN_VERSION.into());
        m.entry(meta::CLIENT_CAPABILITIES).or_insert_with(|| match caller {
            Some(c) => (*c.capabilities).clone(),
            None => super::client_capabilities(),
        });
        if !m.contains_key(meta::CLIENT_INFO) {
            let info = match caller {
                Some(c) => c.info.clone(),
                None => Some(own_info()),
            };
            if let Some(info) = info {
                m.insert(meta::CLIENT_INFO.into(), info);
            }
        }
        if let Some(level) = caller.and_then(|c| c.log_level.as_ref()) {
            m.entry(meta::LOG_LEVEL).or_insert_with(|| level.clone().into());
        }
    }
    Value::Object(obj)
}

/// What a `server/discover` result says, when it offers a stateless version mcpmux speaks.
pub fn server_info(result: &Value) -> Result<super::ServerInfo, String> {
    let Some(versions) = result.get("supportedVersions").and_then(Value::as_array) else {
        return Err("the server/discover result has no supportedVersions".to_owned());
    };
    let Some(version) = protocol::MODERN_VERSIONS.iter().find(|v| versions.iter().any(|s| s.as_str() == Some(v)))
    else {
        return Err(format!("the backend supports {}, none of which mcpmux speaks", Value::Array(versions.clone())));
    };
    Ok(super::ServerInfo {
        protocol_version: (*version).to_owned(),
        capabilities: result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        server_info: result
            .get("_meta")
            .and_then(|m| m.get(meta::SERVER_INFO))
            .or_else(|| result.get("serverInfo"))
            .cloned()
            .unwrap_or_else(|| json!({})),
        instructions: result.get("instructions").and_then(Value::as_str).map(str::to_owned),
    })
}

/// A notification from a listen stream, without the subscription id mcpmux's clients have no
/// use for (`_meta` goes too when nothing else is in it).
pub fn strip_subscription_id(params: Option<Value>) -> Option<Value> {
    let mut params = params?;
    if let Some(obj) = params.as_object_mut()
        && let Some(m) = obj.get_mut("_meta").and_then(Value::as_object_mut)
        && m.remove(meta::SUBSCRIPTION_ID).is_some()
        && m.is_empty()
    {
        obj.remove("_meta");
    }
    Some(params)
}

/// Per tool, the arguments its input schema marks with `x-mcp-header`: the path of property
/// names to the argument and the header name (after `Mcp-Param-`).
pub type ToolHeaders = HashMap<String, Vec<(Vec<String>, String)>>;

/// The `x-mcp-header` annotations of listed tools.
pub fn tool_headers(tools: &[Value]) -> ToolHeaders {
    let mut out = ToolHeaders::new();
    for tool in tools {
        let (Some(name), Some(schema)) = (tool.get("name").and_then(Value::as_str), tool.get("inputSchema")) else {
            continue;
        };
        let mut found = Vec::new();
        collect_annotations(schema, &mut Vec::new(), &mut found, 0);
        if !found.is_empty() {
            out.insert(name.to_owned(), found);
        }
    }
    out
}

fn collect_annotations(schema: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>, depth: usize) {
    if depth > 16 {
        return;
    }
    if !path.is_empty()
        && let Some(token) = schema.get("x-mcp-header").and_then(Value::as_str)
    {
        out.push((path.clone(), token.to_owned()));
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            path.push(key.clone());
            collect_annotations(sub, path, out, depth + 1);
            path.pop();
        }
    }
}

/// A header value as the stateless era sends it: plain visible ASCII without leading or
/// trailing space as is, anything else as `=?base64?…?=` of its UTF-8.
pub fn encode_header_value(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain { value.to_owned() } else { format!("=?base64?{}?=", base64(value.as_bytes())) }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A tool argument rendered for its header: strings as they are, integers in decimal,
/// booleans lowercase. Other values have no header.
fn render_scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The headers a stateless-era POST mirrors from its body, as `(name, value)`: `Mcp-Method`,
/// `Mcp-Name` (`params.name` or `params.uri`) for `tools/call`, `prompts/get` and
/// `resources/read`, and `Mcp-Param-*` for a `tools/call`'s annotated arguments.
pub fn mirrored_headers(method: &str, params: Option<&Value>, tools: &ToolHeaders) -> Vec<(String, String)> {
    let mut out = vec![("mcp-method".to_owned(), encode_header_value(method))];
    let name_key = match method {
        methods::TOOLS_CALL | methods::PROMPTS_GET => Some("name"),
        methods::RESOURCES_READ => Some("uri"),
        _ => None,
    };
    if let Some(key) = name_key
        && let Some(name) = params.and_then(|p| p.get(key)).and_then(Value::as_str)
    {
        out.push(("mcp-name".to_owned(), encode_header_value(name)));
        if method == methods::TOOLS_CALL
            && let Some(annotated) = tools.get(name)
        {
            let args = params.and_then(|p| p.get("arguments"));
            for (path, token) in annotated {
                let mut node = args;
                for key in path {
                    node = node.and_then(|n| n.get(key));
                }
                if let Some(rendered) = node.and_then(render_scalar) {
                    out.push((format!("mcp-param-{token}"), encode_header_value(&rendered)));
                }
            }
        }
    }
    out
}

/// The `subscriptions/listen` stream of one connection.
#[derive(Default)]
pub struct Listen {
    /// The resource URIs to hear updates for.
    resources: Mutex<Vec<String>>,
    /// Reopen the stream (the resource list changed).
    wake: Notify,
    stop: CancellationToken,
    started: AtomicBool,
    /// Listen requests in flight (not counted as calls in flight).
    active: AtomicUsize,
}

impl Listen {
    /// Starts the task that keeps the stream open; later calls only update the resources.
    pub fn start(self: &Arc<Self>, peer: Arc<Peer>, capabilities: &Value, resources: Vec<String>) {
        *self.resources.lock().unwrap_or_else(|e| e.into_inner()) = resources;
        if self.started.swap(true, Ordering::SeqCst) {
            self.wake.notify_one();
            return;
        }
        let kinds = list_kinds(capabilities);
        tokio::spawn(self.clone().run(peer, kinds));
    }

    /// Changes the resources; an open stream is reopened with them.
    pub fn set_resources(&self, resources: Vec<String>) {
        {
            let mut current = self.resources.lock().unwrap_or_else(|e| e.into_inner());
            if *current == resources {
                return;
            }
            *current = resources;
        }
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Listen requests in flight.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    async fn run(self: Arc<Self>, peer: Arc<Peer>, kinds: Map<String, Value>) {
        let mut backoff = LISTEN_BACKOFF_START;
        loop {
            if self.stop.is_cancelled() || peer.is_closed() {
                return;
            }
            let mut notifications = kinds.clone();
            let resources = self.resources.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if !resources.is_empty() {
                notifications.insert("resourceSubscriptions".into(), json!(resources));
            }
            if notifications.is_empty() {
                // Nothing to hear about until a client subscribes to a resource.
                tokio::select! {
                    _ = self.wake.notified() => continue,
                    _ = self.stop.cancelled() => return,
                    _ = peer.closed().cancelled() => return,
                }
            }
            let params = with_meta(Some(json!({"notifications": notifications})), None);
            let cancel = CancellationToken::new();
            let opts = CallOptions { cancel: Some(cancel.clone()), ..CallOptions::default() };
            let opened = tokio::time::Instant::now();
            self.active.fetch_add(1, Ordering::Relaxed);
            let request = peer.request(methods::SUBSCRIPTIONS_LISTEN, Some(params), opts, LISTEN_TIMEOUT);
            tokio::pin!(request);
            let mut reopen = false;
            let outcome = loop {
                tokio::select! {
                    r = &mut request => break r,
                    _ = self.wake.notified(), if !cancel.is_cancelled() => {
                        reopen = true;
                        cancel.cancel();
                    }
                    _ = self.stop.cancelled(), if !cancel.is_cancelled() => cancel.cancel(),
                }
            };
            self.active.fetch_sub(1, Ordering::Relaxed);
            if reopen {
                backoff = LISTEN_BACKOFF_START;
                continue;
            }
            match outcome {
                Err(CallError::Closed(_) | CallError::Cancelled) => return,
                Ok(Reply::Error(e))
                    if e.get("code").and_then(Value::as_i64) == Some(crate::jsonrpc::code::METHOD_NOT_FOUND) =>
                {
                    tracing::info!(
                        backend = peer.name(),
                        "Backend does not serve subscriptions/listen; its changes will not be noticed."
                    );
                    return;
                }
                Ok(Reply::Error(e)) => {
                    tracing::debug!(backend = peer.name(), error = %e, "The backend refused subscriptions/listen; trying again later.");
                }
                Ok(Reply::Result(_)) => {
                    tracing::debug!(
                        backend = peer.name(),
                        "The backend ended the subscriptions/listen stream; reopening it."
                    );
                }
                Err(e) => {
                    tracing::debug!(backend = peer.name(), error = %e, "The subscriptions/listen stream failed; reopening it.");
                }
            }
            if opened.elapsed() > LISTEN_STABLE {
                backoff = LISTEN_BACKOFF_START;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return,
                _ = peer.closed().cancelled() => return,
            }
            backoff = (backoff * 2).min(LISTEN_BACKOFF_CAP);
        }
    }
}

/// The list-change notifications to opt in to: those whose capability announces `listChanged`.
fn list_kinds(capabilities: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (capability, key) in
        [("tools", "toolsListChanged"), ("prompts", "promptsListChanged"), ("resources", "resourcesListChanged")]
    {
        if capabilities.get(capability).and_then(|c| c.get("listChanged")).and_then(Value::as_bool) == Some(true) {
            out.insert(key.into(), true.into());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn meta_fills_only_what_is_missing() {
        let caller = Caller {
            modern: false,
            capabilities: Arc::new(json!({"elicitation": {}})),
            info: Some(json!({"name": "c", "version": "1"})),
            log_level: Some("debug".into()),
        };
        let p = with_meta(
            Some(json!({"name": "t", "x": [1], "_meta": {"progressToken": 7, meta::CLIENT_INFO: {"name": "own"}}})),
            Some(&caller),
        );
        assert_eq!(p["name"], "t");
        assert_eq!(p["x"], json!([1]));
        assert_eq!(p["_meta"]["progressToken"], 7);
        assert_eq!(p["_meta"][meta::CLIENT_INFO], json!({"name": "own"}));
        assert_eq!(p["_meta"][meta::PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(p["_meta"][meta::CLIENT_CAPABILITIES], json!({"elicitation": {}}));
        assert_eq!(p["_meta"][meta::LOG_LEVEL], "debug");
        let own = with_meta(None, None);
        assert_eq!(own["_meta"][meta::CLIENT_INFO]["name"], "mcpmux");
        assert!(own["_meta"].get(meta::LOG_LEVEL).is_none());
    }

    #[test]
    fn header_values_are_encoded_when_not_plain() {
        assert_eq!(encode_header_value("get_weather"), "get_weather");
        assert_eq!(encode_header_value(" x"), "=?base64?IHg=?=");
        assert_eq!(encode_header_value("héllo"), "=?base64?aMOpbGxv?=");
    }

    #[test]
    fn annotated_arguments_are_mirrored() {
        let tools = tool_headers(&[json!({"name": "t", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "deep": {"type": "object", "properties": {"flag": {"type": "boolean", "x-mcp-header": "Flag"}}}
        }}})]);
        let h = mirrored_headers(
            "tools/call",
            Some(&json!({"name": "t", "arguments": {"region": "eu", "n": 3, "deep": {"flag": true}}})),
            &tools,
        );
        assert!(h.contains(&("mcp-method".into(), "tools/call".into())));
        assert!(h.contains(&("mcp-name".into(), "t".into())));
        assert!(h.contains(&("mcp-param-Region".into(), "eu".into())));
        assert!(h.contains(&("mcp-param-N".into(), "3".into())));
        assert!(h.contains(&("mcp-param-Flag".into(), "true".into())));
    }

    #[test]
    fn discover_result_is_read() {
        let info = server_info(&json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
            "instructions": "hi", "_meta": {meta::SERVER_INFO: {"name": "s"}}}))
        .unwrap();
        assert!(info.is_modern());
        assert_eq!(info.server_info["name"], "s");
        assert!(server_info(&json!({"supportedVersions": ["2099-01-01"]})).is_err());
    }
}
