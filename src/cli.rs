//! The `mcpmux` command line: `serve`, `validate`, and the built-in `demo` server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, ConfigError, DEFAULT_CONFIG_PATH};
use crate::gateway::Gateway;

#[derive(Debug, Parser)]
#[command(name = "mcpmux", version, about = "Many MCP servers behind one URL")]
pub struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "MCPMUX_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (JSON or TOML).
        #[arg(long, env = "MCPMUX_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Address to listen on (overrides the config's `mcpmux.listen`).
        #[arg(long, env = "MCPMUX_LISTEN")]
        listen: Option<String>,
        /// Allow a non-loopback listen address without an auth token.
        #[arg(long, env = "MCPMUX_ALLOW_UNAUTHENTICATED")]
        allow_unauthenticated: bool,
    },
    /// Check a config file and print every problem with its location.
    Validate {
        #[arg(long, env = "MCPMUX_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Run a built-in demo MCP server on stdin/stdout.
    #[command(hide = true)]
    Demo {
        /// Which one: notes, clock or conformance.
        personality: String,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpmux: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { config, listen, allow_unauthenticated } => {
                serve(&config, listen, allow_unauthenticated).await
            }
            Command::Validate { config } => validate(&config),
            Command::Demo { personality } => match crate::demo::run_stdio(&personality).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mcpmux demo: {e}");
                    ExitCode::FAILURE
                }
            },
        }
    })
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load(path: &Path) -> Result<Config, ConfigError> {
    config::load_file(path, &config::ProcessEnv)
}

fn print_problems(err: &ConfigError) {
    eprintln!("{err}");
    for p in &err.problems {
        eprintln!("  error: {p}");
    }
}

fn validate(path: &Path) -> ExitCode {
    match load(path) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                println!("warning: {w}");
            }
            println!("{}: valid, {} server(s)", path.display(), cfg.servers.len());
            for s in cfg.servers.values() {
                let state = if s.disabled { " (disabled)" } else { "" };
                println!("  {:<24} {:<10} prefix '{}'{}", s.name, s.transport.kind(), s.prefix, state);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_problems(&e);
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: &Path, listen: Option<String>, allow_unauthenticated: bool) -> ExitCode {
    let mut cfg = match load(path) {
        Ok(c) => c,
        Err(e) => {
            print_problems(&e);
            return ExitCode::FAILURE;
        }
    };
    for w in &cfg.warnings {
        tracing::warn!("Config: {w}");
    }
    if let Some(l) = listen {
        match parse_listen(&l) {
            Some(addr) => cfg.settings.listen = addr,
            None => {
                eprintln!("mcpmux: --listen '{l}' is not an address like 127.0.0.1:8080");
                return ExitCode::FAILURE;
            }
        }
    }
    cfg.settings.allow_unauthenticated |= allow_unauthenticated;
    let shutdown = shutdown_signal();
    let listener = match tokio::net::TcpListener::bind(cfg.settings.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mcpmux: cannot listen on {}: {e}", cfg.settings.listen);
            return ExitCode::FAILURE;
        }
    };
    match crate::run_with(cfg, listener, shutdown, print_table).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpmux: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Some(port) = s.strip_prefix("localhost:") {
        return port.parse::<u16>().ok().map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    }
    s.parse().ok()
}

/// The start-up table, on stdout (logs go to stderr).
fn print_table(gateway: &Gateway, addr: SocketAddr) {
    println!("{}", startup_table(gateway, addr));
}

/// Formats the table of backends shown at start.
pub fn startup_table(gateway: &Gateway, addr: SocketAddr) -> String {
    let mut out = format!(
        "{:<20} {:<10} {:<10} {:>6} {:>10} {:>8} {:>9}\n",
        "BACKEND", "TRANSPORT", "STATE", "TOOLS", "RESOURCES", "PROMPTS", "READY IN"
    );
    for r in gateway.report() {
        let ready = r.ready_after.map(|d| format!("{}ms", d.as_millis())).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<20} {:<10} {:<10} {:>6} {:>10} {:>8} {:>9}\n",
            r.name,
            r.transport,
            r.state.as_str(),
            r.tools,
            r.resources,
            r.prompts,
            ready
        ));
        if let Some(e) = r.error {
            out.push_str(&format!("  └ {e}\n"));
        }
    }
    out.push_str(&format!("serving {}", Gateway::mcp_url(addr)));
    out
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives during start-up still shuts down gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let (mut term, mut int) = (term, int);
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term.take()) => {}
                _ = wait(int.take()) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
