//! Every way a client can get the HTTP exchange wrong gets a clear, specific answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Daemon, demo};
use serde_json::{Value, json};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn post(d: &Daemon, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Raw {
    let mut req = reqwest::Client::new().post(d.url("/mcp")).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    Raw { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await.unwrap() }
}

const JSON_BOTH: [(&str, &str); 2] =
    [("content-type", "application/json"), ("accept", "application/json, text/event-stream")];

async fn daemon(settings: Value) -> Daemon {
    Daemon::start(json!({"mcpServers": {"clock": demo("clock")}, "mcpmux": settings})).await
}

#[tokio::test]
async fn session_version_accept_and_body_errors() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = daemon(json!({"maxBodyBytes": 2048})).await;
        let mut c = d.client().await;
        let sid = c.session.clone().unwrap();

        // No session header on a non-initialize request → 400.
        let r = post(&d, &JSON_BOTH, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
        assert_eq!(r.status, 400);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("Mcp-Session-Id"), "{}", r.body);

        // Unknown session → 404.
        let r = post(
            &d,
            &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", "nope")],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .await;
        assert_eq!(r.status, 404);

        // Unsupported protocol version header → 400, naming the supported ones.
        let r = post(
            &d,
            &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", &sid), ("mcp-protocol-version", "1999-01-01")],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("1999-01-01") && r.body.contains("2025-11-25"), "{}", r.body);
        // An absent version header is fine (2025-03-26 is assumed, or the session's version).
        let r = post(
            &d,
            &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", &sid)],
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);

        // Accepting neither JSON nor SSE → 406.
        let r = post(&d, &[JSON_BOTH[0], ("accept", "text/html")], INIT).await;
        assert_eq!(r.status, 406);

        // Too large a body → 413.
        let big = format!(r#"{{"jsonrpc":"2.0","id":3,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(4096));
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", &sid)], big).await;
        assert_eq!(r.status, 413);

        // Malformed JSON → -32700.
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", &sid)], "{not json").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["error"]["code"], -32700);
        // Not JSON-RPC → -32600.
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", &sid)], r#"{"hello":"world"}"#).await;
        assert_eq!(r.json()["error"]["code"], -32600);

        // Unknown method → -32601 in a 200 response.
        let reply = c.request("does/not/exist", json!({})).await;
        assert_eq!(reply.error()["code"], -32601);

        // Notifications get 202 with no body.
        let r = post(
            &d,
            &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", &sid)],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .await;
        assert_eq!((r.status, r.body.as_str()), (202, ""));

        // A client that takes only SSE gets SSE even for a quick answer.
        let r = post(
            &d,
            &[JSON_BOTH[0], ("accept", "text/event-stream"), ("mcp-session-id", &sid)],
            r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#,
        )
        .await;
        assert_eq!(r.headers["content-type"], "text/event-stream");
        assert_eq!(common::parse_sse(&r.body)[0]["id"], 5);

        // GET without SSE in Accept → 406; a second GET stream on one session → 409.
        let http = reqwest::Client::new();
        let r = http
            .get(d.url("/mcp"))
            .header("accept", "application/json")
            .header("mcp-session-id", &sid)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 406);
        let first = http
            .get(d.url("/mcp"))
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &sid)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 200);
        let second = http
            .get(d.url("/mcp"))
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &sid)
            .send()
            .await
            .unwrap();
        assert_eq!(second.status(), 409);
        drop(first);

        // DELETE ends the session; it is then unknown.
        let r = http.delete(d.url("/mcp")).header("mcp-session-id", &sid).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = post(
            &d,
            &[JSON_BOTH[0], JSON_BOTH[1], ("mcp-session-id", &sid)],
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        )
        .await;
        assert_eq!(r.status, 404);
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn host_origin_and_token_checks() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = daemon(json!({"authToken": "t0ken", "allowedOrigins": ["https://app.example.com"]})).await;
        let auth = ("authorization", "Bearer t0ken");

        let r = post(&d, &JSON_BOTH, INIT).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], ("authorization", "Bearer wrong")], INIT).await;
        assert_eq!(r.status, 401);
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], auth], INIT).await;
        assert_eq!(r.status, 200);

        // DNS rebinding: a foreign Host or Origin is refused even with the token.
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], auth, ("host", "evil.example.com")], INIT).await;
        assert_eq!(r.status, 403);
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], auth, ("origin", "http://evil.example.com")], INIT).await;
        assert_eq!(r.status, 403);
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], auth, ("origin", "https://app.example.com")], INIT).await;
        assert_eq!(r.status, 200);
        let r = post(&d, &[JSON_BOTH[0], JSON_BOTH[1], auth, ("origin", "http://localhost:5173")], INIT).await;
        assert_eq!(r.status, 200);

        // Health needs no token; status does.
        assert_eq!(reqwest::get(d.url("/healthz")).await.unwrap().status(), 200);
        assert_eq!(reqwest::get(d.url("/status")).await.unwrap().status(), 401);
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_public_address_without_a_token_is_refused() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        // Binding 0.0.0.0 is only to see the refusal: no traffic is sent to it.
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let cfg = common::config(json!({"mcpServers": {"clock": demo("clock")}}));
        let err = mcpmux::run(cfg, listener, async {}).await.unwrap_err();
        assert!(matches!(err, mcpmux::RunError::UnauthenticatedPublicListen(_)), "{err}");
        assert!(err.to_string().contains("--allow-unauthenticated"));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_clients_authorization_header_never_reaches_a_backend() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        // The token is checked at the edge; backends (stdio here) get only the JSON-RPC message.
        let d = Daemon::start(json!({"mcpServers": {"raw": {"command": "python3", "args": [common::fixture("raw_server.py")]}}, "mcpmux": {"authToken": "s3cret-token"}})).await;
        let http = reqwest::Client::new();
        let init = http.post(d.url("/servers/raw/mcp")).header("content-type", "application/json").header("accept", "application/json").header("authorization", "Bearer s3cret-token").body(INIT).send().await.unwrap();
        let sid = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let r = http
            .post(d.url("/servers/raw/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("authorization", "Bearer s3cret-token")
            .header("mcp-session-id", &sid)
            .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"probe"}}"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(r.contains(r#""received":{"name":"probe"}"#), "{r}");
        assert!(!r.contains("s3cret-token"));
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}
