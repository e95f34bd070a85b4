//! The `clock` personality: time and arithmetic utilities, plus a slow tool and a failing tool
//! for exercising progress, cancellation and error passthrough.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Number, Value, json};
use tokio::time::Instant;

use super::util::{
    INTERNAL_ERROR, RpcError, RpcResult, completion, optional_int, required_int, required_number, required_str,
    rfc3339, tool_error, tool_structured, tool_text, unix_now,
};
use super::{CompletionRef, Ctx, LogLevel};

pub(super) const INSTRUCTIONS: &str = "Time and arithmetic utilities: tools to tell the current time, add numbers, \
     echo text, sleep with progress and fail on purpose, an uptime resource, a resource per timezone offset, \
     and a plan_day prompt.";

const UPTIME_URI: &str = "clock://uptime";
const TIMEZONE_PREFIX: &str = "clock://timezones/";
const TIMEZONE_TEMPLATE: &str = "clock://timezones/{offset}";
const PROMPT: &str = "plan_day";

/// Largest accepted offset from UTC, in minutes (RFC 3339 allows up to ±23:59).
const MAX_OFFSET_MINUTES: i64 = 1439;
const MAX_SLEEP_MS: i64 = 60_000;
/// Progress notifications per `sleep` with a progress token.
const SLEEP_STEPS: u64 = 10;

/// Completion suggestions.
const OFFSET_SUGGESTIONS: &[&str] =
    &["-480", "-420", "-360", "-300", "-180", "0", "60", "120", "330", "480", "540", "600"];
const FOCUS_SUGGESTIONS: &[&str] = &["deep work", "errands", "exercise", "family", "learning", "meetings", "rest"];

#[derive(Debug)]
pub(super) struct Clock {
    started: Instant,
}

pub(super) fn is_slow_tool(tool: &str) -> bool {
    tool == "sleep"
}

pub(super) fn tools() -> Vec<Value> {
    vec![
        json!({
            "name": "now",
            "title": "Current time",
            "description": "Returns the current time as an RFC 3339 timestamp, in UTC or at the given offset from UTC.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "timezone_offset_minutes": {
                        "type": "integer",
                        "minimum": -MAX_OFFSET_MINUTES,
                        "maximum": MAX_OFFSET_MINUTES,
                        "description": "Offset from UTC in minutes, e.g. 330 for +05:30; default 0.",
                    }
                },
                "required": [],
            },
            "annotations": { "title": "Current time", "readOnlyHint": true, "idempotentHint": false, "openWorldHint": false },
        }),
        json!({
            "name": "add",
            "title": "Add two numbers",
            "description": "Adds two numbers.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "a": { "type": "number", "description": "First addend." },
                    "b": { "type": "number", "description": "Second addend." }
                },
                "required": ["a", "b"],
            },
            "outputSchema": {
                "type": "object",
                "properties": { "sum": { "type": "number" } },
                "required": ["sum"],
            },
            "annotations": { "title": "Add two numbers", "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false },
        }),
        json!({
            "name": "echo",
            "title": "Echo",
            "description": "Returns the text unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": { "text": { "type": "string", "description": "Text to echo back." } },
                "required": ["text"],
            },
            "annotations": { "title": "Echo", "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false },
        }),
        json!({
            "name": "sleep",
            "title": "Sleep",
            "description": "Waits for the given number of milliseconds, reporting progress ten times when the request has a progress token. Can be cancelled.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "ms": { "type": "integer", "minimum": 0, "maximum": MAX_SLEEP_MS, "description": "How long to sleep, in milliseconds." }
                },
                "required": ["ms"],
            },
            "annotations": { "title": "Sleep", "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false },
        }),
        json!({
            "name": "fail",
            "title": "Fail",
            "description": "Always fails with a JSON-RPC internal error (-32603), to test error passthrough.",
            "inputSchema": { "type": "object", "properties": {}, "required": [] },
            "annotations": { "title": "Fail", "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false },
        }),
    ]
}

pub(super) fn resources() -> Vec<Value> {
    vec![json!({
        "uri": UPTIME_URI,
        "name": "uptime",
        "title": "Server uptime",
        "description": "Whole seconds since this demo server started.",
        "mimeType": "text/plain",
    })]
}

pub(super) fn resource_templates() -> Vec<Value> {
    vec![json!({
        "uriTemplate": TIMEZONE_TEMPLATE,
        "name": "timezone",
        "title": "Time at an offset",
        "description": "The current time (RFC 3339) at an offset from UTC in minutes, e.g. clock://timezones/-300.",
        "mimeType": "text/plain",
    })]
}

pub(super) fn prompts() -> Vec<Value> {
    vec![json!({
        "name": PROMPT,
        "title": "Plan my day",
        "description": "Asks for a plan for the rest of today.",
        "arguments": [{ "name": "focus", "description": "What the day should focus on.", "required": false }],
    })]
}

impl Clock {
    pub(super) fn new() -> Self {
        Self { started: Instant::now() }
    }

    pub(super) async fn call_tool(&self, ctx: &mut Ctx<'_>, name: &str, args: &Map<String, Value>) -> RpcResult {
        match name {
            "now" => {
                let offset = optional_int(
                    args,
                    "timezone_offset_minutes",
                    -MAX_OFFSET_MINUTES,
                    MAX_OFFSET_MINUTES,
                    "tool 'now'",
                )?;
                Ok(tool_text(rfc3339(unix_now(), offset.unwrap_or(0))))
            }
            "add" => {
                let a = required_number(args, "a", "tool 'add'")?;
                let b = required_number(args, "b", "tool 'add'")?;
                let Some(sum) = add(a, b) else {
                    return Ok(tool_error(format!("The sum of {a} and {b} is not a finite number.")));
                };
                Ok(tool_structured(sum.to_string(), json!({ "sum": sum })))
            }
            "echo" => Ok(tool_text(required_str(args, "text", "tool 'echo'")?)),
            "sleep" => {
                let ms = required_int(args, "ms", 0, MAX_SLEEP_MS, "tool 'sleep'")?;
                sleep(ctx, ms.unsigned_abs()).await
            }
            "fail" => {
                ctx.log(LogLevel::Error, "clock", json!("demo failure requested"));
                Err(RpcError::new(INTERNAL_ERROR, "demo failure requested"))
            }
            other => Err(RpcError::invalid_params(format!("Unknown tool: '{other}'"))),
        }
    }

    pub(super) fn read_resource(&self, uri: &str) -> RpcResult {
        let text = if uri == UPTIME_URI {
            self.started.elapsed().as_secs().to_string()
        } else {
            let offset = uri
                .strip_prefix(TIMEZONE_PREFIX)
                .and_then(|offset| offset.parse::<i64>().ok())
                .filter(|offset| offset.abs() <= MAX_OFFSET_MINUTES)
                .ok_or_else(|| RpcError::resource_not_found(uri))?;
            rfc3339(unix_now(), offset)
        };
        Ok(json!({ "contents": [{ "uri": uri, "mimeType": "text/plain", "text": text }] }))
    }

    pub(super) fn get_prompt(&self, name: &str, args: &HashMap<String, String>) -> RpcResult {
        if name != PROMPT {
            return Err(RpcError::invalid_params(format!("Unknown prompt: '{name}'")));
        }
        let mut text = format!("Help me plan the rest of my day. It is now {} (UTC).", rfc3339(unix_now(), 0));
        match args.get("focus").map(|f| f.trim()).filter(|f| !f.is_empty()) {
            Some(focus) => text.push_str(&format!(" Focus on: {focus}.")),
            None => text.push_str(" Balance work, breaks and errands."),
        }
        text.push_str(" Suggest a schedule in time blocks.");
        Ok(json!({
            "description": "A plan for the rest of today",
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
        }))
    }

    pub(super) fn complete(&self, reference: &CompletionRef<'_>, argument: &str, value: &str) -> RpcResult {
        let candidates: &[&str] = match reference {
            CompletionRef::Prompt(PROMPT) if argument == "focus" => FOCUS_SUGGESTIONS,
            CompletionRef::Resource(TIMEZONE_TEMPLATE) if argument == "offset" => OFFSET_SUGGESTIONS,
            CompletionRef::Prompt(PROMPT) | CompletionRef::Resource(TIMEZONE_TEMPLATE) => &[],
            CompletionRef::Prompt(other) => {
                return Err(RpcError::invalid_params(format!("Unknown prompt: '{other}'")));
            }
            CompletionRef::Resource(other) => {
                return Err(RpcError::invalid_params(format!("Unknown resource template: '{other}'")));
            }
        };
        Ok(completion(candidates.iter().copied(), value))
    }
}

/// `a + b`, as an integer when both are integers and it fits, else as a float; `None` when
/// the float sum is not finite.
fn add(a: &Number, b: &Number) -> Option<Number> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64())
        && let Some(sum) = x.checked_add(y)
    {
        return Some(Number::from(sum));
    }
    Number::from_f64(a.as_f64()? + b.as_f64()?)
}

/// Sleeps `ms`, sending progress after each tenth when asked; returns early when cancelled (the
/// result is then never sent).
async fn sleep(ctx: &mut Ctx<'_>, ms: u64) -> RpcResult {
    let start = Instant::now();
    for step in 1..=SLEEP_STEPS {
        let elapsed_ms = ms * step / SLEEP_STEPS;
        tokio::select! {
            () = tokio::time::sleep_until(start + Duration::from_millis(elapsed_ms)) => {}
            () = ctx.cancelled() => return Err(RpcError::new(INTERNAL_ERROR, "cancelled")),
        }
        ctx.progress(step, SLEEP_STEPS, &format!("Slept {elapsed_ms} of {ms} ms"));
    }
    Ok(tool_text(format!("Slept {ms} ms.")))
}
