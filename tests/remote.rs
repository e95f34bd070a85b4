//! Remote backends: streamable HTTP, legacy HTTP+SSE and the inference between them, against
//! real servers started by each test on 127.0.0.1 (server-everything, FastMCP, an in-process
//! rmcp server, and a tiny stdlib Python server that misbehaves on request), and their failure
//! modes: a backend that forgets the session or restarts, one that never answers, a wrong
//! token, an oversized answer, and a response stream cut in the middle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, demo, text_of};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use common::{HttpPeer as Peer, free_port};

/// server-everything in `streamableHttp` or `sse` mode, on `port` (a free one by default).
async fn everything(mode: &str, port: Option<u16>) -> Peer {
    Peer::everything(mode, port.unwrap_or_else(free_port)).await
}

/// A Python fixture that prints its port on its first line.
async fn python_peer(script: &str, args: &[&str]) -> Peer {
    let mut cmd = Command::new(common::python());
    cmd.arg(common::fixture(script)).args(args);
    Peer::spawn_announcing(cmd).await
}

/// The FastMCP peer over `http` or `sse`, its endpoint at `path` when given.
async fn fastmcp(transport: &str, path: Option<&str>) -> Peer {
    let mut args = vec![transport, "0"];
    args.extend(path);
    python_peer("fastmcp_http_server.py", &args).await
}

/// The tiny stdlib server in `mode` (normal, hang, auth).
async fn tiny(mode: &str) -> Peer {
    python_peer("tiny_http_server.py", &[mode]).await
}

async fn tiny_stats(peer: &Peer) -> Value {
    reqwest::get(peer.url("/admin/stats")).await.unwrap().json().await.unwrap()
}

fn backend<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["backends"].as_array().unwrap().iter().find(|b| b["name"] == name).unwrap()
}

/// Waits until `name` is ready again after at least one restart.
async fn wait_restarted(d: &Daemon, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = d.status().await;
        let b = backend(&s, name).clone();
        if b["state"] == "ready" && b["restarts"].as_u64().unwrap_or(0) >= 1 {
            return b;
        }
        assert!(Instant::now() < deadline, "backend {name} did not come back: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

mod rmcp_peer {
    //! An rmcp streamable-HTTP server served in-process with axum.

    use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
    use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
    use tokio_util::sync::CancellationToken;

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    struct TextArg {
        /// The text to reverse.
        text: String,
    }

    #[derive(Debug, Clone)]
    struct Reverser {
        tool_router: ToolRouter<Self>,
    }

    #[tool_router]
    impl Reverser {
        fn new() -> Self {
            Self { tool_router: Self::tool_router() }
        }

        #[tool(description = "Reverses the text, character by character")]
        fn reverse(&self, Parameters(TextArg { text }): Parameters<TextArg>) -> String {
            text.chars().rev().collect()
        }
    }

    #[tool_handler(router = self.tool_router)]
    impl ServerHandler for Reverser {
        fn get_info(&self) -> ServerConfig {
            ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
                .with_server_info(Implementation::new("rmcp-http-peer", "0.1.0"))
        }
    }

    /// Serves until the returned token is cancelled (or dropped with the runtime).
    pub async fn serve() -> (std::net::SocketAddr, CancellationToken) {
        let ct = CancellationToken::new();
        let service = StreamableHttpService::new(
            || Ok(Reverser::new()),
            LocalSessionManager::default().into(),
            StreamableHttpServerConfig::default().with_cancellation_token(ct.child_token()),
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = ct.clone();
        tokio::spawn(async move {
            let _ =
                axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled_owned().await }).await;
        });
        (addr, ct)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_remote_transport_serves_namespaced_together() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (rmcp_addr, rmcp_stop) = rmcp_peer::serve().await;
        let (se_http, se_sse, fast_http, fast_sse) = tokio::join!(
            everything("streamableHttp", None),
            everything("sse", None),
            fastmcp("http", None),
            fastmcp("sse", None),
        );
        let d = Daemon::start(json!({"mcpServers": {
            "everything": {"url": se_http.url("/mcp")},
            "legacy": {"url": se_sse.url("/sse")},
            "fast": {"url": fast_http.url("/mcp"), "transport": "http"},
            "fastsse": {"url": fast_sse.url("/sse"), "transport": "sse"},
            "rmcp": {"url": format!("http://{rmcp_addr}/mcp"), "transport": "streamable-http"},
        }}))
        .await;
        let status = d.status().await;
        for name in ["everything", "legacy", "fast", "fastsse", "rmcp"] {
            assert_eq!(backend(&status, name)["state"], "ready", "{}", backend(&status, name));
        }
        let mut c = d.client().await;
        let names = c.tool_names().await;
        for tool in ["everything_echo", "legacy_echo", "fast_multiply", "fastsse_shout", "rmcp_reverse"] {
            assert!(names.contains(&tool.to_owned()), "{tool} missing from {names:?}");
        }
        assert_eq!(text_of(&c.call("everything_echo", json!({"message": "hi"})).await), "Echo: hi");
        assert_eq!(text_of(&c.call("legacy_echo", json!({"message": "old"})).await), "Echo: old");
        assert_eq!(text_of(&c.call("fast_multiply", json!({"a": 6, "b": 7})).await), "42");
        assert_eq!(text_of(&c.call("fastsse_shout", json!({"text": "hey"})).await), "HEY!");
        assert_eq!(text_of(&c.call("rmcp_reverse", json!({"text": "abc"})).await), "cba");

        // Progress travels on the call's own response stream and reaches the caller.
        let reply = c
            .request(
                "tools/call",
                json!({"name": "everything_trigger-long-running-operation",
                       "arguments": {"duration": 0.4, "steps": 2},
                       "_meta": {"progressToken": "p-1"}}),
            )
            .await;
        assert!(text_of(reply.result()).starts_with("Long running operation completed"), "{reply:?}");
        let progress: Vec<&Value> = reply.messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
        assert_eq!(progress.len(), 2, "{reply:?}");
        assert!(progress.iter().all(|p| p["params"]["progressToken"] == "p-1"), "{progress:?}");

        // Calls to different backends and to the same backend run side by side.
        let mut calls = Vec::new();
        for i in 0..6 {
            let url = c.url.clone();
            calls.push(tokio::spawn(async move {
                let mut c = common::Client::connect(&url).await;
                let (tool, args, want) = match i % 3 {
                    0 => ("everything_echo", json!({"message": format!("m{i}")}), format!("Echo: m{i}")),
                    1 => ("fast_multiply", json!({"a": i, "b": 2}), (i * 2).to_string()),
                    _ => ("rmcp_reverse", json!({"text": format!("r{i}")}), format!("{i}r")),
                };
                assert_eq!(text_of(&c.call(tool, args).await), want);
            }));
        }
        for call in calls {
            call.await.unwrap();
        }
        d.stop().await.unwrap();
        rmcp_stop.cancel();
        drop((se_http, se_sse, fast_http, fast_sse));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn without_a_transport_key_an_sse_only_server_is_reached_over_sse() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        // The stream is at /events, so the URL gives no hint: the POST is refused (405), and the
        // transport falls back to SSE.
        let fast_sse = fastmcp("sse", Some("/events")).await;
        let tiny = tiny("normal").await;
        let d = Daemon::start(json!({"mcpServers": {
            "inferred": {"url": fast_sse.url("/events")},
            "streamable": {"url": tiny.url("/mcp")},
            "nowhere": {"url": fast_sse.url("/nowhere")},
        }}))
        .await;
        let status = d.status().await;
        assert_eq!(backend(&status, "inferred")["state"], "ready", "{status}");
        assert_eq!(backend(&status, "streamable")["state"], "ready", "{status}");
        // Neither transport answers there: the error says what each attempt got.
        let nowhere = backend(&status, "nowhere");
        assert_eq!(nowhere["state"], "failed", "{nowhere}");
        let error = nowhere["lastError"].as_str().unwrap();
        assert!(error.contains("SSE stream request") && error.contains("initialize POST got HTTP 404"), "{error}");
        let mut c = d.client().await;
        assert_eq!(text_of(&c.call("inferred_multiply", json!({"a": 3, "b": 5})).await), "15");
        assert_eq!(text_of(&c.call("streamable_probe", json!({})).await), "ok");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_backend_that_forgets_the_session_is_reinitialized() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let tiny = tiny("normal").await;
        let d = Daemon::start(json!({"mcpServers": {"tiny": {"url": tiny.url("/mcp")}, "clock": demo("clock")}})).await;
        let mut c = d.client().await;
        assert_eq!(text_of(&c.call("tiny_probe", json!({})).await), "ok");

        reqwest::get(tiny.url("/admin/forget")).await.unwrap();
        let t = Instant::now();
        let e = c.request("tools/call", json!({"name": "tiny_probe"})).await.error().clone();
        assert_eq!(e["code"], -32000, "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("tiny") && message.contains("session"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());

        let b = wait_restarted(&d, "tiny").await;
        assert!(b["lastError"].is_null(), "{b}");
        assert!(c.tool_names().await.contains(&"tiny_probe".to_owned()));
        assert_eq!(text_of(&c.call("tiny_probe", json!({})).await), "ok");
        assert_eq!(text_of(&c.call("clock_echo", json!({"text": "t"})).await), "t");
        let stats = tiny_stats(&tiny).await;
        assert_eq!(stats["initialize"], 2, "{stats}");
        // Every request after initialize carried the negotiated version.
        assert_eq!(stats["versions"], json!(["2025-06-18"]), "{stats}");

        d.stop().await.unwrap();
        // Stopping ends the session.
        assert_eq!(tiny_stats(&tiny).await["deleted"], 1);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_restarted_on_the_same_port_is_reinitialized_and_relisted() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let first = everything("streamableHttp", None).await;
        let port = first.port;
        let d = Daemon::start(json!({"mcpServers": {"everything": {"url": first.url("/mcp")}}})).await;
        let mut c = d.client().await;
        assert_eq!(text_of(&c.call("everything_echo", json!({"message": "a"})).await), "Echo: a");

        first.kill().await;
        let t = Instant::now();
        let e = c.request("tools/call", json!({"name": "everything_echo", "arguments": {"message": "b"}})).await;
        let e = e.error();
        assert_eq!(e["code"], -32000, "{e}");
        assert!(e["message"].as_str().unwrap().contains("everything"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "the call must fail at once, took {:?}", t.elapsed());

        let second = everything("streamableHttp", Some(port)).await;
        wait_restarted(&d, "everything").await;
        let names = c.tool_names().await;
        assert!(names.contains(&"everything_echo".to_owned()), "{names:?}");
        assert_eq!(text_of(&c.call("everything_echo", json!({"message": "c"})).await), "Echo: c");
        d.stop().await.unwrap();
        drop(second);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_sse_stream_ends_the_connection_and_it_is_reconnected() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let first = everything("sse", None).await;
        let port = first.port;
        let d = Daemon::start(json!({"mcpServers": {"legacy": {"url": first.url("/sse")}}})).await;
        let mut c = d.client().await;
        assert_eq!(text_of(&c.call("legacy_echo", json!({"message": "a"})).await), "Echo: a");

        first.kill().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = d.status().await;
            let b = backend(&s, "legacy");
            if b["state"] != "ready" {
                // The stream's end, or a POST's refused connection, whichever is seen first.
                let error = b["lastError"].as_str().unwrap();
                assert!(error.contains(&format!("127.0.0.1:{port}/sse")), "{b}");
                assert!(error.contains("SSE stream") || error.contains("lost the connection"), "{b}");
                break;
            }
            assert!(Instant::now() < deadline, "the dropped stream was not noticed: {b}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let e = c.request("tools/call", json!({"name": "legacy_echo", "arguments": {"message": "b"}})).await;
        assert_eq!(e.error()["code"], -32000, "{e:?}");

        let second = everything("sse", Some(port)).await;
        wait_restarted(&d, "legacy").await;
        assert_eq!(text_of(&c.call("legacy_echo", json!({"message": "c"})).await), "Echo: c");
        d.stop().await.unwrap();
        drop(second);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_remote_call_that_never_returns_times_out_without_blocking_others() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (hang, other) = tokio::join!(tiny("hang"), tiny("normal"));
        let d = Daemon::start(json!({"mcpServers": {
            "slow": {"url": hang.url("/mcp"), "requestTimeoutMs": 800},
            "tiny": {"url": other.url("/mcp")},
            "clock": demo("clock"),
        }}))
        .await;
        let solo_url = d.url("/servers/slow/mcp");
        let stuck = tokio::spawn(async move {
            let mut solo = common::Client::connect(&solo_url).await;
            let t = Instant::now();
            let e = solo.request("tools/call", json!({"name": "slow"})).await.error().clone();
            (e, t.elapsed())
        });
        let mut c = d.client().await;
        for i in 0..5 {
            let t = Instant::now();
            assert_eq!(text_of(&c.call("tiny_probe", json!({})).await), "ok");
            assert_eq!(text_of(&c.call("clock_echo", json!({"text": format!("n{i}")})).await), format!("n{i}"));
            assert!(t.elapsed() < Duration::from_millis(700), "other backends were held up: {:?}", t.elapsed());
        }
        let (err, took) = stuck.await.unwrap();
        assert_eq!(err["code"], -32001, "{err}");
        assert!(err["message"].as_str().unwrap().contains("slow"), "{err}");
        assert!(took >= Duration::from_millis(700), "timed out too early: {took:?}");
        // The same backend still answers other calls, and several at once.
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let url = c.url.clone();
                tokio::spawn(async move {
                    text_of(&common::Client::connect(&url).await.call("slow_probe", json!({})).await)
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), "ok");
        }
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_wrong_token_is_reported_with_the_http_status_and_the_rest_serve() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let auth = tiny("auth").await;
        let d = Daemon::start(json!({"mcpServers": {
            "good": {"url": auth.url("/mcp"), "headers": {"Authorization": "Bearer right"}},
            "bad": {"url": auth.url("/mcp"), "headers": {"Authorization": "Bearer wrong-token-value"}},
            "clock": demo("clock"),
        }}))
        .await;
        let status = d.status().await;
        let bad = backend(&status, "bad");
        assert_eq!(bad["state"], "failed", "{bad}");
        let error = bad["lastError"].as_str().unwrap();
        assert!(error.contains("401"), "{bad}");
        assert!(!status.to_string().contains("wrong-token-value"), "a header value leaked into /status: {status}");
        assert_eq!(backend(&status, "good")["state"], "ready");
        let mut c = d.client().await;
        assert_eq!(text_of(&c.call("good_probe", json!({})).await), "ok");
        assert_eq!(text_of(&c.call("clock_echo", json!({"text": "up"})).await), "up");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_answer_over_the_size_limit_fails_that_call_only() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let tiny = tiny("normal").await;
        let d = Daemon::start(json!({
            "mcpServers": {"tiny": {"url": tiny.url("/mcp")}},
            "mcpmux": {"maxMessageBytes": 65536}
        }))
        .await;
        let mut c = d.client().await;
        let e = c.request("tools/call", json!({"name": "tiny_big"})).await.error().clone();
        assert!(e["message"].as_str().unwrap().contains("65536-byte limit"), "{e}");
        assert_eq!(text_of(&c.call("tiny_probe", json!({})).await), "ok");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

/// A TCP proxy that cuts, once, the connection carrying a request that contains `request_marker`
/// right after the response event that contains `event_marker`; for `hold` after that, bytes
/// from clients to the server wait (the network is slow to come back).
struct CutProxy {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl CutProxy {
    async fn start(upstream: u16, request_marker: &'static [u8], event_marker: &'static [u8], hold: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let flag = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (flag, cut_at) = (flag.clone(), cut_at.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let victim = Arc::new(AtomicBool::new(false));
                    let up = {
                        let (flag, cut_at, victim) = (flag.clone(), cut_at.clone(), victim.clone());
                        async move {
                            let mut buf = vec![0u8; 64 * 1024];
                            loop {
                                let n = match cr.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                if !flag.load(Ordering::SeqCst) && find(&buf[..n], request_marker).is_some() {
                                    victim.store(true, Ordering::SeqCst);
                                }
                                let until = cut_at.lock().unwrap().map(|at: Instant| at + hold);
                                if let Some(until) = until {
                                    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
                                }
                                if sw.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut seen: Vec<u8> = Vec::new();
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if victim.load(Ordering::SeqCst) && !flag.load(Ordering::SeqCst) {
                                let start = seen.len();
                                seen.extend_from_slice(&buf[..n]);
                                if let Some(at) = find(&seen, event_marker)
                                    && let Some(end) = find(&seen[at..], b"\n\n")
                                {
                                    let end = at + end + 2;
                                    let _ = cw.write_all(&seen[start..end.max(start)]).await;
                                    *cut_at.lock().unwrap() = Some(Instant::now());
                                    flag.store(true, Ordering::SeqCst);
                                    return;
                                }
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    // Either direction ending ends the connection (both halves are dropped).
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        CutProxy { port, cut }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_stream_cut_mid_call_is_resumed_with_last_event_id() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let se = everything("streamableHttp", None).await;
        // The call's stream is cut after its first progress event; the server finishes the work
        // meanwhile and keeps the rest in its event store, which the resumed GET replays.
        let proxy = CutProxy::start(
            se.port,
            b"trigger-long-running-operation",
            b"notifications/progress",
            Duration::from_millis(1500),
        )
        .await;
        let d = Daemon::start(json!({"mcpServers": {
            "everything": {"url": format!("http://127.0.0.1:{}/mcp", proxy.port)},
        }}))
        .await;
        let mut c = d.client().await;
        let reply = c
            .request(
                "tools/call",
                json!({"name": "everything_trigger-long-running-operation",
                       "arguments": {"duration": 1, "steps": 2},
                       "_meta": {"progressToken": "cut"}}),
            )
            .await;
        assert!(proxy.cut.load(Ordering::SeqCst), "the proxy never cut the stream");
        assert_eq!(
            text_of(reply.result()),
            "Long running operation completed. Duration: 1 seconds, Steps: 2.",
            "{reply:?}"
        );
        let progress = reply.messages.iter().filter(|m| m["method"] == "notifications/progress").count();
        assert!(progress >= 1, "{reply:?}");
        // Same session: no restart happened.
        let status = d.status().await;
        assert_eq!(backend(&status, "everything")["restarts"], 0, "{status}");
        assert_eq!(text_of(&c.call("everything_echo", json!({"message": "after"})).await), "Echo: after");
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

/// An HTTP server on 127.0.0.1 that answers every request with `307 Temporary Redirect` to
/// `location`.
async fn redirector(location: String) -> u16 {
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, location)]) }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test]
async fn a_redirect_on_the_same_host_is_followed_and_one_to_another_host_is_refused() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let (rmcp_addr, rmcp_stop) = rmcp_peer::serve().await;
        let same = redirector(format!("http://127.0.0.1:{}/mcp", rmcp_addr.port())).await;
        let other = redirector(format!("http://localhost:{}/mcp", rmcp_addr.port())).await;
        let d = Daemon::start(json!({"mcpServers": {
            "moved": {"url": format!("http://127.0.0.1:{same}/old"), "transport": "http"},
            "elsewhere": {"url": format!("http://127.0.0.1:{other}/old"), "transport": "http"},
        }}))
        .await;
        let status = d.status().await;
        assert_eq!(backend(&status, "moved")["state"], "ready", "{status}");
        let elsewhere = backend(&status, "elsewhere");
        assert_eq!(elsewhere["state"], "failed", "{elsewhere}");
        // The redirect is not followed: the backend is reported with the status it answered.
        assert!(elsewhere["lastError"].as_str().unwrap().contains("HTTP 307"), "{elsewhere}");
        let mut c = d.client().await;
        // Every POST of the session is redirected, not only the first.
        for text in ["abc", "xyz"] {
            let want: String = text.chars().rev().collect();
            assert_eq!(text_of(&c.call("moved_reverse", json!({"text": text})).await), want);
        }
        assert!(!c.tool_names().await.iter().any(|n| n.starts_with("elsewhere_")));
        d.stop().await.unwrap();
        rmcp_stop.cancel();
    })
    .await
    .unwrap();
}
