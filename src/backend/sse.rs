//! The legacy HTTP+SSE client transport (MCP 2024-11-05).
//!
//! `GET` on the configured URL opens an event stream; its first `endpoint` event names the URL
//! (resolved against the stream's URL, and required to be on the same origin, since the static
//! headers may carry credentials) that takes the client's messages as `POST`s. Everything the
//! backend sends, responses included, arrives as `message` events on the stream. The stream is
//! the session: when it ends the connection is closed with that reason and the gateway's
//! supervisor reconnects with backoff and re-initializes.
//!
//! As with streamable HTTP, `initialize` and `notifications/initialized` are POSTed in order and
//! every other message on a task of its own, bounded by a semaphore.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::Outbox;
use super::remote::{
    Chosen, Ctx, EventReader, Head, MAX_CONCURRENT_POSTS, POST_GRACE, SseItem, content_type, deliver, describe,
    is_event_stream, read_limited, session_gone, shown_url, snippet,
};
use crate::protocol::methods;

/// Runs the transport until it is stopped or the connection closes. `first` is a message to
/// send before the queue (the `initialize` a streamable-HTTP attempt could not deliver), and
/// `note` what that attempt got, added to the reason should the stream not open either.
pub(super) async fn run(ctx: Arc<Ctx>, mut outbox: Outbox, mut first: Option<Bytes>, note: Option<String>) {
    let opened = tokio::select! {
        o = open(&ctx, note.as_deref()) => o,
        _ = ctx.ended() => return,
    };
    let Some(mut reader) = opened else { return };
    let endpoint = tokio::select! {
        e = endpoint(&ctx, &mut reader) => e,
        _ = ctx.ended() => return,
    };
    let Some(endpoint) = endpoint else { return };
    ctx.chosen.set(Chosen::SSE);
    tracing::info!(backend = ctx.name(), url = %ctx.shown, transport = Chosen::SSE, "Remote backend connected.");
    let mut tasks = JoinSet::new();
    tasks.spawn(read_events(ctx.clone(), reader));
    let endpoint = Arc::new(endpoint);
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_POSTS));
    loop {
        let line = match first.take() {
            Some(line) => line,
            None => tokio::select! {
                _ = ctx.ended() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                line = outbox.recv() => match line {
                    Some(line) => line,
                    None => break,
                },
            },
        };
        let head = Head::of(&line);
        if head.is(methods::INITIALIZE) || head.is(methods::INITIALIZED) {
            tokio::select! {
                _ = post(&ctx, &endpoint, line, &head) => {}
                _ = ctx.ended() => break,
            }
        } else {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                _ = ctx.ended() => break,
            };
            let Ok(permit) = permit else { break };
            let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
            tasks.spawn(async move {
                post(&ctx, &endpoint, line, &head).await;
                drop(permit);
            });
        }
    }
    tasks.abort_all();
}

/// Opens the event stream; on failure the connection is closed with the reason (and `note`).
async fn open(ctx: &Ctx, note: Option<&str>) -> Option<EventReader> {
    let fail = |reason: String| match note {
        Some(n) => ctx.peer.close(&format!("{reason} ({n})")),
        None => ctx.peer.close(&reason),
    };
    let req = ctx.client.get(ctx.url.clone()).headers(ctx.headers.clone()).header(ACCEPT, "text/event-stream");
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            fail(format!("could not open the SSE stream at {}: {}", ctx.shown, describe(&e)));
            return None;
        }
    };
    let status = resp.status();
    if !status.is_success() {
        let body = ctx.scrub(&snippet(resp).await);
        let sep = if body.is_empty() { "" } else { ": " };
        fail(format!("{} answered HTTP {status} to the SSE stream request{sep}{body}", ctx.shown));
        return None;
    }
    if !is_event_stream(&resp) {
        let ct = content_type(&resp);
        fail(format!("{} did not answer with an event stream (content type '{ct}')", ctx.shown));
        return None;
    }
    Some(EventReader::new(resp, ctx.max_bytes))
}

/// Waits for the `endpoint` event and resolves it.
async fn endpoint(ctx: &Ctx, reader: &mut EventReader) -> Option<Url> {
    loop {
        match reader.next().await {
            Ok(Some(SseItem::Event { event: Some(e), data })) if e == "endpoint" => {
                let text = String::from_utf8_lossy(&data);
                let url = match ctx.url.join(text.trim()) {
                    Ok(u) => u,
                    Err(e) => {
                        ctx.peer.close(&format!("{} sent an invalid endpoint: {e}", ctx.shown));
                        return None;
                    }
                };
                if url.origin() != ctx.url.origin() {
                    ctx.peer.close(&format!(
                        "{} named an endpoint on another origin ({}); refused",
                        ctx.shown,
                        shown_url(&url)
                    ));
                    return None;
                }
                return Some(url);
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                ctx.peer.close(&format!("the SSE stream from {} ended before its endpoint event", ctx.shown));
                return None;
            }
            Err(e) => {
                ctx.peer.close(&format!("the SSE stream from {} broke: {}", ctx.shown, describe(&e)));
                return None;
            }
        }
    }
}

/// Dispatches every message event until the stream ends, then closes the connection.
async fn read_events(ctx: Arc<Ctx>, mut reader: EventReader) {
    loop {
        let item = tokio::select! {
            i = reader.next() => i,
            _ = ctx.ended() => return,
        };
        match item {
            Ok(Some(SseItem::Event { event, data })) => match event.as_deref() {
                None | Some("message") => {
                    deliver(&ctx, &data, None, None);
                }
                Some(other) => tracing::debug!(backend = ctx.name(), event = other, "SSE event ignored."),
            },
            Ok(Some(SseItem::TooLarge { answers })) => {
                let message = format!(
                    "the answer from {} is larger than the {}-byte limit (maxMessageBytes); it was discarded",
                    ctx.shown, ctx.max_bytes
                );
                match answers {
                    Some(id) => ctx.fail_call(id, message),
                    None => tracing::error!(backend = ctx.name(), limit = ctx.max_bytes, "{message}"),
                }
            }
            Ok(None) => {
                ctx.peer.close(&format!("the SSE stream from {} ended", ctx.shown));
                return;
            }
            Err(e) => {
                ctx.peer.close(&format!("the SSE stream from {} broke: {}", ctx.shown, describe(&e)));
                return;
            }
        }
    }
}

/// POSTs one message to the endpoint. The answer arrives on the stream.
async fn post(ctx: &Ctx, endpoint: &Url, line: Bytes, head: &Head) {
    let req = ctx
        .client
        .post(endpoint.clone())
        .headers(ctx.headers.clone())
        .header(CONTENT_TYPE, "application/json")
        .timeout(ctx.request_timeout + POST_GRACE)
        .body(line);
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return,
        Err(e) => {
            ctx.unreachable(&e);
            return;
        }
    };
    let status = resp.status();
    if status.is_success() {
        let _ = read_limited(resp, 64 * 1024, true).await;
        return;
    }
    let body = ctx.scrub(&snippet(resp).await);
    if session_gone(status, &body, true) || status == StatusCode::GONE {
        let reason =
            format!("{} no longer knows the SSE session (HTTP {status}); the backend will be reconnected", ctx.shown);
        tracing::debug!(backend = ctx.name(), reason = %reason, "Remote backend lost the session.");
        ctx.peer.close(&reason);
        return;
    }
    let sep = if body.is_empty() { "" } else { ": " };
    let what = format!("{} answered HTTP {status}{sep}{body}", ctx.shown);
    match head.request_id {
        Some(_) if head.is(methods::INITIALIZE) => ctx.peer.close(&what),
        Some(id) => ctx.fail_call(id, what),
        None => tracing::warn!(
            backend = ctx.name(),
            method = head.method.as_deref().unwrap_or("(response)"),
            error = %what,
            "Remote backend refused a message."
        ),
    }
}
