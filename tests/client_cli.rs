//! The client commands (`tools`, `call`, `resources`, `read`, `prompts`, `prompt`,
//! `completions`) run as a user runs them: the built binary against server-everything over stdio
//! and over HTTP, a FastMCP server (stdio, HTTP, and from a config file), a config of several
//! servers, and a running mcpmux. Each test checks stdout, stderr and the exit code; tables are
//! compared with golden files in `tests/golden/` (`UPDATE_GOLDEN=1` rewrites them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Daemon, TempDir, demo};
use serde_json::{Value, json};

use tokio::process::Command;

/// What a command printed and how it exited.
#[derive(Debug)]
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

/// Runs the mcpmux binary with `args`, bounded in time; `MCPMUX_CONFIG` points nowhere unless
/// `env` sets it.
async fn mcpmux(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(common::mcpmux_exe());
    cmd.args(args)
        .env("MCPMUX_CONFIG", "/nonexistent/mcpmux-client-tests.json")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let out = tokio::time::timeout(common::TEST_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("mcpmux {args:?} did not finish in time"))
        .unwrap();
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// `args` followed by `-- node server-everything`.
fn with_everything<'a>(args: &[&'a str], peer: &'a [String]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.push("--");
    all.extend(peer.iter().map(String::as_str));
    all
}

fn everything_stdio() -> Vec<String> {
    let (node, args) = common::server_everything();
    std::iter::once(node).chain(args).collect()
}

/// Compares `actual` with `tests/golden/{name}`.
fn golden(name: &str, actual: &str) {
    let path = common::root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "expected success: {run:#?}");
}

use common::HttpPeer as Peer;

async fn everything_http() -> Peer {
    Peer::everything("streamableHttp", common::free_port()).await
}

async fn fastmcp_http() -> Peer {
    let mut cmd = Command::new(common::python());
    cmd.arg(common::fixture("fastmcp_http_server.py")).args(["http", "0"]);
    Peer::spawn_announcing(cmd).await
}

fn fastmcp_entry() -> Value {
    json!({"command": common::python(), "args": [common::fixture("fastmcp_server.py")]})
}

/// Writes a config file and returns its path (as a string) with the directory guard.
fn config_file(doc: &Value) -> (TempDir, String) {
    let dir = TempDir::new("client-cli");
    let path = dir.file("mcp.json");
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

#[tokio::test]
async fn tools_table_is_the_same_over_stdio_and_http() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything_stdio();
        let stdio = mcpmux(&with_everything(&["tools"], &se), &[]).await;
        ok(&stdio);
        golden("everything_tools.txt", &stdio.stdout);

        let peer = everything_http().await;
        let http = mcpmux(&["tools", &peer.url("/mcp")], &[]).await;
        ok(&http);
        assert_eq!(http.stdout, stdio.stdout);

        let raw = mcpmux(&["tools", &peer.url("/mcp"), "--json"], &[]).await;
        ok(&raw);
        let list: Value = serde_json::from_str(&raw.stdout).unwrap();
        let sum = list.as_array().unwrap().iter().find(|t| t["name"] == "get-sum").unwrap();
        assert_eq!(sum["inputSchema"]["required"], json!(["a", "b"]));
        assert_eq!(sum["annotations"]["readOnlyHint"], json!(true), "unknown-to-the-table fields are kept");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn call_converts_arguments_and_prints_text() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything_stdio();
        let run = mcpmux(&with_everything(&["call", "get-sum", "a=2", "b=3.5"], &se), &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "The sum of 2 and 3.5 is 5.5.\n");
        assert_eq!(run.stderr, "");

        let run =
            mcpmux(&with_everything(&["call", "get-sum", "--args", r#"{"a": 1, "b": 1}"#, "b=40"], &se), &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "The sum of 1 and 40 is 41.\n");

        let peer = everything_http().await;
        let run = mcpmux(&["call", &peer.url("/mcp"), "echo", "message=hello there"], &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "Echo: hello there\n");

        let run = mcpmux(&["call", &peer.url("/mcp"), "get-structured-content", "location=Chicago"], &[]).await;
        ok(&run);
        assert!(run.stdout.contains("structuredContent:\n{\n"), "{run:#?}");
        assert!(run.stdout.contains("\"temperature\""), "{run:#?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn argument_errors_name_the_argument_and_exit_2() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything_stdio();
        let cases: &[(&[&str], &str)] = &[
            (&["call", "get-sum", "a=x", "b=1"], "mcpmux call: argument 'a': expected a number, got 'x'\n"),
            (&["call", "get-sum", "a=1"], "mcpmux call: missing required argument 'b'\n"),
            (&["call", "get-sum", "a"], "mcpmux call: 'a' is not key=value\n"),
            (&["call", "get-sum", "--args", "[1]"], "mcpmux call: --args is not a JSON object: got [1]\n"),
            (&["call", "no-such-tool"], "mcpmux call: no tool 'no-such-tool'; the tools are: "),
        ];
        for (args, stderr) in cases {
            let run = mcpmux(&with_everything(args, &se), &[]).await;
            assert_eq!(run.code, 2, "{args:?}: {run:#?}");
            assert_eq!(run.stdout, "", "{args:?}");
            assert!(run.stderr.starts_with(stderr), "{args:?}: {run:#?}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn progress_is_shown_on_stderr_while_the_call_runs() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything_stdio();
        let run =
            mcpmux(&with_everything(&["call", "trigger-long-running-operation", "duration=1", "steps=3"], &se), &[])
                .await;
        ok(&run);
        assert_eq!(run.stdout, "Long running operation completed. Duration: 1 seconds, Steps: 3.\n");
        assert_eq!(
            run.stderr,
            "progress [#######-------------] 1/3 (33%)\nprogress [#############-------] 2/3 (67%)\nprogress [####################] 3/3 (100%)\n"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_result_with_is_error_exits_1_and_shows_the_content() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything_stdio();
        let run = mcpmux(&with_everything(&["call", "get-structured-content", "location=Paris"], &se), &[]).await;
        assert_eq!(run.code, 1, "{run:#?}");
        assert!(run.stdout.contains("Input validation error"), "{run:#?}");
        assert_eq!(run.stderr, "mcpmux call: the tool reported an error (isError)\n");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn binary_content_is_saved_on_request() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything_stdio();
        let run = mcpmux(&with_everything(&["call", "get-tiny-image"], &se), &[]).await;
        ok(&run);
        assert!(
            run.stdout.contains("[image: image/png, 4033 bytes; use --save DIR to write it to a file]"),
            "{run:#?}"
        );

        let dir = TempDir::new("client-save");
        let save = dir.0.display().to_string();
        let run = mcpmux(&with_everything(&["call", "get-tiny-image", "--save", &save], &se), &[]).await;
        ok(&run);
        let file = dir.file("get-tiny-image-2.png");
        assert!(run.stdout.contains(&format!("saved to {}", file.display())), "{run:#?}");
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes.len(), 4033);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn resources_and_prompts_of_server_everything() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything_stdio();
        let run = mcpmux(&with_everything(&["prompts"], &se), &[]).await;
        ok(&run);
        golden("everything_prompts.txt", &run.stdout);

        let run = mcpmux(&with_everything(&["prompt", "args-prompt", "city=Paris"], &se), &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "[user]\nWhat's weather in Paris?\n");
        let run = mcpmux(&with_everything(&["prompt", "args-prompt", "state=Texas"], &se), &[]).await;
        assert_eq!(run.code, 2, "{run:#?}");
        assert_eq!(run.stderr, "mcpmux prompt: missing required argument 'city'\n");

        let run = mcpmux(&with_everything(&["resources"], &se), &[]).await;
        ok(&run);
        assert!(run.stdout.starts_with("URI  ") || run.stdout.starts_with("URI "), "a table of resources: {run:#?}");
        assert!(run.stdout.contains("\nURI TEMPLATE "), "a table of templates: {run:#?}");

        let run =
            mcpmux(&with_everything(&["read", "demo://resource/static/document/architecture.md"], &se), &[]).await;
        ok(&run);
        assert!(run.stdout.starts_with("# Everything Server"), "{run:#?}");
        let run = mcpmux(&with_everything(&["read", "demo://nothing/here"], &se), &[]).await;
        assert_eq!(run.code, 1, "{run:#?}");
        assert!(run.stderr.starts_with("mcpmux read: "), "{run:#?}");
    })
    .await
    .unwrap();
}

/// Bound of the tests that start a Python server for each command (a FastMCP start takes
/// seconds on a busy machine).
const FASTMCP_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn fastmcp_tools_and_calls_from_a_config_file() {
    tokio::time::timeout(FASTMCP_TIMEOUT, async {
        let (_dir, cfg) = config_file(&json!({"mcpServers": {"fast": fastmcp_entry()}}));
        let run = mcpmux(&["tools", &cfg], &[]).await;
        ok(&run);
        golden("fastmcp_tools.txt", &run.stdout);

        let run = mcpmux(&["call", &cfg, "multiply", "a=6", "b=7"], &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "42\nstructuredContent:\n{\n  \"result\": 42\n}\n");
        let run = mcpmux(&["call", &cfg, "multiply", "a=6", "b=seven"], &[]).await;
        assert_eq!(run.code, 2, "{run:#?}");
        assert_eq!(run.stderr, "mcpmux call: argument 'b': expected an integer, got 'seven'\n");
        // Past the conversion, the server's own validation fails the call with isError.
        let run = mcpmux(&["call", &cfg, "multiply", "--args", r#"{"a": 6, "b": "seven"}"#], &[]).await;
        assert_eq!(run.code, 1, "{run:#?}");
        assert_eq!(run.stderr, "mcpmux call: the tool reported an error (isError)\n");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn fastmcp_resources_and_prompts_from_a_config_file() {
    tokio::time::timeout(FASTMCP_TIMEOUT, async {
        let (_dir, cfg) = config_file(&json!({"mcpServers": {"fast": fastmcp_entry()}}));
        let run = mcpmux(&["resources", &cfg], &[]).await;
        ok(&run);
        golden("fastmcp_resources.txt", &run.stdout);
        let run = mcpmux(&["read", &cfg, "fast://greeting"], &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "hello from fastmcp\n");
        let run = mcpmux(&["prompts", &cfg], &[]).await;
        ok(&run);
        golden("fastmcp_prompts.txt", &run.stdout);
        let run = mcpmux(&["prompt", &cfg, "haiku", "topic=the sea"], &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "[user]\nWrite a haiku about the sea.\n");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn fastmcp_over_http() {
    tokio::time::timeout(FASTMCP_TIMEOUT, async {
        let peer = fastmcp_http().await;
        let run = mcpmux(&["tools", &peer.url("/mcp")], &[]).await;
        ok(&run);
        golden("fastmcp_tools.txt", &run.stdout);
        let run = mcpmux(&["call", &peer.url("/mcp"), "shout", "text=hi"], &[]).await;
        ok(&run);
        assert!(run.stdout.starts_with("HI!\n"), "{run:#?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_config_of_several_servers_is_namespaced_like_the_daemon() {
    tokio::time::timeout(FASTMCP_TIMEOUT, async {
        let (_dir, cfg) = config_file(&json!({"mcpServers": {"fast": fastmcp_entry(), "clock": demo("clock")}}));
        let run = mcpmux(&["tools", &cfg], &[]).await;
        ok(&run);
        golden("multi_tools.txt", &run.stdout);

        let run = mcpmux(&["call", &cfg, "fast_multiply", "a=3", "b=4"], &[]).await;
        ok(&run);
        assert!(run.stdout.starts_with("12\n"), "{run:#?}");
        let run = mcpmux(&["call", &cfg, "clock_add", "a=1", "b=2"], &[]).await;
        ok(&run);
        assert!(run.stdout.starts_with("3\n"), "{run:#?}");
        // A call the server answers with a JSON-RPC error fails with its message.
        let run = mcpmux(&["call", &cfg, "clock_fail"], &[]).await;
        assert_eq!(run.code, 1, "{run:#?}");
        assert_eq!(run.stdout, "");
        assert!(run.stderr.starts_with("mcpmux call: 'clock' answered tools/call with an error: "), "{run:#?}");
        assert!(run.stderr.contains("(code -32603)"), "{run:#?}");
        let run = mcpmux(&["read", &cfg, "mcpmux://fast/fast://greeting"], &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "hello from fastmcp\n");
        let run = mcpmux(&["prompt", &cfg, "fast_haiku", "topic=rain"], &[]).await;
        ok(&run);
        assert_eq!(run.stdout, "[user]\nWrite a haiku about rain.\n");

        // --server picks one, with its own names.
        let run = mcpmux(&["call", &cfg, "--server", "fast", "multiply", "a=3", "b=5"], &[]).await;
        ok(&run);
        assert!(run.stdout.starts_with("15\n"), "{run:#?}");
        let run = mcpmux(&["tools", &cfg, "--server", "nope"], &[]).await;
        assert_eq!(run.code, 2, "{run:#?}");
        assert!(run.stderr.contains("has no enabled server 'nope'; it has: clock, fast"), "{run:#?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn without_a_target_the_running_mcpmux_is_used() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let servers = json!({"fast": fastmcp_entry(), "clock": demo("clock")});
        let daemon = Daemon::start(json!({"mcpServers": servers, "mcpmux": {"authToken": "test-token"}})).await;
        // The config the user's mcpmux runs with: it says where it listens, and the token.
        let settings = json!({"listen": daemon.addr.to_string(), "authToken": "test-token"});
        let (_dir, cfg) = config_file(&json!({"mcpServers": servers, "mcpmux": settings}));
        let env = [("MCPMUX_CONFIG", cfg.as_str())];
        let (_dir2, tokenless) =
            config_file(&json!({"mcpServers": servers, "mcpmux": {"listen": daemon.addr.to_string()}}));
        let run = mcpmux(&["tools"], &[("MCPMUX_CONFIG", tokenless.as_str())]).await;
        assert_eq!(run.code, 1, "without the token: {run:#?}");
        assert!(run.stderr.starts_with("mcpmux tools: cannot connect to "), "{run:#?}");

        let run = mcpmux(&["tools"], &env).await;
        ok(&run);
        golden("multi_tools.txt", &run.stdout);
        let run = mcpmux(&["call", "clock_add", "a=20", "b=22"], &env).await;
        ok(&run);
        assert!(run.stdout.starts_with("42\n"), "{run:#?}");
        let run = mcpmux(&["call", "clock_sleep", "ms=300"], &env).await;
        ok(&run);
        assert!(run.stderr.contains("progress ["), "progress relayed by mcpmux: {run:#?}");
        let run = mcpmux(&["read", "mcpmux://fast/fast://greeting"], &env).await;
        ok(&run);
        assert_eq!(run.stdout, "hello from fastmcp\n");
        let run = mcpmux(&["call", "clock_add", "a=x", "b=1"], &env).await;
        assert_eq!(run.code, 2, "{run:#?}");
        assert_eq!(run.stderr, "mcpmux call: argument 'a': expected a number, got 'x'\n");

        daemon.stop().await.unwrap();
        let run = mcpmux(&["tools"], &env).await;
        assert_eq!(run.code, 1, "{run:#?}");
        assert!(run.stderr.starts_with("mcpmux tools: cannot connect to "), "{run:#?}");

        let run = mcpmux(&["tools"], &[]).await;
        assert_eq!(run.code, 1, "{run:#?}");
        assert!(
            run.stderr.starts_with("mcpmux tools: no target given, and the running mcpmux's config could not be read"),
            "{run:#?}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn server_log_messages_go_to_stderr() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let run = mcpmux(
            &[
                "call",
                "add_note",
                "title=t",
                "body=c",
                "--log-level",
                "info",
                "--",
                common::mcpmux_exe(),
                "demo",
                "notes",
            ],
            &[],
        )
        .await;
        ok(&run);
        assert!(run.stderr.contains("[mcpmux] info: notes: Added note 't'."), "{run:#?}");
        assert!(!run.stdout.contains("Added note 't'.\n[mcpmux]"), "logs stay off stdout");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        for shell in ["bash", "zsh", "fish"] {
            let run = mcpmux(&["completions", shell], &[]).await;
            ok(&run);
            assert!(run.stdout.contains("mcpmux"), "{shell}");
            for command in ["tools", "call", "resources", "read", "prompts", "prompt"] {
                assert!(run.stdout.contains(command), "{shell} completion lacks {command}");
            }
        }
        let run = mcpmux(&["completions", "tcsh"], &[]).await;
        assert_eq!(run.code, 2);
    })
    .await
    .unwrap();
}
