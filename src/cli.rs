//! The `mcpmux` command line: `serve`, `validate`, `healthcheck`, `schema`, the built-in `demo`
//! server, the client commands that try a server (`tools`, `call`, `resources`, `read`,
//! `prompts`, `prompt`; see [`inspect`]) and `completions`.

pub mod inspect;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, ConfigError, DEFAULT_CONFIG_PATH, DEFAULT_LISTEN};
use crate::gateway::Gateway;

#[derive(Debug, Parser)]
#[command(name = "mcpmux", version = version(), about = "Many MCP servers behind one URL")]
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
    /// Check a config file and print every problem with its location, and what `serve` would
    /// meet on this machine: commands on PATH, directories, listen address, exposed names.
    Validate {
        #[arg(long, env = "MCPMUX_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// The address `serve` would be given (overrides the config's `mcpmux.listen`).
        #[arg(long, env = "MCPMUX_LISTEN")]
        listen: Option<String>,
        /// As for `serve`: a non-loopback listen address without an auth token is allowed.
        #[arg(long, env = "MCPMUX_ALLOW_UNAUTHENTICATED")]
        allow_unauthenticated: bool,
    },
    /// Exit 0 when a running mcpmux answers `GET /healthz` with 200, else 1 (for container
    /// health checks: needs no curl).
    Healthcheck {
        /// URL to check. Default: `http://{listen}/healthz`, with an unspecified address
        /// (0.0.0.0, ::) replaced by loopback.
        #[arg(long, env = "MCPMUX_HEALTHCHECK_URL")]
        url: Option<String>,
        /// The address mcpmux listens on, as given to `serve`.
        #[arg(long, env = "MCPMUX_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: String,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Print the JSON Schema of the config file.
    Schema,
    /// List a server's tools: name, title, description, required arguments.
    ///
    /// TARGET is a URL, a config file, or `-- command args…` (a stdio server); without one, the
    /// running mcpmux of the default config.
    Tools {
        /// URL or config file.
        target: Option<String>,
        #[command(flatten)]
        target_args: inspect::TargetArgs,
    },
    /// Call a tool: `mcpmux call [TARGET] TOOL key=value…`.
    ///
    /// Values are converted by the tool's input schema (numbers, booleans, JSON objects and
    /// arrays). Text content is printed, structured content as JSON; progress and server log
    /// messages go to stderr. Exit code 1 when the call fails or the result has `isError`.
    Call {
        /// TARGET (optional: URL or config file), TOOL, key=value…
        #[arg(value_name = "ARGS", required = true)]
        words: Vec<String>,
        /// All arguments as one JSON object (key=value words win over it).
        #[arg(long = "args", value_name = "JSON")]
        json_args: Option<String>,
        /// Write binary content (images, audio, blobs) to files in this directory.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
        #[command(flatten)]
        target_args: inspect::TargetArgs,
    },
    /// List a server's resources and resource templates.
    Resources {
        /// URL or config file.
        target: Option<String>,
        #[command(flatten)]
        target_args: inspect::TargetArgs,
    },
    /// Read a resource: `mcpmux read [TARGET] URI`.
    Read {
        /// TARGET (optional: URL or config file), URI
        #[arg(value_name = "ARGS", required = true, num_args = 1..=2)]
        words: Vec<String>,
        /// Write binary content to files in this directory.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
        #[command(flatten)]
        target_args: inspect::TargetArgs,
    },
    /// List a server's prompts.
    Prompts {
        /// URL or config file.
        target: Option<String>,
        #[command(flatten)]
        target_args: inspect::TargetArgs,
    },
    /// Get a prompt: `mcpmux prompt [TARGET] NAME key=value…`.
    Prompt {
        /// TARGET (optional: URL or config file), NAME, key=value…
        #[arg(value_name = "ARGS", required = true)]
        words: Vec<String>,
        #[command(flatten)]
        target_args: inspect::TargetArgs,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completions { shell: clap_complete::Shell },
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
    match &cli.command {
        Command::Schema => {
            print!("{}", config::schema::schema_json());
            return ExitCode::SUCCESS;
        }
        Command::Healthcheck { url, listen, timeout_ms } => {
            return healthcheck(url.as_deref(), listen, Duration::from_millis(*timeout_ms));
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "mcpmux", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // The client commands print what the user asked for; only warnings go to the log.
    let default_level = if cli.command.is_client() { "warn" } else { "info" };
    init_tracing(cli.log_format, default_level);
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
            Command::Validate { config, listen, allow_unauthenticated } => {
                validate(&config, listen.as_deref(), allow_unauthenticated)
            }
            Command::Healthcheck { .. } | Command::Schema | Command::Completions { .. } => ExitCode::SUCCESS,
            Command::Tools { target, target_args } => inspect::run("tools", inspect::tools(target, target_args)).await,
            Command::Call { words, json_args, save, target_args } => {
                inspect::run("call", inspect::call(words, json_args, save, target_args)).await
            }
            Command::Resources { target, target_args } => {
                inspect::run("resources", inspect::resources(target, target_args)).await
            }
            Command::Read { words, save, target_args } => {
                inspect::run("read", inspect::read(words, save, target_args)).await
            }
            Command::Prompts { target, target_args } => {
                inspect::run("prompts", inspect::prompts(target, target_args)).await
            }
            Command::Prompt { words, target_args } => inspect::run("prompt", inspect::prompt(words, target_args)).await,
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

/// Git commit the binary was built from, when the build set `MCPMUX_BUILD_COMMIT` (as
/// `scripts/build-release.sh` does). Read at compile time; no git needed to build.
pub const BUILD_COMMIT: Option<&str> = option_env!("MCPMUX_BUILD_COMMIT");

/// The version shown by `--version`: the package version, and the commit when known, like
/// `0.1.0 (commit 1a2b3c4d5e6f)`.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| match BUILD_COMMIT.map(str::trim).filter(|c| !c.is_empty()) {
        Some(commit) => format!("{} (commit {commit})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// `mcpmux healthcheck`: one `GET` over a plain TCP connection; prints the outcome, exit 0 on 200.
fn healthcheck(url: Option<&str>, listen: &str, timeout: Duration) -> ExitCode {
    let url = match url {
        Some(u) => u.to_owned(),
        None => match parse_listen(listen) {
            Some(addr) => health_url(addr),
            None => {
                eprintln!("mcpmux healthcheck: --listen '{listen}' is not an address like 127.0.0.1:8080");
                return ExitCode::FAILURE;
            }
        },
    };
    match http_get_status(&url, timeout) {
        Ok(200) => {
            println!("healthy: {url} answered 200");
            ExitCode::SUCCESS
        }
        Ok(code) => {
            eprintln!("unhealthy: {url} answered {code}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `http://{addr}/healthz`, with an unspecified IP (listening on every address) replaced by
/// loopback, which reaches it.
pub fn health_url(mut addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}/healthz")
}

/// Sends `GET url` (plain `http://` only) and returns the response's status code. The whole
/// exchange is bounded by `timeout`.
pub fn http_get_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("the URL needs a host (and no user info)".into());
    }
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    let target = if has_port { authority.to_owned() } else { format!("{authority}:80") };
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> =
        target.to_socket_addrs().map_err(|e| format!("cannot resolve {authority}: {e}"))?.collect();
    let mut last_error = format!("{authority} resolves to no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {timeout:?}"));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return get_over(stream, authority, path, deadline),
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last_error)
}

fn get_over(mut stream: TcpStream, host: &str, path: &str, deadline: Instant) -> Result<u16, String> {
    let left = |what: &str| {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() { Err(format!("timed out {what}")) } else { Ok(d) }
    };
    stream.set_write_timeout(Some(left("connecting")?)).map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mcpmux-healthcheck/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        stream.set_read_timeout(Some(left("waiting for the answer")?)).map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err("timed out waiting for the answer".into());
            }
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => Ok(code),
        _ => Err(format!("not an HTTP answer: {:?}", status_line.chars().take(80).collect::<String>())),
    }
}

impl Command {
    /// The commands that act as an MCP client.
    fn is_client(&self) -> bool {
        matches!(
            self,
            Command::Tools { .. }
                | Command::Call { .. }
                | Command::Resources { .. }
                | Command::Read { .. }
                | Command::Prompts { .. }
                | Command::Prompt { .. }
        )
    }
}

fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
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

/// `mcpmux validate`: the loader's problems, then what [`config::check`] finds. Errors (on
/// stderr, `  error: LOCATION: MESSAGE`) → exit 1; warnings (`warning: LOCATION: MESSAGE`) alone
/// → exit 0.
fn validate(path: &Path, listen: Option<&str>, allow_unauthenticated: bool) -> ExitCode {
    let mut overrides = config::Overrides { listen: None, allow_unauthenticated };
    if let Some(l) = listen {
        match parse_listen(l) {
            Some(addr) => overrides.listen = Some(addr),
            None => {
                eprintln!("mcpmux: --listen '{l}' is not an address like 127.0.0.1:8080");
                return ExitCode::FAILURE;
            }
        }
    }
    let text_findings = std::fs::read_to_string(path)
        .map(|text| config::check::check_text(&text, config::Format::from_path(path)))
        .unwrap_or_default();
    let cfg = match load(path) {
        Ok(cfg) => cfg.with_overrides(overrides),
        Err(e) => {
            for w in &text_findings {
                println!("warning: {w}");
            }
            print_problems(&e);
            return ExitCode::FAILURE;
        }
    };
    let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let report = config::check::check(&cfg, &config::ProcessEnv, &workdir);
    let warnings: Vec<&config::Diagnostic> =
        cfg.warnings.iter().chain(&text_findings).chain(&report.warnings).collect();
    print!("{}", validate_report(path, &cfg, &report, warnings.len()));
    for w in &warnings {
        println!("warning: {w}");
    }
    if report.errors.is_empty() {
        return ExitCode::SUCCESS;
    }
    print_problems(&ConfigError { source_path: Some(path.to_path_buf()), problems: report.errors });
    ExitCode::FAILURE
}

/// The report's stdout part: a summary line, the listen line, then each server with its checks.
pub fn validate_report(path: &Path, cfg: &Config, report: &config::check::Report, warnings: usize) -> String {
    let servers = cfg.servers.len();
    let warned = if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() };
    let mut out = if report.errors.is_empty() {
        format!("{}: valid, {servers} server(s){warned}\n", path.display())
    } else {
        format!("{}: {servers} server(s), {} error(s){warned}\n", path.display(), report.errors.len())
    };
    out.push_str(&format!("  {}\n", report.listen));
    for s in &report.servers {
        let state = if s.disabled { " (disabled)" } else { "" };
        out.push_str(&format!("  {:<24} {:<10} prefix '{}'{}\n", s.name, s.transport, s.prefix, state));
        for line in &s.details {
            out.push_str(&format!("      {line}\n"));
        }
    }
    out
}

async fn serve(path: &Path, listen: Option<String>, allow_unauthenticated: bool) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(e) => {
            print_problems(&e);
            return ExitCode::FAILURE;
        }
    };
    for w in &cfg.warnings {
        tracing::warn!("Config: {w}");
    }
    let mut overrides = config::Overrides::default();
    if let Some(l) = listen {
        match parse_listen(&l) {
            Some(addr) => overrides.listen = Some(addr),
            None => {
                eprintln!("mcpmux: --listen '{l}' is not an address like 127.0.0.1:8080");
                return ExitCode::FAILURE;
            }
        }
    }
    overrides.allow_unauthenticated = allow_unauthenticated;
    let cfg = cfg.with_overrides(overrides);
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
