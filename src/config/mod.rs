//! Configuration: the `mcpServers` file (JSON or TOML) turned into a validated, immutable [`Config`].
//!
//! Loading happens in two steps. The file is first read into a loose document
//! (`serde_json::Value`, whatever the file format), then walked by the validator, which
//! expands `${VAR}` references, checks every field and collects *every* problem with its
//! location instead of stopping at the first. Only a fully valid document becomes a `Config`.
//!
//! The file format is the one Claude Desktop and FastMCP's MCPConfig use:
//!
//! ```json
//! {
//!   "mcpServers": {
//!     "notes": { "command": "npx", "args": ["-y", "some-server"], "env": {"KEY": "${KEY}"} },
//!     "remote": { "url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"} }
//!   },
//!   "mcpmux": { "listen": "127.0.0.1:8080", "separator": "_" }
//! }
//! ```

pub mod check;
mod expand;
mod load;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use expand::{EXE_VAR, EnvLookup, ExpandError, ExpandProblem, ProcessEnv, expand};
pub use load::{AUTH_TOKEN_VAR, Format, load_file, parse_str};

/// Default address the daemon listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default file the daemon reads.
pub const DEFAULT_CONFIG_PATH: &str = "config/mcp.json";

/// A validated configuration snapshot. Immutable once built; a reload builds a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// mcpmux's own settings (the `mcpmux` top-level key).
    pub settings: Settings,
    /// Backends by name, in name order. Disabled entries are kept (with `disabled: true`)
    /// so that `validate` and `/status` can show them.
    pub servers: BTreeMap<String, ServerConfig>,
    /// Non-fatal findings (ignored keys, …) with their locations.
    pub warnings: Vec<Diagnostic>,
    /// The file this was read from, if any.
    pub source: Option<PathBuf>,
    /// Settings given on the command line; they win over the file, also after a reload.
    pub overrides: Overrides,
}

/// Settings given on the command line (or their environment variables).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--allow-unauthenticated`.
    pub allow_unauthenticated: bool,
}

/// mcpmux's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Separator between server prefix and tool/prompt name (default `_`).
    pub separator: String,
    /// Items per page in list results served by mcpmux.
    pub page_size: usize,
    /// Bearer token clients must present; `None` means no authentication.
    pub auth_token: Option<Secret>,
    /// Extra allowed `Origin` values (exact, or with `*` as port wildcard like `http://localhost:*`).
    /// Loopback origins are always allowed. `"*"` allows every origin.
    pub allowed_origins: Vec<String>,
    /// Extra allowed `Host` header values (host or host:port). Loopback hosts are always allowed.
    /// `"*"` allows every host.
    pub allowed_hosts: Vec<String>,
    /// Allow listening on a non-loopback address without a token.
    pub allow_unauthenticated: bool,
    /// A downstream session with no request for this long is ended.
    pub session_idle_timeout: Duration,
    /// Largest HTTP request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Largest single JSON-RPC message read from a backend (bytes).
    pub max_message_bytes: usize,
    /// Default per-request timeout towards backends.
    pub request_timeout: Duration,
    /// Default time a backend has to start, initialize and list its catalog.
    pub startup_timeout: Duration,
    /// How long a call of a 2026-07-28 client that is waiting for the client's input (an
    /// `input_required` result) stays open for the retry.
    pub input_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            separator: "_".to_owned(),
            page_size: 100,
            auth_token: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            allow_unauthenticated: false,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_body_bytes: 4 * 1024 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            startup_timeout: Duration::from_secs(30),
            input_timeout: Duration::from_secs(600),
        }
    }
}

/// One backend, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The key in `mcpServers`.
    pub name: String,
    /// Prefix used for namespacing its tools/prompts/resources (defaults to `name`).
    pub prefix: String,
    /// How to reach it.
    pub transport: TransportConfig,
    /// `disabled: true` in the entry: not started.
    pub disabled: bool,
    /// Per-backend request timeout (overrides `Settings::request_timeout`).
    pub request_timeout: Option<Duration>,
    /// Per-backend startup timeout (overrides `Settings::startup_timeout`).
    pub startup_timeout: Option<Duration>,
    /// Whether client sessions share one connection to the backend or each get their own.
    pub isolation: Isolation,
    /// `/readyz` waits for this backend (default true).
    pub required: bool,
    /// Keep the backend's tools, prompts and resources listed while it is down (default true;
    /// calls then get a clear "unavailable" error). False withdraws them until it is back.
    pub list_when_down: bool,
    /// When set, an idle backend is sent `ping` this often; no answer means it is restarted.
    pub ping_interval: Option<Duration>,
    /// Which protocol era mcpmux speaks to it.
    pub protocol: ProtocolChoice,
}

/// Which protocol era mcpmux speaks to a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Ask with `server/discover` first (a short probe); fall back to `initialize`.
    #[default]
    Auto,
    /// Only the stateless 2026-07-28 protocol: a backend that does not answer `server/discover`
    /// with it fails to start.
    Modern,
    /// Only the session protocol (`initialize`); no probe.
    Legacy,
}

/// How client sessions use a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// One connection (one child process) serves every session.
    #[default]
    Shared,
    /// Each client session gets its own connection (its own child process for stdio), opened at
    /// its first call and closed when the session ends. For stateful backends, and for backends
    /// whose requests to the client must reach exactly the right session.
    Session,
}

/// How a backend is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportConfig {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio(StdioConfig),
    /// A remote server behind a URL.
    Remote(RemoteConfig),
}

impl TransportConfig {
    /// Short name for tables and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Stdio(_) => "stdio",
            TransportConfig::Remote(r) => match r.kind {
                RemoteKind::Auto => "http(auto)",
                RemoteKind::StreamableHttp => "http",
                RemoteKind::Sse => "sse",
            },
        }
    }
}

/// A stdio backend.
#[derive(Debug, Clone, PartialEq)]
pub struct StdioConfig {
    pub command: String,
    pub args: Vec<String>,
    /// Variables set for the child on top of the inherited minimal set.
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
}

/// A remote backend.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteConfig {
    pub url: String,
    pub kind: RemoteKind,
    /// Static headers sent with every request; values are secrets (never logged).
    pub headers: BTreeMap<String, Secret>,
}

/// Which HTTP transport a remote backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// Not given: inferred (`/sse` path → SSE, otherwise streamable HTTP with SSE fallback).
    Auto,
    StreamableHttp,
    Sse,
}

/// A string that must never be printed: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret value, for the one place that needs it (a header, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One finding about a config file: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Path inside the document, like `mcpServers.notes.args[1]`, or `line 3, column 5` for
    /// syntax errors. Empty for the document as a whole.
    pub location: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// A configuration that could not be loaded, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration{}: {} problem(s)", source_suffix(.source_path), .problems.len())]
pub struct ConfigError {
    pub source_path: Option<PathBuf>,
    pub problems: Vec<Diagnostic>,
}

fn source_suffix(p: &Option<PathBuf>) -> String {
    p.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
}

impl Config {
    /// Applies command-line overrides (and remembers them for reloads).
    pub fn with_overrides(mut self, overrides: Overrides) -> Config {
        if let Some(listen) = overrides.listen {
            self.settings.listen = listen;
        }
        self.settings.allow_unauthenticated |= overrides.allow_unauthenticated;
        self.overrides = overrides;
        self
    }

    /// Servers that are not disabled.
    pub fn enabled_servers(&self) -> impl Iterator<Item = &ServerConfig> {
        self.servers.values().filter(|s| !s.disabled)
    }
}
