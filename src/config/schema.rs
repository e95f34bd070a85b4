//! The JSON Schema of the config file, for editors (`"$schema"`) and CI.
//!
//! The types below mirror the file format and exist only to generate the schema: the loader
//! (`super::load`) does not use them and stays the one authority on what a file means. The
//! schema checks what a schema can (key names, types, enums, ranges, patterns, which keys go
//! together); `mcpmux validate` also checks what it cannot (variables, files, prefix collisions,
//! listen addresses after expansion).
//!
//! Unknown keys are refused here (`additionalProperties: false`) so that an editor flags a typo
//! like `"disable": true`; mcpmux itself only warns about them, so a Claude Desktop file with
//! other tools' keys still loads.
//!
//! The checked-in copy is `config/mcpmux.schema.json`; regenerate it with
//! `cargo run -q -- schema > config/mcpmux.schema.json` (`tests/schema.rs` fails when it is stale).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::{Value, json};

use super::Settings as RuntimeSettings;

/// An mcpmux config file: the `mcpServers` format of Claude Desktop and FastMCP's MCPConfig, plus
/// mcpmux's own settings under `mcpmux`. JSON or TOML (by file extension). `${VAR}` and
/// `${VAR:-default}` are expanded in `command`, `args`, `env`, `cwd`, `url`, `headers`,
/// `bearerToken`, `bearerTokenFile`, and the settings `listen`, `authToken` and `authTokenFile`;
/// `${MCPMUX_EXE}` is the running mcpmux.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mcpmux configuration")]
pub struct ConfigFile {
    /// The JSON Schema this file follows (for editors; mcpmux ignores it).
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    /// The MCP servers mcpmux starts or connects to, by name. The name is the default prefix of
    /// the server's tools, prompts and resources.
    #[serde(rename = "mcpServers")]
    #[schemars(extend("propertyNames" = {"minLength": 1}))]
    pub mcp_servers: BTreeMap<String, ServerEntry>,
    /// mcpmux's own settings.
    pub mcpmux: Option<Settings>,
}

/// One server: a local process (`command`) or a remote URL (`url`), never both.
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum ServerEntry {
    Stdio(StdioServer),
    Remote(RemoteServer),
}

/// A local server: mcpmux starts `command` and speaks MCP over its stdin and stdout.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "stdio server")]
pub struct StdioServer {
    /// `stdio`; optional, `command` already means stdio.
    pub transport: Option<StdioTransport>,
    /// Same as `transport` (the key other tools use).
    #[serde(rename = "type")]
    pub kind: Option<StdioTransport>,
    /// The program to run, found on `PATH` (e.g. `npx`, `uvx`, `${MCPMUX_EXE}`).
    #[schemars(length(min = 1))]
    pub command: String,
    /// Its arguments.
    pub args: Option<Vec<String>>,
    /// Variables set for the child. It does not inherit the daemon's whole environment: only
    /// `PATH`, `HOME`, locale, proxy and certificate variables, plus these.
    #[schemars(extend("propertyNames" = {"minLength": 1, "pattern": "^[^=\\u0000]+$"}))]
    pub env: Option<BTreeMap<String, EnvValue>>,
    /// Working directory of the child.
    #[schemars(length(min = 1))]
    pub cwd: Option<String>,
    #[serde(flatten)]
    pub options: ServerOptions,
}

/// A remote server reached over HTTP.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "remote server", extend("not" = {"required": ["bearerToken", "bearerTokenFile"]}))]
pub struct RemoteServer {
    /// `http` (streamable HTTP) or `sse` (the legacy HTTP+SSE transport). Without it mcpmux
    /// infers it from the URL (a path ending in `/sse` means SSE). mcpmux ignores case; the
    /// schema lists the usual spellings.
    pub transport: Option<RemoteTransport>,
    /// Same as `transport` (the key other tools use).
    #[serde(rename = "type")]
    pub kind: Option<RemoteTransport>,
    /// The server's endpoint, `http://` or `https://` (after `${VAR}` expansion).
    #[schemars(pattern(r"^([Hh][Tt][Tt][Pp][Ss]?://|\$\{)"))]
    pub url: String,
    /// Headers sent with every request, e.g. `"Authorization": "Bearer ${TOKEN}"`. Values are
    /// secrets: mcpmux never logs them.
    #[schemars(extend("propertyNames" = {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}))]
    pub headers: Option<BTreeMap<String, String>>,
    /// Token sent as `Authorization: Bearer …` (instead of an `Authorization` header).
    #[serde(rename = "bearerToken")]
    #[schemars(length(min = 1))]
    pub bearer_token: Option<String>,
    /// File holding the token sent as `Authorization: Bearer …` (trailing whitespace removed),
    /// e.g. a mounted Docker or Kubernetes secret.
    #[serde(rename = "bearerTokenFile")]
    #[schemars(length(min = 1), example = "/run/secrets/api_token")]
    pub bearer_token_file: Option<String>,
    #[serde(flatten)]
    pub options: ServerOptions,
}

/// The transport of a stdio server.
#[derive(JsonSchema)]
pub enum StdioTransport {
    #[serde(rename = "stdio")]
    Stdio,
}

/// The transport of a remote server.
#[derive(JsonSchema)]
pub enum RemoteTransport {
    #[serde(rename = "http")]
    Http,
    #[serde(rename = "streamable-http")]
    StreamableHttp,
    #[serde(rename = "streamableHttp")]
    StreamableHttpCamel,
    #[serde(rename = "sse")]
    Sse,
}

/// An environment variable's value; numbers and booleans are passed as their text.
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum EnvValue {
    String(String),
    Number(f64),
    Bool(bool),
}

/// mcpmux's per-server keys: in the server's entry, or under `mcpmux.servers.<name>` so that
/// `mcpServers` stays exactly what other tools expect (a key may not be set in both places).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerOptions {
    /// Name used to namespace this server's tools, prompts and resources (default: the server's
    /// name).
    #[schemars(length(min = 1), pattern(r"^[A-Za-z0-9_-]+$"))]
    pub prefix: Option<String>,
    /// `true` keeps the entry but does not start the server.
    #[schemars(extend("default" = false))]
    pub disabled: Option<bool>,
    /// Limit for one request to this server, in milliseconds (default: the `requestTimeoutMs`
    /// setting). Progress from the server moves the deadline.
    #[schemars(range(min = 1))]
    pub request_timeout_ms: Option<u64>,
    /// Time this server has to start, initialize and list its catalog, in milliseconds
    /// (default: the `startupTimeoutMs` setting).
    #[schemars(range(min = 1))]
    pub startup_timeout_ms: Option<u64>,
    /// `shared`: one connection serves every client session. `session`: each client session
    /// gets its own connection (its own process for stdio), for stateful servers.
    #[schemars(extend("default" = "shared"))]
    pub isolation: Option<Isolation>,
    /// `/readyz` waits for this server.
    #[schemars(extend("default" = true))]
    pub required: Option<bool>,
    /// Keep its tools, prompts and resources listed while it is down (calls then fail with
    /// "unavailable"); `false` withdraws them until it is back.
    #[schemars(extend("default" = true))]
    pub list_when_down: Option<bool>,
    /// Ping the server when idle this often (milliseconds); no answer restarts it. Off by
    /// default.
    #[schemars(range(min = 1))]
    pub ping_interval_ms: Option<u64>,
    /// Which protocol to speak to the server. `auto`: ask with `server/discover` first and
    /// use the stateless 2026-07-28 protocol when the server offers it, else `initialize` (the
    /// session protocol). `2026-07-28`: only the stateless protocol. `legacy`: only
    /// `initialize`, without asking first.
    #[schemars(extend("default" = "auto"))]
    pub protocol: Option<Protocol>,
}

/// Which protocol mcpmux speaks to a server.
#[derive(JsonSchema)]
pub enum Protocol {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "2026-07-28")]
    Modern,
    #[serde(rename = "legacy")]
    Legacy,
}

/// How client sessions use a server.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    Shared,
    Session,
}

/// mcpmux's own settings. Every one applies on reload except `listen` and `maxBodyBytes`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("not" = {"required": ["authToken", "authTokenFile"]}))]
pub struct Settings {
    /// Address to serve on, `IP:port` or `localhost:port` (`--listen` and `MCPMUX_LISTEN`
    /// override it). A non-loopback address needs a token unless `allowUnauthenticated` is set.
    #[schemars(length(min = 1), example = "0.0.0.0:8080")]
    pub listen: Option<String>,
    /// Between a server's prefix and a tool or prompt name: 1 to 3 characters of
    /// `[A-Za-z0-9_-]` with at least one `_` or `-`.
    #[schemars(pattern(r"^(?:[_-][A-Za-z0-9_-]{0,2}|[A-Za-z0-9][_-][A-Za-z0-9_-]?|[A-Za-z0-9]{2}[_-])$"))]
    pub separator: Option<String>,
    /// Items per page of list results.
    #[schemars(range(min = 1, max = 10000))]
    pub page_size: Option<u64>,
    /// Bearer token clients must send (`Authorization: Bearer …`). Prefer `authTokenFile` or
    /// `${VAR}`; without either key, `MCPMUX_AUTH_TOKEN` sets it.
    #[schemars(length(min = 1))]
    pub auth_token: Option<String>,
    /// File holding the bearer token (trailing whitespace removed), e.g. a mounted Docker or
    /// Kubernetes secret. Read at start and on every reload.
    #[schemars(length(min = 1), example = "/run/secrets/mcpmux_token")]
    pub auth_token_file: Option<String>,
    /// Extra allowed `Origin` values (`https://x.example`, `http://x.example:*`, or `*`).
    /// Loopback origins are always allowed.
    #[schemars(inner(length(min = 1)))]
    pub allowed_origins: Option<Vec<String>>,
    /// Extra allowed `Host` values (`host` or `host:port`, or `*`). Loopback hosts are always
    /// allowed; on a non-loopback `listen` any host is, unless this is set.
    #[schemars(inner(length(min = 1)))]
    pub allowed_hosts: Option<Vec<String>>,
    /// Allow a non-loopback `listen` without a token (`--allow-unauthenticated`). Only for
    /// networks where every client is trusted.
    pub allow_unauthenticated: Option<bool>,
    /// A client session with no request for this long ends (milliseconds).
    #[schemars(range(min = 1))]
    pub session_idle_timeout_ms: Option<u64>,
    /// Largest request body accepted, in bytes (larger: 413).
    #[schemars(range(min = 1))]
    pub max_body_bytes: Option<u64>,
    /// Largest message read from a backend, in bytes (larger ones are discarded and logged).
    #[schemars(range(min = 1))]
    pub max_message_bytes: Option<u64>,
    /// Default limit for one request to a backend (milliseconds).
    #[schemars(range(min = 1))]
    pub request_timeout_ms: Option<u64>,
    /// Default time a backend has to start, initialize and list its catalog (milliseconds).
    #[schemars(range(min = 1))]
    pub startup_timeout_ms: Option<u64>,
    /// How long a call of a 2026-07-28 client that answered `input_required` waits for the
    /// client's retry before it is cancelled (milliseconds).
    #[schemars(range(min = 1))]
    pub input_timeout_ms: Option<u64>,
    /// Per-server keys by server name, instead of in the `mcpServers` entry. Every name must be
    /// a server in `mcpServers`.
    pub servers: Option<BTreeMap<String, ServerOptions>>,
}

/// The schema as a JSON value: generated from the types above and tidied (see `tidy`), with
/// the settings' defaults taken from [`RuntimeSettings::default`] so they cannot drift.
pub fn schema() -> Value {
    let mut value = schemars::schema_for!(ConfigFile).to_value();
    tidy(&mut value);
    let defaults = RuntimeSettings::default();
    let settings = [
        ("listen", json!(defaults.listen.to_string())),
        ("separator", json!(defaults.separator)),
        ("pageSize", json!(defaults.page_size)),
        ("allowedOrigins", json!(defaults.allowed_origins)),
        ("allowedHosts", json!(defaults.allowed_hosts)),
        ("allowUnauthenticated", json!(defaults.allow_unauthenticated)),
        ("sessionIdleTimeoutMs", json!(millis(defaults.session_idle_timeout))),
        ("maxBodyBytes", json!(defaults.max_body_bytes)),
        ("maxMessageBytes", json!(defaults.max_message_bytes)),
        ("requestTimeoutMs", json!(millis(defaults.request_timeout))),
        ("startupTimeoutMs", json!(millis(defaults.startup_timeout))),
        ("inputTimeoutMs", json!(millis(defaults.input_timeout))),
    ];
    for (key, default) in settings {
        if let Some(Value::Object(property)) = value.pointer_mut(&format!("/$defs/Settings/properties/{key}")) {
            property.insert("default".to_owned(), default);
        }
    }
    value
}

/// The schema, pretty-printed with a final newline: what `mcpmux schema` prints and what
/// `config/mcpmux.schema.json` holds.
pub fn schema_json() -> String {
    format!("{:#}\n", schema())
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Removes the `null` alternative schemars adds for `Option` fields (an absent key is how a file
/// says "default"; `null` is an error): `"type": ["string", "null"]` becomes `"type": "string"`,
/// and `anyOf: [X, {"type": "null"}]` becomes X. Also drops the Rust-specific `format`s
/// (`uint64`, `double`) editors do not know, and joins the wrapped lines of doc comments.
fn tidy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str).is_some_and(|f| matches!(f, "uint64" | "double")) {
                map.remove("format");
            }
            if let Some(Value::String(text)) = map.get_mut("description") {
                *text = text.split("\n\n").map(|p| p.replace('\n', " ")).collect::<Vec<_>>().join("\n\n");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let single = types.remove(0);
                    map.insert("type".to_owned(), single);
                }
            }
            if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
                alternatives.retain(|a| a != &json!({"type": "null"}));
                if alternatives.len() == 1
                    && let Value::Object(single) = alternatives.remove(0)
                {
                    map.remove("anyOf");
                    map.extend(single);
                }
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_no_null_and_the_runtime_defaults() {
        let text = schema_json();
        assert!(!text.contains("\"null\""), "{text}");
        let s = schema();
        assert_eq!(s["$defs"]["Settings"]["properties"]["pageSize"]["default"], json!(100));
        assert_eq!(s["$defs"]["Settings"]["properties"]["listen"]["default"], json!("127.0.0.1:8080"));
    }
}
