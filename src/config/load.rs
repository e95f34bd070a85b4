//! Reading and validating a config file.
//!
//! The text is parsed into a loose `serde_json::Value` (TOML is converted), then a
//! [`Validator`] walks it by hand. The walk never stops at the first problem: every error and
//! warning is recorded as a [`Diagnostic`] with a dotted location such as
//! `mcpServers.notes.args[1]`, and only a document without errors becomes a [`Config`].
//!
//! Values that may be secrets (header values, env values, tokens, URLs) are never quoted in
//! a diagnostic; expansion problems name only the variable.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::expand::{EnvLookup, expand};
use super::{
    Config, ConfigError, Diagnostic, Isolation, Overrides, ProtocolChoice, RemoteConfig, RemoteKind, Secret,
    ServerConfig, Settings, StdioConfig, TransportConfig,
};

/// Environment variable that provides the auth token when the file sets none.
pub const AUTH_TOKEN_VAR: &str = "MCPMUX_AUTH_TOKEN";

/// mcpmux's own per-server keys, allowed in an entry or under `mcpmux.servers.<name>`.
const OWN_SERVER_KEYS: [&str; 9] = [
    "prefix",
    "disabled",
    "requestTimeoutMs",
    "startupTimeoutMs",
    "isolation",
    "required",
    "listWhenDown",
    "pingIntervalMs",
    "protocol",
];

/// Largest accepted `pageSize`.
const MAX_PAGE_SIZE: u64 = 10_000;

/// The syntax of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
}

impl Format {
    /// `.toml` (any case) → TOML, anything else → JSON.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Json,
        }
    }
}

/// Reads, parses and validates the file at `path`; the format follows the extension.
pub fn load_file(path: &Path, env: &dyn EnvLookup) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        source_path: Some(path.to_path_buf()),
        problems: vec![diag("", format!("cannot read the file: {e}"))],
    })?;
    match parse_str(&text, Format::from_path(path), env) {
        Ok(mut config) => {
            config.source = Some(path.to_path_buf());
            Ok(config)
        }
        Err(mut error) => {
            error.source_path = Some(path.to_path_buf());
            Err(error)
        }
    }
}

/// Parses and validates a config document, reporting every problem at once.
pub fn parse_str(text: &str, format: Format, env: &dyn EnvLookup) -> Result<Config, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc =
        parse_document(text, format).map_err(|problem| ConfigError { source_path: None, problems: vec![problem] })?;
    Validator::new(env).run(&doc)
}

fn diag(location: impl Into<String>, message: impl Into<String>) -> Diagnostic {
    Diagnostic { location: location.into(), message: message.into() }
}

// ---------------------------------------------------------------------------------------------
// Syntax

/// Parses `text` into a loose document; a syntax error becomes one diagnostic at
/// `line L, column C`.
pub(super) fn parse_document(text: &str, format: Format) -> Result<Value, Diagnostic> {
    if text.trim().is_empty() {
        return Err(diag("", "the file is empty"));
    }
    match format {
        Format::Json => parse_json(text),
        Format::Toml => parse_toml(text),
    }
}

fn parse_json(text: &str) -> Result<Value, Diagnostic> {
    serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full);
        diag(format!("line {}, column {}", e.line(), e.column()), format!("invalid JSON: {message}"))
    })
}

fn parse_toml(text: &str) -> Result<Value, Diagnostic> {
    match text.parse::<toml::Table>() {
        Ok(table) => Ok(toml_table_to_json(table)),
        Err(e) => {
            let location = e
                .span()
                .map(|span| {
                    let (line, column) = line_col(text, span.start);
                    format!("line {line}, column {column}")
                })
                .unwrap_or_default();
            Err(diag(location, format!("invalid TOML: {}", e.message().trim_end())))
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn toml_table_to_json(table: toml::Table) -> Value {
    Value::Object(table.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
}

/// Converts a TOML value; datetimes become strings, and so do non-finite floats (JSON cannot
/// hold them).
fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => toml_table_to_json(table),
    }
}

// ---------------------------------------------------------------------------------------------
// Locations and descriptions

/// Location of `key` inside `parent`: `parent.key`, or `parent["odd key"]` when the key has
/// characters that would make the dotted form ambiguous.
pub(super) fn child(parent: &str, key: &str) -> String {
    let simple = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'));
    match (parent.is_empty(), simple) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::String(key.to_owned())),
    }
}

/// Location of item `index` of the array at `parent`.
pub(super) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// "a string", "an array", … for "expected X, found Y" messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `s` is non-empty and only has `[A-Za-z0-9_-]`.
fn is_simple_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `s` is a valid HTTP header name (an RFC 9110 token).
fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// A hint appended to the "ignored" warning for keys other tools use.
fn ignored_hint(key: &str) -> &'static str {
    match key {
        "timeout" => " (mcpmux uses `requestTimeoutMs`)",
        "enabled" => " (mcpmux uses `disabled`)",
        "httpUrl" | "serverUrl" => " (mcpmux reads the address from `url`)",
        "envFile" | "env_file" => " (set the variables in `env` instead)",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Transports

/// The transport of one entry, as declared or inferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdio,
    Remote(RemoteKind),
}

impl Kind {
    /// Name used in messages.
    fn name(self) -> &'static str {
        match self {
            Kind::Stdio => "stdio",
            Kind::Remote(RemoteKind::Sse) => "sse",
            Kind::Remote(_) => "http",
        }
    }
}

/// Parses a `transport`/`type` value (case-insensitive).
fn parse_transport(text: &str) -> Result<Kind, String> {
    match text.to_ascii_lowercase().as_str() {
        "stdio" => Ok(Kind::Stdio),
        "http" | "streamable-http" | "streamablehttp" => Ok(Kind::Remote(RemoteKind::StreamableHttp)),
        "sse" => Ok(Kind::Remote(RemoteKind::Sse)),
        _ => Err(format!("unknown transport '{text}'; expected one of: stdio, http, streamable-http, sse")),
    }
}

/// Checks that an (expanded) URL is `http(s)://host[:port]...`. Messages never quote it.
fn check_url(url: &str) -> Result<(), &'static str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL must not contain spaces or control characters");
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => rest,
        _ => return Err("the URL must start with http:// or https://"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port);
    if host.is_empty() {
        return Err("the URL has no host");
    }
    match port {
        Some(p) if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) => Err("the URL has an invalid port"),
        _ => Ok(()),
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(v6) = s.strip_prefix('[') {
        return match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => (host, Some(rest.strip_prefix(':').unwrap_or(rest))),
            None => ("", None),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    }
}

/// Parses `listen`: a socket address, or `localhost:PORT` meaning 127.0.0.1.
fn parse_listen(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    let (host, port) = text.rsplit_once(':')?;
    if !host.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Whether `s` is a valid separator: 1–3 chars of `[A-Za-z0-9_-]`, at least one `_` or `-`.
fn is_valid_separator(s: &str) -> bool {
    (1..=3).contains(&s.chars().count()) && is_simple_name(s) && s.chars().any(|c| c == '_' || c == '-')
}

// ---------------------------------------------------------------------------------------------
// Validation

/// The raw fields of one entry after type checks and expansion.
#[derive(Default)]
struct Fields {
    command: Option<String>,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    headers: BTreeMap<String, Secret>,
    /// `bearerToken` / `bearerTokenFile`: sent as `Authorization: Bearer …`.
    bearer: Option<Secret>,
}

/// mcpmux's own per-server keys after validation.
#[derive(Default)]
struct OwnKeys {
    prefix: Option<String>,
    disabled: bool,
    request_timeout: Option<Duration>,
    startup_timeout: Option<Duration>,
    isolation: Isolation,
    required: Option<bool>,
    list_when_down: Option<bool>,
    ping_interval: Option<Duration>,
    protocol: ProtocolChoice,
}

/// What the walk of one entry needs to know.
struct Entry<'v> {
    /// `mcpServers.<name>`.
    loc: String,
    /// `mcpmux.servers.<name>`.
    over_loc: String,
    /// The `mcpmux.servers.<name>` object, if any.
    over: Option<&'v Map<String, Value>>,
    /// The transport, when it could be determined.
    kind: Option<Kind>,
}

/// Walks a document, collecting every error and warning.
struct Validator<'e> {
    env: &'e dyn EnvLookup,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl<'e> Validator<'e> {
    fn new(env: &'e dyn EnvLookup) -> Self {
        Self { env, errors: Vec::new(), warnings: Vec::new() }
    }

    fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(diag(location, message));
    }

    fn warn(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(diag(location, message));
    }

    /// Warns that `key` (at `loc`) is not used.
    fn ignored(&mut self, loc: &str, key: &str) {
        let hint = ignored_hint(key);
        self.warn(loc, format!("key '{key}' is not used by mcpmux and was ignored{hint}"));
    }

    /// Validates the whole document.
    fn run(mut self, doc: &Value) -> Result<Config, ConfigError> {
        let Some(root) = doc.as_object() else {
            let found = describe(doc);
            self.error("", format!("the document must be an object with an `mcpServers` key, found {found}"));
            return Err(self.into_error());
        };
        let raw_servers = root.get("mcpServers").and_then(Value::as_object);
        let overrides =
            root.get("mcpmux").and_then(Value::as_object).and_then(|m| m.get("servers")).and_then(Value::as_object);
        let mut settings = Settings::default();
        let mut servers = BTreeMap::new();
        for (key, value) in root {
            match key.as_str() {
                "mcpServers" => servers = self.servers(value, overrides),
                "mcpmux" => settings = self.settings(value, raw_servers),
                "$schema" => {}
                _ => self.ignored(&child("", key), key),
            }
        }
        if !root.contains_key("mcpServers") {
            self.missing_servers(root);
        }
        self.token_from_env(root, &mut settings);
        self.check_prefixes(&servers);
        self.finish(settings, servers)
    }

    fn into_error(self) -> ConfigError {
        ConfigError { source_path: None, problems: self.errors }
    }

    fn finish(self, settings: Settings, servers: BTreeMap<String, ServerConfig>) -> Result<Config, ConfigError> {
        if !self.errors.is_empty() {
            return Err(self.into_error());
        }
        Ok(Config { settings, servers, warnings: self.warnings, source: None, overrides: Overrides::default() })
    }

    fn missing_servers(&mut self, root: &Map<String, Value>) {
        let hint = if root.contains_key("servers") {
            " (this file has `servers`, the VS Code layout; rename it to `mcpServers`)"
        } else {
            ""
        };
        self.error("", format!("the required key `mcpServers` is missing{hint}"));
    }

    /// Uses `MCPMUX_AUTH_TOKEN` when the file sets neither `authToken` nor `authTokenFile`.
    fn token_from_env(&self, root: &Map<String, Value>, settings: &mut Settings) {
        let in_file = root
            .get("mcpmux")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key("authToken") || m.contains_key("authTokenFile"));
        if in_file {
            return;
        }
        if let Some(token) = self.env.get(AUTH_TOKEN_VAR).filter(|t| !t.is_empty()) {
            settings.auth_token = Some(Secret::new(token));
        }
    }

    /// Two enabled servers with the same prefix would collide when namespacing.
    fn check_prefixes(&mut self, servers: &BTreeMap<String, ServerConfig>) {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for server in servers.values().filter(|s| !s.disabled) {
            match seen.get(server.prefix.as_str()) {
                Some(first) => {
                    let message = format!(
                        "servers '{first}' and '{}' both use the prefix '{}'; \
                         set a different `prefix` for one of them",
                        server.name, server.prefix
                    );
                    self.error(child("mcpServers", &server.name), message);
                }
                None => {
                    seen.insert(&server.prefix, &server.name);
                }
            }
        }
    }

    // --- typed values ----------------------------------------------------------------------

    fn object<'v>(&mut self, loc: &str, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.error(loc, format!("expected an object, found {}", describe(other)));
                None
            }
        }
    }

    fn array<'v>(&mut self, loc: &str, value: &'v Value) -> Option<&'v [Value]> {
        match value {
            Value::Array(items) => Some(items),
            other => {
                self.error(loc, format!("expected an array, found {}", describe(other)));
                None
            }
        }
    }

    fn string<'v>(&mut self, loc: &str, value: &'v Value) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            Value::Number(_) | Value::Bool(_) => {
                let found = describe(value);
                self.error(loc, format!("expected a string, found {found} (put it in quotes)"));
                None
            }
            other => {
                self.error(loc, format!("expected a string, found {}", describe(other)));
                None
            }
        }
    }

    fn boolean(&mut self, loc: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                let found = describe(other);
                self.error(loc, format!("expected true or false, found {found}"));
                None
            }
        }
    }

    /// A positive integer.
    fn positive(&mut self, loc: &str, value: &Value) -> Option<u64> {
        let message = match value {
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(0), _) => "must be a positive integer, found 0".to_owned(),
                (Some(n), _) => return Some(n),
                (None, Some(i)) => format!("must be a positive integer, found {i}"),
                (None, None) => format!("expected an integer, found {n}"),
            },
            other => format!("expected a positive integer, found {}", describe(other)),
        };
        self.error(loc, message);
        None
    }

    /// A positive number of milliseconds.
    fn millis(&mut self, loc: &str, value: &Value) -> Option<Duration> {
        self.positive(loc, value).map(Duration::from_millis)
    }

    /// A positive number of bytes.
    fn bytes(&mut self, loc: &str, value: &Value) -> Option<usize> {
        let n = self.positive(loc, value)?;
        let size = usize::try_from(n).ok();
        if size.is_none() {
            self.error(loc, format!("{n} is too large for this machine"));
        }
        size
    }

    /// Expands `${VAR}` in `raw`, reporting every problem at `loc`.
    fn expand_at(&mut self, loc: &str, raw: &str) -> Option<String> {
        match expand(raw, self.env) {
            Ok(text) => Some(text),
            Err(e) => {
                for problem in e.problems {
                    self.error(loc, problem.to_string());
                }
                None
            }
        }
    }

    /// A string, expanded.
    fn expanded(&mut self, loc: &str, value: &Value) -> Option<String> {
        let raw = self.string(loc, value)?;
        self.expand_at(loc, raw)
    }

    /// A string, expanded, that must not be empty afterwards.
    fn non_empty(&mut self, loc: &str, value: &Value) -> Option<String> {
        let text = self.expanded(loc, value)?;
        if text.is_empty() {
            self.error(loc, "must not be empty");
            return None;
        }
        Some(text)
    }

    // --- servers ---------------------------------------------------------------------------

    /// Walks `mcpServers`.
    fn servers(&mut self, value: &Value, overrides: Option<&Map<String, Value>>) -> BTreeMap<String, ServerConfig> {
        let mut out = BTreeMap::new();
        let Some(entries) = self.object("mcpServers", value) else {
            return out;
        };
        if entries.is_empty() {
            self.warn("mcpServers", "no servers are configured; mcpmux will serve an empty catalog");
        }
        for (name, entry) in entries {
            let over = overrides.and_then(|o| o.get(name));
            if let Some(server) = self.server(name, entry, over) {
                out.insert(name.clone(), server);
            }
        }
        out
    }

    /// Walks `mcpServers.<name>` (and `mcpmux.servers.<name>` when given).
    fn server(&mut self, name: &str, value: &Value, over: Option<&Value>) -> Option<ServerConfig> {
        let loc = child("mcpServers", name);
        self.check_name(&loc, name);
        let entry = self.object(&loc, value)?;
        let over_loc = child("mcpmux.servers", name);
        let over = match over {
            Some(o) => self.object(&over_loc, o),
            None => None,
        };
        let kind = self.transport(&loc, entry);
        let e = Entry { loc, over_loc, over, kind };
        let mut fields = Fields::default();
        let mut own = OwnKeys::default();
        for (key, value) in entry {
            self.server_key(&e, key, value, &mut fields, &mut own);
        }
        if entry.contains_key("bearerToken") && entry.contains_key("bearerTokenFile") {
            self.error(child(&e.loc, "bearerToken"), "`bearerToken` and `bearerTokenFile` are both set; keep only one");
        }
        if fields.bearer.is_some() && fields.headers.keys().any(|h| h.eq_ignore_ascii_case("authorization")) {
            self.error(
                child(&e.loc, "headers"),
                "an Authorization header and a bearer token are both set; keep only one",
            );
        }
        self.override_keys(&e, entry, &mut own);
        let transport = build_transport(e.kind?, fields)?;
        Some(ServerConfig {
            name: name.to_owned(),
            prefix: own.prefix.unwrap_or_else(|| name.to_owned()),
            transport,
            disabled: own.disabled,
            request_timeout: own.request_timeout,
            startup_timeout: own.startup_timeout,
            isolation: own.isolation,
            required: own.required.unwrap_or(true),
            list_when_down: own.list_when_down.unwrap_or(true),
            ping_interval: own.ping_interval,
            protocol: own.protocol,
        })
    }

    fn check_name(&mut self, loc: &str, name: &str) {
        if name.is_empty() {
            self.error(loc, "a server name must not be empty");
        } else if !is_simple_name(name) {
            self.warn(
                loc,
                "the server name has characters other than ASCII letters, digits, '_' and '-'; \
                 they will be replaced in exposed names (set `prefix` to choose the prefix)",
            );
        }
    }

    /// Determines the transport from `transport`/`type`, or from `command`/`url`.
    fn transport(&mut self, loc: &str, entry: &Map<String, Value>) -> Option<Kind> {
        let explicit = self.explicit_transport(loc, entry).ok()?;
        let has_command = entry.contains_key("command");
        let has_url = entry.contains_key("url");
        match explicit {
            Some(kind) => self.check_declared(loc, kind, has_command, has_url),
            None => self.infer_transport(loc, entry, has_command, has_url),
        }
    }

    /// Reads `transport` and `type`; `Err` when either is invalid or they disagree.
    fn explicit_transport(&mut self, loc: &str, entry: &Map<String, Value>) -> Result<Option<Kind>, ()> {
        let mut chosen: Option<(&str, Kind)> = None;
        let mut failed = false;
        for key in ["transport", "type"] {
            let Some(value) = entry.get(key) else {
                continue;
            };
            let kloc = child(loc, key);
            let Some(text) = self.string(&kloc, value) else {
                failed = true;
                continue;
            };
            match (parse_transport(text), chosen) {
                (Err(message), _) => {
                    self.error(kloc, message);
                    failed = true;
                }
                (Ok(kind), Some((other, previous))) if previous != kind => {
                    let message = format!(
                        "`{key}` says '{}' but `{other}` says '{}'; set only one of them",
                        kind.name(),
                        previous.name()
                    );
                    self.error(kloc, message);
                    failed = true;
                }
                (Ok(kind), _) => chosen = Some((key, kind)),
            }
        }
        if failed { Err(()) } else { Ok(chosen.map(|(_, kind)| kind)) }
    }

    /// Checks that a declared transport has the right address key.
    fn check_declared(&mut self, loc: &str, kind: Kind, has_command: bool, has_url: bool) -> Option<Kind> {
        let name = kind.name();
        let (needed, wrong) = match kind {
            Kind::Stdio => ("command", "url"),
            Kind::Remote(_) => ("url", "command"),
        };
        let (has_needed, has_wrong) = match kind {
            Kind::Stdio => (has_command, has_url),
            Kind::Remote(_) => (has_url, has_command),
        };
        if has_wrong {
            let message = format!("`{wrong}` cannot be used with transport '{name}'");
            self.error(child(loc, wrong), message);
        }
        if !has_needed {
            self.error(loc, format!("transport '{name}' needs `{needed}`"));
        }
        (has_needed && !has_wrong).then_some(kind)
    }

    /// Infers the transport from `command` / `url` when none is declared.
    fn infer_transport(
        &mut self,
        loc: &str,
        entry: &Map<String, Value>,
        has_command: bool,
        has_url: bool,
    ) -> Option<Kind> {
        match (has_command, has_url) {
            (true, false) => Some(Kind::Stdio),
            (false, true) => Some(Kind::Remote(RemoteKind::Auto)),
            (true, true) => {
                self.error(loc, "has both `command` (stdio) and `url` (remote); a server uses one transport");
                None
            }
            (false, false) => {
                let hint = ["httpUrl", "serverUrl"]
                    .into_iter()
                    .find(|k| entry.contains_key(*k))
                    .map(|k| format!("; `{k}` is not read by mcpmux, rename it to `url`"))
                    .unwrap_or_default();
                self.error(loc, format!("needs either `command` (stdio) or `url` (remote){hint}"));
                None
            }
        }
    }

    /// Handles one key of an entry.
    fn server_key(&mut self, e: &Entry<'_>, key: &str, value: &Value, fields: &mut Fields, own: &mut OwnKeys) {
        let loc = child(&e.loc, key);
        let remote = matches!(e.kind, Some(Kind::Remote(_)));
        let stdio = e.kind == Some(Kind::Stdio);
        match key {
            "transport" | "type" => {}
            "command" => fields.command = self.non_empty(&loc, value),
            "url" => fields.url = self.url(&loc, value),
            "args" | "env" | "cwd" if remote => {
                self.warn(loc, format!("key '{key}' only applies to stdio servers and was ignored"))
            }
            "headers" | "bearerToken" | "bearerTokenFile" if stdio => {
                self.warn(loc, format!("key '{key}' only applies to remote servers and was ignored"))
            }
            "bearerToken" => fields.bearer = self.non_empty(&loc, value).map(Secret::new),
            "bearerTokenFile" => fields.bearer = self.token_file(&loc, value),
            "args" => fields.args = self.args(&loc, value),
            "env" => fields.env = self.env_map(&loc, value),
            "cwd" => fields.cwd = self.non_empty(&loc, value).map(PathBuf::from),
            "headers" => fields.headers = self.headers(&loc, value),
            _ if OWN_SERVER_KEYS.contains(&key) => match e.over {
                Some(over) if over.contains_key(key) => {
                    let other = child(&e.over_loc, key);
                    self.error(loc, format!("`{key}` is set both here and at {other}; set it in one place only"));
                }
                _ => self.own_key(&loc, key, value, own),
            },
            _ => self.ignored(&loc, key),
        }
    }

    /// Handles `mcpmux.servers.<name>`; keys also in the entry were reported there.
    fn override_keys(&mut self, e: &Entry<'_>, entry: &Map<String, Value>, own: &mut OwnKeys) {
        let Some(over) = e.over else {
            return;
        };
        for (key, value) in over {
            let loc = child(&e.over_loc, key);
            if !OWN_SERVER_KEYS.contains(&key.as_str()) {
                let expected = OWN_SERVER_KEYS.join(", ");
                self.warn(
                    loc,
                    format!(
                        "key '{key}' is not a per-server setting and was ignored; \
                         expected one of: {expected}"
                    ),
                );
            } else if !entry.contains_key(key) {
                self.own_key(&loc, key, value, own);
            }
        }
    }

    /// Validates one of [`OWN_SERVER_KEYS`].
    fn own_key(&mut self, loc: &str, key: &str, value: &Value, own: &mut OwnKeys) {
        match key {
            "prefix" => own.prefix = self.prefix(loc, value),
            "disabled" => own.disabled = self.boolean(loc, value).unwrap_or(own.disabled),
            "requestTimeoutMs" => own.request_timeout = self.millis(loc, value),
            "startupTimeoutMs" => own.startup_timeout = self.millis(loc, value),
            "required" => own.required = self.boolean(loc, value),
            "listWhenDown" => own.list_when_down = self.boolean(loc, value),
            "pingIntervalMs" => own.ping_interval = self.millis(loc, value),
            "isolation" => match value.as_str() {
                Some("shared") => own.isolation = Isolation::Shared,
                Some("session") => own.isolation = Isolation::Session,
                _ => self.error(loc, format!("expected \"shared\" or \"session\", found {}", describe(value))),
            },
            "protocol" => match value.as_str() {
                Some("auto") => own.protocol = ProtocolChoice::Auto,
                Some(v) if crate::protocol::is_modern(v) => own.protocol = ProtocolChoice::Modern,
                Some("legacy") => own.protocol = ProtocolChoice::Legacy,
                _ => self.error(
                    loc,
                    format!(
                        "expected \"auto\", \"{}\" or \"legacy\", found {}",
                        crate::protocol::MODERN_VERSION,
                        describe(value)
                    ),
                ),
            },
            _ => {}
        }
    }

    fn prefix(&mut self, loc: &str, value: &Value) -> Option<String> {
        let text = self.string(loc, value)?;
        if text.is_empty() {
            self.error(loc, "must not be empty");
            return None;
        }
        if !is_simple_name(text) {
            let message = format!("must contain only ASCII letters, digits, '_' and '-', found '{text}'");
            self.error(loc, message);
            return None;
        }
        Some(text.to_owned())
    }

    /// `args`: an array of strings, each expanded.
    fn args(&mut self, loc: &str, value: &Value) -> Vec<String> {
        let Some(items) = self.array(loc, value) else {
            return Vec::new();
        };
        items.iter().enumerate().filter_map(|(i, arg)| self.expanded(&item(loc, i), arg)).collect()
    }

    /// `env`: an object whose values are strings (expanded), numbers or booleans.
    fn env_map(&mut self, loc: &str, value: &Value) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(vars) = self.object(loc, value) else {
            return out;
        };
        for (name, value) in vars {
            let vloc = child(loc, name);
            if name.is_empty() || name.contains(['=', '\0']) {
                self.error(vloc, "an environment variable name must be non-empty and cannot contain '=' or NUL");
                continue;
            }
            let text = match value {
                Value::String(raw) => self.expand_at(&vloc, raw),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                other => {
                    self.error(vloc, format!("expected a string, found {}", describe(other)));
                    None
                }
            };
            if let Some(text) = text {
                out.insert(name.clone(), text);
            }
        }
        out
    }

    /// `url`: a string, expanded, then checked.
    fn url(&mut self, loc: &str, value: &Value) -> Option<String> {
        let url = self.expanded(loc, value)?;
        match check_url(&url) {
            Ok(()) => Some(url),
            Err(message) => {
                self.error(loc, message);
                None
            }
        }
    }

    /// `headers`: an object of strings, each expanded and kept as a [`Secret`].
    fn headers(&mut self, loc: &str, value: &Value) -> BTreeMap<String, Secret> {
        let mut out = BTreeMap::new();
        let Some(headers) = self.object(loc, value) else {
            return out;
        };
        for (name, value) in headers {
            let hloc = child(loc, name);
            if !is_header_name(name) {
                self.error(hloc, "invalid header name; use ASCII letters, digits and !#$%&'*+-.^_`|~");
                continue;
            }
            let Some(text) = self.expanded(&hloc, value) else {
                continue;
            };
            if text.contains(['\r', '\n', '\0']) {
                self.error(hloc, "the header value contains a line break or NUL character");
                continue;
            }
            out.insert(name.clone(), Secret::new(text));
        }
        out
    }

    // --- settings --------------------------------------------------------------------------

    /// Walks `mcpmux`.
    fn settings(&mut self, value: &Value, servers: Option<&Map<String, Value>>) -> Settings {
        let mut settings = Settings::default();
        let Some(obj) = self.object("mcpmux", value) else {
            return settings;
        };
        for (key, value) in obj {
            self.setting(&mut settings, obj, key, value, servers);
        }
        settings
    }

    /// Handles one key of `mcpmux`.
    fn setting(
        &mut self,
        s: &mut Settings,
        obj: &Map<String, Value>,
        key: &str,
        value: &Value,
        servers: Option<&Map<String, Value>>,
    ) {
        let loc = child("mcpmux", key);
        let loc = loc.as_str();
        match key {
            "listen" => set(&mut s.listen, self.listen(loc, value)),
            "separator" => set(&mut s.separator, self.separator(loc, value)),
            "pageSize" => set(&mut s.page_size, self.page_size(loc, value)),
            "authToken" if obj.contains_key("authTokenFile") => {}
            "authToken" => s.auth_token = self.non_empty(loc, value).map(Secret::new),
            "authTokenFile" if obj.contains_key("authToken") => {
                self.error(loc, "`authToken` and `authTokenFile` are both set; keep only one")
            }
            "authTokenFile" => s.auth_token = self.token_file(loc, value),
            "allowedOrigins" => set(&mut s.allowed_origins, self.string_list(loc, value)),
            "allowedHosts" => set(&mut s.allowed_hosts, self.string_list(loc, value)),
            "allowUnauthenticated" => set(&mut s.allow_unauthenticated, self.boolean(loc, value)),
            "sessionIdleTimeoutMs" => set(&mut s.session_idle_timeout, self.millis(loc, value)),
            "maxBodyBytes" => set(&mut s.max_body_bytes, self.bytes(loc, value)),
            "maxMessageBytes" => set(&mut s.max_message_bytes, self.bytes(loc, value)),
            "requestTimeoutMs" => set(&mut s.request_timeout, self.millis(loc, value)),
            "startupTimeoutMs" => set(&mut s.startup_timeout, self.millis(loc, value)),
            "inputTimeoutMs" => set(&mut s.input_timeout, self.millis(loc, value)),
            "servers" => self.override_names(loc, value, servers),
            _ => self.ignored(loc, key),
        }
    }

    /// `listen`, expanded (so `"0.0.0.0:${PORT:-8080}"` works like every other string value).
    fn listen(&mut self, loc: &str, value: &Value) -> Option<SocketAddr> {
        let text = self.expanded(loc, value)?;
        let addr = parse_listen(&text);
        if addr.is_none() {
            let message = format!(
                "expected \"host:port\" with an IP address or localhost, like \"127.0.0.1:8080\"; \
                 found '{text}'"
            );
            self.error(loc, message);
        }
        addr
    }

    fn separator(&mut self, loc: &str, value: &Value) -> Option<String> {
        let text = self.string(loc, value)?;
        if is_valid_separator(text) {
            return Some(text.to_owned());
        }
        let message = format!(
            "must be 1 to 3 characters from [A-Za-z0-9_-] with at least one '_' or '-', \
             like \"_\" or \"__\"; found '{text}'"
        );
        self.error(loc, message);
        None
    }

    fn page_size(&mut self, loc: &str, value: &Value) -> Option<usize> {
        let n = self.positive(loc, value)?;
        if n > MAX_PAGE_SIZE {
            self.error(loc, format!("must be at most {MAX_PAGE_SIZE}, found {n}"));
            return None;
        }
        usize::try_from(n).ok()
    }

    /// `authTokenFile`: the file's content without trailing whitespace.
    fn token_file(&mut self, loc: &str, value: &Value) -> Option<Secret> {
        let path = self.non_empty(loc, value)?;
        let content = match std::fs::read_to_string(&path) {
            Ok(content) => content,
            Err(e) => {
                self.error(loc, format!("cannot read the token file '{path}': {e}"));
                return None;
            }
        };
        let token = content.trim_end();
        if token.is_empty() {
            self.error(loc, format!("the token file '{path}' is empty"));
            return None;
        }
        Some(Secret::new(token))
    }

    /// An array of non-empty strings (not expanded).
    fn string_list(&mut self, loc: &str, value: &Value) -> Option<Vec<String>> {
        let items = self.array(loc, value)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, value) in items.iter().enumerate() {
            let iloc = item(loc, i);
            match self.string(&iloc, value) {
                Some("") => {
                    self.error(iloc, "must not be empty");
                    ok = false;
                }
                Some(text) => out.push(text.to_owned()),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `mcpmux.servers`: every name must be a server in `mcpServers`. The keys inside are
    /// checked with the server.
    fn override_names(&mut self, loc: &str, value: &Value, servers: Option<&Map<String, Value>>) {
        let Some(obj) = self.object(loc, value) else {
            return;
        };
        for name in obj.keys() {
            if servers.is_some_and(|s| !s.contains_key(name)) {
                self.error(child(loc, name), format!("there is no server named '{name}' in mcpServers"));
            }
        }
    }
}

/// Stores `value` in `slot` when present.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Assembles the transport once the fields are validated.
fn build_transport(kind: Kind, fields: Fields) -> Option<TransportConfig> {
    Some(match kind {
        Kind::Stdio => TransportConfig::Stdio(StdioConfig {
            command: fields.command?,
            args: fields.args,
            env: fields.env,
            cwd: fields.cwd,
        }),
        Kind::Remote(kind) => {
            let mut headers = fields.headers;
            if let Some(token) = fields.bearer {
                headers.insert("Authorization".to_owned(), Secret::new(format!("Bearer {}", token.expose())));
            }
            TransportConfig::Remote(RemoteConfig { url: fields.url?, kind, headers })
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load_with(text: &str, format: Format, pairs: &[(&str, &str)]) -> Config {
        match parse_str(text, format, &env(pairs)) {
            Ok(config) => config,
            Err(e) => panic!("config should load, got: {:#?}", e.problems),
        }
    }

    fn load(json: &str) -> Config {
        load_with(json, Format::Json, &[])
    }

    fn problems_with(text: &str, format: Format, pairs: &[(&str, &str)]) -> Vec<Diagnostic> {
        match parse_str(text, format, &env(pairs)) {
            Ok(config) => panic!("config should fail, got: {config:#?}"),
            Err(e) => {
                assert!(e.source_path.is_none());
                assert!(!e.problems.is_empty());
                e.problems
            }
        }
    }

    fn problems(json: &str) -> Vec<Diagnostic> {
        problems_with(json, Format::Json, &[])
    }

    fn server<'c>(config: &'c Config, name: &str) -> &'c ServerConfig {
        match config.servers.get(name) {
            Some(server) => server,
            None => panic!("no server {name} in {config:#?}"),
        }
    }

    fn stdio<'c>(config: &'c Config, name: &str) -> &'c StdioConfig {
        match &server(config, name).transport {
            TransportConfig::Stdio(s) => s,
            other => panic!("{name} should be stdio, is {other:?}"),
        }
    }

    fn remote<'c>(config: &'c Config, name: &str) -> &'c RemoteConfig {
        match &server(config, name).transport {
            TransportConfig::Remote(r) => r,
            other => panic!("{name} should be remote, is {other:?}"),
        }
    }

    /// Asserts exactly one diagnostic, at `location`, whose message contains `needle`.
    fn assert_one(diags: &[Diagnostic], location: &str, needle: &str) {
        assert_eq!(diags.len(), 1, "expected one diagnostic, got {diags:#?}");
        assert_eq!(diags[0].location, location, "{diags:#?}");
        assert!(diags[0].message.contains(needle), "{diags:#?}");
    }

    fn has(diags: &[Diagnostic], location: &str, needle: &str) -> bool {
        diags.iter().any(|d| d.location == location && d.message.contains(needle))
    }

    const FULL_JSON: &str = r#"{
      "mcpServers": {
        "notes": {
          "command": "${MCPMUX_EXE}",
          "args": ["demo", "notes", "--root=${ROOT:-/tmp}"],
          "env": {"KEY": "${KEY}", "N": 3, "B": true},
          "cwd": "/srv",
          "prefix": "n",
          "requestTimeoutMs": 5000
        },
        "api": {
          "url": "https://example.com/mcp",
          "headers": {"Authorization": "Bearer ${TOKEN}"},
          "disabled": true
        },
        "events": {"type": "sse", "url": "http://127.0.0.1:9000/sse"}
      },
      "mcpmux": {
        "listen": "localhost:9090",
        "separator": "__",
        "pageSize": 50,
        "authToken": "${TOKEN}",
        "allowedOrigins": ["https://app.example.com"],
        "allowedHosts": ["gw.example.com"],
        "allowUnauthenticated": true,
        "sessionIdleTimeoutMs": 60000,
        "maxBodyBytes": 1024,
        "maxMessageBytes": 2048,
        "requestTimeoutMs": 7000,
        "startupTimeoutMs": 8000,
        "servers": {"events": {"prefix": "ev", "startupTimeoutMs": 100}}
      }
    }"#;

    const FULL_TOML: &str = r#"
      [mcpServers.notes]
      command = "${MCPMUX_EXE}"
      args = ["demo", "notes", "--root=${ROOT:-/tmp}"]
      env = { KEY = "${KEY}", N = 3, B = true }
      cwd = "/srv"
      prefix = "n"
      requestTimeoutMs = 5000

      [mcpServers.api]
      url = "https://example.com/mcp"
      headers = { Authorization = "Bearer ${TOKEN}" }
      disabled = true

      [mcpServers.events]
      type = "sse"
      url = "http://127.0.0.1:9000/sse"

      [mcpmux]
      listen = "localhost:9090"
      separator = "__"
      pageSize = 50
      authToken = "${TOKEN}"
      allowedOrigins = ["https://app.example.com"]
      allowedHosts = ["gw.example.com"]
      allowUnauthenticated = true
      sessionIdleTimeoutMs = 60000
      maxBodyBytes = 1024
      maxMessageBytes = 2048
      requestTimeoutMs = 7000
      startupTimeoutMs = 8000

      [mcpmux.servers.events]
      prefix = "ev"
      startupTimeoutMs = 100
    "#;

    const FULL_ENV: [(&str, &str); 3] = [("MCPMUX_EXE", "/opt/mcpmux"), ("KEY", "k"), ("TOKEN", "t0k")];

    #[test]
    fn full_json_config() {
        let c = load_with(FULL_JSON, Format::Json, &FULL_ENV);
        assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
        assert_eq!(c.source, None);

        let notes = stdio(&c, "notes");
        assert_eq!(notes.command, "/opt/mcpmux");
        assert_eq!(notes.args, ["demo", "notes", "--root=/tmp"]);
        assert_eq!(notes.env, env(&[("KEY", "k"), ("N", "3"), ("B", "true")]));
        assert_eq!(notes.cwd, Some(PathBuf::from("/srv")));
        let n = server(&c, "notes");
        assert_eq!(n.prefix, "n");
        assert_eq!(n.request_timeout, Some(Duration::from_millis(5000)));
        assert_eq!(n.startup_timeout, None);
        assert!(!n.disabled);

        let api = remote(&c, "api");
        assert_eq!(api.url, "https://example.com/mcp");
        assert_eq!(api.kind, RemoteKind::Auto);
        assert_eq!(api.headers.get("Authorization").map(Secret::expose), Some("Bearer t0k"));
        assert!(server(&c, "api").disabled);
        assert_eq!(server(&c, "api").prefix, "api");

        assert_eq!(remote(&c, "events").kind, RemoteKind::Sse);
        let ev = server(&c, "events");
        assert_eq!(ev.prefix, "ev");
        assert_eq!(ev.startup_timeout, Some(Duration::from_millis(100)));

        let s = &c.settings;
        assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 9090)));
        assert_eq!(s.separator, "__");
        assert_eq!(s.page_size, 50);
        assert_eq!(s.auth_token.as_ref().map(Secret::expose), Some("t0k"));
        assert_eq!(s.allowed_origins, ["https://app.example.com"]);
        assert_eq!(s.allowed_hosts, ["gw.example.com"]);
        assert!(s.allow_unauthenticated);
        assert_eq!(s.session_idle_timeout, Duration::from_secs(60));
        assert_eq!(s.max_body_bytes, 1024);
        assert_eq!(s.max_message_bytes, 2048);
        assert_eq!(s.request_timeout, Duration::from_secs(7));
        assert_eq!(s.startup_timeout, Duration::from_secs(8));
        assert_eq!(c.enabled_servers().count(), 2);
    }

    #[test]
    fn json_and_toml_give_equal_configs() {
        let json = load_with(FULL_JSON, Format::Json, &FULL_ENV);
        let toml = load_with(FULL_TOML, Format::Toml, &FULL_ENV);
        assert_eq!(json, toml);
    }

    #[test]
    fn json_and_toml_report_the_same_problems() {
        let json = r#"{"mcpServers": {"a": {"command": "x", "args": [1]}, "b": {}}}"#;
        let toml = "[mcpServers.a]\ncommand = \"x\"\nargs = [1]\n[mcpServers.b]\n";
        let from_json = problems(json);
        let from_toml = problems_with(toml, Format::Toml, &[]);
        assert_eq!(from_json, from_toml);
        assert_eq!(from_json.len(), 2, "{from_json:#?}");
    }

    #[test]
    fn defaults_when_mcpmux_is_absent() {
        let c = load(r#"{"mcpServers": {"a": {"command": "x"}}}"#);
        assert_eq!(c.settings, Settings::default());
        let a = stdio(&c, "a");
        assert!(a.args.is_empty() && a.env.is_empty() && a.cwd.is_none());
        assert_eq!(server(&c, "a").prefix, "a");
    }

    #[test]
    fn default_demo_config_uses_the_running_executable() {
        let text = r#"{"mcpServers": {"notes": {"command": "${MCPMUX_EXE}", "args": ["demo", "notes"]}}}"#;
        let c = load(text);
        let exe = std::env::current_exe().map(|p| p.to_string_lossy().into_owned());
        if let Ok(exe) = exe {
            assert_eq!(stdio(&c, "notes").command, exe);
        }
    }

    #[test]
    fn transport_is_inferred_or_declared() {
        let c = load(
            r#"{"mcpServers": {
              "cmd": {"command": "x"},
              "auto": {"url": "http://h/mcp"},
              "sse": {"type": "sse", "url": "http://h/sse"},
              "upper": {"type": "SSE", "url": "http://h/sse"},
              "http": {"transport": "http", "url": "http://h/mcp"},
              "sh": {"transport": "streamable-http", "url": "http://h/mcp"},
              "camel": {"type": "streamableHttp", "url": "http://h/mcp"},
              "both": {"type": "http", "transport": "streamable-http", "url": "http://h/mcp"},
              "explicit": {"type": "stdio", "command": "x"}
            }}"#,
        );
        assert!(matches!(server(&c, "cmd").transport, TransportConfig::Stdio(_)));
        assert!(matches!(server(&c, "explicit").transport, TransportConfig::Stdio(_)));
        assert_eq!(remote(&c, "auto").kind, RemoteKind::Auto);
        assert_eq!(remote(&c, "sse").kind, RemoteKind::Sse);
        assert_eq!(remote(&c, "upper").kind, RemoteKind::Sse);
        for name in ["http", "sh", "camel", "both"] {
            assert_eq!(remote(&c, name).kind, RemoteKind::StreamableHttp, "{name}");
        }
    }

    #[test]
    fn unknown_transport() {
        let p = problems(r#"{"mcpServers": {"w": {"type": "websocket", "url": "http://h"}}}"#);
        assert_one(
            &p,
            "mcpServers.w.type",
            "unknown transport 'websocket'; expected one of: stdio, http, streamable-http, sse",
        );
    }

    #[test]
    fn transport_conflicts() {
        let cases = [
            (r#"{"command": "x", "url": "http://h"}"#, "mcpServers.s", "has both `command`"),
            (r#"{"args": ["a"]}"#, "mcpServers.s", "needs either `command` (stdio) or `url` (remote)"),
            (r#"{"httpUrl": "http://h"}"#, "mcpServers.s", "`httpUrl` is not read by mcpmux"),
            (
                r#"{"type": "stdio", "command": "x", "url": "http://h"}"#,
                "mcpServers.s.url",
                "cannot be used with transport 'stdio'",
            ),
            (r#"{"type": "stdio"}"#, "mcpServers.s", "transport 'stdio' needs `command`"),
            (r#"{"type": "http"}"#, "mcpServers.s", "transport 'http' needs `url`"),
            (
                r#"{"type": "sse", "command": "x", "url": "http://h"}"#,
                "mcpServers.s.command",
                "cannot be used with transport 'sse'",
            ),
            (
                r#"{"type": "sse", "transport": "http", "url": "http://h"}"#,
                "mcpServers.s.type",
                "`type` says 'sse' but `transport` says 'http'",
            ),
            (r#"{"type": 3, "url": "http://h"}"#, "mcpServers.s.type", "expected a string, found a number"),
        ];
        for (entry, location, needle) in cases {
            let text = format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#);
            assert_one(&problems(&text), location, needle);
        }
    }

    #[test]
    fn three_mistakes_give_three_diagnostics() {
        let p = problems(
            r#"{
              "mcpServers": {
                "a": {"command": "x", "args": ["ok", 5]},
                "b": {"url": "ftp://h"}
              },
              "mcpmux": {"pageSize": 0}
            }"#,
        );
        let locations: Vec<&str> = p.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(locations, ["mcpServers.a.args[1]", "mcpServers.b.url", "mcpmux.pageSize"], "{p:#?}");
        assert!(p[0].message.contains("expected a string, found a number"));
        assert!(p[1].message.contains("http:// or https://"));
        assert!(p[2].message.contains("positive integer"));
    }

    #[test]
    fn every_unset_variable_is_reported_at_its_location() {
        let p = problems(
            r#"{"mcpServers": {
              "s": {"command": "${CMD}", "args": ["${A}", "x", "${B}${C}"], "env": {"E": "${E}"}, "cwd": "${D}"},
              "api": {"url": "${URL}", "headers": {"Authorization": "Bearer ${TOKEN}"}}
            }}"#,
        );
        let expected = [
            ("mcpServers.s.command", "CMD"),
            ("mcpServers.s.args[0]", "A"),
            ("mcpServers.s.args[2]", "B"),
            ("mcpServers.s.args[2]", "C"),
            ("mcpServers.s.env.E", "E"),
            ("mcpServers.s.cwd", "D"),
            ("mcpServers.api.url", "URL"),
            ("mcpServers.api.headers.Authorization", "TOKEN"),
        ];
        assert_eq!(p.len(), expected.len(), "{p:#?}");
        for ((location, var), d) in expected.iter().zip(&p) {
            assert_eq!(d.location, *location);
            assert_eq!(d.message, format!("variable {var} is not set and has no default"));
        }
        assert_eq!(
            p[7].to_string(),
            "mcpServers.api.headers.Authorization: variable TOKEN is not set and has no default"
        );
    }

    #[test]
    fn malformed_reference_is_an_error() {
        let p = problems(r#"{"mcpServers": {"s": {"command": "x", "args": ["${A"]}}}"#);
        assert_one(&p, "mcpServers.s.args[0]", "unterminated");
    }

    #[test]
    fn secrets_never_appear_in_diagnostics() {
        let text = r#"{
          "mcpServers": {
            "api": {
              "url": "https://h/mcp?key=${SECRET}",
              "headers": {
                "Authorization": "Bearer ${UNSET_TOKEN}",
                "X-Set": "${SECRET}",
                "X-Literal": "s3cr3t-literal",
                "X-Injected": "${SECRET}\r\nEvil: s3cr3t",
                "X-Bad name": "s3cr3t"
              }
            },
            "bad-url": {"url": "s3cr3t://${SECRET}"},
            "child": {
              "command": "x",
              "env": {"A": "${SECRET}", "B": "${UNSET_TOKEN}", "C": "s3cr3t${x-y}", "D": ["s3cr3t"]}
            }
          },
          "mcpmux": {"authToken": "${SECRET}", "unknownKey": "s3cr3t"}
        }"#;
        let p = problems_with(text, Format::Json, &[("SECRET", "s3cr3t")]);
        assert!(has(&p, "mcpServers.api.headers.Authorization", "UNSET_TOKEN"));
        assert!(has(&p, "mcpServers.api.headers.X-Injected", "line break"));
        assert!(has(&p, "mcpServers.api.headers[\"X-Bad name\"]", "invalid header name"));
        assert!(has(&p, "mcpServers.bad-url.url", "http:// or https://"));
        assert!(has(&p, "mcpServers.child.env.B", "UNSET_TOKEN"));
        assert!(has(&p, "mcpServers.child.env.C", "invalid variable reference"));
        assert!(has(&p, "mcpServers.child.env.D", "expected a string, found an array"));
        for d in &p {
            assert!(!d.to_string().contains("s3cr3t"), "leaked: {d}");
        }
        let joined = format!("{p:?}");
        assert!(!joined.contains("s3cr3t"), "{joined}");
    }

    #[test]
    fn secrets_never_appear_in_warnings() {
        let text = r#"{"mcpServers": {
            "api": {"url": "https://h/mcp", "headers": {"Authorization": "${SECRET}"}, "timeout": 5},
            "s": {"command": "x", "headers": {"A": "${SECRET}"}, "env": {"K": "${SECRET}"}, "oauth": {"k": "${SECRET}"}}
        }}"#;
        let c = load_with(text, Format::Json, &[("SECRET", "s3cr3t")]);
        assert!(!c.warnings.is_empty());
        for d in &c.warnings {
            assert!(!d.to_string().contains("s3cr3t"), "leaked: {d}");
        }
        assert!(!format!("{:?}", remote(&c, "api")).contains("s3cr3t"));
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let text = r#"{
          "$schema": "https://example.com/schema.json",
          "inputs": [],
          "mcpServers": {
            "x": {
              "command": "x", "timeout": 5, "description": "d", "alwaysAllow": [], "autoApprove": [],
              "trust": true, "includeTools": [], "excludeTools": [], "oauth": {}, "auth": {},
              "env_file": ".env", "envFile": ".env", "somethingElse": null, "enabled": true
            },
            "r": {"url": "http://h", "args": ["a"], "cwd": "/"}
          },
          "mcpmux": {"colour": "blue"}
        }"#;
        let c = load(text);
        let w = &c.warnings;
        assert!(has(w, "inputs", "key 'inputs' is not used by mcpmux and was ignored"));
        assert!(!w.iter().any(|d| d.location == "$schema"));
        assert_eq!(
            w.iter().find(|d| d.location == "mcpServers.x.timeout").map(ToString::to_string),
            Some(
                "mcpServers.x.timeout: key 'timeout' is not used by mcpmux and was ignored \
                 (mcpmux uses `requestTimeoutMs`)"
                    .to_owned()
            )
        );
        for key in [
            "description",
            "alwaysAllow",
            "autoApprove",
            "trust",
            "includeTools",
            "excludeTools",
            "oauth",
            "auth",
            "env_file",
            "envFile",
            "somethingElse",
            "enabled",
        ] {
            let location = format!("mcpServers.x.{key}");
            assert!(has(w, &location, &format!("key '{key}' is not used by mcpmux")), "{key}");
        }
        assert!(has(w, "mcpServers.r.args", "only applies to stdio servers"));
        assert!(has(w, "mcpServers.r.cwd", "only applies to stdio servers"));
        assert!(has(w, "mcpmux.colour", "key 'colour' is not used"));
        assert_eq!(w.len(), 17, "{w:#?}");
    }

    #[test]
    fn warnings_are_in_document_order() {
        let c = load(r#"{"zeta": 1, "mcpServers": {"b": {"command": "x", "z": 1, "a": 2}}, "alpha": 1}"#);
        let locations: Vec<&str> = c.warnings.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(locations, ["zeta", "mcpServers.b.z", "mcpServers.b.a", "alpha"]);
    }

    #[test]
    fn server_names() {
        let c = load(r#"{"mcpServers": {"my server": {"command": "x"}}}"#);
        assert!(has(&c.warnings, "mcpServers[\"my server\"]", "characters other than"));
        assert_eq!(server(&c, "my server").prefix, "my server");
        let p = problems(r#"{"mcpServers": {"": {"command": "x"}}}"#);
        assert_one(&p, "mcpServers[\"\"]", "must not be empty");
    }

    #[test]
    fn prefix_validation_and_collisions() {
        let p = problems(r#"{"mcpServers": {"a": {"command": "x", "prefix": "a b"}}}"#);
        assert_one(&p, "mcpServers.a.prefix", "must contain only ASCII letters");
        let p = problems(r#"{"mcpServers": {"a": {"command": "x", "prefix": ""}}}"#);
        assert_one(&p, "mcpServers.a.prefix", "must not be empty");

        let p =
            problems(r#"{"mcpServers": {"one": {"command": "x", "prefix": "shared"}, "shared": {"url": "http://h"}}}"#);
        assert_one(&p, "mcpServers.shared", "servers 'one' and 'shared' both use the prefix 'shared'");

        let c = load(
            r#"{"mcpServers": {"one": {"command": "x", "prefix": "shared", "disabled": true}, "shared": {"url": "http://h"}}}"#,
        );
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn mcpmux_servers_overrides() {
        let c = load(
            r#"{
              "mcpServers": {"a": {"command": "x"}, "b": {"url": "http://h"}},
              "mcpmux": {"servers": {
                "a": {"prefix": "pa", "requestTimeoutMs": 10, "disabled": true, "extra": 1},
                "b": {"startupTimeoutMs": 20}
              }}
            }"#,
        );
        let a = server(&c, "a");
        assert_eq!(a.prefix, "pa");
        assert_eq!(a.request_timeout, Some(Duration::from_millis(10)));
        assert!(a.disabled);
        assert_eq!(server(&c, "b").startup_timeout, Some(Duration::from_millis(20)));
        assert_one(&c.warnings, "mcpmux.servers.a.extra", "not a per-server setting");
    }

    #[test]
    fn overrides_must_not_repeat_entry_keys() {
        let p = problems(
            r#"{
              "mcpServers": {"a": {"command": "x", "prefix": "p1"}},
              "mcpmux": {"servers": {"a": {"prefix": "p2"}}}
            }"#,
        );
        assert_one(&p, "mcpServers.a.prefix", "mcpmux.servers.a.prefix");
    }

    #[test]
    fn overrides_for_unknown_servers_and_bad_types() {
        let p = problems(
            r#"{
              "mcpServers": {"a": {"command": "x"}},
              "mcpmux": {"servers": {"a": {"requestTimeoutMs": "5"}, "ghost": {"prefix": "g"}}}
            }"#,
        );
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(has(&p, "mcpmux.servers.a.requestTimeoutMs", "expected a positive integer, found a string"));
        assert!(has(&p, "mcpmux.servers.ghost", "there is no server named 'ghost' in mcpServers"));

        let p = problems(r#"{"mcpServers": {"a": {"command": "x"}}, "mcpmux": {"servers": {"a": 1}}}"#);
        assert_one(&p, "mcpmux.servers.a", "expected an object, found a number");
    }

    #[test]
    fn own_server_key_types() {
        let p = problems(
            r#"{"mcpServers": {"a": {"command": "x", "disabled": "yes", "startupTimeoutMs": -1, "requestTimeoutMs": 1.5}}}"#,
        );
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(has(&p, "mcpServers.a.disabled", "expected true or false, found a string"));
        assert!(has(&p, "mcpServers.a.startupTimeoutMs", "must be a positive integer, found -1"));
        assert!(has(&p, "mcpServers.a.requestTimeoutMs", "expected an integer, found 1.5"));
    }

    #[test]
    fn stdio_field_types() {
        let p = problems(
            r#"{"mcpServers": {"a": {
              "command": "", "args": ["x", true, null], "env": {"A": null, "B": {}, "": "v", "OK": 1.5},
              "cwd": 3
            }}}"#,
        );
        let locations: Vec<&str> = p.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "mcpServers.a.command",
                "mcpServers.a.args[1]",
                "mcpServers.a.args[2]",
                "mcpServers.a.env.A",
                "mcpServers.a.env.B",
                "mcpServers.a.env[\"\"]",
                "mcpServers.a.cwd",
            ],
            "{p:#?}"
        );
        assert!(p[1].message.contains("expected a string, found a boolean"));
        assert!(p[2].message.contains("expected a string, found null"));

        let p = problems(r#"{"mcpServers": {"a": {"command": "x", "args": "a b"}}}"#);
        assert_one(&p, "mcpServers.a.args", "expected an array, found a string");
        let p = problems(r#"{"mcpServers": {"a": {"command": "${EMPTY:-}"}}}"#);
        assert_one(&p, "mcpServers.a.command", "must not be empty");
    }

    #[test]
    fn env_numbers_and_booleans_become_text() {
        let c = load(r#"{"mcpServers": {"a": {"command": "x", "env": {"N": 42, "F": 1.5, "T": false}}}}"#);
        assert!(c.warnings.is_empty());
        assert_eq!(stdio(&c, "a").env, env(&[("N", "42"), ("F", "1.5"), ("T", "false")]));
    }

    #[test]
    fn url_checks() {
        for good in [
            "http://h",
            "https://example.com/mcp",
            "HTTPS://example.com:8443/a?b#c",
            "http://user:pw@h:1/x",
            "http://[::1]:8080/mcp",
            "http://[::1]",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for (bad, needle) in [
            ("example.com/mcp", "http:// or https://"),
            ("ws://h", "http:// or https://"),
            ("http://", "no host"),
            ("http:///path", "no host"),
            ("http://:80", "no host"),
            ("http://[]:80", "no host"),
            ("http://h:", "invalid port"),
            ("http://h:8x", "invalid port"),
            ("http://h /x", "spaces"),
        ] {
            match check_url(bad) {
                Ok(()) => panic!("{bad} should be rejected"),
                Err(message) => assert!(message.contains(needle), "{bad}: {message}"),
            }
        }
        let p = problems(r#"{"mcpServers": {"a": {"url": "${HOST:-}"}}}"#);
        assert_one(&p, "mcpServers.a.url", "http:// or https://");
    }

    #[test]
    fn bearer_tokens_become_an_authorization_header() {
        let dir = std::env::temp_dir().join(format!("mcpmux-bearer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let c = load_with(
            &format!(
                r#"{{"mcpServers": {{"a": {{"url": "http://h", "bearerToken": "${{T}}"}}, "b": {{"url": "http://h", "bearerTokenFile": "{}"}}}}}}"#,
                file.display()
            ),
            Format::Json,
            &[("T", "from-env")],
        );
        let header = |name: &str| match &server(&c, name).transport {
            TransportConfig::Remote(r) => r.headers["Authorization"].expose().to_owned(),
            TransportConfig::Stdio(_) => panic!("remote expected"),
        };
        assert_eq!(header("a"), "Bearer from-env");
        assert_eq!(header("b"), "Bearer from-file");
        let p = problems(
            r#"{"mcpServers": {"a": {"url": "http://h", "bearerToken": "x", "headers": {"authorization": "y"}}}}"#,
        );
        assert!(p.iter().any(|d| d.message.contains("both set")), "{p:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn headers_are_secrets() {
        let c = load_with(
            r#"{"mcpServers": {"a": {"url": "http://h", "headers": {"X-Key": "${K}", "Plain": "v"}}}}"#,
            Format::Json,
            &[("K", "kv")],
        );
        let headers = &remote(&c, "a").headers;
        assert_eq!(headers.get("X-Key").map(Secret::expose), Some("kv"));
        assert_eq!(headers.get("Plain").map(Secret::expose), Some("v"));
        let p = problems(r#"{"mcpServers": {"a": {"url": "http://h", "headers": {"X": 1}}}}"#);
        assert_one(&p, "mcpServers.a.headers.X", "expected a string, found a number");
    }

    #[test]
    fn listen_parsing() {
        let cases = [
            ("127.0.0.1:8080", SocketAddr::from(([127, 0, 0, 1], 8080))),
            ("0.0.0.0:80", SocketAddr::from(([0, 0, 0, 0], 80))),
            ("localhost:9000", SocketAddr::from(([127, 0, 0, 1], 9000))),
            ("LocalHost:1", SocketAddr::from(([127, 0, 0, 1], 1))),
            ("[::1]:8080", SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 8080))),
        ];
        for (text, addr) in cases {
            assert_eq!(parse_listen(text), Some(addr), "{text}");
            let c = load(&format!(r#"{{"mcpServers": {{}}, "mcpmux": {{"listen": "{text}"}}}}"#));
            assert_eq!(c.settings.listen, addr, "{text}");
        }
        for bad in ["8080", "localhost", "localhost:99999", "example.com:80", ":80", "127.0.0.1"] {
            assert_eq!(parse_listen(bad), None, "{bad}");
        }
        let p = problems(r#"{"mcpServers": {}, "mcpmux": {"listen": "example.com:80"}}"#);
        assert_one(&p, "mcpmux.listen", "found 'example.com:80'");
        let p = problems(r#"{"mcpServers": {}, "mcpmux": {"listen": 8080}}"#);
        assert_one(&p, "mcpmux.listen", "expected a string, found a number");
    }

    #[test]
    fn listen_is_expanded() {
        let text = r#"{"mcpServers": {}, "mcpmux": {"listen": "${HOST:-127.0.0.1}:${PORT:-8080}"}}"#;
        let c = load(text);
        assert_eq!(c.settings.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        let c = load_with(text, Format::Json, &[("HOST", "0.0.0.0"), ("PORT", "9")]);
        assert_eq!(c.settings.listen, SocketAddr::from(([0, 0, 0, 0], 9)));
        let p = problems(r#"{"mcpServers": {}, "mcpmux": {"listen": "127.0.0.1:${PORT}"}}"#);
        assert_one(&p, "mcpmux.listen", "variable PORT is not set");
        let p = problems_with(text, Format::Json, &[("PORT", "http")]);
        assert_one(&p, "mcpmux.listen", "found '127.0.0.1:http'");
    }

    #[test]
    fn separator_rules() {
        for good in ["_", "__", "-", "_-_", "a_", "-1"] {
            assert!(is_valid_separator(good), "{good}");
        }
        for bad in ["", "____", "a", "ab", ".", "::", "_ ", "é_"] {
            assert!(!is_valid_separator(bad), "{bad}");
        }
        let p = problems(r#"{"mcpServers": {}, "mcpmux": {"separator": "."}}"#);
        assert_one(&p, "mcpmux.separator", "at least one '_' or '-'");
    }

    #[test]
    fn numeric_settings() {
        let p = problems(
            r#"{"mcpServers": {}, "mcpmux": {
              "pageSize": 10001, "maxBodyBytes": 0, "maxMessageBytes": "1",
              "sessionIdleTimeoutMs": -5, "requestTimeoutMs": 2.5, "allowUnauthenticated": 1
            }}"#,
        );
        let expected = [
            ("mcpmux.pageSize", "must be at most 10000, found 10001"),
            ("mcpmux.maxBodyBytes", "must be a positive integer, found 0"),
            ("mcpmux.maxMessageBytes", "expected a positive integer, found a string"),
            ("mcpmux.sessionIdleTimeoutMs", "must be a positive integer, found -5"),
            ("mcpmux.requestTimeoutMs", "expected an integer, found 2.5"),
            ("mcpmux.allowUnauthenticated", "expected true or false, found a number"),
        ];
        assert_eq!(p.len(), expected.len(), "{p:#?}");
        for ((location, needle), d) in expected.iter().zip(&p) {
            assert_eq!(d.location, *location);
            assert!(d.message.contains(needle), "{d}");
        }
        let c = load(r#"{"mcpServers": {}, "mcpmux": {"pageSize": 10000}}"#);
        assert_eq!(c.settings.page_size, 10_000);
    }

    #[test]
    fn string_list_settings() {
        let p = problems(r#"{"mcpServers": {}, "mcpmux": {"allowedOrigins": ["ok", "", 3], "allowedHosts": "h"}}"#);
        let locations: Vec<&str> = p.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(locations, ["mcpmux.allowedOrigins[1]", "mcpmux.allowedOrigins[2]", "mcpmux.allowedHosts"]);
    }

    /// A temp file with a unique name, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(tag: &str, content: &str) -> Self {
            let name = format!(
                "mcpmux-config-test-{}-{:?}-{tag}",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
            );
            let path = std::env::temp_dir().join(name);
            if let Err(e) = std::fs::write(&path, content) {
                panic!("cannot write {}: {e}", path.display());
            }
            Self(path)
        }

        fn path_json(&self) -> String {
            Value::String(self.0.to_string_lossy().into_owned()).to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn auth_token_file() {
        let file = TempFile::new("token", "  tok en \r\n\n");
        let text = format!(r#"{{"mcpServers": {{}}, "mcpmux": {{"authTokenFile": {}}}}}"#, file.path_json());
        let c = load_with(&text, Format::Json, &[("MCPMUX_AUTH_TOKEN", "from-env")]);
        assert_eq!(c.settings.auth_token.as_ref().map(Secret::expose), Some("  tok en"));

        let empty = TempFile::new("empty", " \n");
        let text = format!(r#"{{"mcpServers": {{}}, "mcpmux": {{"authTokenFile": {}}}}}"#, empty.path_json());
        assert_one(&problems(&text), "mcpmux.authTokenFile", "is empty");

        let missing = std::env::temp_dir().join(format!("mcpmux-no-such-token-{}", std::process::id()));
        let text = format!(
            r#"{{"mcpServers": {{}}, "mcpmux": {{"authTokenFile": {}}}}}"#,
            Value::String(missing.to_string_lossy().into_owned())
        );
        assert_one(&problems(&text), "mcpmux.authTokenFile", "cannot read the token file");
    }

    #[test]
    fn auth_token_and_file_together_is_an_error() {
        let p = problems(r#"{"mcpServers": {}, "mcpmux": {"authToken": "a", "authTokenFile": "/nonexistent"}}"#);
        assert_one(&p, "mcpmux.authTokenFile", "both set");
    }

    #[test]
    fn auth_token_from_environment() {
        let vars = [("MCPMUX_AUTH_TOKEN", "env-token")];
        let c = load_with(r#"{"mcpServers": {}}"#, Format::Json, &vars);
        assert_eq!(c.settings.auth_token.as_ref().map(Secret::expose), Some("env-token"));

        let c = load_with(r#"{"mcpServers": {}, "mcpmux": {"authToken": "file"}}"#, Format::Json, &vars);
        assert_eq!(c.settings.auth_token.as_ref().map(Secret::expose), Some("file"));

        let c = load_with(r#"{"mcpServers": {}}"#, Format::Json, &[("MCPMUX_AUTH_TOKEN", "")]);
        assert_eq!(c.settings.auth_token, None);
        assert_eq!(load(r#"{"mcpServers": {}}"#).settings.auth_token, None);

        let p = problems(r#"{"mcpServers": {}, "mcpmux": {"authToken": ""}}"#);
        assert_one(&p, "mcpmux.authToken", "must not be empty");
    }

    #[test]
    fn top_level_shape() {
        let c = load(r#"{"mcpServers": {}}"#);
        assert_one(&c.warnings, "mcpServers", "no servers are configured");

        assert_one(&problems("[]"), "", "must be an object with an `mcpServers` key, found an array");
        assert_one(&problems("{}"), "", "the required key `mcpServers` is missing");
        let p = problems(r#"{"servers": {"a": {"command": "x"}}}"#);
        assert_one(&p, "", "rename it to `mcpServers`");
        assert_one(&problems(r#"{"mcpServers": []}"#), "mcpServers", "expected an object, found an array");
        assert_one(&problems(r#"{"mcpServers": {}, "mcpmux": 1}"#), "mcpmux", "expected an object");
        assert_one(&problems(r#"{"mcpServers": {"a": "x"}}"#), "mcpServers.a", "expected an object, found a string");
        assert_one(&problems("  \n"), "", "the file is empty");
    }

    #[test]
    fn json_syntax_error_location() {
        let p = problems("{\n  \"mcpServers\": {,}\n}");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].location, "line 2, column 18");
        assert!(p[0].message.starts_with("invalid JSON: "), "{}", p[0].message);
        assert!(!p[0].message.contains(" at line "), "{}", p[0].message);
    }

    #[test]
    fn toml_syntax_error_location() {
        let p = problems_with("[mcpServers.a]\ncommand = \"x\"\nargs = [1,\n", Format::Toml, &[]);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].location.starts_with("line "), "{p:#?}");
        assert!(p[0].message.starts_with("invalid TOML: "), "{p:#?}");

        let p = problems_with("a = 1\nb = = 2\n", Format::Toml, &[]);
        assert_eq!(p[0].location, "line 2, column 5", "{p:#?}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("abc", 2), (1, 3));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é\né", 5), (2, 2));
    }

    #[test]
    fn toml_datetimes_become_strings() {
        let c = load_with(
            "[mcpServers.a]\ncommand = \"x\"\nenv = { D = \"${X:-}\" }\nargs = [\"a\"]\n[mcpServers.a.extra]\nwhen = 1979-05-27T07:32:00Z\n",
            Format::Toml,
            &[],
        );
        assert_one(&c.warnings, "mcpServers.a.extra", "not used");
        let value = toml_to_json(toml::Value::Datetime(match "1979-05-27T07:32:00Z".parse() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }));
        assert_eq!(value, Value::String("1979-05-27T07:32:00Z".into()));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let c = load("\u{feff}{\"mcpServers\": {\"a\": {\"command\": \"x\"}}}");
        assert_eq!(c.servers.len(), 1);
    }

    #[test]
    fn locations_quote_odd_keys() {
        assert_eq!(child("", "mcpServers"), "mcpServers");
        assert_eq!(child("mcpServers", "a-b_1"), "mcpServers.a-b_1");
        assert_eq!(child("mcpServers", "a.b"), "mcpServers[\"a.b\"]");
        assert_eq!(child("", "x y"), "[\"x y\"]");
        assert_eq!(item("a.args", 3), "a.args[3]");
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("a/mcp.toml")), Format::Toml);
        assert_eq!(Format::from_path(Path::new("a/mcp.TOML")), Format::Toml);
        assert_eq!(Format::from_path(Path::new("a/mcp.json")), Format::Json);
        assert_eq!(Format::from_path(Path::new("a/mcp")), Format::Json);
    }

    #[test]
    fn load_file_sets_the_source() {
        let file = TempFile::new("cfg.toml", "[mcpServers.a]\ncommand = \"x\"\n");
        let c = match load_file(&file.0, &env(&[])) {
            Ok(c) => c,
            Err(e) => panic!("{:#?}", e.problems),
        };
        assert_eq!(c.source.as_deref(), Some(file.0.as_path()));
        assert!(matches!(server(&c, "a").transport, TransportConfig::Stdio(_)));

        let bad = TempFile::new("bad.json", "{\"mcpServers\": {\"a\": {}}}");
        match load_file(&bad.0, &env(&[])) {
            Ok(c) => panic!("should fail: {c:#?}"),
            Err(e) => {
                assert_eq!(e.source_path.as_deref(), Some(bad.0.as_path()));
                assert_eq!(e.problems.len(), 1);
                assert!(e.to_string().contains("1 problem(s)"), "{e}");
            }
        }

        let missing = std::env::temp_dir().join(format!("mcpmux-missing-{}.json", std::process::id()));
        match load_file(&missing, &env(&[])) {
            Ok(c) => panic!("should fail: {c:#?}"),
            Err(e) => {
                assert_eq!(e.source_path.as_deref(), Some(missing.as_path()));
                assert_one(&e.problems, "", "cannot read the file");
            }
        }
    }
}
