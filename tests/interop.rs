//! Interoperability with real MCP implementations on both sides of mcpmux.
//!
//! Backends: the reference server-everything (TypeScript SDK), a FastMCP server (Python), an
//! rmcp server (Rust SDK, `examples/rmcp_stdio_backend.rs`) and the built-in notes demo, all at
//! once. Clients: the raw test client, the official Python SDK client, the rmcp client, and the
//! MCP conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Daemon, demo, text_of};
use serde_json::{Value, json};

/// Bound of one child process (Python client, conformance CLI) inside a test.
const CHILD_TIMEOUT: Duration = Duration::from_secs(40);

/// How long building the rmcp example from a test may take (it waits for Cargo's lock too).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The rmcp example backend, built by Cargo next to this test binary
/// (`target/<profile>/deps/interop-*` → `target/<profile>/examples/rmcp_stdio_backend`).
///
/// Plain `cargo test` builds examples before running tests, but `cargo test --test interop`
/// does not: when the binary is missing or older than its source, the first caller builds it with
/// `cargo build --example rmcp_stdio_backend` (bounded by [`BUILD_TIMEOUT`]), and the binary must
/// then exist. Call it before a test's own timeout starts: it blocks.
fn rmcp_backend_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let me = std::env::current_exe().expect("current_exe");
        let deps = me.parent().expect("test binary has a parent directory");
        let profile_dir = deps.parent().expect("deps has a parent directory");
        let exe = profile_dir.join("examples").join("rmcp_stdio_backend");
        let source = common::root().join("examples/rmcp_stdio_backend.rs");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = matches!((modified(&exe), modified(&source)), (Some(b), Some(s)) if b >= s);
        let mut outcome = String::from("not needed");
        if !fresh {
            outcome = build_example(profile_dir);
        }
        assert!(
            exe.exists(),
            "the rmcp test backend is missing at {}: build it with `cargo build --example rmcp_stdio_backend` \
             (plain `cargo test` builds it too); building it from the test: {outcome}",
            exe.display()
        );
        exe
    })
    .clone()
}

/// Runs `cargo build --example rmcp_stdio_backend` for the profile and target dir of this test
/// binary, and says how it went.
fn build_example(profile_dir: &Path) -> String {
    let mut build = std::process::Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--example", "rmcp_stdio_backend", "--manifest-path"])
        .arg(common::root().join("Cargo.toml"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        build.arg("--target-dir").arg(target_dir);
    }
    let mut child = match build.stdin(Stdio::null()).spawn() {
        Ok(child) => child,
        Err(e) => return format!("cannot run cargo: {e}"),
    };
    let deadline = std::time::Instant::now() + BUILD_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return format!("cargo exited with {status}"),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return format!("cargo did not finish within {BUILD_TIMEOUT:?}");
            }
            Err(e) => return format!("cannot wait for cargo: {e}"),
        }
    }
}

/// Every test here starts several CPU-hungry peers (Python imports take seconds of CPU; Node).
/// Run them one at a time, so that on a 2-core machine no backend misses its 30 s startup
/// deadline because its siblings from the other tests hog the CPU. Taken before each test's own
/// timeout starts; a tokio mutex is not poisoned by a failed test.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A config entry for server-everything on stdio (2026.8.31 picks its transport from the first
/// positional argument; `stdio` is also its default).
fn everything() -> Value {
    let (command, mut args) = common::server_everything();
    args.push("stdio".to_owned());
    json!({"command": command, "args": args})
}

/// A config entry for the FastMCP fixture.
fn fast() -> Value {
    let python = common::python().display().to_string();
    json!({"command": python, "args": [common::fixture("fastmcp_server.py")]})
}

/// A config entry for the rmcp example backend (see [`rmcp_backend_exe`]).
fn rmcp(exe: &Path) -> Value {
    json!({"command": exe.display().to_string(), "args": []})
}

/// Starts mcpmux with the given backends and checks that every one of them came up.
async fn start(backends: Value) -> Daemon {
    let names: Vec<String> = backends.as_object().unwrap().keys().cloned().collect();
    let d = Daemon::start(json!({"mcpServers": backends})).await;
    let status = d.status().await;
    for name in &names {
        let b = status["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name.as_str())
            .unwrap_or_else(|| panic!("backend {name} missing from /status: {status}"));
        assert_eq!(b["state"], "ready", "backend {name} is not ready: {b}");
    }
    d
}

/// The one JSON object `python_client.py` printed.
async fn python_client(url: &str, tool: &str, arguments: Value, resource: Option<&str>) -> Value {
    python_client_in(None, url, tool, arguments, resource).await
}

/// Like [`python_client`], with the SDK client's `mode` (`legacy`, `auto`, a version).
async fn python_client_in(
    mode: Option<&str>,
    url: &str,
    tool: &str,
    arguments: Value,
    resource: Option<&str>,
) -> Value {
    let mut cmd = tokio::process::Command::new(common::python());
    if let Some(m) = mode {
        cmd.env("MCP_CLIENT_MODE", m);
    }
    cmd.arg(common::fixture("python_client.py")).arg(url).arg(tool).arg(arguments.to_string());
    if let Some(uri) = resource {
        cmd.arg(uri);
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(CHILD_TIMEOUT, cmd.output())
        .await
        .expect("the Python SDK client timed out")
        .expect("cannot run the Python SDK client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python SDK client failed ({}) against {url}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("Python client output is not one JSON object ({e}): {stdout}\nstderr: {stderr}"))
}

/// Removes a directory when dropped, also when the test fails or times out.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one conformance scenario reported.
struct Conformance {
    stdout: String,
    /// The scenario's `checks.json`.
    checks: Vec<Value>,
}

/// Runs one server scenario of the conformance suite against `url` and asserts that the CLI
/// succeeded and that every check it recorded is a SUCCESS.
async fn conformance(url: &str, scenario: &str) -> Conformance {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("mcpmux-conformance-{}-{scenario}-{nanos}", std::process::id()));
    let _cleanup = TempDir(dir.clone());
    let script = common::peers_dir().join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(
        script.exists(),
        "the conformance suite is missing at {}; install the test peers (cd tests/peers && npm ci)",
        script.display()
    );
    let out = tokio::time::timeout(
        CHILD_TIMEOUT,
        tokio::process::Command::new(common::node22())
            .arg(&script)
            .args(["server", "--url", url, "--scenario", scenario, "-o"])
            .arg(&dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("conformance scenario {scenario} timed out"))
    .expect("cannot run the conformance CLI");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let checks_file = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("checks.json"))
        .find(|p| p.exists());
    let checks: Vec<Value> = checks_file
        .as_ref()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .unwrap_or_default();
    assert!(
        out.status.success(),
        "conformance scenario {scenario} against {url} failed ({})\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(!checks.is_empty(), "conformance scenario {scenario} recorded no checks in {dir:?}\nstdout: {stdout}");
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] != "SUCCESS").collect();
    assert!(
        failed.is_empty(),
        "conformance scenario {scenario} against {url} has checks that did not succeed: {failed:#?}"
    );
    assert!(
        stdout.contains(&format!("Passed: {n}/{n}, 0 failed", n = checks.len())),
        "the conformance summary does not report every check passed: {stdout}"
    );
    Conformance { stdout, checks }
}

#[tokio::test]
async fn four_sdk_backends_behind_one_url() {
    let rmcp_exe = rmcp_backend_exe();
    let _serial = SERIAL.lock().await;
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = start(json!({
            "everything": everything(),
            "fast": fast(),
            "rmcp": rmcp(&rmcp_exe),
            "notes": demo("notes"),
        }))
        .await;
        let mut c = d.client().await;

        let names = c.tool_names().await;
        for expected in [
            "everything_echo",
            "everything_get-sum",
            "everything_get-tiny-image",
            "fast_multiply",
            "fast_shout",
            "rmcp_reverse",
            "rmcp_count_chars",
            "notes_add_note",
            "notes_list_notes",
        ] {
            assert!(names.contains(&expected.to_owned()), "{expected} missing from {names:?}");
        }
        assert!(
            names.iter().all(|n| ["everything_", "fast_", "rmcp_", "notes_"].iter().any(|p| n.starts_with(p))),
            "every tool is namespaced by its backend: {names:?}"
        );
        // Each backend's whole list, nothing lost or duplicated. server-everything adds tools for
        // the client capabilities it is told about (roots, sampling, elicitation), so only the ones
        // it always has are pinned.
        let of = |prefix: &str| -> Vec<&str> {
            let mut v: Vec<&str> = names.iter().filter_map(|n| n.strip_prefix(prefix)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(of("fast_"), ["multiply", "shout"], "{names:?}");
        assert_eq!(of("rmcp_"), ["count_chars", "reverse"], "{names:?}");
        assert_eq!(of("notes_"), ["add_note", "delete_note", "list_notes", "search_notes"], "{names:?}");
        let everything_tools = of("everything_");
        for always in [
            "echo",
            "get-annotated-message",
            "get-env",
            "get-resource-links",
            "get-resource-reference",
            "get-structured-content",
            "get-sum",
            "get-tiny-image",
            "gzip-file-as-resource",
            "simulate-research-query",
            "toggle-simulated-logging",
            "toggle-subscriber-updates",
            "trigger-long-running-operation",
        ] {
            assert!(everything_tools.contains(&always), "everything_{always} missing from {names:?}");
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a tool is listed twice: {names:?}");

        // Each call reaches its own backend and comes back with that backend's answer.
        let r = c.call("everything_echo", json!({"message": "through mcpmux ✓"})).await;
        assert_eq!(text_of(&r), "Echo: through mcpmux ✓", "{r}");
        let r = c.call("everything_get-sum", json!({"a": 2, "b": 40})).await;
        assert_eq!(text_of(&r), "The sum of 2 and 40 is 42.", "{r}");
        let r = c.call("fast_multiply", json!({"a": 6, "b": 7})).await;
        assert_eq!(r["structuredContent"], json!({"result": 42}), "{r}");
        assert_eq!(text_of(&r), "42", "{r}");
        let r = c.call("fast_shout", json!({"text": "quiet"})).await;
        assert_eq!(text_of(&r), "QUIET!", "{r}");
        let r = c.call("rmcp_reverse", json!({"text": "héllo mcpmux"})).await;
        assert_eq!(text_of(&r), "xumpcm olléh", "{r}");
        let r = c.call("rmcp_count_chars", json!({"text": "héllo"})).await;
        assert_eq!(r["structuredContent"], json!({"count": 5}), "{r}");
        let note = json!({"title": "interop", "body": "four backends"});
        let r = c.call("notes_add_note", note).await;
        assert!(text_of(&r).contains("interop"), "{r}");
        // A backend's own argument validation reaches the client as the backend wrote it: FastMCP
        // and rmcp both answer with a tool error (isError) naming the problem.
        let r = c.call("fast_multiply", json!({"a": "six", "b": 7})).await;
        assert_eq!(r["isError"], true, "{r}");
        assert!(text_of(&r).contains("valid integer"), "{r}");
        let r = c.call("rmcp_reverse", json!({})).await;
        assert_eq!(r["isError"], true, "{r}");
        assert!(text_of(&r).contains("missing field `text`"), "{r}");

        // Resources: server-everything's static document, through its namespaced URI.
        let resources = c.list_all("resources/list", "resources").await;
        let uris: Vec<&str> = resources.iter().map(|r| r["uri"].as_str().unwrap()).collect();
        let features = "mcpmux://everything/demo://resource/static/document/features.md";
        assert!(uris.contains(&features), "{uris:?}");
        assert!(uris.contains(&"mcpmux://fast/fast://greeting"), "{uris:?}");
        let read = c.request("resources/read", json!({"uri": features})).await;
        let content = &read.result()["contents"][0];
        assert_eq!(content["uri"], features);
        assert_eq!(content["mimeType"], "text/markdown");
        assert!(content["text"].as_str().unwrap().contains("# Everything Server - Features"), "{content}");
        let read = c.request("resources/read", json!({"uri": "mcpmux://fast/fast://greeting"})).await;
        assert_eq!(read.result()["contents"][0]["text"], "hello from fastmcp");

        // A server-everything resource template, expanded like a client would.
        let templates = c.list_all("resources/templates/list", "resourceTemplates").await;
        let text_template = templates
            .iter()
            .map(|t| t["uriTemplate"].as_str().unwrap())
            .find(|t| t.contains("dynamic/text"))
            .expect("server-everything's dynamic text template is listed");
        assert_eq!(text_template, "mcpmux://everything/demo://resource/dynamic/text/{resourceId}");
        let uri = text_template.replace("{resourceId}", "7");
        let read = c.request("resources/read", json!({"uri": uri})).await;
        assert_eq!(read.result()["contents"][0]["uri"], uri.as_str());
        assert!(
            read.result()["contents"][0]["text"].as_str().unwrap().starts_with("Resource 7:"),
            "{:?}",
            read.result()
        );

        // Prompts: server-everything's, with arguments, and one that embeds a resource whose URI
        // comes back namespaced.
        let prompts = c.list_all("prompts/list", "prompts").await;
        let prompt_names: Vec<&str> = prompts.iter().map(|p| p["name"].as_str().unwrap()).collect();
        for expected in ["everything_simple-prompt", "everything_args-prompt", "fast_haiku", "notes_summarize_note"] {
            assert!(prompt_names.contains(&expected), "{expected} missing from {prompt_names:?}");
        }
        let args = json!({"city": "Paris", "state": "Texas"});
        let p = c.request("prompts/get", json!({"name": "everything_args-prompt", "arguments": args})).await;
        assert_eq!(p.result()["messages"][0]["content"]["text"], "What's weather in Paris, Texas?");
        let args = json!({"resourceType": "Text", "resourceId": "3"});
        let p = c.request("prompts/get", json!({"name": "everything_resource-prompt", "arguments": args})).await;
        let messages = p.result()["messages"].as_array().unwrap();
        let embedded = messages
            .iter()
            .find(|m| m["content"]["type"] == "resource")
            .unwrap_or_else(|| panic!("no embedded resource in {messages:?}"));
        assert_eq!(embedded["content"]["resource"]["uri"], "mcpmux://everything/demo://resource/dynamic/text/3");
        let p = c.request("prompts/get", json!({"name": "fast_haiku", "arguments": {"topic": "pipes"}})).await;
        assert_eq!(p.result()["messages"][0]["content"]["text"], "Write a haiku about pipes.");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn python_sdk_client_on_the_merged_and_the_per_backend_endpoint() {
    let _serial = SERIAL.lock().await;
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = start(json!({"everything": everything(), "fast": fast()})).await;

        // The SDK's default probes server/discover and speaks 2026-07-28; `legacy` initializes.
        for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
            let merged = python_client_in(
                Some(mode),
                &d.url("/mcp"),
                "fast_multiply",
                json!({"a": 6, "b": 7}),
                Some("mcpmux://everything/demo://resource/static/document/features.md"),
            )
            .await;
            assert_eq!(merged["serverName"], "mcpmux", "{merged}");
            assert_eq!(merged["protocolVersion"], version, "{merged}");
            let tools: Vec<&str> = merged["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            for expected in ["everything_echo", "everything_get-sum", "fast_multiply", "fast_shout"] {
                assert!(tools.contains(&expected), "{expected} missing from {tools:?}");
            }
            assert_eq!(merged["callResult"]["structuredContent"], json!({"result": 42}), "{merged}");
            assert_eq!(merged["callResult"]["content"][0]["text"], "42", "{merged}");
            assert_eq!(merged["callResult"]["isError"], false, "{merged}");
            // The backend's own _meta survives next to what the 2026 era adds.
            assert_eq!(merged["callResult"]["_meta"]["fastmcp"], json!({"wrap_result": true}), "{merged}");
            let content = &merged["resource"]["contents"][0];
            assert_eq!(content["uri"], "mcpmux://everything/demo://resource/static/document/features.md");
            assert!(content["text"].as_str().unwrap().contains("Features"), "{content}");
        }

        let solo = python_client(
            &d.url("/servers/everything/mcp"),
            "get-sum",
            json!({"a": 19, "b": 23}),
            Some("demo://resource/static/document/features.md"),
        )
        .await;
        assert_eq!(solo["serverName"], "mcp-servers/everything", "{solo}");
        let tools: Vec<&str> = solo["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert!(tools.contains(&"echo") && tools.contains(&"get-sum"), "{tools:?}");
        assert!(
            !tools.iter().any(|t| t.starts_with("everything_") || t.starts_with("fast")),
            "the per-backend endpoint shows only that backend, un-prefixed: {tools:?}"
        );
        assert_eq!(solo["callResult"]["content"][0]["text"], "The sum of 19 and 23 is 42.", "{solo}");
        assert_eq!(solo["resource"]["contents"][0]["uri"], "demo://resource/static/document/features.md");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn rmcp_client_on_the_merged_endpoint() {
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;

    let rmcp_exe = rmcp_backend_exe();
    let _serial = SERIAL.lock().await;
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = start(json!({"fast": fast(), "rmcp": rmcp(&rmcp_exe), "notes": demo("notes")})).await;
        let client =
            ().serve(StreamableHttpClientTransport::from_uri(d.url("/mcp")))
                .await
                .expect("the rmcp client cannot initialize with mcpmux");
        let info = client.peer_info().expect("server info after initialize");
        assert_eq!(info.server_info.as_ref().unwrap().name, "mcpmux");
        assert!(info.capabilities.tools.is_some(), "{info:?}");

        let tools = client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        for expected in ["fast_multiply", "rmcp_reverse", "rmcp_count_chars", "notes_add_note"] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }

        let args = |v: Value| v.as_object().unwrap().clone();
        let r = client
            .call_tool(CallToolRequestParams::new("fast_multiply").with_arguments(args(json!({"a": -3, "b": 14}))))
            .await
            .expect("tools/call fast_multiply");
        assert_eq!(r.structured_content, Some(json!({"result": -42})), "{r:?}");
        assert_ne!(r.is_error, Some(true), "{r:?}");

        let r = client
            .call_tool(CallToolRequestParams::new("rmcp_reverse").with_arguments(args(json!({"text": "abc"}))))
            .await
            .expect("tools/call rmcp_reverse");
        let r = serde_json::to_value(&r).unwrap();
        assert_eq!(text_of(&r), "cba", "{r}");

        let r = client
            .call_tool(
                CallToolRequestParams::new("notes_add_note")
                    .with_arguments(args(json!({"title": "from-rmcp", "body": "hi"}))),
            )
            .await
            .expect("tools/call notes_add_note");
        let r = serde_json::to_value(&r).unwrap();
        assert!(text_of(&r).contains("from-rmcp"), "{r}");

        // An unknown tool is a protocol error the rmcp client surfaces as such.
        let e = client.call_tool(CallToolRequestParams::new("nope_tool")).await.expect_err("an unknown tool must fail");
        assert!(e.to_string().contains("nope_tool"), "{e}");

        client.cancel().await.unwrap();
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn conformance_suite_scenarios() {
    let _serial = SERIAL.lock().await;
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = start(json!({"everything": everything(), "notes": demo("notes")})).await;

        let dns = conformance(&d.url("/mcp"), "dns-rebinding-protection").await;
        let ids: Vec<&str> = dns.checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert!(
            ids.contains(&"localhost-host-rebinding-rejected") && ids.contains(&"localhost-host-valid-accepted"),
            "{ids:?}\n{}",
            dns.stdout
        );

        // The generic scenarios, on the merged endpoint and on server-everything's own, three at
        // a time to keep the test short without starving the machine.
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(3));
        let mut runs = tokio::task::JoinSet::new();
        for path in ["/mcp", "/servers/everything/mcp"] {
            for scenario in
                ["server-initialize", "ping", "tools-list", "resources-list", "prompts-list", "logging-set-level"]
            {
                let url = d.url(path);
                let slots = slots.clone();
                runs.spawn(async move {
                    let _slot = slots.acquire_owned().await.unwrap();
                    conformance(&url, scenario).await;
                    format!("{scenario} on {url}")
                });
            }
        }
        let mut passed = Vec::new();
        while let Some(done) = runs.join_next().await {
            match done {
                Ok(run) => passed.push(run),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        assert_eq!(passed.len(), 12, "{passed:?}");
        d.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}
