//! `mcpmux validate` beyond the loader: what it finds on this machine and in the raw text, run as
//! the real binary on configs in temporary directories, with the environment it gets set
//! explicitly (nothing inherited, so `PATH` is exactly what each test says).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;

/// Longest a `validate` run may take.
const RUN_LIMIT: Duration = Duration::from_secs(20);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn show(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// Asserts a stderr line `  error: {location}: …{needle}…`.
    fn has_error(&self, location: &str, needle: &str) {
        let prefix = format!("  error: {location}: ");
        let found = self.stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle));
        assert!(found, "no error at {location} mentioning {needle:?}\n{}", self.show());
    }
    /// Asserts a stdout line `warning: {location}: …{needle}…`.
    fn has_warning(&self, location: &str, needle: &str) {
        let prefix = format!("warning: {location}: ");
        let found = self.stdout.lines().any(|l| l.starts_with(&prefix) && l.contains(needle));
        assert!(found, "no warning at {location} mentioning {needle:?}\n{}", self.show());
    }
    fn line(&self, needle: &str) -> &str {
        let line = self.stdout.lines().find(|l| l.contains(needle));
        line.unwrap_or_else(|| panic!("no stdout line with {needle:?}\n{}", self.show()))
    }
}

/// A temporary directory holding `mcp.json`; `validate` runs in it.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new(tag: &str, config: &str) -> Setup {
        let dir = TempDir::new(&format!("validate-{tag}"));
        std::fs::write(dir.file("mcp.json"), config).unwrap();
        Setup { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.file(rel).display().to_string()
    }

    /// Writes an executable shell script at `rel` (directories created).
    fn executable(&self, rel: &str) -> String {
        let path = self.dir.file(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    /// `mcpmux validate --config mcp.json {extra}` in the directory, with only `env` set.
    fn validate(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        run_in(&self.dir.0, &[&["validate", "--config", "mcp.json"], extra].concat(), env)
    }
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(common::mcpmux_exe())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start mcpmux");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > RUN_LIMIT {
            // Our own child, not yet reaped.
            let _ = child.kill();
            let _ = child.wait();
            panic!("mcpmux {args:?} did not exit within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_clean_config_is_valid_with_every_check_shown() {
    let s = Setup::new(
        "clean",
        r#"{"mcpServers": {
              "clock": {"command": "${MCPMUX_EXE}", "args": ["demo", "clock"]},
              "tool": {"command": "tool", "env": {"API_KEY": "${API_KEY}"}},
              "api": {"url": "https://user:pw@api.example.com:8443/mcp?key=k1", "headers": {"Authorization": "Bearer ${T}"}}
            }}"#,
    );
    let bin = s.executable("bin/tool");
    let path = s.path("bin");
    let run = s.validate(&[], &[("PATH", &path), ("API_KEY", "k"), ("T", "t")]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(run.stdout.starts_with("mcp.json: valid, 3 server(s)\n"), "{}", run.show());
    assert!(run.stdout.contains("\n  listen 127.0.0.1:8080; no auth token (loopback only)\n"), "{}", run.show());
    assert!(run.line("clock ").contains("stdio"), "{}", run.show());
    assert!(run.stdout.contains(&format!("      command: {} (found)\n", common::mcpmux_exe())), "{}", run.show());
    assert!(run.stdout.contains(&format!("      command: tool → {bin}\n")), "{}", run.show());
    assert!(run.line("api ").contains("http(auto)"), "{}", run.show());
    // The URL's user info, path and query, and header values, are never shown.
    assert!(run.stdout.contains("      url: https://api.example.com:8443 (path not shown)\n"), "{}", run.show());
    assert!(run.stdout.contains("      headers: Authorization (values not shown)\n"), "{}", run.show());
    for secret in ["user:pw", "key=k1", "8443/mcp", "Bearer"] {
        assert!(!run.all().contains(secret), "{secret} shown\n{}", run.show());
    }
    assert!(!run.all().contains("warning"), "{}", run.show());
    assert!(run.stderr.is_empty(), "{}", run.show());
}

#[test]
fn a_missing_command_is_an_error_with_where_it_was_looked_for() {
    let s = Setup::new(
        "missing-command",
        r#"{"mcpServers": {
              "gone": {"command": "mcpmux-test-no-such-command"},
              "own-path": {"command": "helper", "env": {"PATH": "/nonexistent-dir"}},
              "script": {"command": "./run.sh", "cwd": "work"},
              "off": {"command": "also-missing", "disabled": true}
            }}"#,
    );
    std::fs::create_dir(s.dir.file("work")).unwrap();
    let path = s.path("bin");
    s.executable("bin/helper"); // on mcpmux's PATH, but the entry's own PATH wins
    let run = s.validate(&[], &[("PATH", &path)]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(run.stdout.starts_with("mcp.json: 4 server(s), 3 error(s)\n"), "{}", run.show());
    assert!(run.stderr.contains("mcp.json: 3 problem(s)"), "{}", run.show());
    run.has_error("mcpServers.gone.command", "'mcpmux-test-no-such-command' was not found on PATH");
    run.has_error("mcpServers.own-path.command", "'helper' was not found on the entry's env.PATH");
    run.has_error("mcpServers.script.command", "'./run.sh' does not exist; relative paths are resolved against");
    assert!(run.stdout.contains("      command: mcpmux-test-no-such-command (not found)\n"), "{}", run.show());
    assert!(run.line("off ").contains("(disabled)"), "{}", run.show());
    assert!(run.stdout.contains("      not checked: disabled\n"), "{}", run.show());

    // The script appears in `cwd`, relative to the directory mcpmux runs in: found.
    let script = s.executable("work/run.sh");
    let run = s.validate(&[], &[("PATH", &path)]);
    assert!(!run.stderr.contains("mcpServers.script"), "{}", run.show());
    assert!(run.stdout.contains(&format!("      command: ./run.sh → {script}\n")), "{}", run.show());
}

#[test]
fn a_missing_cwd_and_an_unset_path_are_reported() {
    let s = Setup::new("cwd", r#"{"mcpServers": {"a": {"command": "sh", "cwd": "no-such-dir"}}}"#);
    let run = s.validate(&[], &[]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    run.has_error("mcpServers.a.cwd", "does not exist, so the server cannot start");
    // No PATH at all: the child would search /bin:/usr/bin, and so does validate.
    let s = Setup::new("no-path", r#"{"mcpServers": {"a": {"command": "mcpmux-test-no-such-command"}}}"#);
    let run = s.validate(&[], &[]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    run.has_error("mcpServers.a.command", "the default PATH /bin:/usr/bin (PATH is not set)");
}

#[test]
fn a_missing_secret_file_is_an_error_and_a_present_one_is_read() {
    let s = Setup::new(
        "secret-file",
        r#"{"mcpServers": {"api": {"url": "https://h.example/mcp", "bearerTokenFile": "api.token"}},
            "mcpmux": {"authTokenFile": "gateway.token"}}"#,
    );
    let run = s.validate(&[], &[]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    run.has_error("mcpServers.api.bearerTokenFile", "cannot read the token file 'api.token'");
    run.has_error("mcpmux.authTokenFile", "cannot read the token file 'gateway.token'");

    std::fs::write(s.dir.file("api.token"), "tok-api-1\n").unwrap();
    std::fs::write(s.dir.file("gateway.token"), "tok-gw-1\n").unwrap();
    let run = s.validate(&[], &[]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(run.stdout.contains("  listen 127.0.0.1:8080; clients need the auth token\n"), "{}", run.show());
    assert!(run.stdout.contains("      headers: Authorization (values not shown)\n"), "{}", run.show());
    assert!(!run.all().contains("tok-"), "{}", run.show());
}

#[test]
fn colliding_and_overlong_prefixes_are_reported() {
    // The same prefix twice: an error (from the loader).
    let s = Setup::new(
        "same-prefix",
        r#"{"mcpServers": {"a": {"command": "sh", "prefix": "x"}, "b": {"command": "sh", "prefix": "x"}}}"#,
    );
    let run = s.validate(&[], &[("PATH", "/bin:/usr/bin")]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    run.has_error("mcpServers.b", "servers 'a' and 'b' both use the prefix 'x'");

    // Names that differ only in characters exposed names replace: a warning; so is a prefix that
    // leaves no room for any tool name.
    let long = "p".repeat(63);
    let s = Setup::new(
        "sanitized-prefix",
        &format!(
            r#"{{"mcpServers": {{"my.server": {{"command": "sh"}}, "my_server": {{"command": "sh"}},
                 "long": {{"command": "sh", "prefix": "{long}"}}}}}}"#
        ),
    );
    let run = s.validate(&[], &[("PATH", "/bin:/usr/bin")]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    run.has_warning(
        "mcpServers.my_server",
        "the prefix 'my_server' and the prefix 'my.server' of server 'my.server' both become 'my_server'",
    );
    run.has_warning("mcpServers.long", "is 63 characters long");
    run.has_warning("mcpServers.long", "every tool and prompt name of this server is longer than 64 characters");
    assert!(run.stdout.starts_with("mcp.json: valid, 3 server(s), 3 warning(s)\n"), "{}", run.show());
}

#[test]
fn literal_secrets_are_warnings_that_never_show_the_secret() {
    let s = Setup::new(
        "literal",
        r#"{"mcpServers": {
              "gh": {"command": "sh", "env": {"GITHUB_TOKEN": "ghp_literal123", "LOG_LEVEL": "debug", "OPENAI_API_KEY": "${OPENAI_API_KEY:-}"}},
              "api": {"url": "https://h.example/mcp", "headers": {"Authorization": "Bearer literal456"}}
            }}"#,
    );
    let run = s.validate(&[], &[("PATH", "/bin:/usr/bin")]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    run.has_warning("mcpServers.gh.env.GITHUB_TOKEN", "looks like a secret written into the config file");
    run.has_warning("mcpServers.api.headers.Authorization", "write `${VAR}`");
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("warning: ")).count(), 2, "{}", run.show());
    assert!(run.stdout.starts_with("mcp.json: valid, 2 server(s), 2 warning(s)\n"), "{}", run.show());
    assert!(!run.all().contains("literal"), "{}", run.show());
}

#[test]
fn a_non_loopback_listen_without_a_token_is_an_error_as_serve_would_refuse() {
    let s = Setup::new("public", r#"{"mcpServers": {"a": {"command": "sh"}}, "mcpmux": {"listen": "0.0.0.0:8080"}}"#);
    let path = ("PATH", "/bin:/usr/bin");
    let run = s.validate(&[], &[path]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    run.has_error("mcpmux.listen", "0.0.0.0:8080 is not a loopback address and no auth token is set");
    run.has_error("mcpmux.listen", "`mcpmux serve` refuses to start");
    assert!(run.stdout.contains("  listen 0.0.0.0:8080; no auth token\n"), "{}", run.show());

    // A token from the environment, as serve reads it.
    let run = s.validate(&[], &[path, ("MCPMUX_AUTH_TOKEN", "tok-env-1")]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(run.stdout.contains("  listen 0.0.0.0:8080; clients need the auth token\n"), "{}", run.show());

    // Allowed explicitly: a warning.
    let run = s.validate(&["--allow-unauthenticated"], &[path]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    run.has_warning("mcpmux.listen", "anyone who can reach it can use every backend");

    // The same check on a --listen given like serve's.
    let s = Setup::new("loopback", r#"{"mcpServers": {"a": {"command": "sh"}}}"#);
    let run = s.validate(&["--listen", "0.0.0.0:9000"], &[path]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    run.has_error("mcpmux.listen", "0.0.0.0:9000 is not a loopback address");
}

#[test]
fn duplicate_json_keys_are_warnings() {
    let s = Setup::new(
        "duplicates",
        r#"{"mcpServers": {
              "a": {"command": "no-such-first", "command": "sh"},
              "a": {"command": "sh", "args": ["x"]}
            }}"#,
    );
    let run = s.validate(&[], &[("PATH", "/bin:/usr/bin")]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    run.has_warning("mcpServers.a.command", "key 'command' appears more than once in this object; only the last");
    run.has_warning("mcpServers.a", "key 'a' appears more than once");
    assert!(run.stdout.starts_with("mcp.json: valid, 1 server(s), 2 warning(s)\n"), "{}", run.show());

    // Also next to errors the loader finds.
    let s = Setup::new("duplicates-invalid", r#"{"mcpServers": {"a": {"command": 1}}, "mcpServers": {"a": {}}}"#);
    let run = s.validate(&[], &[]);
    assert_eq!(run.code, Some(1), "{}", run.show());
    run.has_warning("mcpServers", "appears more than once");
}
