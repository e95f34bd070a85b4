//! A small in-process MCP server for the client's documentation examples: the built-in `clock`
//! demo over a minimal streamable-HTTP endpoint on 127.0.0.1. Not part of the API.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::demo::DemoServer;

/// A running example server; stops when dropped.
pub struct DocServer {
    /// Its MCP endpoint.
    pub url: String,
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the `clock` demo server on a free port of 127.0.0.1.
pub async fn clock_server() -> Result<DocServer, Box<dyn std::error::Error>> {
    let server = DemoServer::new("clock")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/mcp", post(handle)).with_state(server);
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await }).await;
    });
    Ok(DocServer { url: format!("http://{addr}/mcp"), addr, stop })
}

async fn handle(State(server): State<DemoServer>, body: Bytes) -> Response {
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    server.clone().handle(msg, &tx).await;
    drop(tx);
    let mut out = Vec::new();
    while let Some(m) = rx.recv().await {
        out.push(m);
    }
    match out.as_slice() {
        [] => StatusCode::ACCEPTED.into_response(),
        [one] => ([(header::CONTENT_TYPE, "application/json")], one.to_string()).into_response(),
        many => {
            let body: String = many.iter().map(|m| format!("event: message\ndata: {m}\n\n")).collect();
            ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
        }
    }
}
