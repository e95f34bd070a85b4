//! Clients of the stateless protocol era (2026-07-28) on mcpmux's `/mcp`: no session, the
//! version and capabilities in each request's `_meta`, headers mirrored from the body, and
//! backend requests for input turned into `input_required` results.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Daemon, Reply, read_reply};
use futures_util::StreamExt;
use serde_json::{Value, json};

const MODERN: &str = "2026-07-28";
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A stateless client: every request carries its own `_meta` and headers.
struct Stateless {
    http: reqwest::Client,
    url: String,
    capabilities: Value,
    next_id: u64,
}

impl Stateless {
    fn new(url: String, capabilities: Value) -> Stateless {
        Stateless { http: reqwest::Client::new(), url, capabilities, next_id: 1 }
    }

    fn meta(&self) -> Value {
        json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": self.capabilities,
            "io.modelcontextprotocol/clientInfo": {"name": "mcpmux-tests", "version": "0"},
        })
    }

    /// A request with the headers a conforming client sends; `params` gets `_meta` added.
    fn build(&mut self, method: &str, mut params: Value) -> (u64, reqwest::RequestBuilder) {
        let id = self.next_id;
        self.next_id += 1;
        params["_meta"] = self.meta();
        let name = params.get("name").or_else(|| params.get("uri")).and_then(Value::as_str).map(str::to_owned);
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", method)
            .body(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string());
        if let Some(n) = name.filter(|_| matches!(method, "tools/call" | "prompts/get" | "resources/read")) {
            req = req.header("mcp-name", n);
        }
        (id, req)
    }

    async fn request(&mut self, method: &str, params: Value) -> Reply {
        let (id, req) = self.build(method, params);
        let resp = tokio::time::timeout(TEST_TIMEOUT, req.send()).await.expect("request timed out").unwrap();
        assert!(resp.headers().get("mcp-session-id").is_none(), "a stateless request got a session id");
        let reply = read_reply(resp).await;
        assert_eq!(reply.response()["id"], json!(id), "response id must match the request id: {reply:?}");
        reply
    }
}

/// POSTs `body` with `headers` exactly as given (for the refusals).
async fn raw_post(url: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read_reply(tokio::time::timeout(TEST_TIMEOUT, req.send()).await.expect("request timed out").unwrap()).await
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

#[tokio::test]
async fn discover_list_and_call_without_a_session() {
    let daemon = Daemon::start(json!({"mcpServers": {"clock": common::demo("clock")}})).await;
    let mut client = Stateless::new(daemon.url("/mcp"), json!({}));

    let discover = client.request("server/discover", json!({})).await;
    let d = discover.result();
    assert_eq!(d["resultType"], "complete");
    let versions: Vec<&str> = d["supportedVersions"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(versions.contains(&MODERN) && versions.contains(&"2025-11-25"), "{versions:?}");
    assert_eq!(d["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpmux");

    let list = client.request("tools/list", json!({})).await;
    let l = list.result();
    assert_eq!(l["resultType"], "complete");
    assert!(l["ttlMs"].as_u64().is_some(), "tools/list needs ttlMs: {l}");
    assert_eq!(l["cacheScope"], "private");
    let names: Vec<&str> = l["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"clock_add"), "{names:?}");

    let call = client.request("tools/call", json!({"name": "clock_add", "arguments": {"a": 2, "b": 40}})).await;
    assert_eq!(call.result()["structuredContent"]["sum"], 42);
    assert_eq!(call.result()["resultType"], "complete");
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn headers_and_versions_are_checked_against_the_body() {
    let daemon = Daemon::start(json!({"mcpServers": {"clock": common::demo("clock")}})).await;
    let url = daemon.url("/mcp");
    let call = |m: Value| json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "clock_add", "arguments": {"a": 1, "b": 1}, "_meta": m}});

    // No MCP-Protocol-Version header.
    let r = raw_post(&url, &[("mcp-method", "tools/call"), ("mcp-name", "clock_add")], call(meta())).await;
    assert_eq!((r.status, r.error()["code"].clone()), (400, json!(-32020)), "{r:?}");
    assert_eq!(r.response()["id"], 7);
    // Mcp-Name names another tool than the body.
    let headers = [("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", "clock_echo")];
    let r = raw_post(&url, &headers, call(meta())).await;
    assert_eq!((r.status, r.error()["code"].clone()), (400, json!(-32020)), "{r:?}");
    // Base64-encoded Mcp-Name is decoded before the comparison.
    let headers =
        [("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", "=?base64?Y2xvY2tfYWRk?=")];
    let r = raw_post(&url, &headers, call(meta())).await;
    assert_eq!(r.result()["structuredContent"]["sum"], 2, "{r:?}");
    // A version mcpmux does not speak.
    let future = json!({"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}});
    let headers = [("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/call"), ("mcp-name", "clock_add")];
    let r = raw_post(&url, &headers, call(future)).await;
    assert_eq!((r.status, r.error()["code"].clone()), (400, json!(-32022)), "{r:?}");
    let supported = r.error()["data"]["supported"].as_array().unwrap().clone();
    assert!(supported.contains(&json!(MODERN)) && supported.contains(&json!("2025-11-25")), "{supported:?}");
    assert_eq!(r.error()["data"]["requested"], "2099-01-01");
    // No client capabilities in _meta.
    let headers = [("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", "clock_add")];
    let r = raw_post(&url, &headers, call(json!({"io.modelcontextprotocol/protocolVersion": MODERN}))).await;
    assert_eq!((r.status, r.error()["code"].clone()), (400, json!(-32602)), "{r:?}");
    // Methods the era removed.
    let ping = json!({"jsonrpc": "2.0", "id": 8, "method": "ping", "params": {"_meta": meta()}});
    let r = raw_post(&url, &[("mcp-protocol-version", MODERN), ("mcp-method", "ping")], ping).await;
    assert_eq!((r.status, r.error()["code"].clone()), (404, json!(-32601)), "{r:?}");
    // No GET stream and no DELETE for stateless clients.
    let get = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    // Session-era clients on the same endpoint are unaffected.
    let mut legacy = daemon.client().await;
    assert_eq!(legacy.call("clock_add", json!({"a": 3, "b": 4})).await["structuredContent"]["sum"], 7);
    daemon.stop().await.unwrap();
}

/// The built-in conformance fixture speaks 2025-11-25 and asks for input with requests to the
/// client; a stateless client gets each question as an `input_required` round.
#[tokio::test]
async fn a_session_era_backend_asks_through_input_required_rounds() {
    let daemon = Daemon::start(json!({"mcpServers": {"conf": common::demo("conformance")}})).await;
    let mut client = Stateless::new(daemon.url("/mcp"), json!({"elicitation": {}}));
    let tool = "conf_test_input_required_result_multi_round";

    let first = client.request("tools/call", json!({"name": tool, "arguments": {}})).await;
    let r1 = first.result().clone();
    assert_eq!(r1["resultType"], "input_required", "{r1}");
    let (key1, ask1) =
        r1["inputRequests"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    assert_eq!(ask1["method"], "elicitation/create");
    assert_eq!(ask1["params"]["message"], "What is your name?");
    let state1 = r1["requestState"].as_str().unwrap().to_owned();

    let answer = |key: &str, content: Value| json!({ key: {"action": "accept", "content": content} });
    let second = client
        .request(
            "tools/call",
            json!({"name": tool, "arguments": {}, "inputResponses": answer(&key1, json!({"name": "Ada"})), "requestState": state1}),
        )
        .await;
    let r2 = second.result().clone();
    assert_eq!(r2["resultType"], "input_required", "second round expected: {r2}");
    let key2 = r2["inputRequests"].as_object().unwrap().keys().next().unwrap().clone();
    assert_ne!(key2, key1, "each input request gets its own key");
    let state2 = r2["requestState"].as_str().unwrap().to_owned();
    assert_ne!(state2, state1);

    // A used state is gone; a tampered one was never there.
    let reused = client
        .request(
            "tools/call",
            json!({"name": tool, "arguments": {}, "inputResponses": answer(&key1, json!({})), "requestState": state1}),
        )
        .await;
    assert_eq!(reused.error()["code"], -32602, "{reused:?}");
    let tampered = format!("{}x", &state2[..state2.len() - 1]);
    let bad = client
        .request("tools/call", json!({"name": tool, "arguments": {}, "inputResponses": answer(&key2, json!({})), "requestState": tampered}))
        .await;
    assert_eq!(bad.error()["code"], -32602, "{bad:?}");
    // The state belongs to this tool call, not to another one.
    let other = client
        .request(
            "tools/call",
            json!({"name": "conf_test_simple_text", "arguments": {}, "inputResponses": answer(&key2, json!({})), "requestState": state2}),
        )
        .await;
    assert_eq!(other.error()["code"], -32602, "{other:?}");

    let done = client
        .request(
            "tools/call",
            json!({"name": tool, "arguments": {}, "inputResponses": answer(&key2, json!({"color": "green"})), "requestState": state2}),
        )
        .await;
    let text = common::text_of(done.result());
    assert!(text.contains("Ada") && text.contains("green"), "both answers reach the backend: {text}");
    assert_eq!(done.result()["resultType"], "complete");
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn an_undeclared_capability_is_minus_32021() {
    let daemon = Daemon::start(json!({"mcpServers": {"conf": common::demo("conformance")}})).await;
    let mut client = Stateless::new(daemon.url("/mcp"), json!({}));
    let (_, req) = client.build("tools/call", json!({"name": "conf_test_missing_capability", "arguments": {}}));
    let reply = read_reply(req.send().await.unwrap()).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.error()["code"], -32021);
    assert!(reply.error()["data"]["requiredCapabilities"]["sampling"].is_object(), "{reply:?}");
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_nobody_retries_expires() {
    let daemon = Daemon::start(json!({
        "mcpmux": {"inputTimeoutMs": 200},
        "mcpServers": {"conf": common::demo("conformance")}
    }))
    .await;
    let mut client = Stateless::new(daemon.url("/mcp"), json!({"elicitation": {}}));
    let tool = "conf_test_input_required_result_elicitation";
    let first = client.request("tools/call", json!({"name": tool, "arguments": {}})).await;
    let r = first.result().clone();
    let key = r["inputRequests"].as_object().unwrap().keys().next().unwrap().clone();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let late = client
        .request(
            "tools/call",
            json!({"name": tool, "arguments": {}, "inputResponses": {key: {"action": "accept", "content": {"name": "x"}}}, "requestState": r["requestState"]}),
        )
        .await;
    assert_eq!(late.error()["code"], -32602, "{late:?}");
    assert!(late.error()["message"].as_str().unwrap().contains("expired"), "{late:?}");
    // The backend's call was ended, not left waiting: the same tool runs again at once.
    let again = client.request("tools/call", json!({"name": tool, "arguments": {}})).await;
    assert_eq!(again.result()["resultType"], "input_required");
    daemon.stop().await.unwrap();
}

/// `subscriptions/listen`: acknowledged first, then only the opted-in change notifications,
/// each tagged with the subscription's id.
#[tokio::test]
async fn listen_streams_carry_the_changes_asked_for() {
    let daemon = Daemon::start(json!({"mcpServers": {"notes": common::demo("notes")}})).await;
    let mut client = Stateless::new(daemon.url("/mcp"), json!({}));

    let (resources_id, req) =
        client.build("subscriptions/listen", json!({"notifications": {"resourcesListChanged": true}}));
    let resources_stream = req.send().await.unwrap();
    assert_eq!(resources_stream.headers()["content-type"], "text/event-stream");
    let (tools_id, req) = client.build("subscriptions/listen", json!({"notifications": {"toolsListChanged": true}}));
    let tools_stream = req.send().await.unwrap();

    let mut resources_events = Box::pin(events(resources_stream));
    let mut tools_events = Box::pin(events(tools_stream));
    for (events, id) in [(&mut resources_events, resources_id), (&mut tools_events, tools_id)] {
        let ack = tokio::time::timeout(TEST_TIMEOUT, events.next()).await.unwrap().unwrap();
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{ack}");
        assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], id);
    }

    // Adding a note adds a resource: the notes backend says its resource list changed.
    client.request("tools/call", json!({"name": "notes_add_note", "arguments": {"title": "t", "body": "b"}})).await;
    let change = tokio::time::timeout(TEST_TIMEOUT, resources_events.next()).await.unwrap().unwrap();
    assert_eq!(change["method"], "notifications/resources/list_changed", "{change}");
    assert_eq!(change["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], resources_id);
    let nothing = tokio::time::timeout(Duration::from_millis(500), tools_events.next()).await;
    assert!(nothing.is_err(), "a tools-only stream got {nothing:?}");
    drop((resources_events, tools_events));
    daemon.stop().await.unwrap();
}

/// The JSON-RPC messages of an SSE response, as they arrive.
fn events(resp: reqwest::Response) -> impl futures_util::Stream<Item = Value> {
    async_stream::stream! {
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for msg in common::parse_sse(&event) {
                    yield msg;
                }
            }
        }
    }
}

/// In 2026-07-28 closing a response stream cancels its request: the backend is told to stop.
#[tokio::test]
async fn closing_the_stream_cancels_the_backend_call() {
    let python = common::python();
    let daemon = Daemon::start(json!({"mcpServers": {"raw": {
        "command": python, "args": [common::fixture("raw_server.py"), "slowcall"]
    }}}))
    .await;
    // The backend's own endpoint passes names through, unlisted ones too.
    let url = daemon.url("/servers/raw/mcp");
    let mut client = Stateless::new(url.clone(), json!({}));
    let (_, req) = client.build("tools/call", json!({"name": "slow", "arguments": {}}));
    let pending = tokio::spawn(req.send());
    // The call is at the backend once it counts as pending there.
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    loop {
        let status = daemon.status().await;
        if status["backends"][0]["pendingCalls"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the call never reached the backend: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pending.abort();
    let _ = pending.await;

    let mut legacy = common::Client::connect(&url).await;
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    loop {
        let seen = legacy.call("cancellations", json!({})).await;
        if seen["structuredContent"]["ids"].as_array().is_some_and(|ids| !ids.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the backend was never told to cancel: {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.stop().await.unwrap();
}

/// `"isolation": "session"` gives each client session its own backend process; stateless
/// clients have no session, so their calls use the shared one instead of leaving a process
/// behind per call.
#[tokio::test]
async fn stateless_calls_use_the_shared_connection_of_an_isolated_backend() {
    let mut clock = common::demo("clock");
    clock["isolation"] = json!("session");
    let daemon = Daemon::start(json!({"mcpServers": {"clock": clock}})).await;
    let mut client = Stateless::new(daemon.url("/mcp"), json!({}));
    for i in 0..3 {
        let r = client.request("tools/call", json!({"name": "clock_add", "arguments": {"a": i, "b": 1}})).await;
        assert_eq!(r.result()["structuredContent"]["sum"], i + 1);
    }
    let status = daemon.status().await;
    assert_eq!(status["backends"][0]["sessionConnections"], 0, "{status}");
    // A session still gets its own.
    let mut session = daemon.client().await;
    session.call("clock_add", json!({"a": 1, "b": 1})).await;
    assert_eq!(daemon.status().await["backends"][0]["sessionConnections"], 1);
    daemon.stop().await.unwrap();
}
