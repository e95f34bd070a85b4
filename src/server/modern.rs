//! Streamable HTTP of the stateless era (2026-07-28), on the same endpoint as the session era.
//!
//! A request whose `_meta` names its protocol version (or whose `MCP-Protocol-Version` header
//! names a stateless version, or that is `server/discover`) is served without a session: its
//! headers are checked against its body, its `_meta` supplies the client's capabilities, every
//! result says `resultType`, and list and read results carry caching hints. `tools/call`,
//! `prompts/get` and `resources/read` run as multi round-trip requests (see [`crate::mrtr`]),
//! so a session-era backend that asks the client something mid-call still works.
//! `subscriptions/listen` opens a stream of the change notifications the client opts in to.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::mcp::{Accepts, Finish, REQUEST_STREAM_CAPACITY, json_or_sse, sse_response, stream_or_json};
use super::{AppState, sse};
use crate::backend::client::Caller;
use crate::error::{RelayError, StatelessError};
use crate::gateway::Gateway;
use crate::jsonrpc::{self, Kind, Message, Payload};
use crate::mrtr::{self, Binding, Live, Parked, Signal};
use crate::protocol::{self, headers as h, meta, methods};
use crate::relay::RequestContext;
use crate::session::{self, Scope};

/// Freshness hint on list results (`ttlMs`). Clients that listen for list changes hear of
/// every change sooner.
const LIST_TTL_MS: u64 = 60_000;
/// Keep-alive comments on `subscriptions/listen` streams.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether a POSTed message is a request of the stateless era.
pub fn is_stateless(headers: &HeaderMap, msg: &Message) -> bool {
    if msg.kind() != Kind::Request {
        return false;
    }
    if msg.method.as_deref() == Some(methods::DISCOVER) {
        return true;
    }
    let in_meta = msg.params.as_ref().and_then(|p| p.get("_meta")).and_then(|m| m.get(meta::PROTOCOL_VERSION));
    in_meta.is_some() || header(headers, h::PROTOCOL_VERSION).is_some_and(protocol::is_modern)
}

/// Whether a GET, DELETE or notification comes from a client of the stateless era.
pub fn is_stateless_client(headers: &HeaderMap) -> bool {
    header(headers, h::SESSION_ID).is_none() && header(headers, h::PROTOCOL_VERSION).is_some_and(protocol::is_modern)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What a stateless request says about its client.
struct RequestMeta {
    version: String,
    capabilities: Arc<Value>,
    info: Option<Value>,
    log_level: Option<String>,
}

impl RequestMeta {
    fn caller(&self) -> Arc<Caller> {
        Arc::new(Caller {
            modern: true,
            capabilities: self.capabilities.clone(),
            info: self.info.clone(),
            log_level: self.log_level.clone(),
        })
    }

    fn context(&self, scope: Scope) -> RequestContext {
        RequestContext {
            protocol_version: self.version.clone(),
            client_capabilities: self.capabilities.clone(),
            scope,
            session: None,
            events: None,
            cancel: None,
            caller: self.caller(),
            origin: None,
        }
    }
}

/// Serves one stateless request.
pub async fn handle(app: AppState, scope: Scope, headers: &HeaderMap, msg: Message, accept: Accepts) -> Response {
    let id = msg.id.clone().unwrap_or(Value::Null);
    match serve(app, scope, headers, msg, accept).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(error = %e, "Stateless request refused.");
            e.into_response(Some(&id))
        }
    }
}

async fn serve(
    app: AppState,
    scope: Scope,
    headers: &HeaderMap,
    msg: Message,
    accept: Accepts,
) -> Result<Response, StatelessError> {
    let method = msg.method.clone().unwrap_or_default();
    let id = msg.id.clone().unwrap_or(Value::Null);
    let meta = validate(headers, &method, msg.params.as_ref())?;
    match method.as_str() {
        methods::DISCOVER => {
            let result = discover(&app.gateway, &scope)?;
            Ok(json_or_sse(jsonrpc::response_bytes(&id, &Payload::from_value(&result)), accept))
        }
        methods::SUBSCRIPTIONS_LISTEN => listen(app, scope, id, msg.params, meta, accept).await,
        methods::INITIALIZE
        | methods::PING
        | methods::SET_LEVEL
        | methods::SUBSCRIBE
        | methods::UNSUBSCRIBE
        | methods::TASKS_RESULT
        | methods::TASKS_LIST => Err(StatelessError::Removed(method)),
        methods::TOOLS_CALL | methods::PROMPTS_GET | methods::RESOURCES_READ => {
            call(app, scope, headers, id, method, msg.params, meta, accept).await
        }
        _ => {
            let ctx = meta.context(scope.clone());
            let payload = app.gateway.handle_request(&ctx, &method, without_envelope(msg.params)).await?;
            let payload = complete(payload, &method, &server_info(&app.gateway, &scope));
            Ok(json_or_sse(jsonrpc::response_bytes(&id, &payload), accept))
        }
    }
}

/// Checks `_meta` and the mirrored headers against the body.
fn validate(headers: &HeaderMap, method: &str, params: Option<&Value>) -> Result<RequestMeta, StatelessError> {
    let m = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .ok_or_else(|| StatelessError::InvalidMeta("params._meta is required in protocol 2026-07-28".into()))?;
    let version = m.get(meta::PROTOCOL_VERSION).and_then(Value::as_str).ok_or_else(|| {
        StatelessError::InvalidMeta(format!("params._meta[\"{}\"] must be a string", meta::PROTOCOL_VERSION))
    })?;
    let capabilities = m.get(meta::CLIENT_CAPABILITIES).filter(|c| c.is_object()).ok_or_else(|| {
        StatelessError::InvalidMeta(format!("params._meta[\"{}\"] must be an object", meta::CLIENT_CAPABILITIES))
    })?;
    match header(headers, h::PROTOCOL_VERSION) {
        None => return Err(StatelessError::HeaderMismatch("the MCP-Protocol-Version header is required".into())),
        Some(v) if v != version => {
            return Err(StatelessError::HeaderMismatch(format!(
                "MCP-Protocol-Version header '{v}' does not match _meta protocolVersion '{version}'"
            )));
        }
        Some(_) => {}
    }
    if !protocol::is_modern(version) {
        return Err(StatelessError::UnsupportedVersion(version.to_owned()));
    }
    match header(headers, h::METHOD) {
        None => return Err(StatelessError::HeaderMismatch("the Mcp-Method header is required".into())),
        Some(v) if v != method => {
            return Err(StatelessError::HeaderMismatch(format!(
                "Mcp-Method header '{v}' does not match body method '{method}'"
            )));
        }
        Some(_) => {}
    }
    let name_field = match method {
        methods::TOOLS_CALL | methods::PROMPTS_GET => Some("name"),
        methods::RESOURCES_READ => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_field {
        let body = params.and_then(|p| p.get(field)).and_then(Value::as_str).unwrap_or_default();
        let raw = headers
            .get(h::NAME)
            .ok_or_else(|| StatelessError::HeaderMismatch(format!("the Mcp-Name header is required for {method}")))?;
        let value = decode_header_value(raw.as_bytes())
            .ok_or_else(|| StatelessError::HeaderMismatch("the Mcp-Name header is malformed".into()))?;
        if value != body {
            return Err(StatelessError::HeaderMismatch(format!(
                "Mcp-Name header '{value}' does not match body {field} '{body}'"
            )));
        }
    }
    let log_level = match m.get(meta::LOG_LEVEL) {
        None | Some(Value::Null) => None,
        Some(Value::String(l)) if session::LOG_LEVELS.contains(&l.as_str()) => Some(l.clone()),
        Some(other) => return Err(StatelessError::InvalidMeta(format!("unknown log level {other}"))),
    };
    Ok(RequestMeta {
        version: version.to_owned(),
        capabilities: Arc::new(capabilities.clone()),
        info: m.get(meta::CLIENT_INFO).cloned(),
        log_level,
    })
}

/// `params` without the stateless era's per-request envelope (`_meta` protocolVersion,
/// clientCapabilities, clientInfo, logLevel). mcpmux has read it into the request's
/// [`Caller`]; what goes on to a backend is mcpmux's request on mcpmux's own connection, and a
/// backend serving that connection in the session era refuses requests that carry a 2026-07-28
/// envelope (the Python SDK answers "this connection serves the handshake protocol era").
/// Every other `_meta` key (progressToken, …) stays.
fn without_envelope(mut params: Option<Value>) -> Option<Value> {
    if let Some(p) = params.as_mut().and_then(Value::as_object_mut)
        && let Some(m) = p.get_mut("_meta").and_then(Value::as_object_mut)
    {
        for key in [meta::PROTOCOL_VERSION, meta::CLIENT_CAPABILITIES, meta::CLIENT_INFO, meta::LOG_LEVEL] {
            m.remove(key);
        }
        if m.is_empty() {
            p.remove("_meta");
        }
    }
    params
}

/// A mirrored header value: plain visible ASCII, or `=?base64?…?=` around UTF-8.
fn decode_header_value(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    match text.strip_prefix("=?base64?").and_then(|t| t.strip_suffix("?=")) {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(text.to_owned()),
    }
}

/// Who mcpmux says it is in results (`_meta` `serverInfo`): the backend on its own endpoint.
fn server_info(gateway: &Gateway, scope: &Scope) -> Value {
    if let Scope::Backend(name) = scope
        && let Some(b) = gateway.backend(name)
    {
        let info = &b.listing().info.server_info;
        if info.as_object().is_some_and(|o| !o.is_empty()) {
            return info.clone();
        }
    }
    json!({"name": "mcpmux", "title": "mcpmux gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// `server/discover`: versions of both eras, the view's capabilities and instructions.
fn discover(gateway: &Gateway, scope: &Scope) -> Result<Value, StatelessError> {
    let init = gateway.initialize_result(scope, None)?;
    let mut caps = init.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    if let Some(obj) = caps.as_object_mut() {
        // Tasks of the session era have a different wire than the 2026-07-28 extension.
        obj.remove("tasks");
    }
    let mut result = Map::new();
    result.insert("resultType".into(), "complete".into());
    result.insert("supportedVersions".into(), json!(protocol::all_versions()));
    result.insert("capabilities".into(), caps);
    if let Some(text) = init.get("instructions") {
        result.insert("instructions".into(), text.clone());
    }
    result.insert("ttlMs".into(), LIST_TTL_MS.into());
    result.insert("cacheScope".into(), "private".into());
    result.insert("_meta".into(), json!({ meta::SERVER_INFO: server_info(gateway, scope) }));
    Ok(Value::Object(result))
}

/// Adds what a 2026-07-28 result must carry and the backend or catalog left out: `resultType`,
/// the caching hints of list and read results, and mcpmux's identity in `_meta`. Every other
/// field passes through as the backend wrote it.
fn complete(payload: Payload, method: &str, server_info: &Value) -> Payload {
    let Ok(mut top) = serde_json::from_slice::<IndexMap<String, Box<RawValue>>>(&payload.0) else {
        return payload;
    };
    let raw = |v: &Value| RawValue::from_string(v.to_string()).ok();
    let add = |top: &mut IndexMap<String, Box<RawValue>>, key: &str, v: Value| {
        if !top.contains_key(key)
            && let Some(r) = raw(&v)
        {
            top.insert(key.to_owned(), r);
        }
    };
    add(&mut top, "resultType", json!("complete"));
    let ttl = match method {
        methods::TOOLS_LIST | methods::PROMPTS_LIST | methods::RESOURCES_LIST | methods::RESOURCES_TEMPLATES_LIST => {
            Some(LIST_TTL_MS)
        }
        methods::RESOURCES_READ => Some(0),
        _ => None,
    };
    if let Some(ttl) = ttl {
        add(&mut top, "ttlMs", json!(ttl));
        add(&mut top, "cacheScope", json!("private"));
    }
    let mut m: Map<String, Value> =
        top.get("_meta").and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default();
    if !m.contains_key(meta::SERVER_INFO) {
        m.insert(meta::SERVER_INFO.into(), server_info.clone());
        if let Some(r) = raw(&Value::Object(m)) {
            top.insert("_meta".into(), r);
        }
    }
    match serde_json::to_vec(&top) {
        Ok(v) => Payload(Bytes::from(v)),
        Err(_) => payload,
    }
}

/// Checks the `Mcp-Param-*` headers a tool's `x-mcp-header` annotations call for against the
/// call's arguments (2026-07-28, "Custom Headers from Tool Parameters").
fn check_param_headers(
    gateway: &Gateway,
    scope: &Scope,
    headers: &HeaderMap,
    params: Option<&Value>,
) -> Result<(), StatelessError> {
    let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else { return Ok(()) };
    let (backend, original) = match scope {
        Scope::Merged => match gateway.catalog().tool(name) {
            Some(t) => (t.backend.clone(), t.original.clone()),
            None => return Ok(()),
        },
        Scope::Backend(b) => (b.clone(), name.to_owned()),
    };
    let Some(b) = gateway.backend(&backend) else { return Ok(()) };
    let listing = b.listing();
    let Some(tool) = listing.items(crate::backend::ListKind::Tools).iter().find(|t| t["name"] == original.as_str())
    else {
        return Ok(());
    };
    let mut annotated = Vec::new();
    collect_header_params(&tool["inputSchema"], &mut Vec::new(), &mut annotated);
    let arguments = params.and_then(|p| p.get("arguments")).unwrap_or(&Value::Null);
    for (header_name, path) in annotated {
        let value = path.iter().try_fold(arguments, |v, key| v.get(key.as_str()));
        let key = format!("{}{}", h::PARAM_PREFIX, header_name.to_ascii_lowercase());
        let sent = headers.get(key.as_str());
        let Some(value) = value.filter(|v| !v.is_null()) else { continue };
        let Some(raw) = sent else {
            return Err(StatelessError::HeaderMismatch(format!("the Mcp-Param-{header_name} header is required")));
        };
        let bad = || StatelessError::HeaderMismatch(format!("the Mcp-Param-{header_name} header is malformed"));
        if raw.as_bytes().iter().any(|b| !(b.is_ascii_graphic() || *b == b' ' || *b == b'\t')) {
            return Err(bad());
        }
        let text = decode_header_value(raw.as_bytes()).ok_or_else(bad)?;
        let same = match value {
            Value::String(s) => *s == text,
            Value::Bool(b) => text == if *b { "true" } else { "false" },
            Value::Number(n) => text.parse::<f64>().ok() == n.as_f64(),
            _ => false,
        };
        if !same {
            return Err(StatelessError::HeaderMismatch(format!(
                "Mcp-Param-{header_name} header '{text}' does not match the argument's value {value}"
            )));
        }
    }
    Ok(())
}

/// Properties annotated with `x-mcp-header`, reachable from the root through `properties` only.
fn collect_header_params(schema: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
    for (key, prop) in props {
        path.push(key.clone());
        if let Some(name) = prop.get("x-mcp-header").and_then(Value::as_str) {
            out.push((name.to_owned(), path.clone()));
        }
        collect_header_params(prop, path, out);
        path.pop();
    }
}

/// `tools/call`, `prompts/get`, `resources/read`: a new call, or the retry of a parked one.
#[allow(clippy::too_many_arguments)]
async fn call(
    app: AppState,
    scope: Scope,
    headers: &HeaderMap,
    id: Value,
    method: String,
    params: Option<Value>,
    meta: RequestMeta,
    accept: Accepts,
) -> Result<Response, StatelessError> {
    if method == methods::TOOLS_CALL {
        check_param_headers(&app.gateway, &scope, headers, params.as_ref())?;
    }
    let binding = Binding::of(&method, params.as_ref(), &scope);
    let state = params.as_ref().and_then(|p| p.get("requestState")).and_then(Value::as_str);
    let live = match state.filter(|s| s.starts_with(mrtr::STATE_PREFIX)) {
        Some(state) => {
            let exchanges = app.gateway.exchanges().clone();
            let mut parked = exchanges.take(state, &binding).ok_or_else(|| {
                RelayError::InvalidParams(
                    "requestState is unknown: it expired, was already used, or belongs to another request".into(),
                )
            })?;
            let responses = match params.as_ref().and_then(|p| p.get("inputResponses")) {
                None => None,
                Some(Value::Object(map)) if map.values().all(Value::is_object) => Some(map),
                Some(_) => {
                    // Put the call back: a corrected retry may still come.
                    exchanges.restore(state, parked);
                    return Err(StatelessError::Relay(RelayError::InvalidParams(
                        "inputResponses must be an object whose values are the results of the input requests".into(),
                    )));
                }
            };
            parked.answer(responses);
            if !parked.is_answered() {
                // Ask again for what the retry did not answer.
                let state = exchanges.park(parked, app.gateway.settings().input_timeout);
                let result = exchanges.describe(&state).unwrap_or_default();
                let payload = complete(Payload::from_value(&result), &method, &server_info(&app.gateway, &scope));
                return Ok(json_or_sse(jsonrpc::response_bytes(&id, &payload), accept));
            }
            parked.live
        }
        None => {
            let (live, parts) = Live::start(binding, meta.capabilities.clone(), meta.log_level.clone());
            let mut ctx = meta.context(scope.clone());
            ctx.events = Some(parts.events);
            ctx.cancel = Some(parts.cancel);
            ctx.origin = Some(parts.origin);
            let gateway = app.gateway.clone();
            let m = method.clone();
            let params = without_envelope(params);
            tokio::spawn(async move {
                let outcome = gateway.handle_request(&ctx, &m, params).await;
                let _ = parts.result.send(outcome);
            });
            live
        }
    };
    Ok(drive(app, scope, live, id, method, accept).await)
}

/// Waits for a running call: its result, or the backend's next request for input (answered
/// `input_required`, the call parked). Progress and log messages stream meanwhile.
async fn drive(app: AppState, scope: Scope, live: Live, id: Value, method: String, accept: Accepts) -> Response {
    let (tx, rx) = mpsc::channel::<Value>(REQUEST_STREAM_CAPACITY);
    let gateway = app.gateway.clone();
    let info = server_info(&gateway, &scope);
    let work_id = id.clone();
    let work = async move {
        let mut live = live;
        loop {
            tokio::select! {
                biased;
                Some(ev) = live.events.recv() => {
                    let _ = tx.try_send(ev);
                }
                signal = live.signals.recv(), if !live.signals.is_closed() || !live.signals.is_empty() => match signal {
                    Some(Signal::Ask(first)) => {
                        let mut asks = vec![first];
                        while let Ok(next) = live.signals.try_recv() {
                            match next {
                                Signal::Ask(a) => asks.push(a),
                                Signal::Missing { capability, ask } => return missing(capability, ask, asks),
                            }
                        }
                        let outstanding = asks.into_iter().map(|a| (live.key_for(&a.method), a)).collect();
                        let exchanges = gateway.exchanges().clone();
                        let state = exchanges.park(Parked::new(live, outstanding), gateway.settings().input_timeout);
                        let result = exchanges.describe(&state).unwrap_or_default();
                        let payload = complete(Payload::from_value(&result), &method, &info);
                        return Ok(jsonrpc::response_bytes(&work_id, &payload));
                    }
                    Some(Signal::Missing { capability, ask }) => return missing(capability, ask, Vec::new()),
                    None => continue,
                },
                outcome = &mut live.result => {
                    while let Ok(ev) = live.events.try_recv() {
                        let _ = tx.try_send(ev);
                    }
                    return match outcome {
                        Ok(Ok(payload)) => Ok(jsonrpc::response_bytes(&work_id, &complete(payload, &method, &info))),
                        Ok(Err(e)) => Err(StatelessError::Relay(e)),
                        Err(_) => Err(StatelessError::Relay(RelayError::Cancelled)),
                    };
                }
            }
        }
    };
    let work = async move {
        match work.await {
            Ok(body) => Finish::Body(body),
            Err(e) => Finish::Refused {
                body: jsonrpc::error_bytes(Some(&id), &e.to_error_object()),
                response: e.into_response(Some(&id)),
            },
        }
    };
    stream_or_json(Box::pin(work), rx, accept).await
}

/// The backend asked for something the client cannot give: the backend's request fails, and
/// the client is told which capability the call needs.
fn missing(capability: &str, ask: mrtr::Ask, others: Vec<mrtr::Ask>) -> Result<Bytes, StatelessError> {
    let refusal = || {
        jsonrpc::error_object(
            jsonrpc::code::METHOD_NOT_FOUND,
            format!("the client did not declare '{capability}'"),
            None,
        )
    };
    ask.answer(Err(refusal()));
    for a in others {
        a.answer(Err(refusal()));
    }
    Err(StatelessError::MissingCapability {
        capability: capability.to_owned(),
        required: mrtr::required_capability(capability),
    })
}

/// `subscriptions/listen`: a stream of the change notifications the client opted in to, each
/// tagged with the subscription's id (the request's id).
async fn listen(
    app: AppState,
    scope: Scope,
    id: Value,
    params: Option<Value>,
    meta: RequestMeta,
    accept: Accepts,
) -> Result<Response, StatelessError> {
    if !accept.sse {
        return Err(StatelessError::StreamNotAcceptable);
    }
    let filter = params.as_ref().and_then(|p| p.get("notifications")).cloned().unwrap_or_else(|| json!({}));
    let wants = |key: &str| filter.get(key).and_then(Value::as_bool).unwrap_or(false);
    let (tools, prompts, resources) =
        (wants("toolsListChanged"), wants("promptsListChanged"), wants("resourcesListChanged"));
    let uris: Vec<String> = filter
        .get("resourceSubscriptions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let gateway = app.gateway.clone();
    let session = gateway.sessions().create(
        scope.clone(),
        meta.version.clone(),
        (*meta.capabilities).clone(),
        meta.info.clone().unwrap_or(Value::Null),
    );
    let end = EndSession { gateway: gateway.clone(), id: session.id.clone() };
    let Some(mut rx) = session.attach_stream() else {
        return Err(StatelessError::Relay(RelayError::InvalidParams("could not open the stream".into())));
    };
    let mut agreed_uris = Vec::new();
    for uri in uris {
        let target = match &scope {
            Scope::Merged => gateway.catalog().resource(&uri).map(|(b, u)| (b.to_owned(), u)),
            Scope::Backend(name) => Some((name.clone(), uri.clone())),
        };
        if let Some((backend, original)) = target
            && gateway.subscribe(&session, &backend, original, true).await.is_ok()
        {
            agreed_uris.push(Value::String(uri));
        }
    }
    let mut agreed = Map::new();
    for (key, on) in [("toolsListChanged", tools), ("promptsListChanged", prompts), ("resourcesListChanged", resources)]
    {
        if on {
            agreed.insert(key.into(), true.into());
        }
    }
    if filter.get("resourceSubscriptions").is_some() {
        agreed.insert("resourceSubscriptions".into(), Value::Array(agreed_uris));
    }
    let ack = jsonrpc::notification(
        methods::SUBSCRIPTIONS_ACKNOWLEDGED,
        Some(json!({"notifications": agreed, "_meta": { meta::SUBSCRIPTION_ID: id }})),
    );
    let closing = app.closing.clone();
    let sid = session.id.clone();
    drop(session);
    let stream = async_stream::stream! {
        let _end = end;
        yield Ok::<Bytes, std::convert::Infallible>(sse::event_value(&ack));
        let mut ticker = tokio::time::interval(KEEP_ALIVE);
        ticker.tick().await;
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(mut m) => {
                        let wanted = match m.get("method").and_then(Value::as_str) {
                            Some(methods::TOOLS_LIST_CHANGED) => tools,
                            Some(methods::PROMPTS_LIST_CHANGED) => prompts,
                            Some(methods::RESOURCES_LIST_CHANGED) => resources,
                            Some(methods::RESOURCES_UPDATED) => true,
                            _ => false,
                        };
                        if wanted {
                            tag(&mut m, &id);
                            yield Ok(sse::event_value(&m));
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    _end.gateway.sessions().touch(&sid);
                    yield Ok(sse::keep_alive());
                }
                _ = closing.cancelled() => break,
            }
        }
        let done = json!({"resultType": "complete", "_meta": { meta::SUBSCRIPTION_ID: id }});
        yield Ok(sse::event(&jsonrpc::response_bytes(&id, &Payload::from_value(&done))));
    };
    Ok(sse_response(Body::from_stream(stream)))
}

/// Marks a notification as belonging to subscription `id`.
fn tag(msg: &mut Value, id: &Value) {
    let Some(obj) = msg.as_object_mut() else { return };
    let params = obj.entry("params").or_insert_with(|| json!({}));
    if let Some(p) = params.as_object_mut() {
        let m = p.entry("_meta").or_insert_with(|| json!({}));
        if let Some(m) = m.as_object_mut() {
            m.insert(meta::SUBSCRIPTION_ID.into(), id.clone());
        }
    }
}

/// Ends a listen stream's internal session when the stream goes away.
struct EndSession {
    gateway: Gateway,
    id: String,
}

impl Drop for EndSession {
    fn drop(&mut self) {
        self.gateway.end_session(&self.id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_values_decode_base64_sentinels() {
        assert_eq!(decode_header_value(b"get_weather").unwrap(), "get_weather");
        assert_eq!(decode_header_value(b"=?base64?SGVsbG8sIOS4lueVjA==?=").unwrap(), "Hello, \u{4e16}\u{754c}");
        assert!(decode_header_value(b"=?base64?!!!?=").is_none());
    }

    #[test]
    fn completed_results_keep_every_field() {
        let p = Payload(Bytes::from(r#"{"tools":[{"name":"a","x-new":1}],"_meta":{"k":true},"nextCursor":"c"}"#));
        let out: Value = serde_json::from_slice(&complete(p, "tools/list", &json!({"name": "m"})).0).unwrap();
        assert_eq!(out["tools"][0]["x-new"], 1);
        assert_eq!(out["_meta"]["k"], true);
        assert_eq!(out["_meta"][meta::SERVER_INFO]["name"], "m");
        assert_eq!(out["resultType"], "complete");
        assert_eq!(out["ttlMs"], LIST_TTL_MS);
        assert_eq!(out["cacheScope"], "private");
        assert_eq!(out["nextCursor"], "c");
    }

    #[test]
    fn the_envelope_stays_with_mcpmux_and_the_rest_of_meta_goes_on() {
        let params = json!({"name": "t", "_meta": {
            meta::PROTOCOL_VERSION: "2026-07-28",
            meta::CLIENT_CAPABILITIES: {"elicitation": {}},
            meta::CLIENT_INFO: {"name": "c", "version": "1"},
            meta::LOG_LEVEL: "debug",
            "progressToken": 7,
        }});
        assert_eq!(without_envelope(Some(params)).unwrap(), json!({"name": "t", "_meta": {"progressToken": 7}}));
        let bare = json!({"name": "t", "_meta": {meta::PROTOCOL_VERSION: "2026-07-28", meta::CLIENT_CAPABILITIES: {}}});
        assert_eq!(without_envelope(Some(bare)).unwrap(), json!({"name": "t"}));
        assert_eq!(without_envelope(None), None);
    }

    #[test]
    fn input_required_results_are_left_as_they_are() {
        let p = Payload(Bytes::from(r#"{"resultType":"input_required","requestState":"s"}"#));
        let out: Value = serde_json::from_slice(&complete(p, "tools/call", &json!({})).0).unwrap();
        assert_eq!(out["resultType"], "input_required");
        assert!(out.get("ttlMs").is_none());
    }
}
