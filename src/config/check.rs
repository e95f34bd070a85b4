//! What `mcpmux validate` checks beyond loading: the things a schema cannot know.
//!
//! The loader (`config::load`) already reports what is wrong inside the document (types, keys,
//! variables, token files, prefixes used twice). This module looks at a loaded [`Config`] from
//! the outside, the way `mcpmux serve` on this machine would meet it:
//!
//! - stdio commands: found on the `PATH` the child gets, or an existing executable path; `cwd`
//!   an existing directory. Resolution is the spawner's (`backend/stdio.rs`): a command without
//!   `/` is looked up in the entry's `env.PATH` if set, else mcpmux's own `PATH`; a relative
//!   path, and a relative `PATH` entry, is relative to `cwd`, and a relative `cwd` to the
//!   directory mcpmux runs in (not the config file's directory).
//! - exposed names: prefixes that become the same once sanitized, and prefixes so long that every
//!   tool and prompt name gets the hashed short form (the catalog's own naming code decides);
//! - `listen`: a non-loopback address without a token, which `serve` refuses;
//! - the raw text: secrets written literally instead of `${VAR}`, and JSON keys given twice
//!   (the parser keeps the last one silently).
//!
//! Like the loader, nothing here ever prints a header value, an env value, an argument or a
//! URL's path and query: they may hold secrets.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::load::{child, item, parse_document};
use super::{Config, Diagnostic, EnvLookup, Format, ServerConfig, StdioConfig, TransportConfig};
use crate::catalog::names::{self, Rename};

/// The `PATH` glibc's `execvp` searches when the child's environment has none.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Words in an env variable or header name that mark its value as a secret.
const SECRET_WORDS: [&str; 6] = ["TOKEN", "KEY", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH"];

/// The outcome of [`check`]: one block per server, and the findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One line about `listen` and authentication.
    pub listen: String,
    /// Per server, in name order.
    pub servers: Vec<ServerReport>,
    /// Problems that stop a backend (or the daemon) from working as configured.
    pub errors: Vec<Diagnostic>,
    /// Findings that do not.
    pub warnings: Vec<Diagnostic>,
}

/// What `validate` shows for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    pub name: String,
    pub transport: &'static str,
    pub prefix: String,
    pub disabled: bool,
    /// Lines like `command: npx → /usr/bin/npx`.
    pub details: Vec<String>,
}

fn diag(location: impl Into<String>, message: impl Into<String>) -> Diagnostic {
    Diagnostic { location: location.into(), message: message.into() }
}

/// Checks `config` against this machine. `env` is mcpmux's own environment (for `PATH`),
/// `workdir` the directory it runs in.
pub fn check(config: &Config, env: &dyn EnvLookup, workdir: &Path) -> Report {
    let mut report = Report { listen: listen_line(config), ..Report::default() };
    check_listen(config, &mut report);
    for server in config.servers.values() {
        let mut details = Vec::new();
        let loc = child("mcpServers", &server.name);
        match (&server.transport, server.disabled) {
            (_, true) => details.push("not checked: disabled".to_owned()),
            (TransportConfig::Stdio(stdio), false) => {
                check_stdio(&loc, stdio, env, workdir, &mut details, &mut report.errors);
            }
            (TransportConfig::Remote(remote), false) => {
                details.push(format!("url: {} (path not shown)", origin(&remote.url)));
                if !remote.headers.is_empty() {
                    let names: Vec<&str> = remote.headers.keys().map(String::as_str).collect();
                    details.push(format!("headers: {} (values not shown)", names.join(", ")));
                }
            }
        }
        report.servers.push(ServerReport {
            name: server.name.clone(),
            transport: server.transport.kind(),
            prefix: server.prefix.clone(),
            disabled: server.disabled,
            details,
        });
    }
    check_names(config, &mut report.warnings);
    report
}

fn listen_line(config: &Config) -> String {
    let s = &config.settings;
    let auth = match (&s.auth_token, s.listen.ip().is_loopback()) {
        (Some(_), _) => "clients need the auth token",
        (None, true) => "no auth token (loopback only)",
        (None, false) if s.allow_unauthenticated => "no auth token (allowed explicitly)",
        (None, false) => "no auth token",
    };
    format!("listen {}; {auth}", s.listen)
}

/// The refusal of `serve` (`server::check_listen`), said in advance.
fn check_listen(config: &Config, report: &mut Report) {
    let s = &config.settings;
    if s.listen.ip().is_loopback() || s.auth_token.is_some() {
        return;
    }
    if s.allow_unauthenticated {
        report.warnings.push(diag(
            "mcpmux.listen",
            format!(
                "{} is reachable from other machines and no auth token is set: anyone who can reach it \
                 can use every backend (allowed by `allowUnauthenticated` / --allow-unauthenticated)",
                s.listen
            ),
        ));
    } else {
        report.errors.push(diag(
            "mcpmux.listen",
            format!(
                "{} is not a loopback address and no auth token is set; `mcpmux serve` refuses to start. \
                 Set `authToken`, `authTokenFile` or MCPMUX_AUTH_TOKEN (or allow it with \
                 `allowUnauthenticated: true` / --allow-unauthenticated when something in front \
                 authenticates clients)",
                s.listen
            ),
        ));
    }
}

/// `scheme://host[:port]` of a URL the loader has checked; never the user info, path or query.
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "?".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    format!("{}://{host_port}", scheme.to_ascii_lowercase())
}

/// Where a relative path ends up for the child.
const RELATIVE_NOTE: &str = "relative paths are resolved against the directory mcpmux runs in, not the config file's";

fn check_stdio(
    loc: &str,
    stdio: &StdioConfig,
    env: &dyn EnvLookup,
    workdir: &Path,
    details: &mut Vec<String>,
    errors: &mut Vec<Diagnostic>,
) {
    let cwd = match &stdio.cwd {
        Some(dir) => {
            let full: PathBuf = workdir.join(dir).components().collect();
            if full.is_dir() {
                details.push(format!("cwd: {} (exists)", full.display()));
            } else {
                details.push(format!("cwd: {} (not a directory)", full.display()));
                let note = if dir.is_relative() { format!("; {RELATIVE_NOTE}") } else { String::new() };
                errors.push(diag(
                    child(loc, "cwd"),
                    format!("the directory '{}' does not exist, so the server cannot start{note}", full.display()),
                ));
            }
            full
        }
        None => workdir.to_path_buf(),
    };
    let command = &stdio.command;
    let found = if command.contains('/') {
        let path: PathBuf = cwd.join(command).components().collect();
        executable(&path).map(|()| path)
    } else {
        let (search, from) = match stdio.env.get("PATH") {
            Some(p) => (p.clone(), "the entry's env.PATH"),
            None => match env.get("PATH") {
                Some(p) => (p, "PATH"),
                None => (DEFAULT_PATH.to_owned(), "the default PATH /bin:/usr/bin (PATH is not set)"),
            },
        };
        on_path(command, &search, &cwd).ok_or(format!("was not found on {from}"))
    };
    match found {
        Ok(path) if path.as_os_str() == command.as_str() => details.push(format!("command: {command} (found)")),
        Ok(path) => details.push(format!("command: {command} → {}", path.display())),
        Err(why) => {
            details.push(format!("command: {command} (not found)"));
            let note = if command.contains('/') && !command.starts_with('/') {
                format!("; {RELATIVE_NOTE}")
            } else {
                String::new()
            };
            errors.push(diag(child(loc, "command"), format!("'{command}' {why}{note}")));
        }
    }
}

/// `Ok` when `path` is a file with an execute bit (following symlinks).
fn executable(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err("is a directory".to_owned()),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err("is not executable".to_owned()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("does not exist".to_owned()),
        Err(e) => Err(format!("cannot be read: {e}")),
    }
}

/// The first executable `dir/command` along `search`, as `execvp` finds it (an empty entry is the
/// working directory).
fn on_path(command: &str, search: &str, cwd: &Path) -> Option<PathBuf> {
    search
        .split(':')
        .map(|dir| cwd.join(if dir.is_empty() { "." } else { dir }).join(command))
        .find(|p| executable(p).is_ok())
}

/// Exposed-name trouble that is known before any backend starts, found with the catalog's own
/// naming: one probe item per enabled server.
fn check_names(config: &Config, warnings: &mut Vec<Diagnostic>) {
    let enabled: Vec<&ServerConfig> = config.enabled_servers().collect();
    let separator = &config.settings.separator;
    let probe = enabled.iter().map(|s| names::Item { backend: &s.name, prefix: &s.prefix, original: "x" });
    let table = names::assign(probe, separator);
    for (_, target, why) in &table.renames {
        let Some(server) = enabled.iter().find(|s| s.name == target.backend) else {
            continue;
        };
        let loc = child("mcpServers", &server.name);
        match why {
            Rename::Shortened => warnings.push(diag(
                loc,
                format!(
                    "the prefix '{}' is {} characters long: with the separator, every tool and prompt name \
                     of this server is longer than {} characters and will be cut to a hashed form; \
                     set a shorter `prefix`",
                    server.prefix,
                    server.prefix.chars().count(),
                    names::MAX_NAME_LEN
                ),
            )),
            Rename::Collision => {
                let mine = names::sanitize(&server.prefix);
                let other = enabled
                    .iter()
                    .find(|o| o.name != server.name && names::sanitize(&o.prefix) == mine)
                    .map_or_else(String::new, |o| format!(" and the prefix '{}' of server '{}'", o.prefix, o.name));
                warnings.push(diag(
                    loc,
                    format!(
                        "the prefix '{}'{other} both become '{mine}' in exposed names: tools and prompts \
                         with the same name get hashed names; set a different `prefix` for one of them",
                        server.prefix
                    ),
                ));
            }
            Rename::Sanitized => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The raw text

/// Findings in the text itself: keys given twice (JSON) and secrets written literally. A text
/// that does not parse gives none (the loader reports the syntax error).
pub fn check_text(text: &str, format: Format) -> Vec<Diagnostic> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    if format == Format::Json {
        let mut de = serde_json::Deserializer::from_str(text);
        if (Scan { path: String::new(), found: &mut out }).deserialize(&mut de).is_err() {
            return Vec::new();
        }
    }
    if let Ok(doc) = parse_document(text, format) {
        literal_secrets(&doc, &mut out);
    }
    out
}

/// Walks any JSON value, recording keys that appear twice in one object.
struct Scan<'a> {
    path: String,
    found: &'a mut Vec<Diagnostic>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq.next_element_seed(Scan { path: item(&self.path, index), found: &mut *self.found })?.is_some() {
            index += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let loc = child(&self.path, &key);
            if seen.contains(&key) {
                let message = format!("key '{key}' appears more than once in this object; only the last one is used");
                self.found.push(diag(loc.clone(), message));
            }
            map.next_value_seed(Scan { path: loc, found: &mut *self.found })?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// Whether a name (env variable, header) says its value is a secret.
fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper == "AUTHORIZATION" || upper == "COOKIE" || SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// A non-empty string that does not come from a variable.
fn literal(value: &Value) -> bool {
    value.as_str().is_some_and(|s| !s.trim().is_empty() && !s.contains("${"))
}

fn literal_secrets(doc: &Value, out: &mut Vec<Diagnostic>) {
    const ADVICE: &str = "looks like a secret written into the config file; write `${VAR}` and set VAR \
                          in mcpmux's environment (or use a token file) so the file can be shared";
    let mut flag = |loc: String, what: &str| out.push(diag(loc, format!("{what} {ADVICE}")));
    if doc.pointer("/mcpmux/authToken").is_some_and(literal) {
        flag("mcpmux.authToken".to_owned(), "the auth token");
    }
    let Some(servers) = doc.get("mcpServers").and_then(Value::as_object) else {
        return;
    };
    for (name, entry) in servers {
        let loc = child("mcpServers", name);
        let Some(entry) = entry.as_object() else {
            continue;
        };
        if entry.get("bearerToken").is_some_and(literal) {
            flag(child(&loc, "bearerToken"), "the bearer token");
        }
        for (key, what) in [("headers", "the header value"), ("env", "the value")] {
            let Some(map) = entry.get(key).and_then(Value::as_object) else {
                continue;
            };
            for (var, value) in map {
                if secret_name(var) && literal(value) {
                    flag(child(&child(&loc, key), var), what);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_found_at_every_depth() {
        let text = r#"{"mcpServers": {"a": {"command": "x", "command": "y"}, "b": {"command": "z"}, "a": {"url": "u"}},
                       "list": [{"k": 1, "k": 2}]}"#;
        let found = check_text(text, Format::Json);
        let locations: Vec<&str> = found.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(locations, ["mcpServers.a.command", "mcpServers.a", "list[0].k"]);
    }

    #[test]
    fn literal_secrets_are_found_and_variables_are_not() {
        let text = r#"{"mcpServers": {
            "a": {"url": "https://h/mcp", "headers": {"Authorization": "Bearer abc", "X-Api-Key": "${K}", "X-Client": "me"}},
            "b": {"command": "x", "env": {"GITHUB_TOKEN": "ghp_1", "OPENAI_API_KEY": "${KEY}", "DEBUG": "1", "N": 3}},
            "c": {"url": "https://h/mcp", "bearerToken": "t"}},
            "mcpmux": {"authToken": "${T:-x}"}}"#;
        let found = check_text(text, Format::Json);
        let locations: Vec<&str> = found.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(
            locations,
            ["mcpServers.a.headers.Authorization", "mcpServers.b.env.GITHUB_TOKEN", "mcpServers.c.bearerToken"]
        );
        assert!(found.iter().all(|d| !d.message.contains("abc") && !d.message.contains("ghp_1")));
    }

    #[test]
    fn origin_hides_user_info_path_and_query() {
        assert_eq!(origin("HTTPS://u:p@h.example:8443/mcp?key=1"), "https://h.example:8443");
    }
}
