//! Protocol constants: versions, method names, header names.

/// Protocol versions mcpmux serves over the stateful (session) era, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The version mcpmux offers to backends and answers to clients that ask for an unknown one.
pub const LATEST_VERSION: &str = "2025-11-25";

/// The stateless protocol era (no `initialize`, per-request `_meta`), newest first.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

/// The stateless version mcpmux speaks.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Whether `v` is a stateless-era version mcpmux speaks.
pub fn is_modern(v: &str) -> bool {
    MODERN_VERSIONS.contains(&v)
}

/// Every version mcpmux speaks, of both eras, newest first (the `supported` list of an
/// `UnsupportedProtocolVersionError` and of `server/discover`).
pub fn all_versions() -> Vec<&'static str> {
    MODERN_VERSIONS.iter().chain(SUPPORTED_VERSIONS).copied().collect()
}

/// The version assumed when a request carries no `MCP-Protocol-Version` header and nothing
/// else tells (streamable HTTP spec, "Protocol Version Header").
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

/// Whether `v` is a version mcpmux speaks.
pub fn is_supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

/// Picks the version to answer an `initialize` that asked for `requested`: the same when
/// supported, else the latest (the spec's negotiation rule).
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested.and_then(|r| SUPPORTED_VERSIONS.iter().find(|v| **v == r).copied()).unwrap_or(LATEST_VERSION)
}

/// HTTP header names.
pub mod headers {
    pub const SESSION_ID: &str = "mcp-session-id";
    pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
    pub const LAST_EVENT_ID: &str = "last-event-id";
    /// 2026-07-28: the JSON-RPC method, mirrored.
    pub const METHOD: &str = "mcp-method";
    /// 2026-07-28: `params.name` or `params.uri`, mirrored.
    pub const NAME: &str = "mcp-name";
    /// 2026-07-28: prefix of tool parameters mirrored into headers (`x-mcp-header`).
    pub const PARAM_PREFIX: &str = "mcp-param-";
}

/// `_meta` keys of the stateless era.
pub mod meta {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
}

/// Method names mcpmux looks at.
pub mod methods {
    pub const INITIALIZE: &str = "initialize";
    pub const INITIALIZED: &str = "notifications/initialized";
    pub const PING: &str = "ping";
    pub const TOOLS_LIST: &str = "tools/list";
    pub const TOOLS_CALL: &str = "tools/call";
    pub const PROMPTS_LIST: &str = "prompts/list";
    pub const PROMPTS_GET: &str = "prompts/get";
    pub const RESOURCES_LIST: &str = "resources/list";
    pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
    pub const RESOURCES_READ: &str = "resources/read";
    pub const COMPLETE: &str = "completion/complete";
    pub const SET_LEVEL: &str = "logging/setLevel";
    pub const CANCELLED: &str = "notifications/cancelled";
    pub const PROGRESS: &str = "notifications/progress";
    pub const MESSAGE: &str = "notifications/message";
    pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
    pub const PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
    pub const RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
    pub const RESOURCES_UPDATED: &str = "notifications/resources/updated";
    pub const ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
    pub const SUBSCRIBE: &str = "resources/subscribe";
    pub const TASKS_GET: &str = "tasks/get";
    pub const TASKS_RESULT: &str = "tasks/result";
    pub const TASKS_CANCEL: &str = "tasks/cancel";
    pub const TASKS_LIST: &str = "tasks/list";
    pub const TASK_STATUS: &str = "notifications/tasks/status";
    pub const UNSUBSCRIBE: &str = "resources/unsubscribe";
    /// 2026-07-28: versions, capabilities and identity of a server.
    pub const DISCOVER: &str = "server/discover";
    /// 2026-07-28: a long-lived stream of opted-in change notifications.
    pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";
    pub const SUBSCRIPTIONS_ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
}
