//! The config files shipped under `config/` load cleanly, and `mcpmux validate` / `mcpmux serve`
//! report configuration problems as documented: every problem with its location, warnings that
//! name the key, syntax errors with a line and column, and never a header secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcpmux::config::{self, Config, RemoteKind, ServerConfig, Settings, TransportConfig};

// ---------------------------------------------------------------------------------------------
// The shipped files

/// A warning a shipped config file is allowed to produce, and why.
struct AllowedWarning {
    /// Path relative to `config/`.
    file: &'static str,
    /// Exact location of the warning.
    location: &'static str,
    /// A fragment of its message.
    contains: &'static str,
    /// Why the file keeps something mcpmux warns about.
    reason: &'static str,
}

/// Every warning the shipped configs may produce. None today: every example is meant to load
/// silently. A warning added here must also show up, or the test fails (the list stays exact).
const ALLOWED_WARNINGS: &[AllowedWarning] = &[];

/// Files that must exist (relative to `config/`); guards against the walk finding nothing.
const SHIPPED: [&str; 5] =
    ["mcp.json", "mcp.toml", "examples/npx-uvx.json", "examples/remote.json", "examples/claude-desktop.json"];

fn config_dir() -> PathBuf {
    common::root().join("config")
}

/// Every `*.json` / `*.toml` under `config/`, recursively, sorted; not `*.schema.json` (the
/// JSON Schema is kept next to the configs, but is not one).
fn config_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if common::is_schema_file(&path) {
                continue;
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("toml"))
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&config_dir(), &mut out);
    out.sort();
    out
}

/// `path` relative to `config/`, with `/` separators.
fn relative(path: &Path) -> String {
    let rel = path.strip_prefix(config_dir()).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// A lookup with nothing set but `MCPMUX_EXE`: a machine with no special variables.
fn bare_env(name: &str) -> Option<String> {
    (name == "MCPMUX_EXE").then(|| common::mcpmux_exe().to_owned())
}

fn load(path: &Path, env: &dyn config::EnvLookup) -> Config {
    match config::load_file(path, env) {
        Ok(c) => c,
        Err(e) => panic!("{} should load: {e}\n{:#?}", path.display(), e.problems),
    }
}

fn server<'c>(c: &'c Config, name: &str) -> &'c ServerConfig {
    c.servers.get(name).unwrap_or_else(|| panic!("no server {name} in {:?}", c.servers.keys()))
}

fn stdio<'c>(c: &'c Config, name: &str) -> &'c config::StdioConfig {
    match &server(c, name).transport {
        TransportConfig::Stdio(s) => s,
        other => panic!("{name} should be stdio, is {other:?}"),
    }
}

fn remote<'c>(c: &'c Config, name: &str) -> &'c config::RemoteConfig {
    match &server(c, name).transport {
        TransportConfig::Remote(r) => r,
        other => panic!("{name} should be remote, is {other:?}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_config_file_loads_without_errors_or_unexpected_warnings() {
    let files = config_files();
    let found: Vec<String> = files.iter().map(|p| relative(p)).collect();
    for name in SHIPPED {
        assert!(found.iter().any(|f| f == name), "config/{name} is missing; found {found:?}");
    }
    for allowed in ALLOWED_WARNINGS {
        assert!(
            found.iter().any(|f| f == allowed.file),
            "ALLOWED_WARNINGS names config/{}, which does not exist",
            allowed.file
        );
    }

    let mut failures = Vec::new();
    for path in &files {
        let rel = relative(path);
        let cfg = match config::load_file(path, &common::test_env) {
            Ok(cfg) => cfg,
            Err(e) => {
                let problems: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
                failures.push(format!("config/{rel}: {e}:\n    {}", problems.join("\n    ")));
                continue;
            }
        };
        assert_eq!(cfg.source.as_deref(), Some(path.as_path()));
        if cfg.servers.is_empty() {
            failures.push(format!("config/{rel}: configures no server"));
        }
        let allowed: Vec<&AllowedWarning> = ALLOWED_WARNINGS.iter().filter(|a| a.file == rel).collect();
        for w in &cfg.warnings {
            let listed = allowed.iter().any(|a| w.location == a.location && w.message.contains(a.contains));
            if !listed {
                failures.push(format!("config/{rel}: unexpected warning: {w}"));
            }
        }
        for a in allowed {
            let present = cfg.warnings.iter().any(|w| w.location == a.location && w.message.contains(a.contains));
            if !present {
                failures.push(format!(
                    "config/{rel}: the allowed warning at {} ('{}', kept because: {}) no longer \
                     appears; remove it from ALLOWED_WARNINGS",
                    a.location, a.contains, a.reason
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_need_no_environment_variables() {
    for path in config_files() {
        load(&path, &bare_env);
    }
}

#[test]
fn default_json_and_toml_are_the_same_config() {
    let mut json = load(&config_dir().join("mcp.json"), &common::test_env);
    let mut toml = load(&config_dir().join("mcp.toml"), &common::test_env);
    assert_ne!(json.source, toml.source);
    json.source = None;
    toml.source = None;
    assert_eq!(json, toml);

    assert_eq!(json.servers.keys().collect::<Vec<_>>(), ["clock", "notes"]);
    for name in ["clock", "notes"] {
        let s = stdio(&json, name);
        assert_eq!(s.command, common::mcpmux_exe());
        assert_eq!(s.args, ["demo", name]);
        assert!(!server(&json, name).disabled);
    }
    assert_eq!(json.settings, Settings::default());
    assert!(json.warnings.is_empty(), "{:?}", json.warnings);
}

#[test]
fn npx_uvx_example_shows_what_it_claims() {
    let c = load(&config_dir().join("examples/npx-uvx.json"), &bare_env);

    let fs = stdio(&c, "filesystem");
    assert_eq!(fs.command, "npx");
    assert_eq!(fs.args, strings(&["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]));
    assert_eq!(server(&c, "filesystem").prefix, "fs");

    let fetch = stdio(&c, "fetch");
    assert_eq!(fetch.command, "uvx");
    assert_eq!(fetch.args[0], "mcp-server-fetch");
    assert_eq!(fetch.env.get("UV_PYTHON").map(String::as_str), Some("3.12"));
    let f = server(&c, "fetch");
    assert_eq!(f.prefix, "web");
    assert_eq!(f.request_timeout, Some(Duration::from_secs(60)));
    assert_eq!(f.startup_timeout, Some(Duration::from_secs(120)));

    let memory = stdio(&c, "memory");
    assert_eq!(memory.args, strings(&["-y", "@modelcontextprotocol/server-memory"]));
    assert_eq!(memory.env.get("MEMORY_FILE_PATH").map(String::as_str), Some("/tmp/mcpmux-memory.json"));
    assert!(server(&c, "memory").disabled);
    let enabled: Vec<&str> = c.enabled_servers().map(|s| s.name.as_str()).collect();
    assert_eq!(enabled, ["fetch", "filesystem"]);

    let s = &c.settings;
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.separator, "__");
    assert_eq!(s.page_size, 50);
    assert_eq!(s.allowed_origins, strings(&["http://localhost:*", "https://app.example.com"]));
}

#[test]
fn remote_example_shows_what_it_claims() {
    let c = load(&config_dir().join("examples/remote.json"), &bare_env);

    let docs = remote(&c, "docs");
    assert_eq!(docs.kind, RemoteKind::StreamableHttp);
    assert_eq!(docs.url, "https://mcp.example.com/mcp");
    let auth = docs.headers.get("Authorization").map(|s| s.expose());
    assert_eq!(auth, Some("Bearer changeme"));
    assert_eq!(server(&c, "docs").request_timeout, Some(Duration::from_secs(30)));

    let events = remote(&c, "legacy-events");
    assert_eq!(events.kind, RemoteKind::Sse);
    let auth = events.headers.get("Authorization").map(|s| s.expose());
    assert_eq!(auth, Some("Bearer changeme"));
    assert_eq!(server(&c, "legacy-events").prefix, "events");

    assert_eq!(remote(&c, "deepwiki").kind, RemoteKind::Auto);
    assert!(c.servers.values().all(|s| !s.disabled));
    assert_eq!(c.settings, Settings::default());

    // The token is a secret: not even the Debug form shows it.
    assert!(!format!("{c:?}").contains("changeme"));
}

#[test]
fn claude_desktop_file_loads_as_is() {
    let path = config_dir().join("examples/claude-desktop.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let root = doc.as_object().unwrap();
    assert_eq!(root.keys().collect::<Vec<_>>(), ["mcpServers"]);
    for (name, entry) in root["mcpServers"].as_object().unwrap() {
        for key in entry.as_object().unwrap().keys() {
            assert!(
                ["command", "args", "env"].contains(&key.as_str()),
                "{name}.{key} is not something Claude Desktop writes"
            );
        }
    }
    assert!(!text.contains("${"), "Claude Desktop does not expand variables");

    let c = load(&path, &bare_env);
    assert_eq!(c.servers.keys().collect::<Vec<_>>(), ["filesystem", "github", "sqlite"]);
    assert_eq!(stdio(&c, "filesystem").command, "npx");
    assert_eq!(stdio(&c, "sqlite").command, "uvx");
    let env: BTreeMap<String, String> = [("GITHUB_PERSONAL_ACCESS_TOKEN", "<YOUR_TOKEN>")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(stdio(&c, "github").env, env);
    for s in c.servers.values() {
        assert_eq!(s.prefix, s.name);
        assert!(!s.disabled);
    }
    assert_eq!(c.settings, Settings::default());
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// How long one `mcpmux validate` / failing `mcpmux serve` may take.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// What a finished mcpmux process printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    fn show(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs mcpmux with `args` (in the crate root, without the `MCPMUX_*` variables that would
/// change what it reads) and waits at most [`RUN_LIMIT`]; a process still running then is
/// killed and the test fails.
async fn mcpmux(args: &[&str], clear_env: bool) -> Run {
    mcpmux_with(args, clear_env, &[]).await
}

/// [`mcpmux`], with `vars` set on top.
async fn mcpmux_with(args: &[&str], clear_env: bool, vars: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(common::mcpmux_exe());
    cmd.args(args).current_dir(common::root()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if clear_env {
        cmd.env_clear();
    }
    cmd.envs(vars.iter().copied());
    for var in
        ["MCPMUX_CONFIG", "MCPMUX_LISTEN", "MCPMUX_LOG_FORMAT", "MCPMUX_AUTH_TOKEN", "MCPMUX_ALLOW_UNAUTHENTICATED"]
    {
        cmd.env_remove(var);
    }
    let child = cmd.spawn().expect("cannot start mcpmux");
    let pid = child.id();
    let waiter = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = match tokio::time::timeout(RUN_LIMIT, waiter).await {
        Ok(joined) => joined.unwrap().unwrap(),
        Err(_) => {
            // Our own child, not yet reaped (its waiter is still blocked on it).
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            panic!("mcpmux {args:?} did not exit within {RUN_LIMIT:?}");
        }
    };
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn validate(path: &Path) -> Run {
    mcpmux(&["validate", "--config", path.to_str().unwrap()], false).await
}

/// A config file under the system temp dir with a unique name, removed on drop.
struct TempConfig {
    path: PathBuf,
}

impl TempConfig {
    fn new(tag: &str, ext: &str, content: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mcpmux-config-files-{}-{n}-{tag}.{ext}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, content).unwrap();
        TempConfig { path }
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Asserts that `text` has a line `  error: {location}: …{needle}…`.
fn assert_error_line(run: &Run, location: &str, needle: &str) {
    let prefix = format!("  error: {location}: ");
    let found = run.stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle));
    assert!(found, "no error at {location} mentioning {needle:?}\n{}", run.show());
}

#[tokio::test]
async fn validate_lists_the_servers_of_the_default_config() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        // No --config: the default path, relative to the working directory.
        let run = mcpmux(&["validate"], false).await;
        assert_eq!(run.code, Some(0), "{}", run.show());
        assert!(run.stdout.contains("config/mcp.json: valid, 2 server(s)"), "{}", run.show());
        for name in ["clock", "notes"] {
            let line = run.stdout.lines().find(|l| l.split_whitespace().next() == Some(name));
            let line = line.unwrap_or_else(|| panic!("{name} is not listed\n{}", run.show()));
            assert!(line.contains("stdio"), "{line}");
            assert!(line.contains(&format!("prefix '{name}'")), "{line}");
            assert!(!line.contains("disabled"), "{line}");
        }
        assert!(!run.all().contains("warning"), "{}", run.show());
        assert!(!run.stderr.contains("error"), "{}", run.show());
    })
    .await
    .expect("test timed out");
}

/// Warnings `mcpmux validate` (not the loader) gives for a shipped file: (file relative to
/// `config/`, location, why the file keeps it).
const VALIDATE_WARNINGS: &[(&str, &str, &str)] = &[(
    "examples/claude-desktop.json",
    "mcpServers.github.env.GITHUB_PERSONAL_ACCESS_TOKEN",
    "the file is Claude Desktop's documented example as is, with its placeholder token written in",
)];

#[tokio::test]
async fn validate_accepts_every_shipped_config_in_an_empty_environment() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        // Nothing set but a PATH with the launchers the examples name (validate looks them up).
        let bin = common::TempDir::new("config-files-bin");
        for name in ["npx", "uvx"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(bin.file(name), "#!/bin/sh\nexit 0\n").unwrap();
            std::fs::set_permissions(bin.file(name), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path_var = bin.0.display().to_string();
        for path in config_files() {
            let rel = relative(&path);
            let run =
                mcpmux_with(&["validate", "--config", path.to_str().unwrap()], true, &[("PATH", &path_var)]).await;
            assert_eq!(run.code, Some(0), "{}:\n{}", path.display(), run.show());
            assert!(run.stdout.contains(": valid, "), "{}", run.show());
            let all = run.all();
            let warned: Vec<&str> = all.lines().filter(|l| l.contains("warning")).collect();
            let expected: Vec<&str> = VALIDATE_WARNINGS.iter().filter(|w| w.0 == rel).map(|w| w.1).collect();
            let summary = usize::from(!expected.is_empty());
            assert_eq!(warned.len(), expected.len() + summary, "{rel}: {expected:?}\n{}", run.show());
            for location in expected {
                let line = format!("warning: {location}: ");
                assert!(run.stdout.lines().any(|l| l.starts_with(&line)), "{rel}: no {line}\n{}", run.show());
            }
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn validate_reports_every_mistake_with_its_location() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let file = TempConfig::new(
            "three-mistakes",
            "json",
            r#"{
              "mcpServers": {
                "notes": {"command": "${MCPMUX_EXE}", "args": "demo notes"},
                "api": {"url": "ftp://example.com/mcp"},
                "clock": {"command": "${MCPMUX_EXE}", "args": ["demo", "clock"]}
              },
              "mcpmux": {"listen": "everywhere"}
            }"#,
        );
        let run = validate(file.path()).await;
        assert_eq!(run.code, Some(1), "{}", run.show());
        assert!(run.stderr.contains("3 problem(s)"), "{}", run.show());
        assert!(run.stderr.contains(&file.path().display().to_string()), "the file is named\n{}", run.show());
        assert_error_line(&run, "mcpServers.notes.args", "expected an array, found a string");
        assert_error_line(&run, "mcpServers.api.url", "http:// or https://");
        assert_error_line(&run, "mcpmux.listen", "found 'everywhere'");
        let errors = run.stderr.lines().filter(|l| l.starts_with("  error: "));
        assert_eq!(errors.count(), 3, "{}", run.show());
        assert!(!run.stdout.contains("valid"), "{}", run.show());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn validate_warns_about_unknown_keys() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let file = TempConfig::new(
            "unknown-key",
            "json",
            r#"{"mcpServers": {"clock": {"command": "${MCPMUX_EXE}", "args": ["demo", "clock"], "disable": true}}}"#,
        );
        let run = validate(file.path()).await;
        assert_eq!(run.code, Some(0), "{}", run.show());
        let all = run.all();
        let warning =
            all.lines().find(|l| l.starts_with("warning:")).unwrap_or_else(|| panic!("no warning\n{}", run.show()));
        assert!(warning.contains("mcpServers.clock.disable"), "{warning}");
        assert!(warning.contains("'disable'"), "{warning}");
        assert!(run.stdout.contains("valid, 1 server(s)"), "{}", run.show());
        // The misspelled key did not disable the server.
        assert!(!run.stdout.contains("(disabled)"), "{}", run.show());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn validate_reports_syntax_errors_with_line_and_column() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let cases = [
            (
                "json",
                "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"}\n    \"b\": {}\n  }\n}\n",
                "line 4, column 5",
                "invalid JSON",
            ),
            (
                "toml",
                "[mcpServers.clock]\ncommand = \"x\"\nargs = [\"demo\", clock]\n",
                "line 3, column 17",
                "invalid TOML",
            ),
        ];
        for (ext, text, location, what) in cases {
            let file = TempConfig::new("syntax", ext, text);
            let run = validate(file.path()).await;
            assert_eq!(run.code, Some(1), "{}", run.show());
            assert_error_line(&run, location, what);
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn header_secrets_never_appear_in_validate_output() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        const SECRET: &str = "s3cr3t-value";
        const AUTH: &str = r#""Authorization": "Bearer s3cr3t-value""#;
        // (file extension, content, exit code, a location the output must name)
        let cases: Vec<(&str, String, i32, &str)> = vec![
            // Valid: the summary does not show headers.
            (
                "json",
                format!(r#"{{"mcpServers": {{"api": {{"url": "https://h.example/mcp", "headers": {{{AUTH}}}}}}}}}"#),
                0,
                "api",
            ),
            // Another error on the same server: a bad URL.
            (
                "json",
                format!(r#"{{"mcpServers": {{"api": {{"url": "ftp://h.example/mcp", "headers": {{{AUTH}}}}}}}}}"#),
                1,
                "mcpServers.api.url",
            ),
            // Unknown transport, with a warning-worthy key too.
            (
                "json",
                format!(r#"{{"mcpServers": {{"api": {{"transport": "websocket", "url": "https://h.example/mcp", "headers": {{{AUTH}}}, "timeout": 5}}}}}}"#),
                1,
                "mcpServers.api.transport",
            ),
            // Declared stdio with a url: the headers are reported as misplaced.
            (
                "json",
                format!(r#"{{"mcpServers": {{"api": {{"type": "stdio", "url": "https://h.example/mcp", "headers": {{{AUTH}}}}}}}}}"#),
                1,
                "mcpServers.api.url",
            ),
            // A stdio server with headers: a warning about the headers key.
            (
                "json",
                format!(r#"{{"mcpServers": {{"api": {{"command": "${{MCPMUX_EXE}}", "headers": {{{AUTH}}}}}}}}}"#),
                0,
                "mcpServers.api.headers",
            ),
            // The secret is in the same header as the error.
            (
                "json",
                r#"{"mcpServers": {"api": {"url": "https://h.example/mcp", "headers": {"Authorization": "Bearer s3cr3t-value${MCPMUX_TEST_SURELY_UNSET_VAR}"}}}}"#.to_owned(),
                1,
                "mcpServers.api.headers.Authorization",
            ),
            (
                "json",
                r#"{"mcpServers": {"api": {"url": "https://h.example/mcp", "headers": {"Authorization": "Bearer s3cr3t-value\r\nX-Evil: 1"}}}}"#.to_owned(),
                1,
                "mcpServers.api.headers.Authorization",
            ),
            // Another header of the same server is wrong.
            (
                "json",
                format!(r#"{{"mcpServers": {{"api": {{"url": "https://h.example/mcp", "headers": {{{AUTH}, "X-Retries": 3}}}}}}}}"#),
                1,
                "mcpServers.api.headers.X-Retries",
            ),
            // Syntax errors next to the secret.
            (
                "json",
                r#"{"mcpServers": {"api": {"url": "https://h.example/mcp", "headers": {"Authorization": "Bearer s3cr3t-value"#.to_owned(),
                1,
                "line 1, column",
            ),
            (
                "json",
                r#"{"mcpServers": {"api": {"url": "https://h.example/mcp", "headers": {"Authorization": Bearer s3cr3t-value}}}}"#.to_owned(),
                1,
                "line 1, column",
            ),
            (
                "toml",
                "[mcpServers.api]\nurl = \"https://h.example/mcp\"\nheaders = { Authorization = Bearer s3cr3t-value }\n".to_owned(),
                1,
                "line 3, column",
            ),
            (
                "toml",
                "[mcpServers.api]\nurl = \"https://h.example/mcp\"\nheaders = { Authorization = \"Bearer s3cr3t-value }\n".to_owned(),
                1,
                "line 3, column",
            ),
        ];
        for (ext, text, code, location) in cases {
            let file = TempConfig::new("secret", ext, &text);
            let run = validate(file.path()).await;
            assert_eq!(run.code, Some(code), "{text}\n{}", run.show());
            assert!(run.all().contains(location), "{text}\n{}", run.show());
            assert!(!run.all().contains(SECRET), "secret leaked for {text}\n{}", run.show());
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn serve_with_an_invalid_config_exits_quickly_with_the_problems() {
    tokio::time::timeout(common::TEST_TIMEOUT, async {
        let file = TempConfig::new(
            "serve-invalid",
            "json",
            r#"{
              "mcpServers": {
                "clock": {"command": "${MCPMUX_EXE}", "args": ["demo", "clock"], "startupTimeoutMs": 0},
                "api": {"url": "https://h.example/mcp", "headers": {"Authorization": "Bearer s3cr3t-value"}, "command": "x"}
              }
            }"#,
        );
        let started = Instant::now();
        let args = [
            "serve",
            "--config",
            file.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ];
        let run = mcpmux(&args, false).await;
        let took = started.elapsed();
        assert!(
            run.code.is_some_and(|c| c != 0),
            "serve must fail\n{}",
            run.show()
        );
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(run.stderr.contains("2 problem(s)"), "{}", run.show());
        assert_error_line(&run, "mcpServers.clock.startupTimeoutMs", "positive integer");
        assert_error_line(&run, "mcpServers.api", "both `command`");
        assert!(!run.all().contains("s3cr3t-value"), "{}", run.show());
        assert!(!run.stdout.contains("serving"), "{}", run.show());
    })
    .await
    .expect("test timed out");
}
