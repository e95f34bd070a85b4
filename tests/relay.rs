//! Everything besides plain calls reaches the right client: backend requests (sampling,
//! elicitation, roots), progress, cancellation, logs and resource subscriptions — driven by the
//! official Python SDK client against server-everything behind mcpmux.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, demo, server_everything};
use serde_json::{Value, json};

fn everything(isolation: Option<&str>) -> Value {
    let (node, args) = server_everything();
    let mut entry = json!({"command": node, "args": [args[0], "stdio"]});
    if let Some(i) = isolation {
        entry["isolation"] = json!(i);
    }
    entry
}

/// Runs the Python relay client as `name` with `scenarios`; returns what it printed.
async fn python_client(url: &str, name: &str, scenarios: &[&str]) -> Value {
    let args: Vec<&str> = [url, name].into_iter().chain(scenarios.iter().copied()).collect();
    common::python_json("python_relay_client.py", &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_gets_every_kind_of_relayed_message() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let d = Daemon::start(json!({"mcpServers": {"everything": everything(None)}})).await;
        let out = python_client(
            &d.url("/mcp"),
            "alice",
            &["sampling", "elicitation", "roots", "progress", "cancel", "logging", "subscribe"],
        )
        .await;
        let tools: Vec<&str> = out["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        for capability_gated in [
            "everything_trigger-sampling-request",
            "everything_trigger-elicitation-request",
            "everything_get-roots-list",
        ] {
            assert!(tools.contains(&capability_gated), "mcpmux must offer backends what it can route back: {tools:?}");
        }
        assert_eq!(out["callbacks"], json!(["sampling", "elicitation", "roots"]));
        assert!(
            out["sampling"]
                .as_str()
                .unwrap()
                .contains("sampled by alice for: Resource trigger-sampling-request context: hello from alice"),
            "{}",
            out["sampling"]
        );
        assert!(out["elicitation"].as_str().unwrap().contains("alice@example.com"), "{}", out["elicitation"]);
        assert!(out["roots"].as_str().unwrap().contains("file:///roots/alice"), "{}", out["roots"]);
        assert_eq!(out["progress"]["steps"], json!([1.0, 2.0, 3.0, 4.0]));
        assert!(out["progress"]["result"].as_str().unwrap().contains("completed"));
        assert_eq!(out["cancel"]["result"], Value::Null, "a cancelled call gets no result");
        assert_eq!(out["cancel"]["pingAfter"], true);
        let log = &out["logging"][0];
        let logger = log["logger"].as_str().unwrap();
        assert!(
            logger == "everything" || logger.starts_with("everything/"),
            "logs are marked with their server: {log}"
        );
        assert_eq!(
            out["subscribe"]["updates"],
            json!([out["subscribe"]["subscribed"].as_str().unwrap()]),
            "updates arrive for the client-facing URI"
        );
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_session_isolation_each_client_answers_only_its_own_requests() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let d = Daemon::start(json!({"mcpServers": {"everything": everything(Some("session"))}})).await;
        let url = d.url("/mcp");
        let scenarios = ["sampling", "roots", "elicitation", "sampling"];
        let (a, b) = tokio::join!(python_client(&url, "alice", &scenarios), python_client(&url, "bob", &scenarios));
        for (me, other, out) in [("alice", "bob", &a), ("bob", "alice", &b)] {
            let text = format!("{} {} {}", out["sampling"], out["roots"], out["elicitation"]);
            assert!(text.contains(&format!("sampled by {me}")), "{me}: {text}");
            assert!(text.contains(&format!("file:///roots/{me}")), "{me}: {text}");
            assert!(!text.contains(other), "{me} saw {other}'s answers: {text}");
        }
        // Each session had its own child; they are closed when the sessions end.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = d.status().await;
            let b = &status["backends"][0];
            if b["sessionConnections"] == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "per-session connections were not closed: {b}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_client_without_the_capability_gets_the_backend_an_error_not_silence() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {"everything": everything(None)}})).await;
        // The harness client declares no capabilities.
        let mut c = d.client().await;
        let started = Instant::now();
        let reply = c
            .request(
                "tools/call",
                json!({"name": "everything_trigger-sampling-request", "arguments": {"prompt": "x", "maxTokens": 5}}),
            )
            .await;
        let text = reply.response().to_string();
        assert!(text.contains("sampling"), "the backend's failure names what was missing: {text}");
        assert!(started.elapsed() < Duration::from_secs(10), "answered at once, not after a timeout");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_cancelled_call_ends_its_stream_without_a_result() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock")}})).await;
        let c = d.client().await;
        let sid = c.session.clone().unwrap();
        let http = reqwest::Client::new();
        let started = Instant::now();
        let mut resp = http
            .post(d.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &sid)
            .body(json!({"jsonrpc": "2.0", "id": "long-1", "method": "tools/call",
                         "params": {"name": "clock_sleep", "arguments": {"ms": 20000}, "_meta": {"progressToken": 1}}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        // Wait for the first progress event, then cancel.
        let mut body = String::new();
        while !body.contains("notifications/progress") {
            let chunk = resp.chunk().await.unwrap().expect("stream ended before any progress");
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
        let cancel = http
            .post(d.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &sid)
            .body(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "long-1", "reason": "user"}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(cancel.status(), 202);
        while let Some(chunk) = resp.chunk().await.unwrap() {
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the stream ended soon after the cancellation");
        let messages = common::parse_sse(&body);
        assert!(messages.iter().all(|m| m.get("result").is_none() && m.get("error").is_none()), "no result after cancel: {messages:?}");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tasks_are_namespaced_per_backend_and_routed_back() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {"everything": everything(None)}})).await;
        let mut c = d.client().await;
        assert!(c.init_result["capabilities"]["tasks"]["requests"]["tools"]["call"].is_object(), "{}", c.init_result);
        let created = c
            .request(
                "tools/call",
                json!({"name": "everything_simulate-research-query", "arguments": {"topic": "gateways"}, "task": {"ttl": 60000}}),
            )
            .await;
        let task_id = created.result()["task"]["taskId"].as_str().unwrap().to_owned();
        assert!(task_id.starts_with("everything:"), "task ids carry the backend's prefix: {task_id}");

        let listed = c.request("tasks/list", json!({})).await;
        let ids: Vec<&str> = listed.result()["tasks"].as_array().unwrap().iter().map(|t| t["taskId"].as_str().unwrap()).collect();
        assert!(ids.contains(&task_id.as_str()), "{ids:?}");

        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let got = c.request("tasks/get", json!({"taskId": task_id})).await;
            let status = got.result()["status"].as_str().unwrap().to_owned();
            assert_eq!(got.result()["taskId"], json!(task_id));
            if status == "completed" {
                break;
            }
            assert!(status == "working", "unexpected status {status}");
            assert!(Instant::now() < deadline, "task did not complete");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let result = c.request("tasks/result", json!({"taskId": task_id})).await;
        assert!(common::text_of(result.result()).contains("Research Report: gateways"), "{:?}", result.result());

        let e = c.request("tasks/get", json!({"taskId": "nobody:123"})).await;
        assert_eq!(e.error()["code"], -32602);
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}
