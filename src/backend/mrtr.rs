//! Multi round-trip requests (2026-07-28) resolved for callers that cannot see them.
//!
//! A stateless-era backend that needs something from the client during a `tools/call`,
//! `prompts/get` or `resources/read` answers `resultType: "input_required"` with the requests it
//! needs answered (`inputRequests`: elicitation, sampling, roots) and an opaque `requestState`.
//! A session-era client knows nothing of this; it expects the backend's requests to reach it
//! as server-to-client requests. So mcpmux asks them through the caller's session
//! ([`Origin::ask`]), then retries the original request, same params, with `inputResponses` and
//! the `requestState` echoed exactly, until the result is complete.

use std::time::Duration;

use serde_json::{Map, Value};

use super::client::{CallOptions, Origin};
use super::{Backend, Connection};
use crate::error::RelayError;
use crate::jsonrpc::{self, Payload, code};

/// The methods whose results may be `input_required`.
pub const MRTR_METHODS: &[&str] = &[
    crate::protocol::methods::TOOLS_CALL,
    crate::protocol::methods::PROMPTS_GET,
    crate::protocol::methods::RESOURCES_READ,
];

/// Rounds after which a backend that keeps asking is given up on.
pub const MAX_ROUNDS: usize = 16;

/// The result as a value when it is `input_required`.
pub fn input_required(payload: &Payload) -> Option<Value> {
    // Cheap test first: almost every result is complete.
    if !payload.as_str().contains("input_required") {
        return None;
    }
    let value: Value = serde_json::from_slice(&payload.0).ok()?;
    (value.get("resultType").and_then(Value::as_str) == Some("input_required")).then_some(value)
}

/// Answers each input request through `opts.origin` and retries `method` until the backend's
/// result is complete (or an answer is an error, or [`MAX_ROUNDS`] pass).
pub async fn resolve(
    backend: &Backend,
    conn: &Connection,
    method: &str,
    params: Option<Value>,
    opts: CallOptions,
    mut asked: Value,
) -> Result<Payload, RelayError> {
    let fail = |message: String| {
        RelayError::Backend(jsonrpc::error_object(
            code::INTERNAL_ERROR,
            message,
            Some(serde_json::json!({"backend": &*backend.name})),
        ))
    };
    let Some(origin) = opts.origin.clone() else {
        return Err(fail(format!(
            "backend '{}' needs input from the client to answer {method}, but no client session can be asked",
            backend.name
        )));
    };
    let timeout = backend.request_timeout();
    for round in 1..=MAX_ROUNDS {
        let responses = answer_all(&*origin, &backend.name, &asked, &opts, timeout).await?;
        let mut retry = match params.clone() {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        retry.insert("inputResponses".into(), Value::Object(responses));
        match asked.get("requestState") {
            Some(state) if !state.is_null() => {
                retry.insert("requestState".into(), state.clone());
            }
            _ => {
                retry.remove("requestState");
            }
        }
        tracing::debug!(backend = %backend.name, method, round, "Retrying a request with the client's input.");
        let reply = conn.request(method, Some(Value::Object(retry)), opts.clone(), timeout).await;
        let payload = backend.outcome(reply)?;
        match input_required(&payload) {
            None => return Ok(payload),
            Some(again) => asked = again,
        }
    }
    Err(fail(format!(
        "backend '{}' still asked for input after {MAX_ROUNDS} rounds of {method}; gave up",
        backend.name
    )))
}

/// Asks every input request of one round (concurrently) and collects the answers by key.
async fn answer_all(
    origin: &dyn Origin,
    backend: &str,
    asked: &Value,
    opts: &CallOptions,
    timeout: Duration,
) -> Result<Map<String, Value>, RelayError> {
    let requests = asked.get("inputRequests").and_then(Value::as_object).cloned().unwrap_or_default();
    let asks = requests.into_iter().map(|(key, request)| {
        let method = request.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
        let params = request.get("params").cloned();
        let answer = origin.ask(backend, method.clone(), params, opts.sink.clone());
        let cancel = opts.cancel.clone().unwrap_or_default();
        async move {
            let outcome = tokio::select! {
                r = tokio::time::timeout(timeout, answer) => match r {
                    Ok(r) => r.map_err(RelayError::Backend),
                    Err(_) => Err(RelayError::Backend(jsonrpc::error_object(
                        code::INTERNAL_ERROR,
                        format!("the client did not answer '{method}' within {}s", timeout.as_secs()),
                        None,
                    ))),
                },
                _ = cancel.cancelled() => Err(RelayError::Cancelled),
            };
            (key, outcome)
        }
    });
    let mut responses = Map::new();
    for (key, outcome) in futures_util::future::join_all(asks).await {
        responses.insert(key, outcome?);
    }
    Ok(responses)
}
