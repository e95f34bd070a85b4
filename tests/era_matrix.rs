//! The era matrix (issue #8, "Interop proof"): {2025-11-25 client, 2026-07-28 client} ×
//! {2025-11-25 backend, 2026-07-28 backend} × {tools/call, elicitation mid-call, list change}.
//!
//! One mcpmux serves both backends on its merged `/mcp`: server-everything (session era) as
//! `everything_*` and the Python SDK's 2026-07-28 fixture as `modern_*`. The official Python
//! SDK client (tests/fixtures/era_client.py) connects in each era and runs every cell on its
//! own connection; each test is one row of the matrix (one client era).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Daemon, fixture, python, server_everything};
use serde_json::{Value, json};

/// Bound on one run of the driver (every cell of a row; each cell bounds itself to 25 s).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(170);
/// Bound on a whole test: start, driver, stop.
const ROW_TIMEOUT: Duration = Duration::from_secs(240);

/// Both backends behind one mcpmux.
fn both_eras() -> Value {
    let (node, args) = server_everything();
    json!({"mcpServers": {
        "everything": {"command": node, "args": [args[0], "stdio"]},
        "modern": {"command": python(), "args": [fixture("conformance_modern_server.py"), "--stdio"]},
    }})
}

/// A cell: backend, case.
const CELLS: [(&str, &str); 6] = [
    ("everything", "call"),
    ("everything", "input"),
    ("everything", "listchange"),
    ("modern", "call"),
    ("modern", "input"),
    ("modern", "listchange"),
];

/// Runs the driver in `mode` over every cell; returns what it printed, whatever its exit status
/// (the cells say what failed).
async fn drive(url: &str, mode: &str) -> Value {
    let cells: Vec<String> = CELLS.iter().map(|(b, c)| format!("{b}:{c}")).collect();
    let child = tokio::process::Command::new(python())
        .arg(fixture("era_client.py"))
        .arg(url)
        .arg(mode)
        .args(&cells)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DRIVER_TIMEOUT, child)
        .await
        .unwrap_or_else(|_| panic!("era_client.py {mode} did not finish within {DRIVER_TIMEOUT:?}"))
        .expect("cannot run era_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("era_client.py {mode} printed no result ({e}; exit {:?}):\n{stdout}\n{stderr}", out.status)
    })
}

/// What a cell must show, beyond the driver's own verdict; None when it does.
fn problem(mode: &str, backend: &str, case: &str, cell: &Value) -> Option<String> {
    if cell["ok"] != true {
        return Some(cell["error"].as_str().unwrap_or("no verdict").to_owned());
    }
    let want_version = if mode == "legacy" { "2025-11-25" } else { "2026-07-28" };
    if cell["protocolVersion"] != want_version {
        return Some(format!("the client spoke {} instead of {want_version}", cell["protocolVersion"]));
    }
    let text = cell["text"].as_str().unwrap_or("");
    let era = if mode == "legacy" { "legacy" } else { "2026" };
    match case {
        "call" => {
            let want = match backend {
                "everything" => "Echo: hello across eras",
                _ => "This is a simple text response for testing.",
            };
            (!text.contains(want)).then(|| format!("the call's text {text:?} lacks {want:?}"))
        }
        "input" => {
            let answer = format!("Ada-{era}-{backend}");
            let shown = match backend {
                "everything" => format!("- Name: {answer}"),
                _ => format!("Hello, {answer}!"),
            };
            let asked = cell["callbacks"].as_array().map_or(0, Vec::len);
            if asked != 1 {
                Some(format!("the client was asked {asked} times, not once"))
            } else if !text.contains(&shown) {
                Some(format!("the result {text:?} does not show the client's answer {shown:?}"))
            } else {
                None
            }
        }
        _ => {
            let (method, listening) = match (backend, mode) {
                ("everything", "legacy") => ("notifications/resources/list_changed", "GET stream"),
                ("everything", _) => ("notifications/resources/list_changed", "subscriptions/listen"),
                (_, "legacy") => ("notifications/tools/list_changed", "GET stream"),
                _ => ("notifications/tools/list_changed", "subscriptions/listen"),
            };
            if cell["listening"] != listening {
                Some(format!("listened on {} instead of {listening}", cell["listening"]))
            } else if cell["notified"] != method {
                Some(format!("never saw {method}"))
            } else if backend == "modern"
                && !cell["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t.as_str().unwrap().starts_with("modern_test_added_tool_"))
            {
                Some("the tool the backend added is not in the new listing".to_owned())
            } else {
                None
            }
        }
    }
}

/// One row of the matrix: a client of `mode` against both backends, every case.
async fn row(mode: &str) {
    tokio::time::timeout(ROW_TIMEOUT, async {
        let daemon = Daemon::start(both_eras()).await;
        let out = drive(&daemon.url("/mcp"), mode).await;
        daemon.stop().await.unwrap();
        let mut failures = String::new();
        for (backend, case) in CELLS {
            let name = format!("{backend}:{case}");
            let cell = &out["cells"][&name];
            if let Some(why) = problem(mode, backend, case, cell) {
                let trace = cell["trace"].as_str().unwrap_or("");
                let mut seen = cell.clone();
                if let Some(o) = seen.as_object_mut() {
                    o.remove("trace");
                }
                failures
                    .push_str(&format!("\n[{mode} client × {backend} backend × {case}] {why}\n  saw: {seen}\n{trace}"));
            }
        }
        assert!(failures.is_empty(), "era matrix cells failed:{failures}");
    })
    .await
    .unwrap_or_else(|_| panic!("the {mode} row of the era matrix did not finish within {ROW_TIMEOUT:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_era_client_gets_every_case_from_both_backend_eras() {
    row("legacy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_client_gets_every_case_from_both_backend_eras() {
    row("2026-07-28").await;
}
