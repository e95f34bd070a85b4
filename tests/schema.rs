#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The config file's JSON Schema (`mcpmux schema`, generated from `src/config/schema.rs`): the
//! checked-in copy is current, every config file the project ships validates against it, the
//! `$schema` keys of those files point at it, and it agrees with the loader on what it can check
//! (a table of documents below records where, and why, the two differ).
//!
//! Validation uses the Python `jsonschema` package of the test virtualenv (installed by
//! `tests/peers/install.sh`, from `tests/peers/requirements.txt`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// The checked-in schema, relative to the crate root.
const SCHEMA_FILE: &str = "config/mcpmux.schema.json";
/// How to bring it up to date.
const REGENERATE: &str = "cargo run -q -- schema > config/mcpmux.schema.json";

/// Files that keep no `$schema` key, and why.
const WITHOUT_SCHEMA_KEY: &[(&str, &str)] = &[(
    "config/examples/claude-desktop.json",
    "it is exactly what Claude Desktop writes (tests/config_files.rs checks that mcpServers is its only key)",
)];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every file under `dir` (recursively) with extension `ext`, sorted.
fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, ext, out);
            } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, ext, &mut out);
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(common::root()).unwrap_or(path).display().to_string()
}

/// The JSON config files the project ships: `config/` (without the schema itself, which lives
/// there too), the image's default, the Compose one.
fn shipped_json_configs() -> Vec<PathBuf> {
    let root = common::root();
    let mut files = files_under(&root.join("config"), "json");
    files.retain(|p| !common::is_schema_file(p));
    files.push(root.join("docker/mcp.json"));
    files.extend(files_under(&root.join("deploy"), "json"));
    files
}

/// The config embedded in the Kubernetes ConfigMap (`data: mcp.json: |` block).
fn configmap_config() -> String {
    let text = read(&common::root().join("deploy/kubernetes/configmap.yaml"));
    let mut lines = text.lines().skip_while(|l| l.trim_end() != "  mcp.json: |");
    assert!(lines.next().is_some(), "deploy/kubernetes/configmap.yaml has no `  mcp.json: |` block");
    let block: Vec<&str> = lines.take_while(|l| l.is_empty() || l.starts_with("    ")).collect();
    block.iter().map(|l| l.get(4..).unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every shipped config as a JSON document, by name (TOML converted, as the loader does).
fn shipped_documents() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for path in shipped_json_configs() {
        let doc: Value =
            serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{} is not JSON: {e}", relative(&path)));
        docs.push((relative(&path), doc));
    }
    for path in files_under(&common::root().join("config"), "toml") {
        let table: toml::Table = read(&path).parse().unwrap_or_else(|e| panic!("{}: {e}", relative(&path)));
        docs.push((relative(&path), serde_json::to_value(table).unwrap()));
    }
    let embedded = configmap_config();
    let doc: Value =
        serde_json::from_str(&embedded).unwrap_or_else(|e| panic!("the ConfigMap's mcp.json is not JSON: {e}"));
    docs.push(("deploy/kubernetes/configmap.yaml (mcp.json)".to_owned(), doc));
    docs
}

/// Validates each document against the schema with Python's `jsonschema` (Draft 2020-12, after
/// checking the schema itself against the meta-schema). Returns each document's errors.
fn schema_errors(schema: &Value, documents: &[(String, Value)]) -> Vec<(String, Vec<String>)> {
    const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
data = json.load(sys.stdin)
Draft202012Validator.check_schema(data["schema"])
validator = Draft202012Validator(data["schema"])
out = []
for name, doc in data["documents"]:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    out.append([name, ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in errors]])
json.dump(out, sys.stdout)
"#;
    let input = json!({"schema": schema, "documents": documents});
    let mut child = Command::new(common::python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the test virtualenv's python");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.to_string().as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "jsonschema failed (is it installed? tests/peers/install.sh installs tests/peers/requirements.txt):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_checked_in_schema_is_current() {
    let path = common::root().join(SCHEMA_FILE);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = mcpmux::config::schema::schema_json();
    assert!(
        checked_in == generated,
        "{SCHEMA_FILE} is not what src/config/schema.rs generates; regenerate it with\n\n    {REGENERATE}\n"
    );
}

#[test]
fn mcpmux_schema_prints_the_schema() {
    let output = Command::new(common::mcpmux_exe()).arg("schema").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), mcpmux::config::schema::schema_json());
}

#[test]
fn every_shipped_config_validates_against_the_schema() {
    let docs = shipped_documents();
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["config/mcp.json", "config/mcp.toml", "config/examples/npx-uvx.json", "docker/mcp.json"] {
        assert!(names.contains(&expected), "{expected} was not checked; checked {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("deploy/compose/")), "{names:?}");
    let schema: Value = serde_json::from_str(&mcpmux::config::schema::schema_json()).unwrap();
    let failures: Vec<String> = schema_errors(&schema, &docs)
        .into_iter()
        .filter(|(_, errors)| !errors.is_empty())
        .map(|(name, errors)| format!("{name}:\n    {}", errors.join("\n    ")))
        .collect();
    assert!(failures.is_empty(), "shipped configs the schema rejects:\n{}", failures.join("\n"));
}

#[test]
fn shipped_json_files_point_at_the_schema() {
    let schema = common::root().join(SCHEMA_FILE).canonicalize().unwrap();
    for path in shipped_json_configs() {
        let rel = relative(&path);
        let doc: Value = serde_json::from_str(&read(&path)).unwrap();
        match (doc.get("$schema").and_then(Value::as_str), WITHOUT_SCHEMA_KEY.iter().find(|(f, _)| *f == rel)) {
            (None, Some(_)) => {}
            (Some(_), Some((_, why))) => panic!("{rel} should have no $schema key: {why}"),
            (None, None) => panic!("{rel} has no \"$schema\" key pointing at {SCHEMA_FILE}"),
            (Some(reference), None) => {
                let target = path.parent().unwrap().join(reference);
                let resolved = target.canonicalize().unwrap_or_else(|e| panic!("{rel}: $schema {reference}: {e}"));
                assert_eq!(resolved, schema, "{rel}: $schema {reference} is not {SCHEMA_FILE}");
            }
        }
    }
}

/// How the loader and the schema judge one document.
struct Case {
    what: &'static str,
    doc: Value,
    /// The loader accepts it (warnings allowed).
    loads: bool,
    /// The schema accepts it.
    valid: bool,
}

fn case(what: &'static str, doc: Value, loads: bool, valid: bool) -> Case {
    Case { what, doc, loads, valid }
}

fn servers(entries: Value) -> Value {
    json!({"mcpServers": entries})
}

fn with_settings(settings: Value) -> Value {
    json!({"mcpServers": {"a": {"command": "x"}}, "mcpmux": settings})
}

/// Documents both judge alike, and the deliberate differences: the schema refuses unknown keys
/// (so that editors flag typos; the loader only warns), and only the loader sees across the
/// document or outside it (variables, files, prefixes shared by two servers).
fn cases() -> Vec<Case> {
    vec![
        case(
            "a stdio server",
            servers(
                json!({"a": {"command": "npx", "args": ["-y", "pkg"], "env": {"N": 1, "B": true, "S": "s"}, "cwd": "/tmp"}}),
            ),
            true,
            true,
        ),
        case(
            "a remote server",
            servers(
                json!({"a": {"url": "https://h.example/mcp", "headers": {"Authorization": "Bearer t"}, "type": "sse"}}),
            ),
            true,
            true,
        ),
        case(
            "a bearer token",
            servers(json!({"a": {"url": "https://h/mcp", "bearerToken": "${MCPMUX_SCHEMA_TEST_TOKEN:-t}"}})),
            true,
            true,
        ),
        case(
            "a URL from a variable",
            servers(json!({"a": {"url": "${MCPMUX_SCHEMA_TEST_URL:-https://h.example/mcp}"}})),
            true,
            true,
        ),
        case("declared stdio", servers(json!({"a": {"transport": "stdio", "command": "x"}})), true, true),
        case(
            "streamable-http",
            servers(json!({"a": {"transport": "streamable-http", "url": "http://h/mcp"}})),
            true,
            true,
        ),
        case(
            "every per-server key",
            servers(
                json!({"a": {"command": "x", "prefix": "p-1", "disabled": true, "requestTimeoutMs": 5, "startupTimeoutMs": 5, "isolation": "session", "required": false, "listWhenDown": false, "pingIntervalMs": 1000}}),
            ),
            true,
            true,
        ),
        case(
            "per-server keys under mcpmux.servers",
            json!({"mcpServers": {"a": {"command": "x"}}, "mcpmux": {"servers": {"a": {"prefix": "b", "isolation": "shared"}}}}),
            true,
            true,
        ),
        case(
            "every setting",
            with_settings(
                json!({"listen": "0.0.0.0:${MCPMUX_SCHEMA_TEST_PORT:-8080}", "separator": "__", "pageSize": 10000, "authToken": "t", "allowedOrigins": ["http://localhost:*"], "allowedHosts": ["*"], "allowUnauthenticated": true, "sessionIdleTimeoutMs": 1, "maxBodyBytes": 1, "maxMessageBytes": 1, "requestTimeoutMs": 1, "startupTimeoutMs": 1}),
            ),
            true,
            true,
        ),
        case("separator a-", with_settings(json!({"separator": "a-"})), true, true),
        case("separator _b_", with_settings(json!({"separator": "_b_"})), true, true),
        case("no servers", servers(json!({})), true, true),
        case("$schema", json!({"$schema": "./x.json", "mcpServers": {}}), true, true),
        // Both refuse.
        case("mcpServers missing", json!({"mcpmux": {}}), false, false),
        case("command and url", servers(json!({"a": {"command": "x", "url": "https://h/mcp"}})), false, false),
        case("neither command nor url", servers(json!({"a": {"args": []}})), false, false),
        case("args as a string", servers(json!({"a": {"command": "x", "args": "-y pkg"}})), false, false),
        case("a number in args", servers(json!({"a": {"command": "x", "args": [1]}})), false, false),
        case("empty command", servers(json!({"a": {"command": ""}})), false, false),
        case("ftp URL", servers(json!({"a": {"url": "ftp://h/mcp"}})), false, false),
        case(
            "unknown transport",
            servers(json!({"a": {"transport": "websocket", "url": "https://h/mcp"}})),
            false,
            false,
        ),
        case("stdio with a url", servers(json!({"a": {"type": "stdio", "url": "https://h/mcp"}})), false, false),
        case("http with a command", servers(json!({"a": {"type": "http", "command": "x"}})), false, false),
        case(
            "a number as header value",
            servers(json!({"a": {"url": "https://h/mcp", "headers": {"X-Retries": 3}}})),
            false,
            false,
        ),
        case(
            "bad header name",
            servers(json!({"a": {"url": "https://h/mcp", "headers": {"X Bad": "v"}}})),
            false,
            false,
        ),
        case("an object as env value", servers(json!({"a": {"command": "x", "env": {"K": {}}}})), false, false),
        case("prefix with a space", servers(json!({"a": {"command": "x", "prefix": "a b"}})), false, false),
        case("timeout 0", servers(json!({"a": {"command": "x", "requestTimeoutMs": 0}})), false, false),
        case("fractional timeout", servers(json!({"a": {"command": "x", "startupTimeoutMs": 1.5}})), false, false),
        case("disabled as a string", servers(json!({"a": {"command": "x", "disabled": "yes"}})), false, false),
        case("unknown isolation", servers(json!({"a": {"command": "x", "isolation": "private"}})), false, false),
        case("pageSize 0", with_settings(json!({"pageSize": 0})), false, false),
        case("pageSize too large", with_settings(json!({"pageSize": 10001})), false, false),
        case("separator .", with_settings(json!({"separator": "."})), false, false),
        case("separator abc", with_settings(json!({"separator": "abc"})), false, false),
        case("separator ____", with_settings(json!({"separator": "____"})), false, false),
        case(
            "authToken and authTokenFile",
            with_settings(json!({"authToken": "t", "authTokenFile": "/dev/null"})),
            false,
            false,
        ),
        case(
            "bearerToken and bearerTokenFile",
            servers(json!({"a": {"url": "https://h/mcp", "bearerToken": "t", "bearerTokenFile": "/dev/null"}})),
            false,
            false,
        ),
        case(
            "a bearer token on a stdio server",
            servers(json!({"a": {"command": "x", "bearerToken": "t"}})),
            true,
            false,
        ),
        case("empty authToken", with_settings(json!({"authToken": ""})), false, false),
        case("empty allowed origin", with_settings(json!({"allowedOrigins": [""]})), false, false),
        case("mcpmux not an object", json!({"mcpServers": {}, "mcpmux": []}), false, false),
        case("null setting", with_settings(json!({"listen": null})), false, false),
        // The schema is stricter: unknown keys (the loader warns and goes on).
        case("misspelled key", servers(json!({"a": {"command": "x", "disable": true}})), true, false),
        case(
            "other tools' keys",
            servers(json!({"a": {"command": "x", "alwaysAllow": [], "timeout": 5}})),
            true,
            false,
        ),
        case("unknown top-level key", json!({"mcpServers": {}, "globalShortcut": "x"}), true, false),
        case("unknown setting", with_settings(json!({"listne": "127.0.0.1:1"})), true, false),
        case("headers on a stdio server", servers(json!({"a": {"command": "x", "headers": {}}})), true, false),
        case(
            "unknown key under mcpmux.servers",
            json!({"mcpServers": {"a": {"command": "x"}}, "mcpmux": {"servers": {"a": {"command": "y"}}}}),
            true,
            false,
        ),
        // The loader is stricter: what a schema cannot see.
        case("unset variable", servers(json!({"a": {"command": "${MCPMUX_SCHEMA_TEST_SURELY_UNSET}"}})), false, true),
        case("listen not an address", with_settings(json!({"listen": "everywhere"})), false, true),
        case(
            "two servers with one prefix",
            servers(json!({"a": {"command": "x"}, "b": {"command": "x", "prefix": "a"}})),
            false,
            true,
        ),
        case(
            "a key in the entry and in mcpmux.servers",
            json!({"mcpServers": {"a": {"command": "x", "prefix": "p"}}, "mcpmux": {"servers": {"a": {"prefix": "q"}}}}),
            false,
            true,
        ),
        case(
            "mcpmux.servers names an unknown server",
            json!({"mcpServers": {}, "mcpmux": {"servers": {"ghost": {}}}}),
            false,
            true,
        ),
        case(
            "unreadable token file",
            with_settings(json!({"authTokenFile": "/nonexistent/mcpmux-token"})),
            false,
            true,
        ),
        case(
            "a bearer token and an Authorization header",
            servers(
                json!({"a": {"url": "https://h/mcp", "bearerToken": "t", "headers": {"authorization": "Bearer u"}}}),
            ),
            false,
            true,
        ),
        case(
            "transport and type disagree",
            servers(json!({"a": {"transport": "http", "type": "sse", "url": "https://h/mcp"}})),
            false,
            true,
        ),
    ]
}

#[test]
fn the_schema_and_the_loader_agree_except_where_documented() {
    let cases = cases();
    let documents: Vec<(String, Value)> = cases.iter().map(|c| (c.what.to_owned(), c.doc.clone())).collect();
    let schema: Value = serde_json::from_str(&mcpmux::config::schema::schema_json()).unwrap();
    let verdicts = schema_errors(&schema, &documents);
    let mut failures = Vec::new();
    for (c, (_, errors)) in cases.iter().zip(&verdicts) {
        let loaded = mcpmux::config::parse_str(&c.doc.to_string(), mcpmux::config::Format::Json, &common::test_env);
        if loaded.is_ok() != c.loads {
            let detail = match &loaded {
                Ok(_) => "it loads".to_owned(),
                Err(e) => e.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            };
            failures.push(format!(
                "{}: the loader should {}accept it ({detail})",
                c.what,
                if c.loads { "" } else { "not " }
            ));
        }
        if errors.is_empty() != c.valid {
            let detail = if errors.is_empty() { "it validates".to_owned() } else { errors.join("; ") };
            failures.push(format!(
                "{}: the schema should {}accept it ({detail})",
                c.what,
                if c.valid { "" } else { "not " }
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
