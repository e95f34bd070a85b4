//! mcpmux talking protocol 2026-07-28 (stateless: `server/discover`, per-request `_meta`,
//! `subscriptions/listen`, multi round-trip requests) to backends, against peers nobody here
//! wrote: the official Python SDK's MCPServer (tests/fixtures/modern_server.py) over stdio and
//! streamable HTTP, and its session-era client (tests/fixtures/python_modern_client.py).
//! Legacy backends (server-everything) must be detected as such without a start-up penalty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Daemon, fixture, python, server_everything, text_of};
use serde_json::{Value, json};

const MODERN: &str = "2026-07-28";

fn modern_stdio() -> Value {
    json!({"command": python().display().to_string(), "args": [fixture("modern_server.py")]})
}

fn everything(protocol: Option<&str>) -> Value {
    let (cmd, args) = server_everything();
    let mut v = json!({"command": cmd, "args": args});
    if let Some(p) = protocol {
        v["protocol"] = json!(p);
    }
    v
}

/// The rmcp example backend (`examples/rmcp_stdio_backend.rs`, Rust SDK 3.11, which serves
/// both eras), built next to this test binary; built here when missing or stale (plain
/// `cargo test` builds examples, `cargo test --test modern_backend` does not).
fn rmcp_backend_exe() -> std::path::PathBuf {
    let me = std::env::current_exe().unwrap();
    let profile_dir = me.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let exe = profile_dir.join("examples").join("rmcp_stdio_backend");
    let source = common::root().join("examples/rmcp_stdio_backend.rs");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if !matches!((modified(&exe), modified(&source)), (Some(b), Some(s)) if b >= s) {
        let mut build = std::process::Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet", "--example", "rmcp_stdio_backend", "--manifest-path"])
            .arg(common::root().join("Cargo.toml"));
        if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            build.arg("--release");
        }
        if let Some(target_dir) = profile_dir.parent() {
            build.arg("--target-dir").arg(target_dir);
        }
        let status = build.stdin(std::process::Stdio::null()).status().unwrap();
        assert!(status.success(), "cargo build --example rmcp_stdio_backend failed: {status}");
    }
    assert!(exe.exists(), "the rmcp example backend is missing at {}", exe.display());
    exe
}

/// The `/status` row of one backend.
async fn row(d: &Daemon, name: &str) -> Value {
    let status = d.status().await;
    status["backends"].as_array().unwrap().iter().find(|b| b["name"] == name).cloned().unwrap()
}

/// Runs the session-era Python client; returns what it printed.
async fn python_client(url: &str, prefix: &str, scenarios: &[&str]) -> Value {
    let args: Vec<&str> = [url, prefix].into_iter().chain(scenarios.iter().copied()).collect();
    common::python_json("python_modern_client.py", &args).await
}

/// The modern fixture serving streamable HTTP on a free port; killed on drop.
struct HttpFixture {
    child: tokio::process::Child,
    url: String,
}

impl HttpFixture {
    async fn start() -> HttpFixture {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(python())
            .arg(fixture("modern_server.py"))
            .arg("http")
            .arg(port.to_string())
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "the HTTP fixture did not start listening");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        HttpFixture { child, url: format!("http://127.0.0.1:{port}/mcp") }
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_stdio_backend_is_detected_and_a_legacy_one_is_not_slowed_down() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let d = Daemon::start(json!({"mcpServers": {
            "modern": modern_stdio(),
            "everything": everything(None),
            "pinned": everything(Some("legacy")),
        }}))
        .await;
        let modern = row(&d, "modern").await;
        assert_eq!(modern["state"], "ready", "{modern}");
        assert_eq!(modern["protocolVersion"], MODERN, "{modern}");
        assert_eq!(modern["serverInfo"]["name"], "modern-fixture", "{modern}");
        let everything = row(&d, "everything").await;
        assert_eq!(everything["state"], "ready", "{everything}");
        assert_eq!(everything["protocolVersion"], "2025-11-25", "a legacy backend stays legacy: {everything}");
        // The probe costs one round trip, not a timeout: the auto-detected legacy backend is
        // ready about as soon as the one configured as legacy (both started together).
        let pinned = row(&d, "pinned").await;
        let auto_ms = everything["readyAfterMs"].as_u64().unwrap();
        let pinned_ms = pinned["readyAfterMs"].as_u64().unwrap();
        assert!(
            auto_ms < pinned_ms + 1000,
            "probing a legacy backend must not cost a long wait: auto {auto_ms} ms, legacy {pinned_ms} ms"
        );

        let mut c = d.client().await;
        let names = c.tool_names().await;
        for t in ["modern_echo", "modern_ask_name", "modern_add_tool", "everything_echo"] {
            assert!(names.contains(&t.to_owned()), "{t} missing from {names:?}");
        }
        let r = c.call("modern_echo", json!({"text": "stateless héllo"})).await;
        assert_eq!(text_of(&r), "stateless héllo", "{r}");
        let r = c.call("everything_echo", json!({"message": "legacy"})).await;
        assert!(text_of(&r).contains("legacy"), "{r}");
        let listed = c.list_all("resources/list", "resources").await;
        let uri = listed
            .iter()
            .filter_map(|r| r["uri"].as_str())
            .find(|u| u.contains("modern://greeting"))
            .unwrap_or_else(|| panic!("the modern resource is listed: {listed:?}"))
            .to_owned();
        let r = c.request("resources/read", json!({"uri": uri})).await.result().clone();
        assert_eq!(r["contents"][0]["text"], "hello from the modern fixture", "{r}");
        // ping is answered by mcpmux and never reaches the modern backend.
        let r = c.request("ping", json!({})).await;
        assert!(r.response().get("result").is_some());
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_http_backend_is_detected_and_served_without_a_session() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let server = HttpFixture::start().await;
        let d = Daemon::start(json!({"mcpServers": {"web": {"url": server.url}}})).await;
        let web = row(&d, "web").await;
        assert_eq!(web["state"], "ready", "{web}");
        assert_eq!(web["protocolVersion"], MODERN, "{web}");
        assert_eq!(web["transport"], "streamable-http", "{web}");
        let mut c = d.client().await;
        // tools/call carries Mcp-Method and Mcp-Name; the server checks them against the body.
        let r = c.call("web_echo", json!({"text": "over http"})).await;
        assert_eq!(text_of(&r), "over http", "{r}");
        let r = c.request("prompts/list", json!({})).await;
        assert!(r.response().get("result").is_some(), "{:?}", r.messages);
        // input_required over HTTP, and list changes on the listen request's event stream.
        let out = python_client(&d.url("/mcp"), "web_", &["elicit", "listchange"]).await;
        assert!(out["elicit"]["text"].as_str().unwrap().starts_with("hello Ada"), "{out}");
        assert_eq!(out["fresh"], "I am fresh", "{out}");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_pinned_to_2026_refuses_a_legacy_backend() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let d = Daemon::start(json!({"mcpServers": {"everything": everything(Some(MODERN))}})).await;
        let everything = row(&d, "everything").await;
        assert_eq!(everything["state"], "failed", "{everything}");
        assert!(everything["lastError"].as_str().unwrap().contains(MODERN), "{everything}");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_era_client_answers_a_modern_backends_elicitation_and_sees_its_list_change() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let d = Daemon::start(json!({"mcpServers": {"modern": modern_stdio()}})).await;
        let out = python_client(&d.url("/mcp"), "modern_", &["elicit", "listchange", "subscribe"]).await;
        assert_eq!(out["elicitations"], json!(["What is your name?"]), "the client's callback ran once: {out}");
        let text = out["elicit"]["text"].as_str().unwrap();
        assert!(text.starts_with("hello Ada"), "the tool completed with the client's answer: {out}");
        assert_eq!(out["added"], "added fresh", "{out}");
        assert!(
            out["toolsAfter"].as_array().unwrap().contains(&json!("modern_fresh")),
            "the new tool is listed after tools/list_changed: {out}"
        );
        assert_eq!(out["fresh"], "I am fresh", "{out}");
        assert_eq!(out["subscribe"]["updates"], json!([out["subscribe"]["subscribed"]]), "{out}");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_capability_gets_a_clear_error_for_a_modern_elicitation() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let d = Daemon::start(json!({"mcpServers": {"modern": modern_stdio()}})).await;
        // The test client declares no capabilities at all.
        let mut c = d.client().await;
        let reply = c.request("tools/call", json!({"name": "modern_ask_name", "arguments": {}})).await;
        let r = reply.response();
        let failure = match (r.get("error"), r.get("result")) {
            (Some(e), _) => e.to_string(),
            (None, Some(result)) => {
                assert_eq!(result["isError"], true, "{result}");
                text_of(result)
            }
            _ => panic!("{r}"),
        };
        assert!(failure.contains("elicitation"), "{failure}");
        assert_ne!(r["result"]["resultType"], "input_required", "a session-era client never sees input_required");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmcp_backend_is_spoken_to_statelessly() {
    let exe = rmcp_backend_exe();
    tokio::time::timeout(Duration::from_secs(60), async {
        let d = Daemon::start(json!({"mcpServers": {
            "rust": {"command": exe.display().to_string()},
            "rustold": {"command": exe.display().to_string(), "protocol": "legacy"},
        }}))
        .await;
        let rust = row(&d, "rust").await;
        assert_eq!(rust["state"], "ready", "{rust}");
        assert_eq!(rust["protocolVersion"], MODERN, "rmcp offers 2026-07-28 in server/discover: {rust}");
        assert_eq!(rust["serverInfo"]["name"], "rmcp-stdio-backend", "{rust}");
        let old = row(&d, "rustold").await;
        assert_eq!(old["protocolVersion"], "2025-11-25", "protocol: legacy skips the probe: {old}");
        let mut c = d.client().await;
        let r = c.call("rust_reverse", json!({"text": "stateless"})).await;
        assert_eq!(text_of(&r), "sseletats", "{r}");
        let r = c.call("rust_count_chars", json!({"text": "héllo"})).await;
        assert_eq!(r["structuredContent"]["count"], 5, "{r}");
        let r = c.call("rustold_reverse", json!({"text": "abc"})).await;
        assert_eq!(text_of(&r), "cba", "{r}");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}
