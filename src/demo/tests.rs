#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::util::{percent_decode, percent_encode, rfc3339};
use super::*;

const BOUND: Duration = Duration::from_secs(10);

fn server(personality: &str) -> DemoServer {
    DemoServer::new(personality).unwrap()
}

/// Every message `handle` sends for `msg`, in order.
async fn exchange(server: &mut DemoServer, msg: Value) -> Vec<Value> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    timeout(BOUND, server.handle(msg, &tx)).await.expect("handle timed out");
    drop(tx);
    let mut out = Vec::new();
    while let Some(msg) = rx.recv().await {
        out.push(msg);
    }
    out
}

/// The response to a request: the last message sent, every one before it a notification.
async fn request(server: &mut DemoServer, id: Value, method: &str, params: Value) -> Value {
    let mut out = exchange(server, json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })).await;
    let response = out.pop().expect("no response");
    assert_eq!(response["id"], id, "{response}");
    for msg in &out {
        assert!(msg.get("id").is_none() && msg["method"].is_string(), "not a notification: {msg}");
    }
    response
}

async fn result(server: &mut DemoServer, method: &str, params: Value) -> Value {
    let response = request(server, json!(1), method, params).await;
    assert!(response.get("error").is_none(), "unexpected error: {response}");
    response["result"].clone()
}

async fn error(server: &mut DemoServer, method: &str, params: Value) -> Value {
    let response = request(server, json!(1), method, params).await;
    assert!(response.get("result").is_none(), "expected an error: {response}");
    response["error"].clone()
}

async fn call_tool(server: &mut DemoServer, name: &str, arguments: Value) -> Value {
    result(server, "tools/call", json!({ "name": name, "arguments": arguments })).await
}

fn text_of(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key].as_array().unwrap().iter().map(|item| item["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn unknown_personality_is_rejected() {
    assert!(matches!(DemoServer::new("weather"), Err(DemoError::UnknownPersonality(p)) if p == "weather"));
    for p in PERSONALITIES {
        assert_eq!(server(p).personality(), *p);
    }
}

#[tokio::test]
async fn initialize_echoes_a_known_protocol_version() {
    for version in PROTOCOL_VERSIONS {
        let mut s = server("notes");
        let r = result(
            &mut s,
            "initialize",
            json!({ "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } }),
        )
        .await;
        assert_eq!(r["protocolVersion"], *version);
    }
}

#[tokio::test]
async fn initialize_offers_latest_for_an_unknown_version() {
    let mut s = server("notes");
    let r = result(
        &mut s,
        "initialize",
        json!({ "protocolVersion": "1999-01-01", "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } }),
    )
    .await;
    assert_eq!(r["protocolVersion"], "2025-11-25");
    assert_eq!(r["serverInfo"]["name"], "mcpmux-demo-notes");
    assert_eq!(r["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(r["serverInfo"]["title"].is_string());
    assert!(r["instructions"].as_str().unwrap().contains("note"));
    assert_eq!(r["capabilities"]["resources"]["listChanged"], true);
    for capability in ["tools", "prompts", "completions", "logging"] {
        assert!(r["capabilities"][capability].is_object(), "missing {capability}");
    }

    let mut s = server("clock");
    let r = result(&mut s, "initialize", json!({})).await;
    assert_eq!(r["protocolVersion"], "2025-11-25");
    assert_eq!(r["serverInfo"]["name"], "mcpmux-demo-clock");
    assert_eq!(r["capabilities"]["resources"]["listChanged"], false);
}

#[tokio::test]
async fn notifications_and_client_responses_get_no_reply() {
    let mut s = server("notes");
    assert!(exchange(&mut s, json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await.is_empty());
    assert!(
        exchange(&mut s, json!({ "jsonrpc": "2.0", "method": "notifications/whatever", "params": 3 })).await.is_empty()
    );
    assert!(exchange(&mut s, json!({ "jsonrpc": "2.0", "id": 5, "result": {} })).await.is_empty());
    assert!(
        exchange(&mut s, json!({ "jsonrpc": "2.0", "id": 5, "error": { "code": 1, "message": "x" } })).await.is_empty()
    );
}

#[tokio::test]
async fn ping_and_set_level() {
    let mut s = server("clock");
    assert_eq!(result(&mut s, "ping", json!({})).await, json!({}));
    let ping = request(&mut s, json!(3), "ping", Value::Null).await;
    assert_eq!(ping, json!({ "jsonrpc": "2.0", "id": 3, "result": {} }));
    assert_eq!(result(&mut s, "logging/setLevel", json!({ "level": "warning" })).await, json!({}));
    let e = error(&mut s, "logging/setLevel", json!({ "level": "loud" })).await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("loud"));
}

#[tokio::test]
async fn log_notifications_only_after_set_level() {
    let mut s = server("clock");
    let fail = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "fail" } });
    assert_eq!(exchange(&mut s, fail.clone()).await.len(), 1);
    result(&mut s, "logging/setLevel", json!({ "level": "error" })).await;
    let out = exchange(&mut s, fail).await;
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["method"], "notifications/message");
    assert_eq!(out[0]["params"]["level"], "error");
    assert_eq!(out[1]["error"]["code"], -32603);
}

#[tokio::test]
async fn unknown_method_is_32601_naming_it() {
    let mut s = server("notes");
    let e = error(&mut s, "tools/frobnicate", json!({})).await;
    assert_eq!(e["code"], -32601);
    assert!(e["message"].as_str().unwrap().contains("tools/frobnicate"));
}

#[tokio::test]
async fn ids_are_echoed_exactly() {
    let mut s = server("clock");
    for id in [json!("abc"), json!(7), json!("7"), json!(0), json!(-3), json!(""), json!(u64::MAX), json!(1.5)] {
        let response = request(&mut s, id.clone(), "ping", json!({})).await;
        assert_eq!(response["id"], id);
        assert_eq!(response["jsonrpc"], "2.0");
    }
    // The id type survives: "7" stays a string, 7 stays a number.
    assert!(request(&mut s, json!("7"), "ping", json!({})).await["id"].is_string());
    assert!(request(&mut s, json!(7), "ping", json!({})).await["id"].is_number());
}

#[tokio::test]
async fn malformed_envelopes_are_invalid_requests() {
    let mut s = server("clock");
    for (msg, expected_id) in [
        (json!([1, 2]), Value::Null),
        (json!("hello"), Value::Null),
        (json!({ "jsonrpc": "2.0", "id": {}, "method": "ping" }), Value::Null),
        (json!({ "jsonrpc": "2.0", "id": null, "method": "ping" }), Value::Null),
        (json!({ "jsonrpc": "2.0", "id": 4, "method": 12 }), json!(4)),
        (json!({ "jsonrpc": "2.0", "id": 4 }), json!(4)),
        (json!({ "jsonrpc": "1.0", "id": 4, "method": "ping" }), json!(4)),
    ] {
        let out = exchange(&mut s, msg.clone()).await;
        assert_eq!(out.len(), 1, "{msg}");
        assert_eq!(out[0]["error"]["code"], -32600, "{msg}");
        assert_eq!(out[0]["id"], expected_id, "{msg}");
    }
    let out = exchange(&mut s, json!({ "jsonrpc": "2.0", "id": 4, "method": "ping", "params": [1] })).await;
    assert_eq!(out[0]["error"]["code"], -32602);
}

#[tokio::test]
async fn notes_tools_list() {
    let mut s = server("notes");
    let r = result(&mut s, "tools/list", json!({})).await;
    assert_eq!(names(&r, "tools"), ["add_note", "list_notes", "search_notes", "delete_note"]);
    assert!(r.get("nextCursor").is_none());
    for tool in r["tools"].as_array().unwrap() {
        for field in ["name", "title", "description"] {
            assert!(tool[field].is_string(), "{field} in {tool}");
        }
        assert_eq!(tool["inputSchema"]["type"], "object");
        assert!(tool["inputSchema"]["required"].is_array());
        assert!(tool["annotations"].is_object());
    }
    let list = &r["tools"][1];
    assert_eq!(list["outputSchema"]["properties"]["notes"]["type"], "array");
    assert_eq!(list["annotations"]["readOnlyHint"], true);
    assert_eq!(r["tools"][0]["inputSchema"]["required"], json!(["title", "body"]));
    assert_eq!(r["tools"][3]["annotations"]["destructiveHint"], true);
}

#[tokio::test]
async fn clock_tools_list() {
    let mut s = server("clock");
    let r = result(&mut s, "tools/list", json!({})).await;
    assert_eq!(names(&r, "tools"), ["now", "add", "echo", "sleep", "fail"]);
    assert_eq!(r["tools"][1]["outputSchema"]["required"], json!(["sum"]));
    assert_eq!(r["tools"][3]["inputSchema"]["properties"]["ms"]["maximum"], 60_000);
}

#[tokio::test]
async fn notes_starts_with_two_notes() {
    let mut s = server("notes");
    let r = call_tool(&mut s, "list_notes", json!({})).await;
    assert_eq!(r["structuredContent"], json!({ "notes": ["welcome", "shopping"] }));
    assert!(text_of(&r).contains("welcome"));
    let r = result(&mut s, "resources/read", json!({ "uri": "note://notes/shopping" })).await;
    assert_eq!(r["contents"][0]["uri"], "note://notes/shopping");
    assert_eq!(r["contents"][0]["mimeType"], "text/plain");
    assert!(r["contents"][0]["text"].as_str().unwrap().contains("milk"));
}

#[tokio::test]
async fn add_note_notifies_before_responding_and_becomes_a_resource() {
    let mut s = server("notes");
    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "id": "a1", "method": "tools/call",
                "params": { "name": "add_note", "arguments": { "title": "my note/1", "body": "héllo" } } }),
    )
    .await;
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0], json!({ "jsonrpc": "2.0", "method": "notifications/resources/list_changed", "params": {} }));
    assert_eq!(out[1]["id"], "a1");
    assert_eq!(text_of(&out[1]["result"]), "Added note 'my note/1'.");
    assert!(out[1]["result"].get("isError").is_none());

    let r = result(&mut s, "resources/list", json!({})).await;
    let uris: Vec<&str> = r["resources"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["note://notes/welcome", "note://notes/shopping", "note://notes/my%20note%2F1"]);
    let r = result(&mut s, "resources/read", json!({ "uri": "note://notes/my%20note%2F1" })).await;
    assert_eq!(r["contents"][0]["text"], "héllo");

    // A duplicate is a tool error, and nothing changed so no notification.
    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": { "name": "add_note", "arguments": { "title": "my note/1", "body": "again" } } }),
    )
    .await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["result"]["isError"], true);
}

#[tokio::test]
async fn search_and_delete_notes() {
    let mut s = server("notes");
    let r = call_tool(&mut s, "search_notes", json!({ "query": "MILK" })).await;
    assert_eq!(r["structuredContent"]["notes"], json!(["shopping"]));
    let r = call_tool(&mut s, "search_notes", json!({ "query": "zzz" })).await;
    assert_eq!(r["structuredContent"]["notes"], json!([]));

    let r = call_tool(&mut s, "delete_note", json!({ "title": "nope" })).await;
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("nope"));

    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": { "name": "delete_note", "arguments": { "title": "shopping" } } }),
    )
    .await;
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["method"], "notifications/resources/list_changed");
    assert_eq!(text_of(&out[1]["result"]), "Deleted note 'shopping'.");
    let r = call_tool(&mut s, "list_notes", json!({})).await;
    assert_eq!(r["structuredContent"]["notes"], json!(["welcome"]));
}

#[tokio::test]
async fn invalid_tool_arguments_are_32602() {
    let mut s = server("notes");
    let e = error(&mut s, "tools/call", json!({ "name": "add_note", "arguments": { "title": "x" } })).await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("body"), "{e}");
    let e = error(&mut s, "tools/call", json!({ "name": "add_note", "arguments": { "title": 3, "body": "" } })).await;
    assert_eq!(e["code"], -32602);
    let e = error(&mut s, "tools/call", json!({ "name": "no_such_tool" })).await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("no_such_tool"));
    let e = error(&mut s, "tools/call", json!({ "arguments": {} })).await;
    assert_eq!(e["code"], -32602);

    let mut c = server("clock");
    let e = error(&mut c, "tools/call", json!({ "name": "sleep", "arguments": { "ms": 60_001 } })).await;
    assert_eq!(e["code"], -32602);
    let e = error(&mut c, "tools/call", json!({ "name": "add", "arguments": { "a": "1", "b": 2 } })).await;
    assert_eq!(e["code"], -32602);
}

#[tokio::test]
async fn reading_a_missing_note_is_32002() {
    let mut s = server("notes");
    for uri in ["note://notes/ghost", "note://notes/%ZZ", "other://x"] {
        let e = error(&mut s, "resources/read", json!({ "uri": uri })).await;
        assert_eq!(e["code"], -32002);
        assert_eq!(e["message"], "Resource not found");
        assert_eq!(e["data"], json!({ "uri": uri }));
    }
    let r = result(&mut s, "resources/templates/list", json!({})).await;
    assert_eq!(r["resourceTemplates"][0]["uriTemplate"], "note://notes/{title}");
}

#[tokio::test]
async fn completion_of_note_titles() {
    let mut s = server("notes");
    call_tool(&mut s, "add_note", json!({ "title": "shoes", "body": "size 44" })).await;
    let r = result(
        &mut s,
        "completion/complete",
        json!({ "ref": { "type": "ref/prompt", "name": "summarize_note" }, "argument": { "name": "title", "value": "sh" } }),
    )
    .await;
    assert_eq!(r, json!({ "completion": { "values": ["shopping", "shoes"], "total": 2, "hasMore": false } }));
    let r = result(
        &mut s,
        "completion/complete",
        json!({ "ref": { "type": "ref/resource", "uri": "note://notes/{title}" }, "argument": { "name": "title", "value": "W" } }),
    )
    .await;
    assert_eq!(r["completion"]["values"], json!(["welcome"]));
    let e = error(
        &mut s,
        "completion/complete",
        json!({ "ref": { "type": "ref/prompt", "name": "nope" }, "argument": { "name": "title", "value": "" } }),
    )
    .await;
    assert_eq!(e["code"], -32602);
}

#[tokio::test]
async fn summarize_prompt_embeds_the_note() {
    let mut s = server("notes");
    let r = result(&mut s, "prompts/list", json!({})).await;
    assert_eq!(names(&r, "prompts"), ["summarize_note"]);
    assert_eq!(r["prompts"][0]["arguments"][0]["required"], true);
    let r =
        result(&mut s, "prompts/get", json!({ "name": "summarize_note", "arguments": { "title": "shopping" } })).await;
    let messages = r["messages"].as_array().unwrap();
    let embedded = &messages[0]["content"];
    assert_eq!(embedded["type"], "resource");
    assert_eq!(embedded["resource"]["uri"], "note://notes/shopping");
    assert!(embedded["resource"]["text"].as_str().unwrap().contains("eggs"));
    assert_eq!(messages[1]["content"]["type"], "text");
    let e = error(&mut s, "prompts/get", json!({ "name": "summarize_note" })).await;
    assert_eq!(e["code"], -32602);
    let e = error(&mut s, "prompts/get", json!({ "name": "summarize_note", "arguments": { "title": "ghost" } })).await;
    assert_eq!(e["code"], -32602);
}

#[tokio::test]
async fn pagination_uses_offset_cursors() {
    let mut s = server("notes");
    for i in 0..58 {
        call_tool(&mut s, "add_note", json!({ "title": format!("n{i:02}"), "body": "" })).await;
    }
    let first = result(&mut s, "resources/list", json!({})).await;
    assert_eq!(first["resources"].as_array().unwrap().len(), 50);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = result(&mut s, "resources/list", json!({ "cursor": cursor })).await;
    assert_eq!(second["resources"].as_array().unwrap().len(), 10);
    assert!(second.get("nextCursor").is_none());
    let e = error(&mut s, "resources/list", json!({ "cursor": "bogus" })).await;
    assert_eq!(e["code"], -32602);
}

#[tokio::test]
async fn clock_echo_is_exact() {
    let mut s = server("clock");
    let text = "héllo wörld 🌍👩‍👩‍👧 \"quoted\" \\ back\nnew\tline \u{0} 日本語 \u{200b}";
    let r = call_tool(&mut s, "echo", json!({ "text": text })).await;
    assert_eq!(text_of(&r), text);
    assert_eq!(r["content"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn clock_add_and_now() {
    let mut s = server("clock");
    let r = call_tool(&mut s, "add", json!({ "a": 2, "b": 3 })).await;
    assert_eq!(text_of(&r), "5");
    assert_eq!(r["structuredContent"], json!({ "sum": 5 }));
    let r = call_tool(&mut s, "add", json!({ "a": 0.5, "b": -2 })).await;
    assert_eq!(r["structuredContent"]["sum"], -1.5);
    let r = call_tool(&mut s, "add", json!({ "a": i64::MAX, "b": 1 })).await;
    assert!(r["structuredContent"]["sum"].is_f64());
    let r = call_tool(&mut s, "add", json!({ "a": 1e308, "b": 1e308 })).await;
    assert_eq!(r["isError"], true);

    let r = call_tool(&mut s, "now", json!({})).await;
    let utc = text_of(&r);
    assert_eq!(utc.len(), 20, "{utc}");
    assert!(utc.ends_with('Z'));
    let r = call_tool(&mut s, "now", json!({ "timezone_offset_minutes": 330 })).await;
    assert!(text_of(&r).ends_with("+05:30"), "{}", text_of(&r));
    let r = call_tool(&mut s, "now", json!({ "timezone_offset_minutes": -90 })).await;
    assert!(text_of(&r).ends_with("-01:30"));
}

#[tokio::test]
async fn clock_fail_is_a_protocol_error() {
    let mut s = server("clock");
    let e = error(&mut s, "tools/call", json!({ "name": "fail", "arguments": {} })).await;
    assert_eq!(e, json!({ "code": -32603, "message": "demo failure requested" }));
}

#[tokio::test]
async fn clock_resources_and_prompt() {
    let mut s = server("clock");
    let r = result(&mut s, "resources/list", json!({})).await;
    assert_eq!(r["resources"][0]["uri"], "clock://uptime");
    let r = result(&mut s, "resources/read", json!({ "uri": "clock://uptime" })).await;
    r["contents"][0]["text"].as_str().unwrap().parse::<u64>().unwrap();
    let r = result(&mut s, "resources/read", json!({ "uri": "clock://timezones/-300" })).await;
    assert!(r["contents"][0]["text"].as_str().unwrap().ends_with("-05:00"));
    let e = error(&mut s, "resources/read", json!({ "uri": "clock://timezones/abc" })).await;
    assert_eq!(e["code"], -32002);
    let r = result(&mut s, "resources/templates/list", json!({})).await;
    assert_eq!(r["resourceTemplates"][0]["uriTemplate"], "clock://timezones/{offset}");

    let r = result(&mut s, "prompts/get", json!({ "name": "plan_day", "arguments": { "focus": "deep work" } })).await;
    assert_eq!(r["messages"][0]["role"], "user");
    assert!(r["messages"][0]["content"]["text"].as_str().unwrap().contains("deep work"));
    let r = result(&mut s, "prompts/get", json!({ "name": "plan_day" })).await;
    assert_eq!(r["messages"][0]["content"]["type"], "text");

    let r = result(
        &mut s,
        "completion/complete",
        json!({ "ref": { "type": "ref/resource", "uri": "clock://timezones/{offset}" }, "argument": { "name": "offset", "value": "-4" } }),
    )
    .await;
    assert_eq!(r["completion"]["values"], json!(["-480", "-420"]));
}

#[tokio::test]
async fn sleep_streams_progress_before_the_response() {
    let mut s = server("clock");
    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "id": 11, "method": "tools/call",
                "params": { "name": "sleep", "arguments": { "ms": 50 }, "_meta": { "progressToken": "tok" } } }),
    )
    .await;
    let (response, progress) = out.split_last().unwrap();
    assert_eq!(response["id"], 11);
    assert_eq!(text_of(&response["result"]), "Slept 50 ms.");
    assert!(!progress.is_empty());
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(p["method"], "notifications/progress");
        assert_eq!(p["params"]["progressToken"], "tok");
        assert_eq!(p["params"]["progress"], i + 1);
        assert_eq!(p["params"]["total"], 10);
        assert!(p["params"]["message"].is_string());
    }

    // Without a token: just the response.
    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": { "name": "sleep", "arguments": { "ms": 0 } } }),
    )
    .await;
    assert_eq!(out.len(), 1);
}

#[tokio::test]
async fn cancelled_sleep_sends_no_response() {
    let s = server("clock");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut sleeper = s.clone();
    let sleep_tx = tx.clone();
    let task = tokio::spawn(async move {
        sleeper
            .handle(
                json!({ "jsonrpc": "2.0", "id": "slow", "method": "tools/call",
                        "params": { "name": "sleep", "arguments": { "ms": 30_000 }, "_meta": { "progressToken": 1 } } }),
                &sleep_tx,
            )
            .await;
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut canceller = s.clone();
    canceller
        .handle(
            json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "slow", "reason": "test" } }),
            &tx,
        )
        .await;
    timeout(BOUND, task).await.expect("cancelled sleep did not stop").unwrap();
    drop(tx);
    while let Some(msg) = rx.recv().await {
        assert!(msg.get("id").is_none(), "a cancelled request was answered: {msg}");
    }
    assert!(lock(&s.shared.in_flight).is_empty());
}

#[tokio::test]
async fn cancelling_an_unknown_request_is_harmless() {
    let mut s = server("clock");
    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 99 } }),
    )
    .await;
    assert!(out.is_empty());
    // A number id 7 and a string id "7" are different requests.
    let out = exchange(&mut s, json!({ "jsonrpc": "2.0", "id": 7, "method": "ping" })).await;
    assert_eq!(out.len(), 1);
}

/// Drives `serve_io` over an in-memory pipe, like `run_stdio` over stdin/stdout.
#[tokio::test]
async fn serve_io_round_trip() {
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let (server_read, server_write) = tokio::io::split(server_side);
    let serving = tokio::spawn(serve_io(server("clock"), server_read, server_write));
    let (client_read, mut client_write) = tokio::io::split(client);
    let mut lines = BufReader::new(client_read).lines();

    let input = concat!(
        "{not json\n",
        "\n",
        "   \r\n",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":400}}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"line1\nline2 ✓"}}}"#,
        "\r\n",
    );
    client_write.write_all(input.as_bytes()).await.unwrap();

    let mut next = async || -> Value {
        let line = timeout(BOUND, lines.next_line()).await.expect("no output").unwrap().expect("eof");
        serde_json::from_str(&line).unwrap()
    };
    let parse_error = next().await;
    assert_eq!(parse_error["error"]["code"], -32700);
    assert_eq!(parse_error["id"], Value::Null);
    // The echo sent after the sleep is answered first.
    let echo = next().await;
    assert_eq!(echo["id"], 2);
    assert_eq!(echo["result"]["content"][0]["text"], "line1\nline2 ✓");
    let slept = next().await;
    assert_eq!(slept["id"], 1);

    // A final line without a newline is still served; then EOF ends the server cleanly.
    client_write.write_all(br#"{"jsonrpc":"2.0","id":"last","method":"ping"}"#).await.unwrap();
    client_write.shutdown().await.unwrap();
    let last = next().await;
    assert_eq!(last["id"], "last");
    timeout(BOUND, serving).await.expect("server did not stop at EOF").unwrap().unwrap();
}

#[tokio::test]
async fn serve_io_stops_at_eof_with_a_sleep_running() {
    let (client, server_side) = tokio::io::duplex(4096);
    let (server_read, server_write) = tokio::io::split(server_side);
    let serving = tokio::spawn(serve_io(server("clock"), server_read, server_write));
    let (_client_read, mut client_write) = tokio::io::split(client);
    client_write
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"sleep\",\"arguments\":{\"ms\":60000}}}\n")
        .await
        .unwrap();
    client_write.shutdown().await.unwrap();
    timeout(BOUND, serving).await.expect("server did not stop at EOF").unwrap().unwrap();
}

#[test]
fn rfc3339_formatting() {
    assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(1_700_000_000, 330), "2023-11-15T03:43:20+05:30");
    assert_eq!(rfc3339(1_700_000_000, -600), "2023-11-14T12:13:20-10:00");
    assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59Z");
    assert_eq!(rfc3339(4_107_542_399, 0), "2100-02-28T23:59:59Z");
    assert_eq!(rfc3339(4_107_542_400, 0), "2100-03-01T00:00:00Z");
}

#[test]
fn percent_encoding_round_trips() {
    assert_eq!(percent_encode("a b/c%é~_.-"), "a%20b%2Fc%25%C3%A9~_.-");
    for s in ["", "plain", "a b/c?d#e%f", "日本語 🌍", "100%"] {
        assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
    }
    assert_eq!(percent_decode("%4"), None);
    assert_eq!(percent_decode("%FF"), None);
    assert_eq!(percent_decode("my note").as_deref(), Some("my note"));
}

// ---- The `conformance` personality, and requests to the client. ----

/// A server that went through `initialize` with the client `capabilities`.
async fn initialized(personality: &str, capabilities: Value) -> DemoServer {
    let mut s = server(personality);
    let r = result(
        &mut s,
        "initialize",
        json!({ "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": { "name": "t", "version": "0" } }),
    )
    .await;
    assert_eq!(r["serverInfo"]["name"], format!("mcpmux-demo-{personality}"));
    s
}

/// Starts handling `msg` on a clone of `s` on its own task: what it sends arrives on the
/// receiver, which closes once the request is finished.
fn start(s: &DemoServer, msg: Value) -> (mpsc::UnboundedReceiver<Value>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut clone = s.clone();
    let task = tokio::spawn(async move { clone.handle(msg, &tx).await });
    (rx, task)
}

fn start_call(
    s: &DemoServer,
    id: Value,
    tool: &str,
    arguments: Value,
) -> (mpsc::UnboundedReceiver<Value>, tokio::task::JoinHandle<()>) {
    start(
        s,
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": arguments } }),
    )
}

/// The next message sent, or `None` once the request finished.
async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Option<Value> {
    timeout(BOUND, rx.recv()).await.expect("no message within the bound")
}

/// Feeds a client response to the server; it must send nothing in reply.
async fn respond(s: &DemoServer, response: Value) {
    let mut clone = s.clone();
    assert!(exchange(&mut clone, response).await.is_empty());
}

const CONFORMANCE_TOOLS: [&str; 24] = [
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "json_schema_2020_12_tool",
    "test_reconnection",
    "update_watched_resource",
    // 2026-07-28 scenarios, asked the session-era way.
    "test_missing_capability",
    "test_streaming_elicitation",
    "test_logging_tool",
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_multi_round",
    "test_input_required_result_request_state",
    "test_input_required_result_tampered_state",
];

#[tokio::test]
async fn conformance_lists_what_the_suite_asks_for() {
    let mut s = server("conformance");
    let r = result(&mut s, "initialize", json!({})).await;
    assert_eq!(r["capabilities"]["resources"]["subscribe"], true);
    for capability in ["tools", "prompts", "completions", "logging"] {
        assert!(r["capabilities"][capability].is_object(), "missing {capability}");
    }

    let tools = result(&mut s, "tools/list", json!({})).await;
    assert_eq!(names(&tools, "tools"), CONFORMANCE_TOOLS);
    for tool in tools["tools"].as_array().unwrap() {
        assert!(tool["description"].as_str().is_some_and(|d| !d.is_empty()), "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    let schema = &tools["tools"][12]["inputSchema"];
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["$defs"]["address"]["properties"]["city"]["type"], "string");
    assert_eq!(schema["properties"]["address"]["$ref"], "#/$defs/address");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(tools["tools"][8]["inputSchema"]["required"], json!(["prompt"]));
    assert_eq!(tools["tools"][9]["inputSchema"]["required"], json!(["message"]));

    let resources = result(&mut s, "resources/list", json!({})).await;
    let uris: Vec<&str> =
        resources["resources"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["test://static-text", "test://static-binary", "test://watched-resource"]);
    for resource in resources["resources"].as_array().unwrap() {
        for field in ["name", "description", "mimeType"] {
            assert!(resource[field].is_string(), "{field} in {resource}");
        }
    }
    let templates = result(&mut s, "resources/templates/list", json!({})).await;
    assert_eq!(templates["resourceTemplates"][0]["uriTemplate"], "test://template/{id}/data");

    let prompts = result(&mut s, "prompts/list", json!({})).await;
    assert_eq!(
        names(&prompts, "prompts"),
        [
            "test_simple_prompt",
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image"
        ]
    );
    assert!(prompts["prompts"].as_array().unwrap().iter().all(|p| p["description"].is_string()));
    assert_eq!(prompts["prompts"][1]["arguments"][1]["name"], "arg2");
}

#[tokio::test]
async fn conformance_content_tools() {
    let mut s = server("conformance");
    let r = call_tool(&mut s, "test_simple_text", json!({})).await;
    assert_eq!(r, json!({ "content": [{ "type": "text", "text": "This is a simple text response for testing." }] }));

    let r = call_tool(&mut s, "test_image_content", json!({})).await;
    assert_eq!(r["content"][0]["type"], "image");
    assert_eq!(r["content"][0]["mimeType"], "image/png");
    // Base64 of the PNG signature.
    assert!(r["content"][0]["data"].as_str().unwrap().starts_with("iVBORw0KGgo"));

    let r = call_tool(&mut s, "test_audio_content", json!({})).await;
    assert_eq!(r["content"][0]["type"], "audio");
    assert_eq!(r["content"][0]["mimeType"], "audio/wav");
    // Base64 of "RIFF".
    assert!(r["content"][0]["data"].as_str().unwrap().starts_with("UklGR"));

    let r = call_tool(&mut s, "test_embedded_resource", json!({})).await;
    assert_eq!(
        r["content"][0]["resource"],
        json!({ "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content." })
    );

    let r = call_tool(&mut s, "test_multiple_content_types", json!({})).await;
    let types: Vec<&str> = r["content"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["text", "image", "resource"]);
    let embedded: Value = serde_json::from_str(r["content"][2]["resource"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(embedded, json!({ "test": "data", "value": 123 }));

    let r = call_tool(&mut s, "test_error_handling", json!({})).await;
    assert_eq!(r["isError"], true);
    assert_eq!(text_of(&r), "This tool intentionally returns an error for testing");

    let r = call_tool(&mut s, "json_schema_2020_12_tool", json!({ "name": "n" })).await;
    assert!(text_of(&r).contains("\"name\":\"n\""));
    let e = error(&mut s, "tools/call", json!({ "name": "test_nothing" })).await;
    assert_eq!(e["code"], -32602);
}

#[tokio::test]
async fn conformance_logging_tool_logs_three_times_once_a_level_is_set() {
    let mut s = server("conformance");
    let call =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "test_tool_with_logging" } });
    assert_eq!(exchange(&mut s, call.clone()).await.len(), 1, "no logs before logging/setLevel");

    result(&mut s, "logging/setLevel", json!({ "level": "debug" })).await;
    let out = exchange(&mut s, call.clone()).await;
    let (response, logs) = out.split_last().unwrap();
    assert_eq!(text_of(&response["result"]), "Tool with logging executed successfully");
    let data: Vec<&str> = logs
        .iter()
        .map(|m| {
            assert_eq!(m["method"], "notifications/message");
            assert_eq!(m["params"]["level"], "info");
            m["params"]["data"].as_str().unwrap()
        })
        .collect();
    assert_eq!(data, ["Tool execution started", "Tool processing data", "Tool execution completed"]);

    result(&mut s, "logging/setLevel", json!({ "level": "warning" })).await;
    assert_eq!(exchange(&mut s, call).await.len(), 1, "info logs are below warning");
}

#[tokio::test]
async fn conformance_progress_tool_reports_0_50_100_with_a_token() {
    let mut s = server("conformance");
    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": "test_tool_with_progress", "arguments": {}, "_meta": { "progressToken": "progress-test-1" } } }),
    )
    .await;
    let (response, progress) = out.split_last().unwrap();
    assert_eq!(response["id"], 1);
    let values: Vec<u64> = progress
        .iter()
        .map(|p| {
            assert_eq!(p["method"], "notifications/progress");
            assert_eq!(p["params"]["progressToken"], "progress-test-1");
            assert_eq!(p["params"]["total"], 100);
            p["params"]["progress"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(values, [0, 50, 100]);

    let out = exchange(
        &mut s,
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "test_tool_with_progress" } }),
    )
    .await;
    assert_eq!(out.len(), 1, "no progress without a token: {out:?}");
}

#[tokio::test]
async fn conformance_sampling_asks_the_client_and_returns_its_answer() {
    let s = initialized("conformance", json!({ "sampling": {}, "elicitation": {} })).await;
    let (mut rx, task) = start_call(&s, json!("call-1"), "test_sampling", json!({ "prompt": "Say hi" }));
    let request = next(&mut rx).await.unwrap();
    assert_eq!(request["jsonrpc"], "2.0");
    assert_eq!(request["method"], "sampling/createMessage");
    assert_eq!(
        request["params"],
        json!({ "messages": [{ "role": "user", "content": { "type": "text", "text": "Say hi" } }], "maxTokens": 100 })
    );
    let id = request["id"].clone();
    assert!(id.is_number(), "{request}");

    // A response to an id nobody waits for changes nothing.
    respond(&s, json!({ "jsonrpc": "2.0", "id": 999, "result": { "content": { "type": "text", "text": "stray" } } }))
        .await;
    respond(
        &s,
        json!({ "jsonrpc": "2.0", "id": id, "result": {
            "role": "assistant", "content": { "type": "text", "text": "hi there" }, "model": "m", "stopReason": "endTurn" } }),
    )
    .await;
    let response = next(&mut rx).await.unwrap();
    assert_eq!(response["id"], "call-1");
    assert_eq!(text_of(&response["result"]), "LLM response: hi there");
    assert!(response["result"].get("isError").is_none());
    assert!(next(&mut rx).await.is_none());
    timeout(BOUND, task).await.unwrap().unwrap();
    assert!(lock(&s.shared.outgoing).is_empty());

    // Each request of ours gets a new id; an error answer is a tool error.
    let (mut rx, _task) = start_call(&s, json!(2), "test_sampling", json!({ "prompt": "again" }));
    let request = next(&mut rx).await.unwrap();
    assert_ne!(request["id"], id);
    respond(
        &s,
        json!({ "jsonrpc": "2.0", "id": request["id"], "error": { "code": -1, "message": "User rejected sampling" } }),
    )
    .await;
    let response = next(&mut rx).await.unwrap();
    assert_eq!(response["result"]["isError"], true);
    assert!(text_of(&response["result"]).contains("User rejected sampling"), "{response}");
}

#[tokio::test]
async fn conformance_sampling_and_elicitation_need_the_client_capability() {
    let mut s = initialized("conformance", json!({})).await;
    for (tool, arguments) in [
        ("test_sampling", json!({ "prompt": "p" })),
        ("test_elicitation", json!({ "message": "m" })),
        ("test_elicitation_sep1034_defaults", json!({})),
    ] {
        let out = exchange(
            &mut s,
            json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": tool, "arguments": arguments } }),
        )
        .await;
        assert_eq!(out.len(), 1, "no request to the client: {out:?}");
        assert_eq!(out[0]["result"]["isError"], true);
        assert!(text_of(&out[0]["result"]).contains("does not support"), "{out:?}");
    }
    let e = error(&mut s, "tools/call", json!({ "name": "test_sampling", "arguments": {} })).await;
    assert_eq!(e["code"], -32602);
}

/// Runs an elicitation tool, answers its request with `content`, and returns the request's
/// params and the tool's text.
async fn elicitation(s: &DemoServer, tool: &str, arguments: Value, content: Value) -> (Value, String) {
    let (mut rx, task) = start_call(s, json!(5), tool, arguments);
    let request = next(&mut rx).await.unwrap();
    assert_eq!(request["method"], "elicitation/create");
    respond(s, json!({ "jsonrpc": "2.0", "id": request["id"], "result": { "action": "accept", "content": content } }))
        .await;
    let response = next(&mut rx).await.unwrap();
    assert_eq!(response["id"], 5);
    assert!(response["result"].get("isError").is_none(), "{response}");
    timeout(BOUND, task).await.unwrap().unwrap();
    (request["params"].clone(), text_of(&response["result"]).to_owned())
}

#[tokio::test]
async fn conformance_elicitation_tools() {
    let s = initialized("conformance", json!({ "elicitation": {} })).await;

    let answer = json!({ "username": "testuser", "email": "test@example.com" });
    let (params, text) = elicitation(&s, "test_elicitation", json!({ "message": "Who are you?" }), answer).await;
    assert_eq!(params["message"], "Who are you?");
    assert_eq!(params["requestedSchema"]["required"], json!(["username", "email"]));
    assert_eq!(text, r#"User response: action=accept, content={"username":"testuser","email":"test@example.com"}"#);

    let (params, text) =
        elicitation(&s, "test_elicitation_sep1034_defaults", json!({}), json!({ "name": "Jane" })).await;
    let props = &params["requestedSchema"]["properties"];
    assert_eq!(props["name"], json!({ "type": "string", "description": "User name", "default": "John Doe" }));
    assert_eq!((&props["age"]["type"], &props["age"]["default"]), (&json!("integer"), &json!(30)));
    assert_eq!((&props["score"]["type"], &props["score"]["default"]), (&json!("number"), &json!(95.5)));
    assert_eq!(props["status"]["enum"], json!(["active", "inactive", "pending"]));
    assert_eq!(props["status"]["default"], "active");
    assert_eq!((&props["verified"]["type"], &props["verified"]["default"]), (&json!("boolean"), &json!(true)));
    assert_eq!(text, r#"Elicitation completed: action=accept, content={"name":"Jane"}"#);

    let (params, _) = elicitation(&s, "test_elicitation_sep1330_enums", json!({}), json!({})).await;
    let props = &params["requestedSchema"]["properties"];
    assert_eq!(props["untitledSingle"]["enum"], json!(["option1", "option2", "option3"]));
    assert!(props["untitledSingle"].get("oneOf").is_none());
    assert_eq!(props["titledSingle"]["oneOf"][0], json!({ "const": "value1", "title": "First Option" }));
    assert!(props["titledSingle"].get("enum").is_none());
    assert_eq!(props["legacyEnum"]["enumNames"].as_array().unwrap().len(), 3);
    assert_eq!(props["untitledMulti"]["type"], "array");
    assert_eq!(props["untitledMulti"]["items"]["enum"], json!(["option1", "option2", "option3"]));
    assert_eq!(props["titledMulti"]["items"]["anyOf"][2], json!({ "const": "value3", "title": "Third Choice" }));
}

#[tokio::test]
async fn a_request_to_the_client_times_out() {
    let s = DemoServer::with_client_request_timeout("conformance", Duration::from_millis(100)).unwrap();
    let mut init = s.clone();
    result(&mut init, "initialize", json!({ "capabilities": { "sampling": {} } })).await;
    let (mut rx, task) = start_call(&s, json!(1), "test_sampling", json!({ "prompt": "p" }));
    let request = next(&mut rx).await.unwrap();
    let cancelled = next(&mut rx).await.unwrap();
    assert_eq!(cancelled["method"], "notifications/cancelled");
    assert_eq!(cancelled["params"]["requestId"], request["id"]);
    let response = next(&mut rx).await.unwrap();
    assert_eq!(response["result"]["isError"], true);
    assert!(text_of(&response["result"]).contains("no response"), "{response}");
    timeout(BOUND, task).await.unwrap().unwrap();
    assert!(lock(&s.shared.outgoing).is_empty());
    // A late answer is dropped.
    respond(&s, json!({ "jsonrpc": "2.0", "id": request["id"], "result": {} })).await;
}

#[tokio::test]
async fn cancelling_a_call_that_waits_for_the_client_cancels_our_request() {
    let s = initialized("conformance", json!({ "elicitation": {} })).await;
    let (mut rx, task) = start_call(&s, json!("e"), "test_elicitation", json!({ "message": "m" }));
    let request = next(&mut rx).await.unwrap();
    let mut canceller = s.clone();
    let out = exchange(
        &mut canceller,
        json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "e" } }),
    )
    .await;
    assert!(out.is_empty());
    let cancelled = next(&mut rx).await.unwrap();
    assert_eq!(cancelled["method"], "notifications/cancelled");
    assert_eq!(cancelled["params"]["requestId"], request["id"]);
    assert!(next(&mut rx).await.is_none(), "a cancelled request was answered");
    timeout(BOUND, task).await.unwrap().unwrap();
    assert!(lock(&s.shared.outgoing).is_empty());
    assert!(lock(&s.shared.in_flight).is_empty());
}

#[tokio::test]
async fn conformance_resources_and_subscriptions() {
    let mut s = server("conformance");
    let r = result(&mut s, "resources/read", json!({ "uri": "test://static-text" })).await;
    assert_eq!(
        r,
        json!({ "contents": [{ "uri": "test://static-text", "mimeType": "text/plain",
                               "text": "This is the content of the static text resource." }] })
    );
    let r = result(&mut s, "resources/read", json!({ "uri": "test://static-binary" })).await;
    assert_eq!(r["contents"][0]["mimeType"], "image/png");
    assert!(r["contents"][0]["blob"].as_str().unwrap().starts_with("iVBORw0KGgo"));
    let r = result(&mut s, "resources/read", json!({ "uri": "test://template/123/data" })).await;
    assert_eq!(r["contents"][0]["uri"], "test://template/123/data");
    assert_eq!(r["contents"][0]["mimeType"], "application/json");
    let data: Value = serde_json::from_str(r["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({ "id": "123", "templateTest": true, "data": "Data for ID: 123" }));
    for uri in ["test://template//data", "test://template/1/2/data", "test://nothing"] {
        let e = error(&mut s, "resources/read", json!({ "uri": uri })).await;
        assert_eq!(e["code"], -32002, "{uri}");
    }

    let update =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "update_watched_resource" } });
    assert_eq!(exchange(&mut s, update.clone()).await.len(), 1, "no notification without a subscription");
    assert_eq!(result(&mut s, "resources/subscribe", json!({ "uri": "test://watched-resource" })).await, json!({}));
    let observer = s.clone();
    let Personality::Conformance(conformance) = &observer.shared.personality else { unreachable!() };
    assert!(conformance.is_subscribed("test://watched-resource"));
    let out = exchange(&mut s, update.clone()).await;
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        json!({ "jsonrpc": "2.0", "method": "notifications/resources/updated", "params": { "uri": "test://watched-resource" } })
    );
    let r = result(&mut s, "resources/read", json!({ "uri": "test://watched-resource" })).await;
    assert!(r["contents"][0]["text"].as_str().unwrap().ends_with("version 2"));
    assert_eq!(result(&mut s, "resources/unsubscribe", json!({ "uri": "test://watched-resource" })).await, json!({}));
    assert!(!conformance.is_subscribed("test://watched-resource"));
    assert_eq!(exchange(&mut s, update).await.len(), 1);

    let e = error(&mut s, "resources/subscribe", json!({ "uri": "test://nothing" })).await;
    assert_eq!(e["code"], -32002);
    let e = error(&mut s, "resources/subscribe", json!({})).await;
    assert_eq!(e["code"], -32602);
    // The other personalities do not offer subscriptions.
    let mut notes = server("notes");
    let e = error(&mut notes, "resources/subscribe", json!({ "uri": "note://notes/welcome" })).await;
    assert_eq!(e["code"], -32601);
}

#[tokio::test]
async fn conformance_prompts_and_completion() {
    let mut s = server("conformance");
    let r = result(&mut s, "prompts/get", json!({ "name": "test_simple_prompt" })).await;
    assert_eq!(
        r["messages"],
        json!([{ "role": "user", "content": { "type": "text", "text": "This is a simple prompt for testing." } }])
    );
    let r = result(
        &mut s,
        "prompts/get",
        json!({ "name": "test_prompt_with_arguments", "arguments": { "arg1": "hello", "arg2": "world" } }),
    )
    .await;
    assert_eq!(r["messages"][0]["content"]["text"], "Prompt with arguments: arg1='hello', arg2='world'");
    let e = error(&mut s, "prompts/get", json!({ "name": "test_prompt_with_arguments", "arguments": { "arg1": "x" } }))
        .await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("arg2"));
    let r = result(
        &mut s,
        "prompts/get",
        json!({ "name": "test_prompt_with_embedded_resource", "arguments": { "resourceUri": "test://example-resource" } }),
    )
    .await;
    assert_eq!(r["messages"][0]["content"]["type"], "resource");
    assert_eq!(r["messages"][0]["content"]["resource"]["uri"], "test://example-resource");
    assert_eq!(r["messages"][1]["content"]["type"], "text");
    let r = result(&mut s, "prompts/get", json!({ "name": "test_prompt_with_image" })).await;
    assert_eq!(r["messages"][0]["content"]["type"], "image");
    assert_eq!(r["messages"][0]["content"]["mimeType"], "image/png");
    let e = error(&mut s, "prompts/get", json!({ "name": "nope" })).await;
    assert_eq!(e["code"], -32602);

    let r = result(
        &mut s,
        "completion/complete",
        json!({ "ref": { "type": "ref/prompt", "name": "test_prompt_with_arguments" }, "argument": { "name": "arg1", "value": "test" } }),
    )
    .await;
    assert_eq!(r, json!({ "completion": { "values": ["test", "testing", "tests"], "total": 3, "hasMore": false } }));
    let r = result(
        &mut s,
        "completion/complete",
        json!({ "ref": { "type": "ref/resource", "uri": "test://template/{id}/data" }, "argument": { "name": "id", "value": "" } }),
    )
    .await;
    assert_eq!(r["completion"]["values"], json!([]));
    let e = error(
        &mut s,
        "completion/complete",
        json!({ "ref": { "type": "ref/prompt", "name": "nope" }, "argument": { "name": "a", "value": "" } }),
    )
    .await;
    assert_eq!(e["code"], -32602);
}

/// Over `serve_io`, a tool waiting for the client's response does not hold up the loop that
/// reads that response.
#[tokio::test]
async fn serve_io_delivers_client_responses_to_a_waiting_tool() {
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let (server_read, server_write) = tokio::io::split(server_side);
    let serving = tokio::spawn(serve_io(server("conformance"), server_read, server_write));
    let (client_read, mut client_write) = tokio::io::split(client);
    let mut lines = BufReader::new(client_read).lines();
    let mut next_line = async || -> Value {
        let line = timeout(BOUND, lines.next_line()).await.expect("no output").unwrap().expect("eof");
        serde_json::from_str(&line).unwrap()
    };

    let mut send = async |msg: Value| {
        client_write.write_all(format!("{msg}\n").as_bytes()).await.unwrap();
    };
    send(
        json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": { "capabilities": { "sampling": {} } } }),
    )
    .await;
    assert_eq!(next_line().await["id"], 0);
    send(json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                 "params": { "name": "test_sampling", "arguments": { "prompt": "p" } } }))
    .await;
    let request = next_line().await;
    assert_eq!(request["method"], "sampling/createMessage");
    // Other requests are served while the tool waits.
    send(json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" })).await;
    assert_eq!(next_line().await, json!({ "jsonrpc": "2.0", "id": 2, "result": {} }));
    send(json!({ "jsonrpc": "2.0", "id": request["id"], "result": { "content": { "type": "text", "text": "pong" } } }))
        .await;
    let response = next_line().await;
    assert_eq!(response["id"], 1);
    assert_eq!(response["result"]["content"][0]["text"], "LLM response: pong");

    client_write.shutdown().await.unwrap();
    timeout(BOUND, serving).await.expect("server did not stop at EOF").unwrap().unwrap();
}
