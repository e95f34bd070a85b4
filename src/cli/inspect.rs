//! `mcpmux tools` / `call` / `resources` / `read` / `prompts` / `prompt`: see and try any MCP
//! server, or a running mcpmux, from the command line, through [`crate::client`].
//!
//! A target is a URL, a config file, or `-- command args…`; without one, the running mcpmux of
//! the default config. Exit codes: 0 done, 1 the server or the call failed (including a tool
//! result with `isError`), 2 the command line is wrong (an argument that does not fit).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::args::{self, ArgumentError};
use crate::client::{
    Client, ClientError, ClientOptions, Handler, LogMessage, MultiClient, Progress, Prompt, Resource, ResourceTemplate,
    Tool,
};
use crate::config::{self, ConfigError, DEFAULT_CONFIG_PATH};

/// Where a command connects, shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// With a config file of several servers: use only this one (names stay un-prefixed).
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// The running mcpmux's config, read when no target is given (its listen address and token).
    #[arg(long, env = "MCPMUX_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Seconds to wait for each answer (progress reports extend it).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Ask the server to send log messages at this level and above (`logging/setLevel`):
    /// debug, info, notice, warning, error, …; they are printed on stderr.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Print the exact JSON the server sent instead of a readable form.
    #[arg(long)]
    pub json: bool,
    /// A server to start and talk to over stdio: `-- command args…`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// What went wrong in a client command; `exit_code` tells usage errors (2) from failures (1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Arguments(#[from] ArgumentError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Config(String),
    #[error("the tool reported an error (isError)")]
    ToolError,
    #[error("cannot write {path}: {source}")]
    Save { path: PathBuf, source: std::io::Error },
}

impl CommandError {
    fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) | CommandError::Arguments(_) => 2,
            _ => 1,
        }
    }
}

/// Runs a client command and turns its outcome into an exit code, printing the error.
pub async fn run(command: &str, work: impl std::future::Future<Output = Result<(), CommandError>>) -> ExitCode {
    match work.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("mcpmux {command}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints server log messages and progress on stderr; refuses server requests.
pub struct CliHandler {
    tty: bool,
    /// A progress line is drawn and not yet ended.
    drawn: AtomicBool,
}

impl CliHandler {
    pub fn new() -> CliHandler {
        CliHandler { tty: std::io::stderr().is_terminal(), drawn: AtomicBool::new(false) }
    }

    /// Ends a progress line drawn in place.
    fn end_line(&self) {
        if self.drawn.swap(false, Ordering::Relaxed) {
            eprintln!();
        }
    }
}

impl Default for CliHandler {
    fn default() -> Self {
        CliHandler::new()
    }
}

impl Handler for CliHandler {
    fn on_log(&self, server: &str, message: &LogMessage) {
        self.end_line();
        let logger = message.logger.as_deref().map(|l| format!(" {l}:")).unwrap_or_default();
        eprintln!("[{server}] {}:{logger} {}", message.level, message.text());
    }

    fn on_progress(&self, _server: &str, progress: &Progress) {
        let line = progress_line(progress);
        if self.tty {
            eprint!("\r\x1b[K{line}");
            let _ = std::io::stderr().flush();
            self.drawn.store(true, Ordering::Relaxed);
        } else {
            eprintln!("{line}");
        }
    }
}

/// `progress [########------------] 2/5 (40%) message`, or `progress 3 message` without a total.
pub fn progress_line(p: &Progress) -> String {
    let message = p.message.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
    match p.total.filter(|t| *t > 0.0) {
        Some(total) => {
            let ratio = (p.progress / total).clamp(0.0, 1.0);
            let filled = (ratio * 20.0).round() as usize;
            format!(
                "progress [{}{}] {}/{} ({:.0}%){message}",
                "#".repeat(filled),
                "-".repeat(20 - filled),
                number(p.progress),
                number(total),
                ratio * 100.0
            )
        }
        None => format!("progress {}{message}", number(p.progress)),
    }
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// A connected target: one server, or every server of a config.
pub enum Session {
    One(Client),
    Many(MultiClient),
}

impl Session {
    async fn tools(&self) -> Result<Vec<Tool>, ClientError> {
        match self {
            Session::One(c) => c.list_tools().await,
            Session::Many(m) => Ok(m.list_tools()),
        }
    }

    async fn call(&self, name: &str, arguments: Value) -> Result<Value, ClientError> {
        match self {
            Session::One(c) => c.call_tool_raw(name, arguments).await,
            Session::Many(m) => {
                let (client, original) = m.route_tool(name)?;
                client.call_tool_raw(&original, arguments).await
            }
        }
    }

    async fn resources(&self) -> Result<(Vec<Resource>, Vec<ResourceTemplate>), ClientError> {
        match self {
            Session::One(c) => {
                let has = c.capabilities().get("resources").is_some_and(|r| !r.is_null());
                if !has {
                    return Ok((Vec::new(), Vec::new()));
                }
                Ok((c.list_resources().await?, c.list_resource_templates().await?))
            }
            Session::Many(m) => Ok((m.list_resources(), m.list_resource_templates())),
        }
    }

    async fn read(&self, uri: &str) -> Result<Value, ClientError> {
        match self {
            Session::One(c) => c.read_resource(uri).await.map(|r| r.into_raw()),
            Session::Many(m) => m.read_resource(uri).await.map(|r| r.into_raw()),
        }
    }

    async fn prompts(&self) -> Result<Vec<Prompt>, ClientError> {
        match self {
            Session::One(c) => {
                if c.capabilities().get("prompts").is_none_or(Value::is_null) {
                    return Ok(Vec::new());
                }
                c.list_prompts().await
            }
            Session::Many(m) => Ok(m.list_prompts()),
        }
    }

    async fn get_prompt(&self, name: &str, arguments: Value) -> Result<Value, ClientError> {
        match self {
            Session::One(c) => c.get_prompt(name, arguments).await.map(|r| r.into_raw()),
            Session::Many(m) => m.get_prompt(name, arguments).await.map(|r| r.into_raw()),
        }
    }

    async fn close(&self) {
        match self {
            Session::One(c) => c.close().await,
            Session::Many(m) => m.close().await,
        }
    }
}

/// Whether a word names a target (a URL or an existing file) rather than a tool, prompt or URI.
fn is_target(word: &str) -> bool {
    word.starts_with("http://") || word.starts_with("https://") || Path::new(word).is_file()
}

/// The URL of the running mcpmux that `config` describes.
pub fn daemon_url(config: &config::Config) -> String {
    let health = super::health_url(config.settings.listen);
    health.trim_end_matches("/healthz").to_owned() + "/mcp"
}

fn config_problem(e: &ConfigError) -> String {
    let mut text = e.to_string();
    for p in &e.problems {
        text.push_str(&format!("\n  error: {p}"));
    }
    text
}

/// Connects to the target.
pub async fn open(target: Option<&str>, t: &TargetArgs, handler: Arc<CliHandler>) -> Result<Session, CommandError> {
    let mut options = ClientOptions::default().handler(handler);
    if let Some(secs) = t.timeout {
        options = options.request_timeout(Duration::from_secs(secs));
    }
    if let Some((program, rest)) = t.command.split_first() {
        if let Some(target) = target {
            return Err(CommandError::Usage(format!("give either a target ('{target}') or `-- command`, not both")));
        }
        return Ok(Session::One(Client::connect_command(program, rest, options).await?));
    }
    let Some(target) = target else {
        let cfg = config::load_file(&t.config, &config::ProcessEnv).map_err(|e| {
            CommandError::Config(format!(
                "no target given, and the running mcpmux's config could not be read: {}",
                config_problem(&e)
            ))
        })?;
        if let Some(token) = &cfg.settings.auth_token {
            options = options.bearer_token(token.expose());
        }
        return Ok(Session::One(Client::connect_url(&daemon_url(&cfg), options).await?));
    };
    if target.starts_with("http://") || target.starts_with("https://") {
        return Ok(Session::One(Client::connect_url(target, options).await?));
    }
    let cfg = config::load_file(Path::new(target), &config::ProcessEnv)
        .map_err(|e| CommandError::Config(config_problem(&e)))?;
    if t.timeout.is_none() {
        options.settings.request_timeout = cfg.settings.request_timeout;
    }
    options.settings.startup_timeout = cfg.settings.startup_timeout;
    options.settings.max_message_bytes = cfg.settings.max_message_bytes;
    let enabled: Vec<&config::ServerConfig> = cfg.enabled_servers().collect();
    let chosen = match (&t.server, enabled.as_slice()) {
        (Some(name), _) => Some(enabled.iter().find(|s| &s.name == name).copied().ok_or_else(|| {
            let names: Vec<&str> = enabled.iter().map(|s| s.name.as_str()).collect();
            CommandError::Usage(format!("{target} has no enabled server '{name}'; it has: {}", names.join(", ")))
        })?),
        (None, [only]) => Some(*only),
        (None, []) => return Err(CommandError::Config(format!("{target} has no enabled server"))),
        (None, _) => None,
    };
    if let Some(entry) = chosen {
        return Ok(Session::One(Client::connect(entry, options).await?));
    }
    let multi = MultiClient::connect(&cfg, options).await;
    for (name, error) in multi.failures() {
        eprintln!("mcpmux: server '{name}' is left out: {error}");
    }
    if multi.clients().is_empty() {
        return Err(CommandError::Config(format!("no server of {target} could be reached")));
    }
    Ok(Session::Many(multi))
}

/// Opens the target, runs `work` on it, and closes it (a child is reaped) whatever happened.
async fn with_session<T, F>(target: Option<&str>, t: &TargetArgs, work: F) -> Result<T, CommandError>
where
    F: AsyncFnOnce(&Session, &Arc<CliHandler>) -> Result<T, CommandError>,
{
    let handler = Arc::new(CliHandler::new());
    let session = open(target, t, handler.clone()).await?;
    let outcome = match set_level(&session, t.log_level.as_deref()).await {
        Ok(()) => work(&session, &handler).await,
        Err(e) => Err(e),
    };
    handler.end_line();
    session.close().await;
    outcome
}

async fn set_level(session: &Session, level: Option<&str>) -> Result<(), CommandError> {
    let Some(level) = level else { return Ok(()) };
    let clients: Vec<Client> = match session {
        Session::One(c) => vec![c.clone()],
        Session::Many(m) => m.clients().values().cloned().collect(),
    };
    for client in clients {
        if client.capabilities().get("logging").is_some_and(|l| !l.is_null()) {
            client.set_log_level(level).await?;
        }
    }
    Ok(())
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// `mcpmux tools`.
pub async fn tools(target: Option<String>, t: TargetArgs) -> Result<(), CommandError> {
    let tools = with_session(target.as_deref(), &t, async |s, _| Ok(s.tools().await?)).await?;
    if t.json {
        print_json(&Value::Array(tools.into_iter().map(Tool::into_raw).collect()));
    } else {
        print!("{}", tools_table(&tools));
    }
    Ok(())
}

/// `mcpmux call`.
pub async fn call(
    words: Vec<String>,
    json_args: Option<String>,
    save: Option<PathBuf>,
    t: TargetArgs,
) -> Result<(), CommandError> {
    let (target, rest) = split_target(&words, &t);
    let Some((tool, kv)) = rest.split_first() else {
        return Err(CommandError::Usage("name the tool to call: mcpmux call [TARGET] TOOL [key=value…]".into()));
    };
    let base = match &json_args {
        Some(text) => args::parse_json_arguments(text)?,
        None => serde_json::Map::new(),
    };
    let json_out = t.json;
    let result = with_session(target, &t, async |session, _| {
        let listed = session.tools().await?;
        let Some(found) = listed.iter().find(|x| x.name() == tool.as_str()) else {
            let names: Vec<&str> = listed.iter().map(Tool::name).collect();
            return Err(CommandError::Usage(format!("no tool '{tool}'; the tools are: {}", names.join(", "))));
        };
        let arguments = if json_args.is_some() && kv.is_empty() {
            Value::Object(base)
        } else {
            args::tool_arguments_over(found.input_schema(), base, kv)?
        };
        Ok(session.call(tool, arguments).await?)
    })
    .await?;
    if json_out {
        print_json(&result);
    } else {
        print_content(
            result.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default(),
            tool,
            save.as_deref(),
        )?;
        if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
            println!("structuredContent:");
            print_json(structured);
        }
    }
    if result.get("isError").and_then(Value::as_bool).unwrap_or(false) {
        return Err(CommandError::ToolError);
    }
    Ok(())
}

/// `mcpmux resources`.
pub async fn resources(target: Option<String>, t: TargetArgs) -> Result<(), CommandError> {
    let (resources, templates) = with_session(target.as_deref(), &t, async |s, _| Ok(s.resources().await?)).await?;
    if t.json {
        print_json(&json!({
            "resources": resources.into_iter().map(Resource::into_raw).collect::<Vec<_>>(),
            "resourceTemplates": templates.into_iter().map(ResourceTemplate::into_raw).collect::<Vec<_>>(),
        }));
    } else {
        print!("{}", resources_table(&resources, &templates));
    }
    Ok(())
}

/// `mcpmux read`.
pub async fn read(words: Vec<String>, save: Option<PathBuf>, t: TargetArgs) -> Result<(), CommandError> {
    let (target, uri) = match (words.as_slice(), t.command.is_empty()) {
        ([uri], _) => (None, uri),
        ([target, uri], true) => (Some(target.as_str()), uri),
        _ => return Err(CommandError::Usage("usage: mcpmux read [TARGET] URI".into())),
    };
    let result = with_session(target, &t, async |s, _| Ok(s.read(uri).await?)).await?;
    if t.json {
        print_json(&result);
        return Ok(());
    }
    for (i, item) in result.get("contents").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(text) = item.get("text").and_then(Value::as_str) {
            println!("{text}");
        } else if let Some(blob) = item.get("blob").and_then(Value::as_str) {
            let mime = item.get("mimeType").and_then(Value::as_str).unwrap_or("application/octet-stream");
            binary("resource", mime, blob, &format!("resource-{}", i + 1), save.as_deref())?;
        }
    }
    Ok(())
}

/// `mcpmux prompts`.
pub async fn prompts(target: Option<String>, t: TargetArgs) -> Result<(), CommandError> {
    let prompts = with_session(target.as_deref(), &t, async |s, _| Ok(s.prompts().await?)).await?;
    if t.json {
        print_json(&Value::Array(prompts.into_iter().map(Prompt::into_raw).collect()));
    } else {
        print!("{}", prompts_table(&prompts));
    }
    Ok(())
}

/// `mcpmux prompt`.
pub async fn prompt(words: Vec<String>, t: TargetArgs) -> Result<(), CommandError> {
    let (target, rest) = split_target(&words, &t);
    let Some((name, kv)) = rest.split_first() else {
        return Err(CommandError::Usage("name the prompt: mcpmux prompt [TARGET] NAME [key=value…]".into()));
    };
    let result = with_session(target, &t, async |session, _| {
        let listed = session.prompts().await?;
        let Some(found) = listed.iter().find(|p| p.name() == name.as_str()) else {
            let names: Vec<&str> = listed.iter().map(Prompt::name).collect();
            return Err(CommandError::Usage(format!("no prompt '{name}'; the prompts are: {}", names.join(", "))));
        };
        let arguments = args::prompt_arguments(found.arguments(), kv)?;
        Ok(session.get_prompt(name, arguments).await?)
    })
    .await?;
    if t.json {
        print_json(&result);
        return Ok(());
    }
    for message in result.get("messages").and_then(Value::as_array).into_iter().flatten() {
        println!("[{}]", message.get("role").and_then(Value::as_str).unwrap_or("?"));
        let content = message.get("content").cloned().unwrap_or(Value::Null);
        print_content(std::slice::from_ref(&content), name, None)?;
    }
    Ok(())
}

/// Splits `[TARGET] NAME key=value…`: the first word is a target when it is a URL or an existing
/// file and a name follows it.
fn split_target<'a>(words: &'a [String], t: &TargetArgs) -> (Option<&'a str>, &'a [String]) {
    match words {
        [first, second, ..] if t.command.is_empty() && is_target(first) && !second.contains('=') => {
            (Some(first.as_str()), &words[1..])
        }
        _ => (None, words),
    }
}

/// Prints content blocks: text as is, binary as a note (or saved under `save`), others as JSON.
fn print_content(content: &[Value], stem: &str, save: Option<&Path>) -> Result<(), CommandError> {
    for (i, block) in content.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        let name = format!("{}-{}", sanitize_file_stem(stem), i + 1);
        match kind {
            "text" => println!("{}", block.get("text").and_then(Value::as_str).unwrap_or_default()),
            "image" | "audio" => {
                let mime = block.get("mimeType").and_then(Value::as_str).unwrap_or("application/octet-stream");
                binary(kind, mime, block.get("data").and_then(Value::as_str).unwrap_or_default(), &name, save)?;
            }
            "resource" => {
                let resource = block.get("resource").cloned().unwrap_or(Value::Null);
                let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("?");
                if let Some(text) = resource.get("text").and_then(Value::as_str) {
                    println!("[resource {uri}]\n{text}");
                } else {
                    let mime = resource.get("mimeType").and_then(Value::as_str).unwrap_or("application/octet-stream");
                    let blob = resource.get("blob").and_then(Value::as_str).unwrap_or_default();
                    binary(&format!("resource {uri}"), mime, blob, &name, save)?;
                }
            }
            "resource_link" => {
                let uri = block.get("uri").and_then(Value::as_str).unwrap_or("?");
                let label = block.get("name").and_then(Value::as_str).unwrap_or_default();
                println!("[link] {uri} {label}");
            }
            _ => print_json(block),
        }
    }
    Ok(())
}

/// Reports base64 content, writing it to `{save}/{name}.{ext}` when asked.
fn binary(kind: &str, mime: &str, base64: &str, name: &str, save: Option<&Path>) -> Result<(), CommandError> {
    let bytes = decode_base64(base64);
    let Some(dir) = save else {
        let size = bytes.map(|b| b.len().to_string()).unwrap_or_else(|| "?".into());
        println!("[{kind}: {mime}, {size} bytes; use --save DIR to write it to a file]");
        return Ok(());
    };
    let path = dir.join(format!("{name}.{}", extension(mime)));
    let Some(bytes) = bytes else {
        println!("[{kind}: {mime}, not valid base64; not saved]");
        return Ok(());
    };
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, &bytes))
        .map_err(|source| CommandError::Save { path: path.clone(), source })?;
    println!("[{kind}: {mime}, {} bytes, saved to {}]", bytes.len(), path.display());
    Ok(())
}

fn sanitize_file_stem(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn extension(mime: &str) -> &'static str {
    match mime.split(';').next().unwrap_or("").trim() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "application/gzip" => "gz",
        "application/pdf" => "pdf",
        "application/json" => "json",
        "text/plain" => "txt",
        _ => "bin",
    }
}

/// Standard or URL-safe base64 (padding optional, whitespace ignored); `None` when it is not
/// base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{Engine, alphabet};
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(&clean)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(&clean))
        .ok()
}

/// Width of the description column.
const DESCRIPTION_WIDTH: usize = 60;

/// First line, cut to `width` characters with `…`.
fn short(text: Option<&str>, width: usize) -> String {
    let line = text.unwrap_or_default().trim().lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        return "-".to_owned();
    }
    if line.chars().count() <= width {
        return line.to_owned();
    }
    let cut: String = line.chars().take(width - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Left-aligned columns, two spaces apart, no trailing spaces.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).map(str::to_owned).unwrap_or_else(|| "-".into())
}

/// The `tools` table: name, title, description (first line, cut), required arguments.
pub fn tools_table(tools: &[Tool]) -> String {
    if tools.is_empty() {
        return "(no tools)\n".into();
    }
    let rows: Vec<Vec<String>> = tools
        .iter()
        .map(|t| {
            let required = t.required_arguments();
            vec![
                t.name().to_owned(),
                or_dash(t.title()),
                short(t.description(), DESCRIPTION_WIDTH),
                if required.is_empty() { "-".into() } else { required.join(", ") },
            ]
        })
        .collect();
    table(&["NAME", "TITLE", "DESCRIPTION", "REQUIRED"], &rows)
}

/// The `resources` table, then the templates table.
pub fn resources_table(resources: &[Resource], templates: &[ResourceTemplate]) -> String {
    let mut out = String::new();
    if resources.is_empty() {
        out.push_str("(no resources)\n");
    } else {
        let rows: Vec<Vec<String>> = resources
            .iter()
            .map(|r| {
                vec![
                    r.uri().to_owned(),
                    r.name().to_owned(),
                    or_dash(r.mime_type()),
                    short(r.description(), DESCRIPTION_WIDTH),
                ]
            })
            .collect();
        out.push_str(&table(&["URI", "NAME", "MIME TYPE", "DESCRIPTION"], &rows));
    }
    out.push('\n');
    if templates.is_empty() {
        out.push_str("(no resource templates)\n");
    } else {
        let rows: Vec<Vec<String>> = templates
            .iter()
            .map(|r| {
                vec![
                    r.uri_template().to_owned(),
                    r.name().to_owned(),
                    or_dash(r.mime_type()),
                    short(r.description(), DESCRIPTION_WIDTH),
                ]
            })
            .collect();
        out.push_str(&table(&["URI TEMPLATE", "NAME", "MIME TYPE", "DESCRIPTION"], &rows));
    }
    out
}

/// The `prompts` table: name, title, description, arguments (optional ones in brackets).
pub fn prompts_table(prompts: &[Prompt]) -> String {
    if prompts.is_empty() {
        return "(no prompts)\n".into();
    }
    let rows: Vec<Vec<String>> = prompts
        .iter()
        .map(|p| {
            let args: Vec<String> = p
                .arguments()
                .iter()
                .filter_map(|a| {
                    let name = a.get("name")?.as_str()?;
                    let required = a.get("required").and_then(Value::as_bool).unwrap_or(false);
                    Some(if required { name.to_owned() } else { format!("[{name}]") })
                })
                .collect();
            vec![
                p.name().to_owned(),
                or_dash(p.title()),
                short(p.description(), DESCRIPTION_WIDTH),
                if args.is_empty() { "-".into() } else { args.join(" ") },
            ]
        })
        .collect();
    table(&["NAME", "TITLE", "DESCRIPTION", "ARGUMENTS"], &rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert!(decode_base64("a$==").is_none());
    }

    #[test]
    fn tables_are_aligned_and_cut() {
        let tools = vec![
            Tool::from_raw(
                json!({"name": "add", "title": "Add", "description": "Adds.\nMore text.", "inputSchema": {"required": ["a", "b"]}}),
            ),
            Tool::from_raw(json!({"name": "longer_name", "description": "x".repeat(80)})),
        ];
        let expected = format!(
            "NAME         TITLE  DESCRIPTION{}  REQUIRED\nadd          Add    Adds.{}  a, b\nlonger_name  -      {}…  -\n",
            " ".repeat(49),
            " ".repeat(55),
            "x".repeat(59)
        );
        assert_eq!(tools_table(&tools), expected);
    }

    #[test]
    fn progress_lines() {
        let p = Progress::from_params(&json!({"progress": 2, "total": 5, "message": "working"}));
        assert_eq!(progress_line(&p), "progress [########------------] 2/5 (40%) working");
        let p = Progress::from_params(&json!({"progress": 3}));
        assert_eq!(progress_line(&p), "progress 3");
    }
}
