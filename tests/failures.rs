//! Broken backends never hide the working ones, and calls to them fail fast and clearly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, demo, fixture, text_of};
use serde_json::{Value, json};

fn raw(mode: &str) -> Value {
    json!({"command": "python3", "args": [fixture("raw_server.py"), mode]})
}

fn backend<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["backends"].as_array().unwrap().iter().find(|b| b["name"] == name).unwrap()
}

#[tokio::test]
async fn failed_backends_are_reported_and_the_rest_serve() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let started = Instant::now();
        let d = Daemon::start(json!({
            "mcpServers": {
                "clock": demo("clock"),
                "missing": {"command": "/nonexistent/mcp-server"},
                "quitter": raw("exit"),
                "sleeper": raw("hang"),
                "noisy": raw("garbage"),
            },
            "mcpmux": {"startupTimeoutMs": 1500}
        }))
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a hung backend must not hold up start-up past its timeout"
        );
        let status = d.status().await;
        assert_eq!(backend(&status, "clock")["state"], "ready");
        assert_eq!(backend(&status, "noisy")["state"], "ready", "non-JSON lines on stdout are skipped");
        for name in ["missing", "quitter", "sleeper"] {
            let b = backend(&status, name);
            assert_ne!(b["state"], "ready", "{b}");
            assert!(b["lastError"].is_string(), "{b}");
        }
        assert!(backend(&status, "missing")["lastError"].as_str().unwrap().contains("/nonexistent/mcp-server"));
        assert!(backend(&status, "sleeper")["lastError"].as_str().unwrap().contains("within"));

        let ready: Value = reqwest::get(d.url("/readyz")).await.unwrap().json().await.unwrap();
        assert_eq!(ready["ready"], false);

        let mut c = d.client().await;
        let names = c.tool_names().await;
        assert!(names.contains(&"clock_echo".to_owned()) && names.contains(&"noisy_probe".to_owned()), "{names:?}");
        assert_eq!(text_of(&c.call("clock_echo", json!({"text": "still here"})).await), "still here");

        // The un-prefixed endpoint of a failed backend says it is unavailable.
        let mut solo = common::Client::connect(&d.url("/servers/quitter/mcp")).await;
        let e = solo.request("tools/call", json!({"name": "probe"})).await;
        assert_eq!(e.error()["code"], -32000);
        assert!(e.error()["message"].as_str().unwrap().contains("quitter"), "{}", e.error());
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_call_that_never_returns_times_out_without_blocking_others() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let mut slow = raw("slowcall");
        slow["requestTimeoutMs"] = json!(800);
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock"), "slow": slow}})).await;
        let c = d.client().await;
        let url = c.url.clone();
        let sid = c.session.clone().unwrap();
        let stuck = tokio::spawn(async move {
            let mut c2 = common::Client::connect(&url).await;
            c2.session = Some(sid);
            let t = Instant::now();
            let mut solo_url = url.clone();
            solo_url.truncate(solo_url.len() - "/mcp".len());
            let mut solo = common::Client::connect(&format!("{solo_url}/servers/slow/mcp")).await;
            let e = solo.request("tools/call", json!({"name": "slow"})).await.error().clone();
            (e, t.elapsed())
        });
        // Meanwhile the other backend answers at once.
        let mut c = c;
        for i in 0..5 {
            assert_eq!(text_of(&c.call("clock_echo", json!({"text": format!("n{i}")})).await), format!("n{i}"));
        }
        let (err, took) = stuck.await.unwrap();
        assert_eq!(err["code"], -32001, "{err}");
        assert!(err["message"].as_str().unwrap().contains("slow"), "{err}");
        assert!(took >= Duration::from_millis(700), "timed out too early: {took:?}");
        // The same backend still serves other calls.
        let r = c.call("slow_probe", json!({})).await;
        assert_eq!(text_of(&r), "ok");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_backend_killed_mid_call_fails_the_call_at_once_and_comes_back() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock"), "slow": raw("slowcall")}})).await;
        let status = d.status().await;
        let pid = backend(&status, "slow")["pid"].as_u64().unwrap() as i32;
        let mut solo = common::Client::connect(&d.url("/servers/slow/mcp")).await;
        let call = tokio::spawn(async move {
            let t = Instant::now();
            let e = solo.request("tools/call", json!({"name": "slow"})).await.error().clone();
            (e, t.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        let (err, took) = call.await.unwrap();
        assert_eq!(err["code"], -32000, "{err}");
        assert!(err["message"].as_str().unwrap().contains("slow"), "{err}");
        assert!(took < Duration::from_secs(5), "the in-flight call must fail at once, took {took:?}");

        // It is restarted and serves again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = d.status().await;
            let b = backend(&s, "slow");
            if b["state"] == "ready" && b["pid"].as_u64() != Some(pid as u64) {
                assert!(b["restarts"].as_u64().unwrap() >= 1);
                break;
            }
            assert!(Instant::now() < deadline, "backend did not come back: {b}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut c = d.client().await;
        assert_eq!(text_of(&c.call("slow_probe", json!({})).await), "ok");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}
