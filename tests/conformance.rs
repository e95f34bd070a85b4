//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, server scenarios)
//! run through mcpmux, with the per-scenario results compared to checked-in expectations in
//! `tests/conformance/`:
//!
//! - `fixture_passes_every_scenario_through_mcpmux`: the built-in `mcpmux demo conformance`
//!   server behind mcpmux's per-backend endpoint must pass every scenario
//!   (`tests/conformance/fixture-expected.txt`).
//! - `server_everything_loses_nothing_through_mcpmux`: the reference server-everything run
//!   directly (streamable HTTP) and through mcpmux (stdio backend); every check that succeeds
//!   directly must succeed through mcpmux too, and the scenarios that pass through mcpmux must be
//!   those in `tests/conformance/everything-expected.txt`.
//!
//! Each CLI run is a child process (Node 22) bounded by [`CLI_TIMEOUT`] and killed if the test
//! ends early. The CLI's `-o DIR` writes one `DIR/server-<scenario>-<timestamp>/checks.json` per
//! scenario: an array of checks with an `id` and a `status` (SUCCESS, FAILURE, WARNING, INFO);
//! the summary it prints (`✓ <scenario>: N passed, M failed`) counts SUCCESS and FAILURE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{Value, json};

/// Bound of one conformance CLI run (the whole active suite takes a few seconds).
const CLI_TIMEOUT: Duration = Duration::from_secs(300);

/// One check of a scenario, from its `checks.json`.
#[derive(Debug, Clone)]
struct Check {
    id: String,
    status: String,
    error: Option<String>,
}

/// The checks of every scenario of one CLI run, by scenario name.
#[derive(Debug)]
struct SuiteRun {
    url: String,
    scenarios: BTreeMap<String, Vec<Check>>,
}

impl SuiteRun {
    fn count(checks: &[Check], status: &str) -> usize {
        checks.iter().filter(|c| c.status == status).count()
    }

    /// `<scenario>: N passed, M failed` (plus `, W warnings` when there are any) for each
    /// scenario: the CLI's summary line, without its ✓/✗ mark.
    fn summary(&self) -> BTreeMap<String, String> {
        self.scenarios
            .iter()
            .map(|(scenario, checks)| {
                let mut line = format!(
                    "{scenario}: {} passed, {} failed",
                    Self::count(checks, "SUCCESS"),
                    Self::count(checks, "FAILURE")
                );
                let warnings = Self::count(checks, "WARNING");
                if warnings > 0 {
                    let _ = write!(line, ", {warnings} warnings");
                }
                (scenario.clone(), line)
            })
            .collect()
    }

    /// Scenarios with at least one SUCCESS and no FAILURE or WARNING.
    fn passing(&self) -> BTreeMap<String, String> {
        let mut summary = self.summary();
        summary.retain(|scenario, _| {
            let checks = &self.scenarios[scenario];
            Self::count(checks, "SUCCESS") > 0
                && Self::count(checks, "FAILURE") == 0
                && Self::count(checks, "WARNING") == 0
        });
        summary
    }

    /// How many times each `(scenario, check id)` succeeded.
    fn successes(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for (scenario, checks) in &self.scenarios {
            for check in checks.iter().filter(|c| c.status == "SUCCESS") {
                *out.entry((scenario.clone(), check.id.clone())).or_default() += 1;
            }
        }
        out
    }

    /// Every check that did not succeed or was only informational, for failure messages.
    fn problems(&self) -> String {
        let mut out = String::new();
        for (scenario, checks) in &self.scenarios {
            for c in checks.iter().filter(|c| c.status == "FAILURE" || c.status == "WARNING") {
                let _ = writeln!(out, "  {scenario} / {} {}: {}", c.id, c.status, c.error.as_deref().unwrap_or("-"));
            }
        }
        out
    }
}

fn conformance_cli() -> PathBuf {
    cli_at("node_modules/@modelcontextprotocol/conformance/dist/index.js")
}

/// The suite's 2026-07-28 line (`conformance-2026` in tests/peers/package.json).
fn conformance_cli_2026() -> PathBuf {
    cli_at("node_modules/conformance-2026/dist/index.js")
}

fn cli_at(relative: &str) -> PathBuf {
    let script = common::peers_dir().join(relative);
    assert!(
        script.exists(),
        "the conformance suite is missing at {}; install the test peers first: (cd tests/peers && npm ci), or run .ci/run",
        script.display()
    );
    script
}

/// A fresh, empty directory for one CLI run's results.
fn results_dir(label: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("mcpmux-conformance-{label}-{}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `server-<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>` → `<scenario>`.
fn scenario_of(dir_name: &str) -> Option<&str> {
    const TIMESTAMP_LEN: usize = "2026-01-01T00-00-00-000Z".len();
    let rest = dir_name.strip_prefix("server-")?;
    let cut = rest.len().checked_sub(TIMESTAMP_LEN + 1)?;
    let (scenario, timestamp) = rest.split_at(cut);
    (timestamp.starts_with('-') && timestamp.ends_with('Z') && timestamp.as_bytes().get(11) == Some(&b'T'))
        .then_some(scenario)
}

fn read_checks(path: &Path) -> Vec<Check> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let checks: Vec<Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not a JSON array ({e})", path.display()));
    checks
        .iter()
        .map(|c| Check {
            id: c["id"].as_str().expect("a check without an id").to_owned(),
            status: c["status"].as_str().expect("a check without a status").to_owned(),
            error: c["errorMessage"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Runs the conformance CLI's server tests against `url` (`args` selects the scenarios: empty
/// for the active suite) and collects every scenario's checks.
async fn run_suite(label: &str, url: &str, args: &[&str]) -> SuiteRun {
    run_suite_with(&conformance_cli(), label, url, args).await
}

async fn run_suite_with(cli: &Path, label: &str, url: &str, args: &[&str]) -> SuiteRun {
    let dir = results_dir(label);
    let started = Instant::now();
    let out = tokio::time::timeout(
        CLI_TIMEOUT,
        tokio::process::Command::new(common::node22())
            .arg(cli)
            .args(["server", "--url", url])
            .args(args)
            .arg("-o")
            .arg(&dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("the conformance CLI did not finish within {CLI_TIMEOUT:?} against {url}"))
    .expect("cannot run the conformance CLI");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("conformance run '{label}' against {url}: {:?}, {}", started.elapsed(), out.status);

    let mut scenarios = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let scenario = scenario_of(&name).unwrap_or_else(|| panic!("unexpected result directory {name} in {dir:?}"));
        let previous = scenarios.insert(scenario.to_owned(), read_checks(&entry.path().join("checks.json")));
        assert!(previous.is_none(), "scenario {scenario} has two result directories in {dir:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let run = SuiteRun { url: url.to_owned(), scenarios };
    assert!(!run.scenarios.is_empty(), "the conformance CLI recorded no scenario\nstdout: {stdout}\nstderr: {stderr}");

    // The printed summary must agree with what was read from the result files: a suite run
    // prints `✓ <scenario>: N passed, M failed` per scenario, a one-scenario run
    // `Passed: N/N+M, M failed, W warnings`.
    let summary = run.summary();
    let mut printed = 0;
    for line in stdout.lines() {
        let Some(line) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ ")) else { continue };
        let Some((scenario, _)) = line.split_once(": ") else { continue };
        let mine = summary.get(scenario).map(|s| s.split(", ").take(2).collect::<Vec<_>>().join(", "));
        assert_eq!(mine.as_deref(), Some(line), "printed summary vs checks.json of {scenario}\nstdout: {stdout}");
        printed += 1;
    }
    if printed == 0
        && let [(_, checks)] = run.scenarios.iter().collect::<Vec<_>>()[..]
    {
        let count = |status| SuiteRun::count(checks, status);
        let (passed, failed, warnings) = (count("SUCCESS"), count("FAILURE"), count("WARNING"));
        let line = format!("Passed: {passed}/{}, {failed} failed, {warnings} warnings", passed + failed);
        assert!(stdout.lines().any(|l| l.trim() == line), "no `{line}` in the output\nstdout: {stdout}");
        printed = 1;
    }
    assert_eq!(printed, run.scenarios.len(), "one summary line per scenario\nstdout: {stdout}");
    run
}

/// Reads an expected-results file: one summary line per scenario, `#` comments and blank lines
/// ignored.
fn expected(file: &str) -> BTreeMap<String, String> {
    let path = common::root().join("tests/conformance").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (scenario, _) = line.split_once(": ").unwrap_or_else(|| panic!("malformed line in {file}: {line}"));
        let previous = out.insert(scenario.to_owned(), line.to_owned());
        assert!(previous.is_none(), "{file} lists {scenario} twice");
    }
    out
}

/// Fails with every difference between the expected and actual summary lines.
fn assert_matches(file: &str, expected: &BTreeMap<String, String>, actual: &BTreeMap<String, String>, run: &SuiteRun) {
    let mut diff = String::new();
    for (scenario, line) in expected {
        match actual.get(scenario) {
            None => {
                let got = run.summary().remove(scenario).unwrap_or_else(|| "not run".to_owned());
                let _ = writeln!(diff, "  expected `{line}`, got `{got}`");
            }
            Some(got) if got != line => {
                let _ = writeln!(diff, "  expected `{line}`, got `{got}`");
            }
            Some(_) => {}
        }
    }
    for (scenario, line) in actual {
        if !expected.contains_key(scenario) {
            let _ = writeln!(diff, "  not in {file}: `{line}`");
        }
    }
    assert!(
        diff.is_empty(),
        "conformance results against {} differ from tests/conformance/{file}:\n{diff}failed or warned checks:\n{}",
        run.url,
        run.problems()
    );
}

#[tokio::test]
async fn fixture_passes_every_scenario_through_mcpmux() {
    let expected = expected("fixture-expected.txt");
    for line in expected.values() {
        assert!(line.contains(" passed, 0 failed") && !line.contains("warning"), "not a pass: {line}");
        assert!(!line.contains(": 0 passed"), "not a pass: {line}");
    }

    let daemon = Daemon::start(json!({ "mcpServers": { "conf": common::demo("conformance") } })).await;
    let url = daemon.url("/servers/conf/mcp");
    let mut run = run_suite("fixture", &url, &[]).await;
    // A pending scenario (not in the active suite) the fixture implements too.
    let pending = run_suite("fixture-json-schema", &url, &["--scenario", "json-schema-2020-12"]).await;
    run.scenarios.extend(pending.scenarios);

    assert_matches("fixture-expected.txt", &expected, &run.summary(), &run);
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn server_everything_loses_nothing_through_mcpmux() {
    let expected = expected("everything-expected.txt");

    let direct_server = common::HttpPeer::everything("streamableHttp", common::free_port()).await;
    let direct = run_suite("everything-direct", &direct_server.url("/mcp"), &[]).await;
    direct_server.kill().await;

    let (command, args) = common::server_everything();
    let daemon = Daemon::start(json!({ "mcpServers": { "everything": { "command": command, "args": args } } })).await;
    let relayed = run_suite("everything-mcpmux", &daemon.url("/servers/everything/mcp"), &[]).await;
    daemon.stop().await.unwrap();

    let through = relayed.successes();
    let lost: Vec<String> = direct
        .successes()
        .into_iter()
        .filter(|(key, n)| through.get(key).copied().unwrap_or(0) < *n)
        .map(|((scenario, id), _)| {
            let got: Vec<&str> = relayed
                .scenarios
                .get(&scenario)
                .into_iter()
                .flatten()
                .filter(|c| c.id == id)
                .map(|c| c.status.as_str())
                .collect();
            format!("  {scenario} / {id}: SUCCESS directly, {got:?} through mcpmux")
        })
        .collect();
    assert!(
        lost.is_empty(),
        "checks that pass against server-everything directly but not through mcpmux:\n{}\nthrough mcpmux:\n{}",
        lost.join("\n"),
        relayed.problems()
    );

    assert_matches("everything-expected.txt", &expected, &relayed.passing(), &relayed);
}

/// What the 2026-07-28 requirement set asks of a server (`--requirements 2026-07-28`: the scored
/// scenarios plus the extension and pending ones, which are run and reported but not scored).
const REQUIREMENTS_2026: &[&str] = &["--requirements", "2026-07-28"];

/// A client of the stateless era in front of a session-era backend: the built-in conformance
/// fixture speaks 2025-11-25 only and asks for input with requests to the client; mcpmux turns
/// those into `input_required` results. The scenarios that name the input keys
/// (`user_name`, …) or need several requests in one round cannot pass through a session-era
/// backend, which has no way to name them; the expected file says which.
#[tokio::test]
async fn stateless_clients_reach_a_session_era_backend() {
    let expected = expected("2026-session-backend-expected.txt");
    let daemon = Daemon::start(json!({ "mcpServers": { "conf": common::demo("conformance") } })).await;
    let run =
        run_suite_with(&conformance_cli_2026(), "2026-session", &daemon.url("/servers/conf/mcp"), REQUIREMENTS_2026)
            .await;
    daemon.stop().await.unwrap();
    assert_matches("2026-session-backend-expected.txt", &expected, &run.summary(), &run);
}

/// The Python SDK's 2026-07-28 server (tests/fixtures/conformance_modern_server.py) over
/// streamable HTTP on its own port; killed when dropped.
async fn modern_fixture() -> common::HttpPeer {
    let port = common::free_port();
    let mut cmd = tokio::process::Command::new(common::python());
    cmd.arg(common::fixture("conformance_modern_server.py")).args(["--http", &port.to_string()]);
    common::HttpPeer::spawn(cmd, port).await
}

/// A backend of the stateless era (the Python SDK's server) run directly and through mcpmux:
/// every check that succeeds directly must succeed through mcpmux, and the results through
/// mcpmux must be those in the expected file.
#[tokio::test]
async fn stateless_backend_loses_nothing_through_mcpmux() {
    let expected = expected("2026-stateless-backend-expected.txt");
    let fixture = modern_fixture().await;
    let url = fixture.url("/mcp");
    let cli = conformance_cli_2026();
    let direct = run_suite_with(&cli, "2026-direct", &url, REQUIREMENTS_2026).await;
    let daemon = Daemon::start(json!({ "mcpServers": { "modern": { "url": url } } })).await;
    let relayed = run_suite_with(&cli, "2026-mcpmux", &daemon.url("/servers/modern/mcp"), REQUIREMENTS_2026).await;
    daemon.stop().await.unwrap();
    fixture.kill().await;

    let through = relayed.successes();
    let lost: Vec<String> = direct
        .successes()
        .into_iter()
        .filter(|(key, n)| through.get(key).copied().unwrap_or(0) < *n)
        .map(|((scenario, id), _)| format!("  {scenario} / {id}"))
        .collect();
    assert!(
        lost.is_empty(),
        "checks that pass against the Python fixture directly but not through mcpmux:\n{}\nthrough mcpmux:\n{}",
        lost.join("\n"),
        relayed.problems()
    );
    assert_matches("2026-stateless-backend-expected.txt", &expected, &relayed.summary(), &relayed);
}
