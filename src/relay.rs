//! Routing one client request to the right backend, and rewriting the answer.
//!
//! Everything the relay needs about the caller is in a [`RequestContext`]: the protocol
//! version, the client's capabilities, the view it talks to, and where messages that belong to
//! the request (progress) go. A session is optional, so a request of the stateless protocol era
//! is served by the same code.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::backend::ListKind;
use crate::backend::client::{CallOptions, Caller, EventSink, Origin};
use crate::catalog::{Catalog, uri};
use crate::error::RelayError;
use crate::gateway::Gateway;
use crate::jsonrpc::Payload;
use crate::protocol::{self, methods};
use crate::session::{Scope, Session};

/// What the relay knows about the caller of one request.
#[derive(Clone)]
pub struct RequestContext {
    pub protocol_version: String,
    pub client_capabilities: Arc<Value>,
    pub scope: Scope,
    pub session: Option<Arc<Session>>,
    /// Where notifications that belong to this request go (its SSE stream).
    pub events: Option<EventSink>,
    /// Fires when the client cancels this request.
    pub cancel: Option<CancellationToken>,
    /// The caller as backends of the stateless era see it.
    pub caller: Arc<Caller>,
    /// Where backend requests made while serving this request go, when not to the session.
    pub origin: Option<Arc<dyn Origin>>,
}

impl RequestContext {
    /// How calls made for this request are sent to a backend.
    pub fn call_options(&self) -> CallOptions {
        CallOptions {
            sink: self.events.clone(),
            origin: self.origin.clone().or_else(|| self.session.clone().map(|s| s as Arc<dyn Origin>)),
            cancel: self.cancel.clone(),
            caller: Some(self.caller.clone()),
        }
    }
}

impl Gateway {
    /// Serves one request. `method` and `params` are the client's, unchanged.
    pub async fn handle_request(
        &self,
        ctx: &RequestContext,
        method: &str,
        params: Option<Value>,
    ) -> Result<Payload, RelayError> {
        match method {
            methods::PING => Ok(Payload::from_value(&json!({}))),
            methods::SET_LEVEL => self.set_level(ctx, params),
            methods::TOOLS_LIST => self.list(ctx, ListKind::Tools, params.as_ref()),
            methods::PROMPTS_LIST => self.list(ctx, ListKind::Prompts, params.as_ref()),
            methods::RESOURCES_LIST => self.list(ctx, ListKind::Resources, params.as_ref()),
            methods::RESOURCES_TEMPLATES_LIST => self.list(ctx, ListKind::Templates, params.as_ref()),
            methods::SUBSCRIBE => self.subscription(ctx, params, true).await,
            methods::UNSUBSCRIBE => self.subscription(ctx, params, false).await,
            _ => match &ctx.scope {
                Scope::Backend(name) => self.forward(name, ctx, method, params).await,
                Scope::Merged => self.route_merged(ctx, method, params).await,
            },
        }
    }

    /// The `initialize` result for a view, answering `requested` version.
    pub fn initialize_result(&self, scope: &Scope, requested: Option<&str>) -> Result<Value, RelayError> {
        let version = protocol::negotiate(requested);
        let catalog = self.catalog();
        let mut caps = Map::new();
        let (server_info, instructions) = match scope {
            Scope::Merged => {
                caps.insert("tools".into(), json!({"listChanged": true}));
                let subscribe = self
                    .backends()
                    .values()
                    .any(|b| b.listing().info.capabilities["resources"]["subscribe"] == json!(true));
                let mut resources = json!({"listChanged": true});
                if subscribe {
                    resources["subscribe"] = json!(true);
                }
                caps.insert("resources".into(), resources);
                caps.insert("prompts".into(), json!({"listChanged": true}));
                caps.insert("logging".into(), json!({}));
                let mut tasks = Map::new();
                for b in self.backends().values() {
                    if let Some(t) = b.listing().info.capabilities.get("tasks").and_then(Value::as_object) {
                        for (k, v) in t {
                            tasks.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
                if !tasks.is_empty() {
                    caps.insert("tasks".into(), Value::Object(tasks));
                }
                if catalog.any_backend_has("completions") {
                    caps.insert("completions".into(), json!({}));
                }
                let info = json!({
                    "name": "mcpmux",
                    "title": "mcpmux gateway",
                    "version": env!("CARGO_PKG_VERSION"),
                });
                (info, catalog.instructions().map(str::to_owned))
            }
            Scope::Backend(name) => {
                let backend = self.backend(name).ok_or_else(|| RelayError::BackendUnavailable {
                    backend: name.clone(),
                    reason: "not configured".into(),
                })?;
                let listing = backend.listing();
                if let Some(bc) = listing.info.capabilities.as_object() {
                    // The backend's own capabilities, with list changes always announced (mcpmux
                    // re-lists on the backend's signal and after restarts).
                    for (key, value) in bc {
                        let mut v = value.clone();
                        if matches!(key.as_str(), "tools" | "resources" | "prompts")
                            && let Some(obj) = v.as_object_mut()
                        {
                            obj.insert("listChanged".into(), json!(true));
                        }
                        caps.insert(key.clone(), v);
                    }
                }
                let info = if listing.info.server_info.is_object() && listing.info.server_info != json!({}) {
                    listing.info.server_info.clone()
                } else {
                    json!({"name": name.as_str(), "version": "unknown"})
                };
                (info, listing.info.instructions.clone())
            }
        };
        let mut result = Map::new();
        result.insert("protocolVersion".into(), version.into());
        result.insert("capabilities".into(), Value::Object(caps));
        result.insert("serverInfo".into(), server_info);
        if let Some(text) = instructions {
            result.insert("instructions".into(), text.into());
        }
        Ok(Value::Object(result))
    }

    fn set_level(&self, ctx: &RequestContext, params: Option<Value>) -> Result<Payload, RelayError> {
        let level = params
            .as_ref()
            .and_then(|p| p.get("level"))
            .and_then(Value::as_str)
            .ok_or_else(|| RelayError::InvalidParams("logging/setLevel needs a string 'level'".into()))?;
        if !crate::session::LOG_LEVELS.contains(&level) {
            return Err(RelayError::InvalidParams(format!("unknown log level '{level}'")));
        }
        if let Some(s) = &ctx.session {
            *s.log_level.lock().unwrap_or_else(|e| e.into_inner()) = Some(level.to_owned());
        }
        self.apply_log_levels();
        Ok(Payload::from_value(&json!({})))
    }

    fn list(&self, ctx: &RequestContext, kind: ListKind, params: Option<&Value>) -> Result<Payload, RelayError> {
        let cursor = match params.and_then(|p| p.get("cursor")) {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c.as_str()),
            Some(_) => return Err(RelayError::InvalidParams("cursor must be a string".into())),
        };
        let catalog = self.catalog();
        let view = match &ctx.scope {
            Scope::Merged => catalog.merged(),
            Scope::Backend(name) => catalog.backend_view(name).ok_or_else(|| RelayError::BackendUnavailable {
                backend: name.clone(),
                reason: "not configured".into(),
            })?,
        };
        view.list(kind)
            .page(cursor)
            .cloned()
            .ok_or_else(|| RelayError::InvalidParams(format!("unknown cursor '{}'", cursor.unwrap_or_default())))
    }

    /// `resources/subscribe` and `resources/unsubscribe`, counted across sessions.
    async fn subscription(
        &self,
        ctx: &RequestContext,
        params: Option<Value>,
        subscribe: bool,
    ) -> Result<Payload, RelayError> {
        let session =
            ctx.session.as_ref().ok_or_else(|| RelayError::InvalidParams("subscriptions need a session".into()))?;
        let client_uri = params
            .as_ref()
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .ok_or_else(|| RelayError::InvalidParams("params.uri must be a string".into()))?;
        let (backend, uri) = match &ctx.scope {
            Scope::Merged => {
                let catalog = self.catalog();
                let (b, u) =
                    catalog.resource(client_uri).ok_or_else(|| RelayError::UnknownResource(client_uri.to_owned()))?;
                (b.to_owned(), u)
            }
            Scope::Backend(name) => (name.clone(), client_uri.to_owned()),
        };
        self.subscribe(session, &backend, uri, subscribe).await?;
        Ok(Payload::from_value(&json!({})))
    }

    /// `/servers/{name}/mcp`: everything goes to the one backend unchanged.
    async fn forward(
        &self,
        backend: &str,
        ctx: &RequestContext,
        method: &str,
        params: Option<Value>,
    ) -> Result<Payload, RelayError> {
        let b = self.backend(backend).ok_or_else(|| RelayError::BackendUnavailable {
            backend: backend.to_owned(),
            reason: "not configured".into(),
        })?;
        let creates_task = method == methods::TOOLS_CALL && params.as_ref().is_some_and(|p| p.get("task").is_some());
        let payload = b.call(method, params, ctx.call_options()).await?;
        if creates_task
            && let Some(session) = &ctx.session
            && let Ok(v) = serde_json::from_slice::<Value>(&payload.0)
            && let Some(id) = v["task"]["taskId"].as_str()
        {
            self.remember_task(backend, id, &session.id);
        }
        Ok(payload)
    }

    async fn route_merged(
        &self,
        ctx: &RequestContext,
        method: &str,
        params: Option<Value>,
    ) -> Result<Payload, RelayError> {
        if method == methods::TASKS_LIST {
            return self.list_tasks(ctx).await;
        }
        let mut params = params.ok_or_else(|| RelayError::InvalidParams(format!("{method} needs params")))?;
        let catalog = self.catalog();
        let (backend, rewrite) = match method {
            methods::TOOLS_CALL => (route_by_name(&catalog, &mut params, Lookup::Tool)?, Rewrite::Content),
            methods::PROMPTS_GET => (route_by_name(&catalog, &mut params, Lookup::Prompt)?, Rewrite::Messages),
            methods::RESOURCES_READ => (route_by_uri(&catalog, &mut params)?, Rewrite::Contents),
            methods::COMPLETE => (route_completion(&catalog, &mut params)?, Rewrite::None),
            methods::TASKS_GET | methods::TASKS_CANCEL => (route_by_task(&catalog, &mut params)?, Rewrite::None),
            methods::TASKS_RESULT => (route_by_task(&catalog, &mut params)?, Rewrite::Content),
            _ => return Err(RelayError::MethodNotFound(method.to_owned())),
        };
        let prefix = catalog.prefix_of(&backend).unwrap_or(&backend).to_owned();
        drop(catalog);
        let creates_task = method == methods::TOOLS_CALL && params.get("task").is_some();
        let b = self
            .backend(&backend)
            .ok_or_else(|| RelayError::BackendUnavailable { backend: backend.clone(), reason: "removed".into() })?;
        let payload = b.call(method, Some(params), ctx.call_options()).await?;
        let payload = if creates_task || method.starts_with("tasks/") {
            self.rewrite_task_ids(payload, &backend, &prefix, ctx.session.as_deref())
        } else {
            payload
        };
        Ok(rewrite_uris(payload, rewrite, &prefix))
    }

    /// `tasks/list` across every backend that lists tasks, all pages, namespaced.
    async fn list_tasks(&self, ctx: &RequestContext) -> Result<Payload, RelayError> {
        let backends: Vec<_> = self
            .backends()
            .values()
            .filter(|b| !b.listing().info.capabilities["tasks"]["list"].is_null())
            .cloned()
            .collect();
        let mut tasks = Vec::new();
        for b in backends {
            let prefix = b.config.prefix.clone();
            let mut cursor: Option<Value> = None;
            for _ in 0..1000 {
                let params = cursor.as_ref().map(|c| json!({"cursor": c}));
                let page = match b.call(methods::TASKS_LIST, params, ctx.call_options()).await {
                    Ok(p) => serde_json::from_slice::<Value>(&p.0).unwrap_or_default(),
                    Err(e) => {
                        tracing::debug!(backend = %b.name, error = %e, "tasks/list failed on one backend; skipped.");
                        break;
                    }
                };
                if let Some(items) = page.get("tasks").and_then(Value::as_array) {
                    for t in items {
                        let mut t = t.clone();
                        if let Some(Value::String(id)) = t.get_mut("taskId") {
                            *id = wrap_task_id(&prefix, id);
                        }
                        tasks.push(t);
                    }
                }
                match page.get("nextCursor") {
                    Some(c) if !c.is_null() && Some(c) != cursor.as_ref() => cursor = Some(c.clone()),
                    _ => break,
                }
            }
        }
        Ok(Payload::from_value(&json!({"tasks": tasks})))
    }

    /// Namespaces the task ids in a task result and remembers which session created a task.
    fn rewrite_task_ids(&self, payload: Payload, backend: &str, prefix: &str, session: Option<&Session>) -> Payload {
        if !contains(&payload.0, b"\"taskId\"") {
            return payload;
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(&payload.0) else { return payload };
        if let Some(Value::String(id)) = v.get_mut("task").and_then(|t| t.get_mut("taskId")) {
            if let Some(s) = session {
                self.remember_task(backend, id, &s.id);
            }
            *id = wrap_task_id(prefix, id);
        }
        if let Some(Value::String(id)) = v.get_mut("taskId") {
            *id = wrap_task_id(prefix, id);
        }
        if let Some(Value::String(id)) =
            v.get_mut("_meta").and_then(|m| m.get_mut(RELATED_TASK)).and_then(|r| r.get_mut("taskId"))
        {
            *id = wrap_task_id(prefix, id);
        }
        Payload::from_value(&v)
    }
}

enum Lookup {
    Tool,
    Prompt,
}

fn route_by_name(catalog: &Catalog, params: &mut Value, lookup: Lookup) -> Result<String, RelayError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RelayError::InvalidParams("params.name must be a string".into()))?;
    let target = match lookup {
        Lookup::Tool => catalog.tool(name).ok_or_else(|| RelayError::UnknownTool(name.to_owned()))?,
        Lookup::Prompt => catalog.prompt(name).ok_or_else(|| RelayError::UnknownPrompt(name.to_owned()))?,
    };
    let backend = target.backend.clone();
    // `name` is a string (checked above): overwritten in place, keeping its position.
    if let Some(Value::String(name)) = params.get_mut("name") {
        name.clear();
        name.push_str(&target.original);
    }
    Ok(backend)
}

/// The `_meta` key that ties a message to a task.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// Client-facing task id: `{prefix}:{backend task id}` (a prefix never contains `:`).
pub fn wrap_task_id(prefix: &str, id: &str) -> String {
    format!("{prefix}:{id}")
}

fn route_by_task(catalog: &Catalog, params: &mut Value) -> Result<String, RelayError> {
    let task_id = params
        .get("taskId")
        .and_then(Value::as_str)
        .ok_or_else(|| RelayError::InvalidParams("params.taskId must be a string".into()))?;
    let unknown = || RelayError::InvalidParams(format!("unknown task '{task_id}'"));
    let (prefix, original) = task_id.split_once(':').ok_or_else(unknown)?;
    let backend = catalog.backend_for_prefix(prefix).ok_or_else(unknown)?.to_owned();
    let original = original.to_owned();
    if let Some(obj) = params.as_object_mut() {
        obj.insert("taskId".into(), Value::String(original));
    }
    Ok(backend)
}

fn route_by_uri(catalog: &Catalog, params: &mut Value) -> Result<String, RelayError> {
    let client_uri = params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| RelayError::InvalidParams("params.uri must be a string".into()))?;
    let (backend, original) =
        catalog.resource(client_uri).ok_or_else(|| RelayError::UnknownResource(client_uri.to_owned()))?;
    let backend = backend.to_owned();
    if let Some(obj) = params.as_object_mut() {
        obj.insert("uri".into(), Value::String(original));
    }
    Ok(backend)
}

/// `completion/complete` goes where the referenced prompt or resource template lives.
fn route_completion(catalog: &Catalog, params: &mut Value) -> Result<String, RelayError> {
    let reference = params
        .get_mut("ref")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| RelayError::InvalidParams("params.ref must be an object".into()))?;
    match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
            let target = catalog.prompt(name).ok_or_else(|| RelayError::UnknownPrompt(name.to_owned()))?;
            let backend = target.backend.clone();
            reference.insert("name".into(), Value::String(target.original.clone()));
            Ok(backend)
        }
        Some("ref/resource") => {
            let u = reference.get("uri").and_then(Value::as_str).unwrap_or_default();
            let (backend, original) = catalog.resource(u).ok_or_else(|| RelayError::UnknownResource(u.to_owned()))?;
            let backend = backend.to_owned();
            reference.insert("uri".into(), Value::String(original));
            Ok(backend)
        }
        other => Err(RelayError::InvalidParams(format!("unknown ref type {other:?}"))),
    }
}

/// Which URIs in a result point at the backend's resources.
#[derive(Clone, Copy)]
enum Rewrite {
    None,
    /// `tools/call`: `content[]` resource links and embedded resources.
    Content,
    /// `prompts/get`: `messages[].content`.
    Messages,
    /// `resources/read`: `contents[].uri`.
    Contents,
}

/// Rewrites backend URIs in a result to their client-facing form. A result that mentions no
/// `"uri"` is passed through untouched, byte for byte.
fn rewrite_uris(payload: Payload, how: Rewrite, prefix: &str) -> Payload {
    if matches!(how, Rewrite::None) || !contains(&payload.0, b"\"uri\"") {
        return payload;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&payload.0) else {
        return payload;
    };
    match how {
        Rewrite::Content => {
            if let Some(items) = v.get_mut("content").and_then(Value::as_array_mut) {
                items.iter_mut().for_each(|c| wrap_content_uri(c, prefix));
            }
        }
        Rewrite::Messages => {
            if let Some(msgs) = v.get_mut("messages").and_then(Value::as_array_mut) {
                for m in msgs {
                    match m.get_mut("content") {
                        Some(Value::Array(items)) => items.iter_mut().for_each(|c| wrap_content_uri(c, prefix)),
                        Some(c) => wrap_content_uri(c, prefix),
                        None => {}
                    }
                }
            }
        }
        Rewrite::Contents => {
            if let Some(items) = v.get_mut("contents").and_then(Value::as_array_mut) {
                items.iter_mut().for_each(|c| wrap_field(c, "uri", prefix));
            }
        }
        Rewrite::None => {}
    }
    Payload::from_value(&v)
}

fn wrap_content_uri(content: &mut Value, prefix: &str) {
    match content.get("type").and_then(Value::as_str) {
        Some("resource_link") => wrap_field(content, "uri", prefix),
        Some("resource") => {
            if let Some(r) = content.get_mut("resource") {
                wrap_field(r, "uri", prefix);
            }
        }
        _ => {}
    }
}

fn wrap_field(obj: &mut Value, key: &str, prefix: &str) {
    if let Some(Value::String(u)) = obj.get_mut(key) {
        *u = uri::wrap(prefix, u);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else { return true };
    haystack.iter().enumerate().any(|(i, &b)| b == first && haystack[i + 1..].starts_with(rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_resource_uris() {
        let p = Payload::from_value(&json!({
            "content": [
                {"type": "text", "text": "has \"uri\" in it"},
                {"type": "resource_link", "uri": "note://a", "name": "a"},
                {"type": "resource", "resource": {"uri": "note://b", "text": "b"}},
                {"type": "future-kind", "uri": "keep://me"}
            ],
            "_meta": {"x": 1}
        }));
        let out: Value = serde_json::from_slice(&rewrite_uris(p, Rewrite::Content, "n").0).unwrap();
        assert_eq!(out["content"][1]["uri"], "mcpmux://n/note://a");
        assert_eq!(out["content"][2]["resource"]["uri"], "mcpmux://n/note://b");
        assert_eq!(out["content"][3]["uri"], "keep://me");
        assert_eq!(out["_meta"], json!({"x": 1}));
    }

    #[test]
    fn finds_needles() {
        assert!(contains(br#"{"uri":1}"#, b"\"uri\""));
        assert!(contains(br#""uri""#, b"\"uri\""));
        assert!(!contains(br#"{"ur":"i"}"#, b"\"uri\""));
        assert!(!contains(br#""uri"#, b"\"uri\""));
        assert!(contains(b"", b""));
    }

    #[test]
    fn results_without_uris_pass_byte_for_byte() {
        let raw = r#"{"content":[{"type":"text","text":"x"}],"n":1.50}"#;
        let p = Payload(bytes::Bytes::from(raw));
        assert_eq!(rewrite_uris(p, Rewrite::Content, "n").as_str(), raw);
    }
}
