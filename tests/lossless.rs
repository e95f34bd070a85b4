//! mcpmux passes what it does not understand through untouched, both ways.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Daemon, fixture};
use serde_json::json;

#[tokio::test]
async fn unknown_fields_survive_both_ways() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {"raw": {"command": "python3", "args": [fixture("raw_server.py")]}}})).await;
        let mut c = d.client().await;

        let tools = c.list_all("tools/list", "tools").await;
        assert_eq!(
            tools[0],
            json!({"name": "raw_probe", "title": "Probe", "description": "Echoes what it received",
                   "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}},
                   "outputSchema": {"type": "object"},
                   "icons": [{"src": "data:image/png;base64,AAAA", "mimeType": "image/png", "sizes": ["16x16"]}],
                   "_meta": {"vendor/flag": true}, "x-future": {"nested": [1, 2.5, "z"]}})
        );
        let resources = c.list_all("resources/list", "resources").await;
        assert_eq!(resources[0]["icons"], json!([{"src": "r.png"}]));
        assert_eq!(resources[0]["x-extra"], 1);

        // The request's unknown fields reach the backend (it echoes what it received) ...
        let sent = json!({"name": "raw_probe", "arguments": {"x": 1, "nested": {"deep": [true, null]}},
                          "_meta": {"client/trace": "t-1"}, "futureParam": "yes"});
        let raw = c
            .http
            .post(&c.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", c.session.clone().unwrap())
            .body(json!({"jsonrpc": "2.0", "id": "abc-1", "method": "tools/call", "params": sent}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 200);
        let body = raw.text().await.unwrap();
        // ... and the backend's result comes back byte for byte, odd number formatting included.
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "abc-1");
        let result = &v["result"];
        assert_eq!(result["structuredContent"]["received"], json!({"name": "probe", "arguments": {"x": 1, "nested": {"deep": [true, null]}}, "_meta": {"client/trace": "t-1"}, "futureParam": "yes"}));
        assert_eq!(result["structuredContent"]["big"].to_string(), "12345678901234567890");
        assert_eq!(result["content"][1], json!({"type": "hologram", "frames": [1, 2, 3], "_meta": {"depth": 1.5}}));
        assert_eq!(result["_meta"], json!({"trace": "abc"}));
        assert_eq!(result["futureTopLevel"], json!({"a": []}));
        // The resource link was rewritten (so the body was re-serialized); everything else kept.
        assert!(body.contains(r#""uri":"mcpmux://raw/raw://one""#), "{body}");

        // A backend error object (with its data) passes through as the backend wrote it.
        let e = c.request("prompts/get", json!({"name": "raw_nothing"})).await;
        assert_eq!(e.error()["code"], -32602);
        let solo_err = {
            let mut solo = common::Client::connect(&d.url("/servers/raw/mcp")).await;
            solo.request("custom/method", json!({"a": 1})).await.error().clone()
        };
        assert_eq!(solo_err, json!({"code": -32601, "message": "no custom/method", "data": {"extra": [1.5]}}));
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn results_without_uris_are_relayed_byte_for_byte() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d =
            Daemon::start(json!({"mcpServers": {"raw": {"command": "python3", "args": [fixture("raw_server.py")]}}}))
                .await;
        let c = common::Client::connect(&d.url("/servers/raw/mcp")).await;
        let body = c
            .http
            .post(&c.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", c.session.clone().unwrap())
            .body(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"probe"}}"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let expected = concat!(
            r#"{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"ok"},"#,
            r#"{"type":"hologram","frames":[1,2,3],"_meta":{"depth":1.50}},"#,
            r#"{"type":"resource_link","uri":"raw://one","name":"one"}],"#,
            r#""structuredContent":{"received":{"name":"probe"},"big":12345678901234567890,"small":1.50},"#,
            r#""isError":false,"_meta":{"trace":"abc"},"futureTopLevel":{"a":[]}}}"#
        );
        assert_eq!(body, expected);
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}
