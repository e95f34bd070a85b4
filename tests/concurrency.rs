//! Many calls at once over one backend connection are never mixed up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Daemon, demo, text_of};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_calls_each_get_their_own_answer() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let d = Daemon::start(json!({"mcpServers": {"clock": demo("clock")}})).await;
        let base = d.client().await;
        let session = base.session.clone().unwrap();
        let url = base.url.clone();
        let http = reqwest::Client::new();
        let calls = (0..200).map(|i| {
            let http = http.clone();
            let url = url.clone();
            let session = session.clone();
            async move {
                let payload = format!("payload-{i}-{}", "x".repeat(i % 17));
                let id = json!(format!("req-{i}"));
                let resp = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-session-id", &session)
                    .body(
                        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                                 "params": {"name": "clock_echo", "arguments": {"text": payload}}})
                        .to_string(),
                    )
                    .send()
                    .await
                    .unwrap();
                let reply = common::read_reply(resp).await;
                (id, payload, reply)
            }
        });
        let results = futures_util::future::join_all(calls).await;
        for (id, payload, reply) in results {
            assert_eq!(reply.status, 200);
            assert_eq!(reply.response()["id"], id);
            assert_eq!(text_of(reply.result()), payload, "answer for {id} belongs to another call");
        }
        d.stop().await.unwrap();
    })
    .await
    .unwrap();
}
