//! The merged view of the built-in demo backends: namespaced lists, routing, URI rewriting,
//! pagination, the per-backend endpoint and merged instructions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Daemon, demo, text_of};
use serde_json::json;

async fn two_demos(extra: serde_json::Value) -> Daemon {
    let mut doc = json!({"mcpServers": {"notes": demo("notes"), "clock": demo("clock")}});
    if let Some(settings) = extra.as_object() {
        doc["mcpmux"] = json!(settings);
    }
    Daemon::start(doc).await
}

#[tokio::test]
async fn lists_are_namespaced_and_calls_reach_the_right_backend() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = two_demos(json!({})).await;
        let mut c = d.client().await;
        let names = c.tool_names().await;
        for expected in ["clock_echo", "clock_add", "clock_now", "notes_add_note", "notes_list_notes"] {
            assert!(names.contains(&expected.to_owned()), "{expected} missing from {names:?}");
        }
        assert!(names.iter().all(|n| n.starts_with("clock_") || n.starts_with("notes_")), "{names:?}");

        let r = c.call("clock_echo", json!({"text": "ünïcode ✓"})).await;
        assert_eq!(text_of(&r), "ünïcode ✓");
        let r = c.call("clock_add", json!({"a": 2, "b": 40})).await;
        assert_eq!(r["structuredContent"]["sum"].as_f64(), Some(42.0));
        assert!(text_of(&r).contains("42"), "{r}");
        let r = c.call("notes_add_note", json!({"title": "gw", "body": "via mcpmux"})).await;
        assert!(text_of(&r).contains("gw"), "{r}");

        // Tool errors and protocol errors come back as the backend wrote them.
        let r = c.call("notes_delete_note", json!({"title": "absent"})).await;
        assert_eq!(r["isError"], true);
        let e = c.request("tools/call", json!({"name": "clock_fail", "arguments": {}})).await;
        assert_eq!(e.error()["code"], -32603);
        assert_eq!(e.error()["message"], "demo failure requested");

        // An unknown tool is the client's error, named.
        let e = c.request("tools/call", json!({"name": "nope_tool", "arguments": {}})).await;
        assert_eq!(e.error()["code"], -32602);
        assert!(e.error()["message"].as_str().unwrap().contains("nope_tool"));
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn resources_templates_prompts_and_completion_route_back() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = two_demos(json!({})).await;
        let mut c = d.client().await;
        let resources = c.list_all("resources/list", "resources").await;
        let uris: Vec<&str> = resources.iter().map(|r| r["uri"].as_str().unwrap()).collect();
        assert!(uris.contains(&"mcpmux://notes/note://notes/welcome"), "{uris:?}");
        assert!(uris.contains(&"mcpmux://clock/clock://uptime"), "{uris:?}");

        let read = c.request("resources/read", json!({"uri": "mcpmux://notes/note://notes/welcome"})).await;
        let content = &read.result()["contents"][0];
        assert_eq!(content["uri"], "mcpmux://notes/note://notes/welcome");
        assert!(content["text"].as_str().unwrap().contains("Welcome"));

        // A URI that only a template matches: expand the rewritten template like a client would.
        let templates = c.list_all("resources/templates/list", "resourceTemplates").await;
        let tz = templates
            .iter()
            .map(|t| t["uriTemplate"].as_str().unwrap())
            .find(|t| t.contains("timezones"))
            .expect("clock template listed");
        assert_eq!(tz, "mcpmux://clock/clock://timezones/{offset}");
        let read = c.request("resources/read", json!({"uri": tz.replace("{offset}", "120")})).await;
        assert!(read.result()["contents"][0]["text"].as_str().unwrap().contains("+02:00"), "{:?}", read.result());

        // A backend's resource-not-found error passes through.
        let e = c.request("resources/read", json!({"uri": "mcpmux://notes/note://notes/absent"})).await;
        assert_eq!(e.error()["code"], -32002);
        // A URI no backend owns is mcpmux's resource-not-found.
        let e = c.request("resources/read", json!({"uri": "file:///etc/passwd"})).await;
        assert_eq!(e.error()["code"], -32002);

        // Prompts: the embedded resource's URI is rewritten so the client can read it back.
        let p = c.request("prompts/get", json!({"name": "notes_summarize_note", "arguments": {"title": "welcome"}})).await;
        let messages = p.result()["messages"].as_array().unwrap().clone();
        let embedded = messages.iter().find(|m| m["content"]["type"] == "resource").expect("embedded resource");
        assert_eq!(embedded["content"]["resource"]["uri"], "mcpmux://notes/note://notes/welcome");

        // Completion routes by the referenced prompt and by the referenced template.
        let comp = c
            .request("completion/complete", json!({"ref": {"type": "ref/prompt", "name": "notes_summarize_note"}, "argument": {"name": "title", "value": "we"}}))
            .await;
        assert_eq!(comp.result()["completion"]["values"], json!(["welcome"]));
        let comp = c
            .request("completion/complete", json!({"ref": {"type": "ref/resource", "uri": "mcpmux://notes/note://notes/{title}"}, "argument": {"name": "title", "value": "sh"}}))
            .await;
        assert_eq!(comp.result()["completion"]["values"], json!(["shopping"]));
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pages_instructions_and_the_per_backend_endpoint() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = two_demos(json!({"pageSize": 2})).await;
        let mut c = d.client().await;
        let first = c.request("tools/list", json!({})).await;
        assert_eq!(first.result()["tools"].as_array().unwrap().len(), 2);
        assert!(first.result()["nextCursor"].is_string());
        assert_eq!(c.tool_names().await.len(), 9, "all pages together hold every tool");
        let e = c.request("tools/list", json!({"cursor": "not-a-cursor"})).await;
        assert_eq!(e.error()["code"], -32602);

        let instructions = c.init_result["instructions"].as_str().unwrap();
        assert!(instructions.contains("## clock") && instructions.contains("## notes"), "{instructions}");
        assert_eq!(c.init_result["serverInfo"]["name"], "mcpmux");

        // The un-prefixed endpoint shows one backend exactly as it is.
        let mut solo = common::Client::connect(&d.url("/servers/notes/mcp")).await;
        assert_eq!(solo.init_result["serverInfo"]["name"], "mcpmux-demo-notes");
        let names = solo.tool_names().await;
        assert!(names.contains(&"add_note".to_owned()) && !names.iter().any(|n| n.starts_with("clock")), "{names:?}");
        let read = solo.request("resources/read", json!({"uri": "note://notes/welcome"})).await;
        assert_eq!(read.result()["contents"][0]["uri"], "note://notes/welcome");

        // A session belongs to its endpoint.
        let mut wrong = common::Client::connect(&d.url("/servers/clock/mcp")).await;
        wrong.session = c.session.clone();
        let r = wrong.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await;
        assert_eq!(r.status, 404);
        let r = reqwest::get(d.url("/servers/nope/mcp")).await.unwrap();
        assert_eq!(r.status(), 404);
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn list_changes_reach_open_streams_and_progress_streams_before_the_result() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = two_demos(json!({})).await;
        let mut c = d.client().await;
        let get = c
            .http
            .get(&c.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", c.session.clone().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200);
        let mut stream = get;
        // Adding a note makes the backend announce a resource list change; mcpmux re-lists and
        // tells the session on its GET stream.
        c.call("notes_add_note", json!({"title": "fresh", "body": "x"})).await;
        let mut seen = String::new();
        while !seen.contains("notifications/resources/list_changed") {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let resources = c.list_all("resources/list", "resources").await;
        assert!(resources.iter().any(|r| r["uri"] == "mcpmux://notes/note://notes/fresh"));

        let reply = c
            .request(
                "tools/call",
                json!({"name": "clock_sleep", "arguments": {"ms": 200}, "_meta": {"progressToken": "tok-7"}}),
            )
            .await;
        assert_eq!(reply.content_type, "text/event-stream");
        let progress: Vec<_> = reply.messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
        assert!(!progress.is_empty(), "{:?}", reply.messages);
        assert!(progress.iter().all(|p| p["params"]["progressToken"] == "tok-7"), "the client's own token comes back");
        assert!(reply.messages.last().unwrap().get("result").is_some(), "the result comes last");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}
