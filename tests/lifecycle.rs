//! Children are started with the environment they are given, and never outlive the daemon:
//! not after a clean stop, not after SIGTERM, not even after SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, demo, fixture, process_alive};
use serde_json::{Value, json};

/// Waits (bounded) until none of `pids` is alive.
async fn wait_gone(pids: &[u32], within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_clean_stop_reaps_every_child() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {
            "notes": demo("notes"),
            "clock": demo("clock"),
            "raw": {"command": "python3", "args": [fixture("raw_server.py")]},
        }}))
        .await;
        let pids = d.backend_pids().await;
        assert_eq!(pids.len(), 3, "{:?}", d.status().await);
        assert!(pids.iter().all(|p| process_alive(*p)));
        d.stop().await.unwrap();
        // `stop` returns only after the children were reaped.
        let alive: Vec<u32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
        assert!(alive.is_empty(), "still running after stop: {alive:?}");
    })
    .await
    .unwrap();
}

/// The mcpmux binary started as a real process on a free port.
struct Spawned {
    child: Child,
    base: String,
    _dir: TempDir,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A test that fails half-way must not leave its daemon running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spawn_daemon(doc: &Value, extra_env: &[(&str, &str)]) -> Spawned {
    let dir = std::env::temp_dir().join(format!("mcpmux-lifecycle-{}-{}", std::process::id(), uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mcp.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let mut cmd = Command::new(common::mcpmux_exe());
    cmd.args(["serve", "--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut base = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("serving ") {
            base = Some(url.trim_end_matches("/mcp").to_owned());
            break;
        }
    }
    Spawned { child, base: base.expect("daemon printed its URL"), _dir: TempDir(dir) }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

async fn pids_of(base: &str) -> Vec<u32> {
    let status: Value = reqwest::get(format!("{base}/status")).await.unwrap().json().await.unwrap();
    status["backends"].as_array().unwrap().iter().filter_map(|b| b["pid"].as_u64().map(|p| p as u32)).collect()
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

#[tokio::test]
async fn sigkill_of_the_daemon_takes_its_children_with_it() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let mut d = spawn_daemon(&json!({"mcpServers": {"notes": demo("notes"), "raw": {"command": "python3", "args": [fixture("raw_server.py"), "hang"]}, "clock": demo("clock")}, "mcpmux": {"startupTimeoutMs": 2000}}), &[]);
        let pids = pids_of(&d.base).await;
        assert_eq!(pids.len(), 2, "the two demo backends run");
        signal(d.child.id(), nix::sys::signal::Signal::SIGKILL);
        let _ = d.child.wait();
        let alive = wait_gone(&pids, Duration::from_secs(10)).await;
        assert!(alive.is_empty(), "children outlived a SIGKILLed daemon: {alive:?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn sigterm_drains_exits_zero_and_reaps_children() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let mut d = spawn_daemon(&json!({"mcpServers": {"notes": demo("notes"), "clock": demo("clock")}}), &[]);
        let pids = pids_of(&d.base).await;
        let c = common::Client::connect(&format!("{}/mcp", d.base)).await;
        // A call in flight when SIGTERM arrives still completes. The first progress event proves
        // the call reached the backend before the signal is sent.
        let mut resp = reqwest::Client::new()
            .post(&c.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", c.session.clone().unwrap())
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "clock_sleep", "arguments": {"ms": 700}, "_meta": {"progressToken": "p"}}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let mut body = String::new();
        while !body.contains("notifications/progress") {
            let chunk = resp.chunk().await.unwrap().expect("stream ended before any progress");
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
        signal(d.child.id(), nix::sys::signal::Signal::SIGTERM);
        while let Some(chunk) = resp.chunk().await.unwrap() {
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
        let last = common::parse_sse(&body).pop().unwrap();
        assert!(common::text_of(&last["result"]).contains("700"), "{body}");
        let status = tokio::task::spawn_blocking(move || d.child.wait().unwrap()).await.unwrap();
        assert_eq!(status.code(), Some(0));
        let alive: Vec<u32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
        assert!(alive.is_empty(), "children still running after exit: {alive:?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn children_get_the_configured_environment_and_not_the_daemons() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let doc = json!({"mcpServers": {"raw": {
            "command": "python3",
            "args": [fixture("raw_server.py")],
            "env": {"GIVEN": "yes", "FROM_DAEMON": "${MCPMUX_TEST_REF}", "WITH_DEFAULT": "${MCPMUX_TEST_UNSET:-fallback}"},
            "cwd": "/tmp"
        }}});
        let mut d = spawn_daemon(&doc, &[("MCPMUX_TEST_REF", "referenced"), ("MCPMUX_TEST_LEAK", "must-not-leak")]);
        // The fixture does not list its `env` tool; the un-prefixed endpoint forwards it as is.
        let mut c = common::Client::connect(&format!("{}/servers/raw/mcp", d.base)).await;
        let r = c.call("env", json!({})).await;
        let env = &r["structuredContent"]["env"];
        assert_eq!(env["GIVEN"], "yes");
        assert_eq!(env["FROM_DAEMON"], "referenced");
        assert_eq!(env["WITH_DEFAULT"], "fallback");
        assert!(env.get("MCPMUX_TEST_LEAK").is_none(), "the daemon's environment leaked: {env}");
        assert!(env.get("PATH").is_some());
        assert_eq!(r["structuredContent"]["cwd"], "/tmp");
        signal(d.child.id(), nix::sys::signal::Signal::SIGTERM);
        let _ = d.child.wait();
    })
    .await
    .unwrap();
}
