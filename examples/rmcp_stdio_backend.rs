//! A test peer used by the interop tests (`tests/interop.rs`): a stdio MCP server built with the
//! official Rust SDK (rmcp), which mcpmux starts as a backend child process.
//!
//! Tools: `reverse(text)` returns the text reversed (by characters); `count_chars(text)` returns
//! the number of characters as text and as structured content `{"count": n}`.
//! It serves until stdin closes. Nothing but MCP messages goes to stdout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rmcp::{
    Json, ServerHandler, ServiceExt,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{Implementation, ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
};

/// The argument of both tools.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct TextArg {
    /// The text to work on.
    text: String,
}

/// What `count_chars` returns as structured content.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
struct Count {
    /// Number of Unicode scalar values in the text.
    count: usize,
}

#[derive(Debug, Clone)]
struct Backend {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Backend {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Reverses the text, character by character")]
    fn reverse(&self, Parameters(TextArg { text }): Parameters<TextArg>) -> String {
        text.chars().rev().collect()
    }

    #[tool(description = "Counts the characters of the text")]
    fn count_chars(&self, Parameters(TextArg { text }): Parameters<TextArg>) -> Json<Count> {
        Json(Count { count: text.chars().count() })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Backend {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("rmcp-stdio-backend", "0.1.0"))
            .with_instructions("An rmcp test peer: reverse and count_chars.")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let service = Backend::new().serve(rmcp::transport::stdio()).await.expect("rmcp stdio backend: handshake failed");
    service.waiting().await.expect("rmcp stdio backend: service failed");
}
