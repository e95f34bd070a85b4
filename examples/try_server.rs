//! Connects to one MCP server with the `mcpmux::client` API, lists what it offers, and calls a
//! tool when asked.
//!
//! ```text
//! cargo run --example try_server -- http://127.0.0.1:8080/mcp
//! cargo run --example try_server -- http://127.0.0.1:8080/mcp clock_add '{"a": 1, "b": 2}'
//! cargo run --example try_server -- --command npx -y @modelcontextprotocol/server-everything
//! ```

use std::process::ExitCode;

use mcpmux::client::{Client, ClientOptions, Handler, LogMessage, Progress};
use serde_json::Value;

/// Prints log messages and progress the server sends.
struct Printer;

impl Handler for Printer {
    fn on_log(&self, server: &str, message: &LogMessage) {
        eprintln!("[{server}] {}: {}", message.level, message.text());
    }

    fn on_progress(&self, server: &str, progress: &Progress) {
        eprintln!("[{server}] progress {} of {:?}", progress.progress, progress.total);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = ClientOptions::default().handler(Printer);
    let (client, rest) = match args.split_first() {
        Some((flag, command)) if flag == "--command" && !command.is_empty() => {
            (Client::connect_command(&command[0], &command[1..], options).await, &[][..])
        }
        Some((url, rest)) => (Client::connect_url(url, options).await, rest),
        None => {
            eprintln!("usage: try_server URL [TOOL [JSON]] | try_server --command COMMAND ARGS…");
            return ExitCode::from(2);
        }
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{} over {}, protocol {}", client.server_info()["name"], client.transport(), client.protocol_version());
    let outcome = run(&client, rest).await;
    client.close().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(client: &Client, rest: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    if let [tool, more @ ..] = rest {
        let arguments: Value = match more.first() {
            Some(json) => serde_json::from_str(json)?,
            None => mcpmux::client::no_arguments(),
        };
        let result = client.call_tool(tool, arguments).await?;
        println!("{}", result.text());
        if let Some(structured) = result.structured_content() {
            println!("{structured}");
        }
        if result.is_error() {
            return Err("the tool reported an error".into());
        }
        return Ok(());
    }
    for tool in client.list_tools().await? {
        println!("tool      {}: {}", tool.name(), tool.description().unwrap_or_default());
    }
    if client.capabilities().get("resources").is_some() {
        for resource in client.list_resources().await? {
            println!("resource  {}", resource.uri());
        }
    }
    if client.capabilities().get("prompts").is_some() {
        for prompt in client.list_prompts().await? {
            println!("prompt    {}", prompt.name());
        }
    }
    Ok(())
}
