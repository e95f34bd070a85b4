//! The public client API (`mcpmux::client`) against real servers: server-everything over stdio,
//! the built-in demo, FastMCP, and a running mcpmux. Shared connections and their end, the
//! handler (logs, progress, sampling, roots, refusal), raw and typed forms, and `MultiClient`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, demo};
use mcpmux::backend::ListKind;
use mcpmux::client::{
    Client, ClientError, ClientOptions, Handler, HandlerFuture, LogMessage, MultiClient, Progress, command_entry,
};
use serde_json::{Value, json};

fn everything() -> (String, Vec<String>) {
    common::server_everything()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records what it is given and answers sampling and roots.
#[derive(Default)]
struct Recorder {
    logs: Mutex<Vec<String>>,
    progress: Mutex<Vec<(f64, Option<f64>)>>,
    changed: Mutex<Vec<ListKind>>,
    sampled: Mutex<Vec<Value>>,
}

impl Handler for Recorder {
    fn on_log(&self, server: &str, message: &LogMessage) {
        self.logs.lock().unwrap().push(format!("{server} {} {}", message.level, message.text()));
    }
    fn on_progress(&self, _server: &str, progress: &Progress) {
        self.progress.lock().unwrap().push((progress.progress, progress.total));
    }
    fn on_list_changed(&self, _server: &str, kind: ListKind) {
        self.changed.lock().unwrap().push(kind);
    }
    fn create_message(&self, _server: &str, params: Value) -> HandlerFuture {
        self.sampled.lock().unwrap().push(params);
        Box::pin(async {
            Ok(
                json!({"role": "assistant", "content": {"type": "text", "text": "sampled by the test"}, "model": "test-model"}),
            )
        })
    }
    fn list_roots(&self, _server: &str) -> HandlerFuture {
        Box::pin(async { Ok(json!({"roots": [{"uri": "file:///srv/test-root", "name": "test-root"}]})) })
    }
}

#[tokio::test]
async fn clones_share_one_connection_and_the_last_drop_reaps_the_child() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (node, args) = everything();
        let client = Client::connect_command(&node, &args, ClientOptions::default()).await.unwrap();
        assert_eq!(client.transport(), "stdio");
        let pid = client.pid().unwrap();
        let clone = client.clone();
        assert_eq!(clone.pid(), Some(pid));
        drop(client);
        clone.ping().await.unwrap();
        assert!(common::process_alive(pid), "a clone still holds the connection");
        let sum = clone.call_tool("get-sum", json!({"a": 1, "b": 2})).await.unwrap();
        assert_eq!(sum.text(), "The sum of 1 and 2 is 3.");
        drop(clone);
        wait_until("the child is stopped and reaped", || !common::process_alive(pid)).await;

        // close() ends it for every clone at once.
        let client = Client::connect_command(&node, &args, ClientOptions::default()).await.unwrap();
        let pid = client.pid().unwrap();
        let other = client.clone();
        client.close().await;
        assert!(!common::process_alive(pid));
        assert!(other.is_closed());
        assert!(matches!(other.ping().await, Err(ClientError::Closed { .. })));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn typed_views_keep_the_raw_json_and_every_page_is_fetched() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (node, args) = everything();
        let client = Client::connect_command(&node, &args, ClientOptions::default()).await.unwrap();
        let tools = client.list_tools().await.unwrap();
        let raw = client.list_page(ListKind::Tools, None).await.unwrap();
        let mut all = raw["tools"].as_array().unwrap().clone();
        let mut cursor = raw.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
        while let Some(c) = cursor {
            let page = client.list_page(ListKind::Tools, Some(&c)).await.unwrap();
            all.extend(page["tools"].as_array().unwrap().iter().cloned());
            cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
        }
        assert_eq!(tools.iter().map(|t| t.raw().clone()).collect::<Vec<_>>(), all);
        let sum = tools.iter().find(|t| t.name() == "get-sum").unwrap();
        assert_eq!(sum.title(), Some("Get Sum Tool"));
        assert_eq!(sum.required_arguments(), vec!["a", "b"]);

        let resources = client.list_resources().await.unwrap();
        assert!(!resources.is_empty());
        let templates = client.list_resource_templates().await.unwrap();
        assert!(!templates.is_empty());
        let read = client.read_resource(resources[0].uri()).await.unwrap();
        assert!(!read.contents().is_empty());

        let prompts = client.list_prompts().await.unwrap();
        let args_prompt = prompts.iter().find(|p| p.name() == "args-prompt").unwrap();
        assert_eq!(args_prompt.required_arguments(), vec!["city"]);
        let got = client.get_prompt("args-prompt", json!({"city": "Oslo"})).await.unwrap();
        assert_eq!(got.messages()[0]["content"]["text"], "What's weather in Oslo?");

        let completion = client
            .complete(json!({"type": "ref/prompt", "name": "completable-prompt"}), "department", "E")
            .await
            .unwrap();
        assert_eq!(completion.values(), vec!["Engineering"]);

        let raw = client.call_tool_raw("get-sum", json!({"a": 2, "b": 2})).await.unwrap();
        assert_eq!(raw, json!({"content": [{"type": "text", "text": "The sum of 2 and 2 is 4."}]}));
        let err = client.request("no/such/method", None).await.unwrap_err();
        assert_eq!(err.rpc().unwrap().code, -32601, "{err}");
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn every_page_of_a_paged_list_is_fetched() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        // mcpmux itself serves pages of 2 here.
        let daemon = Daemon::start(json!({"mcpServers": {"clock": demo("clock")}, "mcpmux": {"pageSize": 2}})).await;
        let client = Client::connect_url(&daemon.url("/mcp"), ClientOptions::default()).await.unwrap();
        let first = client.list_page(ListKind::Tools, None).await.unwrap();
        assert_eq!(first["tools"].as_array().unwrap().len(), 2);
        assert!(first["nextCursor"].is_string());
        let tools = client.list_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
        assert_eq!(names, vec!["clock_now", "clock_add", "clock_echo", "clock_sleep", "clock_fail"]);
        client.close().await;
        daemon.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_handler_gets_progress_logs_and_answers_sampling_and_roots() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (node, args) = everything();
        let recorder = Arc::new(Recorder::default());
        let options = ClientOptions::default().handler(recorder.clone());
        let client = Client::connect(&command_entry("everything", &node, &args), options).await.unwrap();

        let done = client.call_tool("trigger-long-running-operation", json!({"duration": 0.3, "steps": 3})).await;
        assert!(!done.unwrap().is_error());
        assert_eq!(*recorder.progress.lock().unwrap(), vec![(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))]);

        let sampled = client.call_tool("trigger-sampling-request", json!({"prompt": "hi"})).await.unwrap();
        assert!(sampled.text().contains("sampled by the test"), "{}", sampled.text());
        assert_eq!(
            recorder.sampled.lock().unwrap()[0]["messages"][0]["content"]["text"],
            "Resource trigger-sampling-request context: hi"
        );

        let roots = client.call_tool("get-roots-list", json!({})).await.unwrap();
        assert!(roots.text().contains("file:///srv/test-root"), "{}", roots.text());

        client.set_log_level("debug").await.unwrap();
        client.call_tool("toggle-simulated-logging", json!({})).await.unwrap();
        wait_until("a log message", || !recorder.logs.lock().unwrap().is_empty()).await;
        assert!(recorder.logs.lock().unwrap()[0].starts_with("everything "));
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_default_handler_refuses_server_requests_with_a_clear_error() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (node, args) = everything();
        let client = Client::connect_command(&node, &args, ClientOptions::default()).await.unwrap();
        let outcome = client.call_tool("trigger-sampling-request", json!({"prompt": "hi"})).await;
        let text = match outcome {
            Ok(result) => {
                assert!(result.is_error(), "{:?}", result.raw());
                result.text()
            }
            Err(e) => e.to_string(),
        };
        assert!(text.contains("this client does not handle 'sampling/createMessage'"), "{text}");
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_declared_capabilities_are_what_servers_see() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (node, args) = everything();
        let plain = ClientOptions::default().capabilities(json!({}));
        let client = Client::connect_command(&node, &args, plain).await.unwrap();
        let names: Vec<String> = client.list_tools().await.unwrap().iter().map(|t| t.name().to_owned()).collect();
        assert!(names.contains(&"get-sum".to_owned()));
        assert!(!names.contains(&"trigger-sampling-request".to_owned()), "no sampling declared: {names:?}");
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn list_changes_reach_the_handler() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let recorder = Arc::new(Recorder::default());
        let options = ClientOptions::default().handler(recorder.clone());
        let client = Client::connect_command(common::mcpmux_exe(), &["demo", "notes"], options).await.unwrap();
        client.call_tool("add_note", json!({"title": "a", "body": "b"})).await.unwrap();
        wait_until("resources list_changed", || recorder.changed.lock().unwrap().contains(&ListKind::Resources)).await;
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_multi_client_names_like_the_daemon_it_matches() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let doc = json!({"mcpServers": {
            "notes": demo("notes"),
            "clock": demo("clock"),
            "fast": {"command": common::python(), "args": [common::fixture("fastmcp_server.py")]},
        }});
        let config = common::config(doc.clone());
        let multi = MultiClient::connect(&config, ClientOptions::default()).await;
        assert!(multi.failures().is_empty());
        let daemon = Daemon::start(doc).await;
        let via_daemon = Client::connect_url(&daemon.url("/mcp"), ClientOptions::default()).await.unwrap();
        assert_eq!(via_daemon.transport(), "streamable-http");

        let names = |tools: Vec<mcpmux::client::Tool>| tools.into_iter().map(|t| t.raw().clone()).collect::<Vec<_>>();
        assert_eq!(names(multi.list_tools()), names(via_daemon.list_tools().await.unwrap()));
        let uris = |r: Vec<mcpmux::client::Resource>| r.into_iter().map(|r| r.uri().to_owned()).collect::<Vec<_>>();
        assert_eq!(uris(multi.list_resources()), uris(via_daemon.list_resources().await.unwrap()));

        let direct = multi.call_tool("clock_add", json!({"a": 2, "b": 5})).await.unwrap();
        let relayed = via_daemon.call_tool("clock_add", json!({"a": 2, "b": 5})).await.unwrap();
        // The client speaks 2026-07-28 to mcpmux, which adds that era's `resultType` and its
        // identity in `_meta`; everything else is the backend's result, unchanged.
        let mut relayed_raw = relayed.raw().clone();
        assert_eq!(relayed_raw["resultType"], "complete");
        let obj = relayed_raw.as_object_mut().unwrap();
        obj.remove("resultType");
        let meta = obj.get_mut("_meta").and_then(|m| m.as_object_mut()).unwrap();
        meta.remove("io.modelcontextprotocol/serverInfo");
        if meta.is_empty() {
            obj.remove("_meta");
        }
        assert_eq!(direct.raw(), &relayed_raw);
        let read = multi.read_resource("mcpmux://fast/fast://greeting").await.unwrap();
        assert_eq!(read.contents()[0]["uri"], "mcpmux://fast/fast://greeting");
        assert_eq!(read.text(), "hello from fastmcp");
        assert!(matches!(multi.call_tool("nope", json!({})).await, Err(ClientError::NotFound { kind: "tool", .. })));

        let pids: Vec<u32> = multi.clients().values().filter_map(Client::pid).collect();
        assert_eq!(pids.len(), 3);
        multi.close().await;
        assert!(pids.iter().all(|p| !common::process_alive(*p)));
        via_daemon.close().await;
        daemon.stop().await.unwrap();
    })
    .await
    .unwrap();
}
