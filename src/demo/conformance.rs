//! The `conformance` personality: everything the server scenarios of the official MCP
//! conformance suite (`@modelcontextprotocol/conformance`) ask a server for, under the fixed
//! names they use: tools returning each content type, a tool erroring, tools that log, report
//! progress, ask the client for sampling and elicitation (SEP-1034 defaults, SEP-1330 enums), a
//! tool with a JSON Schema 2020-12 input schema (SEP-1613), static and templated resources,
//! subscriptions, four prompts and completion.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::util::{RpcError, RpcResult, completion, required_str, tool_error, tool_text};
use super::{ClientRequestError, CompletionRef, Ctx, LogLevel, lock};

pub(super) const INSTRUCTIONS: &str = "A fixture for the MCP conformance suite: test_* tools, test:// resources and \
     test_* prompts with the names and content the suite's server scenarios expect.";

/// A 2x2 teal RGBA PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAEElEQVR42mNgaGj4D8YwBgBB9Af9OKqF/QAAAABJRU5ErkJggg==";
/// 16 samples of an 8 kHz, 8-bit mono PCM square wave.
const WAV_BASE64: &str = "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YRAAAACgoKCgYGBgYKCgoKBgYGBg";

const STATIC_TEXT_URI: &str = "test://static-text";
const STATIC_TEXT: &str = "This is the content of the static text resource.";
const STATIC_BINARY_URI: &str = "test://static-binary";
const WATCHED_URI: &str = "test://watched-resource";
const TEMPLATE: &str = "test://template/{id}/data";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

const JSON_SCHEMA_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Pause between the steps of the logging and progress tools.
const STEP_DELAY: Duration = Duration::from_millis(50);

/// Completion suggestions for the arguments of `test_prompt_with_arguments`.
const ARG_SUGGESTIONS: &[&str] = &["paris", "park", "party", "test", "testing", "tests"];

#[derive(Debug)]
pub(super) struct Conformance {
    /// URIs the client subscribed to.
    subscriptions: Mutex<HashSet<String>>,
    /// How often `update_watched_resource` changed `test://watched-resource`.
    watched_version: Mutex<u64>,
}

/// Tools that wait (delays, requests to the client) and so run on their own task.
pub(super) fn is_slow_tool(tool: &str) -> bool {
    matches!(
        tool,
        "test_tool_with_logging"
            | "test_tool_with_progress"
            | "test_sampling"
            | "test_elicitation"
            | "test_elicitation_sep1034_defaults"
            | "test_elicitation_sep1330_enums"
            | "test_reconnection"
            | "test_missing_capability"
            | "test_streaming_elicitation"
            | "test_logging_tool"
            | "test_input_required_result_elicitation"
            | "test_input_required_result_sampling"
            | "test_input_required_result_list_roots"
            | "test_input_required_result_multi_round"
            | "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state"
    )
}

fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn tool(name: &str, description: &str, input_schema: Value) -> Value {
    json!({ "name": name, "description": description, "inputSchema": input_schema })
}

pub(super) fn tools() -> Vec<Value> {
    vec![
        tool("test_simple_text", "Returns simple text content.", no_arguments()),
        tool("test_image_content", "Returns a PNG image.", no_arguments()),
        tool("test_audio_content", "Returns a WAV audio clip.", no_arguments()),
        tool("test_embedded_resource", "Returns an embedded text resource.", no_arguments()),
        tool("test_multiple_content_types", "Returns text, an image and an embedded resource.", no_arguments()),
        tool("test_tool_with_logging", "Sends three info log notifications 50 ms apart while it runs.", no_arguments()),
        tool(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100, 50 ms apart, when the request has a progress token.",
            no_arguments(),
        ),
        tool("test_error_handling", "Always fails with a tool error (isError: true).", no_arguments()),
        tool(
            "test_sampling",
            "Asks the client's LLM (sampling/createMessage) to answer the prompt and returns the answer.",
            json!({
                "type": "object",
                "properties": { "prompt": { "type": "string", "description": "The prompt to send to the LLM" } },
                "required": ["prompt"],
            }),
        ),
        tool(
            "test_elicitation",
            "Asks the user (elicitation/create) for a username and an email address and returns the answer.",
            json!({
                "type": "object",
                "properties": { "message": { "type": "string", "description": "The message to show the user" } },
                "required": ["message"],
            }),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Elicits a form whose fields all have default values (SEP-1034).",
            no_arguments(),
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Elicits a form with every enum variant: untitled, titled, legacy, multi-select (SEP-1330).",
            no_arguments(),
        ),
        tool(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            json!({
                "$schema": JSON_SCHEMA_2020_12,
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": { "street": { "type": "string" }, "city": { "type": "string" } },
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                },
                "additionalProperties": false,
            }),
        ),
        tool(
            "test_reconnection",
            "Answers after 100 ms (SEP-1699: an HTTP server would close the SSE stream meanwhile).",
            no_arguments(),
        ),
        tool(
            "update_watched_resource",
            "Changes test://watched-resource, notifying subscribers with notifications/resources/updated.",
            no_arguments(),
        ),
        // The 2026-07-28 scenarios' tools, written the session-era way (requests to the client
        // mid-call): through mcpmux a stateless client sees them as input_required results.
        tool("test_missing_capability", "Asks the client for a sampling completion.", no_arguments()),
        tool("test_streaming_elicitation", "Asks the user one question, then answers.", no_arguments()),
        tool("test_logging_tool", "Sends three info log notifications while it runs.", no_arguments()),
        tool("test_input_required_result_elicitation", "Asks the user for their name.", no_arguments()),
        tool("test_input_required_result_sampling", "Asks the client's model a question.", no_arguments()),
        tool("test_input_required_result_list_roots", "Asks the client for its roots.", no_arguments()),
        tool("test_input_required_result_multi_round", "Asks two questions, one after the other.", no_arguments()),
        tool("test_input_required_result_request_state", "Asks the user for their name.", no_arguments()),
        tool("test_input_required_result_tampered_state", "Asks the user for their name.", no_arguments()),
    ]
}

/// Asks the client `method` and describes the answer (or the failure) as tool text.
async fn ask_client(ctx: &mut Ctx<'_>, method: &str, params: Value) -> Result<Value, Value> {
    ctx.request_client(method, params).await.map_err(|e| failed(method, &e))
}

fn name_question() -> Value {
    json!({
        "message": "What is your name?",
        "requestedSchema": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] },
    })
}

pub(super) fn resources() -> Vec<Value> {
    vec![
        json!({
            "uri": STATIC_TEXT_URI,
            "name": "static-text",
            "title": "Static text",
            "description": "A static text resource.",
            "mimeType": "text/plain",
        }),
        json!({
            "uri": STATIC_BINARY_URI,
            "name": "static-binary",
            "title": "Static binary",
            "description": "A static binary resource (a PNG image).",
            "mimeType": "image/png",
        }),
        json!({
            "uri": WATCHED_URI,
            "name": "watched-resource",
            "title": "Watched resource",
            "description": "A resource to subscribe to; update_watched_resource changes it.",
            "mimeType": "text/plain",
        }),
    ]
}

pub(super) fn resource_templates() -> Vec<Value> {
    vec![json!({
        "uriTemplate": TEMPLATE,
        "name": "template",
        "title": "Templated data",
        "description": "JSON data for an id, e.g. test://template/123/data.",
        "mimeType": "application/json",
    })]
}

pub(super) fn prompts() -> Vec<Value> {
    vec![
        json!({ "name": "test_simple_prompt", "description": "A simple prompt without arguments." }),
        json!({
            "name": "test_prompt_with_arguments",
            "description": "A prompt with two required arguments.",
            "arguments": [
                { "name": "arg1", "description": "First test argument", "required": true },
                { "name": "arg2", "description": "Second test argument", "required": true },
            ],
        }),
        json!({
            "name": "test_prompt_with_embedded_resource",
            "description": "A prompt that embeds a resource.",
            "arguments": [{ "name": "resourceUri", "description": "URI of the resource to embed", "required": true }],
        }),
        json!({ "name": "test_prompt_with_image", "description": "A prompt with an image." }),
    ]
}

fn image() -> Value {
    json!({ "type": "image", "data": PNG_BASE64, "mimeType": "image/png" })
}

fn text(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

fn user(content: Value) -> Value {
    json!({ "role": "user", "content": content })
}

pub(super) fn get_prompt(name: &str, args: &HashMap<String, String>) -> RpcResult {
    let required = |key: &str| {
        args.get(key).ok_or_else(|| {
            RpcError::invalid_params(format!(
                "Invalid arguments for prompt '{name}': missing required argument '{key}'"
            ))
        })
    };
    let messages = match name {
        "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => {
            let (arg1, arg2) = (required("arg1")?, required("arg2")?);
            vec![user(text(&format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")))]
        }
        "test_prompt_with_embedded_resource" => {
            let uri = required("resourceUri")?;
            vec![
                user(json!({
                    "type": "resource",
                    "resource": { "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing." },
                })),
                user(text("Please process the embedded resource above.")),
            ]
        }
        "test_prompt_with_image" => vec![user(image()), user(text("Please analyze the image above."))],
        other => return Err(RpcError::invalid_params(format!("Unknown prompt: '{other}'"))),
    };
    Ok(json!({ "messages": messages }))
}

pub(super) fn complete(reference: &CompletionRef<'_>, argument: &str, value: &str) -> RpcResult {
    let candidates: &[&str] = match reference {
        CompletionRef::Prompt("test_prompt_with_arguments") if matches!(argument, "arg1" | "arg2") => ARG_SUGGESTIONS,
        CompletionRef::Prompt(
            "test_prompt_with_arguments"
            | "test_prompt_with_embedded_resource"
            | "test_simple_prompt"
            | "test_prompt_with_image",
        )
        | CompletionRef::Resource(TEMPLATE) => &[],
        CompletionRef::Prompt(other) => return Err(RpcError::invalid_params(format!("Unknown prompt: '{other}'"))),
        CompletionRef::Resource(other) => {
            return Err(RpcError::invalid_params(format!("Unknown resource template: '{other}'")));
        }
    };
    Ok(completion(candidates.iter().copied(), value))
}

/// The `{id}` of a `test://template/{id}/data` URI.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix(TEMPLATE_PREFIX)?.strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains(['/', '?', '#'])).then_some(id)
}

/// The text of a tool result, for messages about what the client answered.
fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl Conformance {
    pub(super) fn new() -> Self {
        Self { subscriptions: Mutex::new(HashSet::new()), watched_version: Mutex::new(0) }
    }

    pub(super) async fn call_tool(&self, ctx: &mut Ctx<'_>, name: &str, args: &Map<String, Value>) -> RpcResult {
        match name {
            "test_simple_text" => Ok(tool_text("This is a simple text response for testing.")),
            "test_image_content" => Ok(json!({ "content": [image()] })),
            "test_audio_content" => {
                Ok(json!({ "content": [{ "type": "audio", "data": WAV_BASE64, "mimeType": "audio/wav" }] }))
            }
            "test_embedded_resource" => Ok(json!({ "content": [{
                "type": "resource",
                "resource": {
                    "uri": "test://embedded-resource",
                    "mimeType": "text/plain",
                    "text": "This is an embedded resource content.",
                },
            }] })),
            "test_multiple_content_types" => Ok(json!({ "content": [
                text("Multiple content types test:"),
                image(),
                {
                    "type": "resource",
                    "resource": {
                        "uri": "test://mixed-content-resource",
                        "mimeType": "application/json",
                        "text": compact(&json!({ "test": "data", "value": 123 })),
                    },
                },
            ] })),
            "test_tool_with_logging" => {
                let steps = ["Tool execution started", "Tool processing data", "Tool execution completed"];
                for (i, step) in steps.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(STEP_DELAY).await;
                    }
                    ctx.log(LogLevel::Info, "conformance", json!(step));
                }
                Ok(tool_text("Tool with logging executed successfully"))
            }
            "test_tool_with_progress" => {
                for progress in [0, 50, 100] {
                    if progress > 0 {
                        tokio::time::sleep(STEP_DELAY).await;
                    }
                    ctx.progress(progress, 100, &format!("Completed step {progress} of 100"));
                }
                Ok(tool_text("Tool with progress executed successfully"))
            }
            "test_error_handling" => Ok(tool_error("This tool intentionally returns an error for testing")),
            "test_sampling" => {
                let prompt = required_str(args, "prompt", "tool 'test_sampling'")?;
                Ok(sampling(ctx, prompt).await)
            }
            "test_elicitation" => {
                let message = required_str(args, "message", "tool 'test_elicitation'")?;
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "username": { "type": "string", "description": "User's response" },
                        "email": { "type": "string", "description": "User's email address" },
                    },
                    "required": ["username", "email"],
                });
                Ok(elicit(ctx, message, schema, "User response").await)
            }
            "test_elicitation_sep1034_defaults" => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "description": "User name", "default": "John Doe" },
                        "age": { "type": "integer", "description": "User age", "default": 30 },
                        "score": { "type": "number", "description": "User score", "default": 95.5 },
                        "status": {
                            "type": "string",
                            "description": "User status",
                            "enum": ["active", "inactive", "pending"],
                            "default": "active",
                        },
                        "verified": { "type": "boolean", "description": "Verification status", "default": true },
                    },
                    "required": [],
                });
                Ok(elicit(ctx, "Please review the form; every field has a default.", schema, "Elicitation completed")
                    .await)
            }
            "test_elicitation_sep1330_enums" => {
                let titled = |prefix: &str, names: [&str; 3]| -> Vec<Value> {
                    names
                        .iter()
                        .enumerate()
                        .map(|(i, title)| json!({ "const": format!("{prefix}{}", i + 1), "title": title }))
                        .collect()
                };
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "untitledSingle": {
                            "type": "string",
                            "description": "Pick one option",
                            "enum": ["option1", "option2", "option3"],
                        },
                        "titledSingle": {
                            "type": "string",
                            "description": "Pick one option (titled)",
                            "oneOf": titled("value", ["First Option", "Second Option", "Third Option"]),
                        },
                        "legacyEnum": {
                            "type": "string",
                            "description": "Pick one option (legacy enumNames)",
                            "enum": ["opt1", "opt2", "opt3"],
                            "enumNames": ["Option One", "Option Two", "Option Three"],
                        },
                        "untitledMulti": {
                            "type": "array",
                            "description": "Pick any options",
                            "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
                        },
                        "titledMulti": {
                            "type": "array",
                            "description": "Pick any options (titled)",
                            "items": { "anyOf": titled("value", ["First Choice", "Second Choice", "Third Choice"]) },
                        },
                    },
                    "required": [],
                });
                Ok(elicit(ctx, "Please pick from the enum fields.", schema, "Elicitation completed").await)
            }
            "json_schema_2020_12_tool" => Ok(tool_text(format!(
                "JSON Schema 2020-12 tool called with: {}",
                compact(&Value::Object(args.clone()))
            ))),
            "test_missing_capability" | "test_input_required_result_sampling" => {
                let params = json!({
                    "messages": [{ "role": "user", "content": { "type": "text", "text": "What is the capital of France?" } }],
                    "maxTokens": 100,
                });
                Ok(match ask_client(ctx, "sampling/createMessage", params).await {
                    Ok(answer) => tool_text(format!("Sampling answered: {}", compact(&answer["content"]))),
                    Err(e) => e,
                })
            }
            "test_streaming_elicitation"
            | "test_input_required_result_elicitation"
            | "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                Ok(match ask_client(ctx, "elicitation/create", name_question()).await {
                    Ok(answer) => {
                        tool_text(format!("Hello, {}!", answer["content"]["name"].as_str().unwrap_or("stranger")))
                    }
                    Err(e) => e,
                })
            }
            "test_input_required_result_list_roots" => Ok(match ask_client(ctx, "roots/list", json!({})).await {
                Ok(answer) => tool_text(format!("Roots: {}", compact(&answer["roots"]))),
                Err(e) => e,
            }),
            "test_input_required_result_multi_round" => {
                let first = match ask_client(ctx, "elicitation/create", name_question()).await {
                    Ok(a) => a,
                    Err(e) => return Ok(e),
                };
                let color = json!({
                    "message": "What is your favourite colour?",
                    "requestedSchema": { "type": "object", "properties": { "color": { "type": "string" } } },
                });
                Ok(match ask_client(ctx, "elicitation/create", color).await {
                    Ok(second) => tool_text(format!(
                        "Both rounds answered: {} and {}",
                        compact(&first["content"]),
                        compact(&second["content"])
                    )),
                    Err(e) => e,
                })
            }
            "test_logging_tool" => {
                for step in ["Logging tool started", "Logging tool working", "Logging tool done"] {
                    ctx.log(LogLevel::Info, "conformance", json!(step));
                }
                Ok(tool_text("Logging tool executed successfully"))
            }
            "test_reconnection" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(tool_text("Reconnection test completed."))
            }
            "update_watched_resource" => {
                let version = {
                    let mut version = lock(&self.watched_version);
                    *version += 1;
                    *version
                };
                if lock(&self.subscriptions).contains(WATCHED_URI) {
                    ctx.notify("notifications/resources/updated", json!({ "uri": WATCHED_URI }));
                }
                Ok(tool_text(format!("Updated {WATCHED_URI} to version {version}.")))
            }
            other => Err(RpcError::invalid_params(format!("Unknown tool: '{other}'"))),
        }
    }

    pub(super) fn read_resource(&self, uri: &str) -> RpcResult {
        let content = match uri {
            STATIC_TEXT_URI => json!({ "uri": uri, "mimeType": "text/plain", "text": STATIC_TEXT }),
            STATIC_BINARY_URI => json!({ "uri": uri, "mimeType": "image/png", "blob": PNG_BASE64 }),
            WATCHED_URI => {
                let version = *lock(&self.watched_version);
                json!({ "uri": uri, "mimeType": "text/plain", "text": format!("Watched resource content, version {version}") })
            }
            _ => {
                let id = template_id(uri).ok_or_else(|| RpcError::resource_not_found(uri))?;
                let data = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
                json!({ "uri": uri, "mimeType": "application/json", "text": compact(&data) })
            }
        };
        Ok(json!({ "contents": [content] }))
    }

    /// `resources/subscribe` (`subscribe`) or `resources/unsubscribe` of `uri`, a resource that
    /// can be read.
    pub(super) fn subscribe(&self, uri: &str, subscribe: bool) -> RpcResult {
        self.read_resource(uri)?;
        let mut subscriptions = lock(&self.subscriptions);
        if subscribe {
            subscriptions.insert(uri.to_owned());
        } else {
            subscriptions.remove(uri);
        }
        Ok(json!({}))
    }

    #[cfg(test)]
    pub(super) fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }
}

/// `test_sampling`: asks the client's LLM and returns `LLM response: <text>`.
async fn sampling(ctx: &mut Ctx<'_>, prompt: &str) -> Value {
    if !ctx.client_supports("sampling") {
        return tool_error("The client does not support sampling (no 'sampling' capability).");
    }
    let params = json!({
        "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
        "maxTokens": 100,
    });
    match ctx.request_client("sampling/createMessage", params).await {
        Ok(result) => {
            // `content` is one block, or (since 2025-11-25) may be an array of them.
            let content = &result["content"];
            let block = content.as_array().and_then(|blocks| blocks.first()).unwrap_or(content);
            let answer = block["text"].as_str().map_or_else(|| compact(content), str::to_owned);
            tool_text(format!("LLM response: {answer}"))
        }
        Err(e) => failed("Sampling", &e),
    }
}

/// Asks the user with `elicitation/create` and returns `<label>: action=..., content={...}`.
async fn elicit(ctx: &mut Ctx<'_>, message: &str, schema: Value, label: &str) -> Value {
    if !ctx.client_supports("elicitation") {
        return tool_error("The client does not support elicitation (no 'elicitation' capability).");
    }
    let params = json!({ "message": message, "requestedSchema": schema });
    match ctx.request_client("elicitation/create", params).await {
        Ok(result) => {
            let action = result["action"].as_str().unwrap_or("unknown");
            let content = result.get("content").cloned().unwrap_or_else(|| json!({}));
            tool_text(format!("{label}: action={action}, content={}", compact(&content)))
        }
        Err(e) => failed("Elicitation", &e),
    }
}

fn failed(what: &str, error: &ClientRequestError) -> Value {
    tool_error(format!("{what} failed: {error}"))
}
