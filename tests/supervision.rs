#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Supervision: backends that crash, hang or fail are restarted with backoff, their state is
//! visible in `/status`, `/readyz` and `/metrics`, calls to them fail fast and clearly, and the
//! other backends never notice. Repeated crashes leak nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, TempDir, demo, fixture, process_alive, text_of};
use serde_json::{Value, json};

/// Bound of the long test (50 crash-restarts).
const LONG_TEST_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Helpers

fn raw(mode: &str) -> Value {
    json!({"command": "python3", "args": [fixture("raw_server.py"), mode]})
}

fn stalling(args: &[&str]) -> Value {
    let mut a = vec![fixture("stalling_server.py")];
    a.extend(args.iter().map(|s| (*s).to_owned()));
    json!({"command": "python3", "args": a})
}

fn backend<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no backend {name} in {status:#}"))
}

fn pid_of(status: &Value, name: &str) -> Option<u32> {
    backend(status, name)["pid"].as_u64().map(|p| p as u32)
}

fn restarts(status: &Value, name: &str) -> u64 {
    backend(status, name)["restarts"].as_u64().unwrap()
}

fn kill9(pid: u32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
}

/// Polls `/status` every 20 ms until `cond` holds, within `bound`.
async fn wait_status(d: &Daemon, what: &str, bound: Duration, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + bound;
    loop {
        let s = d.status().await;
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; last /status: {s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_text(url: String) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

// ---------------------------------------------------------------------------------------------
// 1: kill -9 under load

/// One call to the victim: when it started and ended, and the response message.
struct Record {
    start: Instant,
    end: Instant,
    response: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_under_load_fails_fast_comes_back_and_the_others_never_notice() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        const CLIENTS: usize = 32;
        let d = Daemon::start(json!({"mcpServers": {"victim": demo("clock"), "other": demo("clock")}})).await;
        let s0 = d.status().await;
        let victim_pid = pid_of(&s0, "victim").unwrap();
        let other_pid = pid_of(&s0, "other").unwrap();
        let url = d.url("/mcp");
        let started_calls = Arc::new(AtomicUsize::new(0));
        let back = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));

        let mut victims = Vec::new();
        let mut others = Vec::new();
        for i in 0..CLIENTS {
            let (victim_url, started_calls, back) = (url.clone(), started_calls.clone(), back.clone());
            victims.push(tokio::spawn(async move {
                let mut c = common::Client::connect(&victim_url).await;
                let mut records = Vec::new();
                loop {
                    let start = Instant::now();
                    started_calls.fetch_add(1, Ordering::SeqCst);
                    let was_back = back.load(Ordering::SeqCst);
                    let reply =
                        c.request("tools/call", json!({"name": "victim_sleep", "arguments": {"ms": 1500}})).await;
                    let response = reply.response().clone();
                    let ok = response.get("error").is_none();
                    records.push(Record { start, end: Instant::now(), response });
                    if ok && was_back {
                        return records;
                    }
                    if !ok {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }));
            let (url, stop) = (url.clone(), stop.clone());
            others.push(tokio::spawn(async move {
                let mut c = common::Client::connect(&url).await;
                let mut n = 0u64;
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let text = format!("c{i}-n{n}");
                    let reply =
                        c.request("tools/call", json!({"name": "other_echo", "arguments": {"text": &text}})).await;
                    let r = reply.response();
                    if r.get("error").is_some() || text_of(&r["result"]) != text {
                        failures.push(r.clone());
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (n, failures)
            }));
        }
        // Every client has a victim call in flight; then the victim is killed.
        let deadline = Instant::now() + Duration::from_secs(20);
        while started_calls.load(Ordering::SeqCst) < CLIENTS {
            assert!(Instant::now() < deadline, "clients did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed_at = Instant::now();
        kill9(victim_pid);

        // It comes back: ready, restarted, a new process.
        let s = wait_status(&d, "the victim to come back", Duration::from_secs(20), |s| {
            let b = backend(s, "victim");
            b["state"] == "ready" && pid_of(s, "victim").is_some_and(|p| p != victim_pid)
        })
        .await;
        eprintln!("victim back {} ms after the kill", killed_at.elapsed().as_millis());
        assert!(restarts(&s, "victim") >= 1, "{s:#}");
        assert_eq!(pid_of(&s, "other"), Some(other_pid), "the other backend was not touched");
        assert_eq!(restarts(&s, "other"), 0);
        assert!(!process_alive(victim_pid));
        back.store(true, Ordering::SeqCst);

        let mut spanning = 0;
        let mut slowest_failure = Duration::ZERO;
        for v in victims {
            let records = v.await.unwrap();
            for r in &records {
                let err = r.response.get("error");
                if r.start < killed_at && r.end > killed_at {
                    // In flight when the backend died: a clear error, at once.
                    spanning += 1;
                    let err = err.unwrap_or_else(|| panic!("a call in flight at the kill succeeded: {}", r.response));
                    assert_eq!(err["code"], -32000, "{}", r.response);
                    assert!(err["message"].as_str().unwrap().contains("'victim'"), "{}", r.response);
                    slowest_failure = slowest_failure.max(r.end - killed_at);
                } else if let Some(err) = err {
                    // Started while it was down: unavailable, naming it.
                    assert!(r.start >= killed_at, "a call before the kill failed: {}", r.response);
                    assert_eq!(err["code"], -32000, "{}", r.response);
                    assert!(err["message"].as_str().unwrap().contains("'victim'"), "{}", r.response);
                }
            }
            let last = records.last().unwrap();
            assert!(last.response.get("error").is_none(), "the victim serves again: {}", last.response);
            assert!(text_of(&last.response["result"]).contains("1500"), "{}", last.response);
        }
        eprintln!("{spanning} calls in flight at the kill failed within {} ms", slowest_failure.as_millis());
        assert_eq!(spanning, CLIENTS, "every client had a call in flight at the kill");
        assert!(slowest_failure < Duration::from_secs(2), "in-flight calls must fail fast: {slowest_failure:?}");

        stop.store(true, Ordering::SeqCst);
        let mut total = 0;
        for o in others {
            let (n, failures) = o.await.unwrap();
            assert!(failures.is_empty(), "calls to the other backend failed: {failures:?}");
            assert!(n > 0);
            total += n;
        }
        eprintln!("{total} calls to the other backend, all answered");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2–3: what /status shows, and what clients see while a backend is down

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_restarts_and_last_errors_are_visible_in_status() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock"), "quitter": raw("exit")}})).await;
        let s = d.status().await;
        assert_eq!(backend(&s, "clock")["state"], "ready");
        assert_eq!(restarts(&s, "clock"), 0);
        assert!(backend(&s, "clock")["lastError"].is_null(), "{s:#}");
        let q = backend(&s, "quitter");
        assert_eq!(q["state"], "failed", "{s:#}");
        assert!(q["pid"].is_null(), "{s:#}");
        let err = q["lastError"].as_str().unwrap_or_default();
        assert!(!err.is_empty(), "a failed backend says why: {s:#}");
        eprintln!("quitter lastError: {err}");

        // It keeps being retried, with backoff (0.5 s, 1 s, 2 s …): restarts goes up.
        let r0 = restarts(&s, "quitter");
        let s = wait_status(&d, "quitter to be retried twice", Duration::from_secs(15), |s| {
            restarts(s, "quitter") >= r0 + 2
        })
        .await;
        let q = backend(&s, "quitter");
        assert!(matches!(q["state"].as_str(), Some("failed" | "restarting" | "starting")), "{s:#}");
        assert!(q["lastError"].is_string(), "{s:#}");
        let (_, m) = get_text(d.url("/metrics")).await;
        assert!(m.contains("mcpmux_backend_up{backend=\"quitter\"} 0"), "{m}");
        assert!(m.contains("mcpmux_backend_up{backend=\"clock\"} 1"), "{m}");
        assert!(!m.contains("mcpmux_backend_restarts_total{backend=\"quitter\"} 0"), "{m}");

        // A ready backend that dies is `restarting` (with why) until it is `ready` again.
        let pid = pid_of(&s, "clock").unwrap();
        kill9(pid);
        let mut seen: Vec<(String, Value, u64)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = d.status().await;
            let b = backend(&s, "clock");
            let entry = (b["state"].as_str().unwrap().to_owned(), b["lastError"].clone(), restarts(&s, "clock"));
            if seen.last() != Some(&entry) {
                seen.push(entry);
            }
            if b["state"] == "ready" && pid_of(&s, "clock").is_some_and(|p| p != pid) {
                break;
            }
            assert!(Instant::now() < deadline, "clock did not come back: {seen:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("clock states after kill -9: {seen:?}");
        let restarting = seen.iter().find(|(state, ..)| state == "restarting").expect("state restarting was visible");
        assert!(restarting.1.as_str().is_some_and(|e| !e.is_empty()), "restarting says why: {seen:?}");
        assert_eq!(restarting.2, 1, "{seen:?}");
        let last = seen.last().unwrap();
        assert_eq!(last.0, "ready");
        assert!(last.1.is_null(), "a backend that is ready again has no current error: {seen:?}");
        assert_eq!(last.2, 1);
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_of_a_down_backend_stay_listed_unless_list_when_down_is_false() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let dir = TempDir::new("supervision-gates");
        let (gate_hidden, gate_shown) = (dir.file("hidden.gate"), dir.file("shown.gate"));
        std::fs::write(&gate_hidden, "up").unwrap();
        std::fs::write(&gate_shown, "up").unwrap();
        let mut hidden = stalling(&["gate", gate_hidden.to_str().unwrap()]);
        hidden["listWhenDown"] = json!(false);
        let shown = stalling(&["gate", gate_shown.to_str().unwrap()]);
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock"), "hidden": hidden, "shown": shown}})).await;
        let s = d.status().await;
        let mut c = d.client().await;
        let names = c.tool_names().await;
        assert!(has(&names, "hidden_work") && has(&names, "shown_work"), "{names:?}");

        // Both go down and stay down (each restart exits at once).
        std::fs::write(&gate_hidden, "down").unwrap();
        std::fs::write(&gate_shown, "down").unwrap();
        kill9(pid_of(&s, "hidden").unwrap());
        kill9(pid_of(&s, "shown").unwrap());
        wait_status(&d, "both to be down", Duration::from_secs(10), |s| {
            backend(s, "hidden")["state"] != "ready" && backend(s, "shown")["state"] != "ready"
        })
        .await;
        let names = c.tool_names().await;
        assert!(!has(&names, "hidden_work"), "listWhenDown: false withdraws the tools: {names:?}");
        assert!(has(&names, "shown_work"), "by default the tools stay listed: {names:?}");
        let e = c.request("tools/call", json!({"name": "shown_work", "arguments": {}})).await;
        assert_eq!(e.error()["code"], -32000, "{:?}", e.messages);
        let msg = e.error()["message"].as_str().unwrap();
        assert!(msg.contains("'shown'") && msg.contains("unavailable"), "{msg}");
        let e = c.request("tools/call", json!({"name": "hidden_work", "arguments": {}})).await;
        assert_eq!(e.error()["code"], -32602, "a withdrawn tool is unknown: {:?}", e.messages);
        // Still down after a retry or two.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let names = c.tool_names().await;
        assert!(!has(&names, "hidden_work") && has(&names, "shown_work"), "{names:?}");

        // Back up: the withdrawn tools come back and both serve.
        std::fs::write(&gate_hidden, "up").unwrap();
        std::fs::write(&gate_shown, "up").unwrap();
        wait_status(&d, "both to be back", Duration::from_secs(20), |s| {
            backend(s, "hidden")["state"] == "ready" && backend(s, "shown")["state"] == "ready"
        })
        .await;
        let names = c.tool_names().await;
        assert!(has(&names, "hidden_work") && has(&names, "shown_work"), "{names:?}");
        assert_eq!(text_of(&c.call("hidden_work", json!({})).await), "ok");
        assert_eq!(text_of(&c.call("shown_work", json!({})).await), "ok");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4–5: deadlines and health probes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_extends_the_call_deadline_and_silence_times_out() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let mut clock = demo("clock");
        clock["requestTimeoutMs"] = json!(500);
        let d = Daemon::start(json!({"mcpServers": {"clock": clock}})).await;
        let mut c = d.client().await;

        // 1500 ms with progress every 150 ms: three times the timeout, and it completes.
        let t = Instant::now();
        let reply = c
            .request(
                "tools/call",
                json!({"name": "clock_sleep", "arguments": {"ms": 1500}, "_meta": {"progressToken": "p-1"}}),
            )
            .await;
        let took = t.elapsed();
        assert!(text_of(reply.result()).contains("1500"), "{:?}", reply.messages);
        let progress = reply.messages.iter().filter(|m| m["method"] == "notifications/progress").count();
        assert!(progress >= 5, "{:?}", reply.messages);
        assert!(took >= Duration::from_millis(1400), "{took:?}");

        // The same call without a progress token times out after the 500 ms.
        let t = Instant::now();
        let reply = c.request("tools/call", json!({"name": "clock_sleep", "arguments": {"ms": 1500}})).await;
        let took = t.elapsed();
        let err = reply.error();
        assert_eq!(err["code"], -32001, "{err}");
        assert!(err["message"].as_str().unwrap().contains("'clock'"), "{err}");
        assert!(took >= Duration::from_millis(450) && took < Duration::from_millis(1400), "{took:?}");
        // The backend is fine.
        assert_eq!(text_of(&c.call("clock_echo", json!({"text": "fine"})).await), "fine");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_stops_answering_pings_is_restarted() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let dir = TempDir::new("supervision-stall");
        let marker = dir.file("stalled");
        // Answers for 5 s (long enough to start even on a busy machine), then nothing; only the
        // first process stalls.
        let mut staller = stalling(&["stall", "5", marker.to_str().unwrap()]);
        staller["pingIntervalMs"] = json!(300);
        staller["requestTimeoutMs"] = json!(500);
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock"), "staller": staller}})).await;
        let s = d.status().await;
        let pid = pid_of(&s, "staller").unwrap();
        assert_eq!(backend(&s, "staller")["state"], "ready");
        let mut c = d.client().await;
        assert_eq!(text_of(&c.call("staller_work", json!({})).await), "ok");

        let mut errors = BTreeSet::new();
        // Generous: on a loaded 2-core machine the stall, the ping timeout, stopping the stuck
        // child (stdin closed, then SIGTERM) and starting Python again all take longer.
        let deadline = Instant::now() + Duration::from_secs(45);
        let s = loop {
            let s = d.status().await;
            let b = backend(&s, "staller");
            if let Some(e) = b["lastError"].as_str() {
                errors.insert(e.to_owned());
            }
            if b["state"] == "ready" && pid_of(&s, "staller").is_some_and(|p| p != pid) {
                break s;
            }
            assert!(Instant::now() < deadline, "the stalled backend was not restarted: {s:#}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        eprintln!("lastError values seen: {errors:?}");
        assert!(marker.exists(), "the first process did stall");
        assert!(restarts(&s, "staller") >= 1, "{s:#}");
        assert!(errors.iter().any(|e| e.contains("ping")), "lastError mentions the ping: {errors:?}");
        assert!(!process_alive(pid), "the stalled process was stopped");
        assert_eq!(text_of(&c.call("staller_work", json!({})).await), "ok");
        assert_eq!(restarts(&s, "clock"), 0);
        // The new one answers its pings and is left alone.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let s2 = d.status().await;
        assert_eq!(restarts(&s2, "staller"), restarts(&s, "staller"), "{s2:#}");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 6: readiness

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_only_for_required_backends() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let mut optional = raw("exit");
        optional["required"] = json!(false);
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock"), "optional": optional}})).await;
        assert_eq!(backend(&d.status().await, "optional")["state"], "failed");
        let (code, body) = get_text(d.url("/readyz")).await;
        assert_eq!(code, 200, "{body}");
        let ready: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ready["ready"], true, "{body}");
        assert_eq!(ready["notReady"], json!([]), "{body}");
        d.stop().await.unwrap();

        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock"), "needed": raw("exit")}})).await;
        let (code, body) = get_text(d.url("/readyz")).await;
        assert_eq!(code, 503, "{body}");
        let ready: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ready["ready"], false, "{body}");
        let not_ready = ready["notReady"].as_array().unwrap();
        assert_eq!(not_ready.len(), 1, "{body}");
        assert_eq!(not_ready[0]["name"], "needed", "{body}");
        assert!(matches!(not_ready[0]["state"].as_str(), Some("failed" | "restarting" | "starting")), "{body}");
        assert!(not_ready[0]["error"].is_string(), "{body}");
        // Liveness is not readiness.
        let (code, _) = get_text(d.url("/healthz")).await;
        assert_eq!(code, 200);
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 7: many crash-restarts leak nothing

struct Spawned {
    child: Child,
    base: String,
    _stdout: Option<BufReader<std::process::ChildStdout>>,
    _dir: TempDir,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `mcpmux serve --config FILE --listen 127.0.0.1:0` and waits for its `serving` line.
async fn spawn_daemon(tag: &str, doc: &Value) -> Spawned {
    let dir = TempDir::new(tag);
    let path = dir.file("mcp.json");
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    let mut child = Command::new(common::mcpmux_exe())
        .args(["serve", "--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                return (reader, None);
            }
            if let Some(url) = line.trim_end().strip_prefix("serving ") {
                return (reader, Some(url.trim_end_matches("/mcp").to_owned()));
            }
        }
    });
    let mut spawned = Spawned { child, base: String::new(), _stdout: None, _dir: dir };
    let (reader, base) =
        tokio::time::timeout(common::TEST_TIMEOUT, read).await.expect("daemon start timed out").unwrap();
    spawned.base = base.expect("the daemon printed its URL");
    spawned._stdout = Some(reader);
    spawned
}

/// Children of `pid` (from /proc), with their state letter.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("").to_owned();
        if fields.next().and_then(|f| f.parse::<u32>().ok()) == Some(pid) {
            out.push((p, state));
        }
    }
    out.sort();
    out
}

async fn get_status(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/status")).send().await.unwrap().json().await.unwrap()
}

fn count_entries(dir: String) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
struct Resources {
    threads: usize,
    fds: usize,
    children: usize,
}

fn resources_of(pid: u32) -> Resources {
    Resources {
        threads: count_entries(format!("/proc/{pid}/task")),
        fds: count_entries(format!("/proc/{pid}/fd")),
        children: children_of(pid).len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_crash_restarts_leak_no_processes_threads_or_fds() {
    tokio::time::timeout(LONG_TEST_TIMEOUT, async {
        // The restart backoff doubles per crash (0.5 s, 1 s, 2 s, …) and resets only after a
        // minute of uptime, so the crashes are spread over many backends: 9 demo backends
        // killed with SIGKILL and 8 that exit on their first call, 3 crashes each (51).
        const ROUNDS: u64 = 3;
        let mut servers = serde_json::Map::new();
        let killed: Vec<String> = (0..9).map(|i| format!("k{i}")).collect();
        let crashers: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
        for k in &killed {
            servers.insert(k.clone(), demo("clock"));
        }
        for c in &crashers {
            servers.insert(c.clone(), stalling(&["crash-after-call"]));
        }
        let all: Vec<String> = killed.iter().chain(&crashers).cloned().collect();
        let d = spawn_daemon("crashes", &json!({"mcpServers": servers, "mcpmux": {"listen": "127.0.0.1:0"}})).await;
        let http = reqwest::Client::new();
        let s = get_status(&http, &d.base).await;
        for name in &all {
            assert_eq!(backend(&s, name)["state"], "ready", "{s:#}");
        }
        let daemon_pid = d.child.id();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let base = resources_of(daemon_pid);
        eprintln!("baseline: {base:?}");
        assert_eq!(base.children, all.len(), "{:?}", children_of(daemon_pid));

        let mut clients: BTreeMap<String, common::Client> = BTreeMap::new();
        for c in &crashers {
            clients.insert(c.clone(), common::Client::connect(&format!("{}/servers/{c}/mcp", d.base)).await);
        }
        // For each backend: the pids it had, and how many crashes it has had.
        let mut pids: BTreeMap<String, Vec<u32>> = all.iter().map(|n| (n.clone(), Vec::new())).collect();
        let mut crashes: BTreeMap<String, u64> = all.iter().map(|n| (n.clone(), 0)).collect();
        let started = Instant::now();
        loop {
            let s = get_status(&http, &d.base).await;
            let mut done = true;
            for name in &all {
                let b = backend(&s, name);
                let seen = pids.get_mut(name).unwrap();
                let Some(pid) = pid_of(&s, name) else {
                    done = false;
                    continue;
                };
                if crashes[name] == ROUNDS && b["state"] == "ready" && seen.last() == Some(&pid) {
                    continue; // finished
                }
                if b["state"] != "ready" || seen.contains(&pid) {
                    done = false;
                    continue;
                }
                // Ready with a new process: count the previous crash, then crash it again.
                assert_eq!(restarts(&s, name), crashes[name], "{name} restarted more than it crashed: {b}");
                seen.push(pid);
                if crashes[name] == ROUNDS {
                    continue;
                }
                done = false;
                *crashes.get_mut(name).unwrap() += 1;
                if let Some(c) = clients.get_mut(name) {
                    let e = c.request("tools/call", json!({"name": "work", "arguments": {}})).await;
                    assert_eq!(e.error()["code"], -32000, "{:?}", e.messages);
                    assert!(e.error()["message"].as_str().unwrap().contains(&format!("'{name}'")), "{:?}", e.messages);
                } else {
                    kill9(pid);
                }
            }
            if done && pids.values().all(|p| p.len() as u64 == ROUNDS + 1) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(90), "crash rounds did not finish: {crashes:?}\n{s:#}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let total: u64 = crashes.values().sum();
        eprintln!("{total} crash-restarts in {:.1} s", started.elapsed().as_secs_f64());
        assert!(total >= 50);
        drop(clients);

        // Each backend serves with its latest process; every earlier one is gone and reaped.
        let s = get_status(&http, &d.base).await;
        let latest: BTreeSet<u32> = all.iter().map(|n| pid_of(&s, n).unwrap()).collect();
        assert_eq!(latest.len(), all.len());
        let earlier: Vec<u32> = pids.values().flat_map(|p| p[..p.len() - 1].iter().copied()).collect();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let alive: Vec<u32> = earlier.iter().copied().filter(|p| process_alive(*p)).collect();
            let kids = children_of(daemon_pid);
            let kid_pids: BTreeSet<u32> = kids.iter().map(|k| k.0).collect();
            if alive.is_empty() && kid_pids == latest {
                break;
            }
            assert!(Instant::now() < deadline, "left over: alive {alive:?}, children {kids:?}, expected {latest:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = resources_of(daemon_pid);
            if now.threads <= base.threads + 4 && now.fds <= base.fds + 6 && now.children == base.children {
                eprintln!("after the crashes: {now:?} (baseline {base:?})");
                break;
            }
            assert!(Instant::now() < deadline, "resources grew: now {now:?}, baseline {base:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Everything still serves.
        let mut c = common::Client::connect(&format!("{}/mcp", d.base)).await;
        assert_eq!(text_of(&c.call("k0_echo", json!({"text": "alive"})).await), "alive");
        let names = c.tool_names().await;
        assert!(crashers.iter().all(|n| has(&names, &format!("{n}_work"))), "{names:?}");
    })
    .await
    .unwrap();
}
