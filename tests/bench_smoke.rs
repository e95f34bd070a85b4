#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Smoke run of the benchmark suite: `mcpmux-bench run --smoke` with tiny durations (0.3 s per
//! load run, 200 sessions, one start and one reload), checked to produce the table.
//!
//! It runs the mcpmux-only scenarios S1–S5 — the Rust echo backends, `mcpmux serve`, the load
//! client, `taskset` pinning — against the binaries Cargo built for this test. **S6 is left out
//! on purpose, not skipped silently**: it needs the peer gateways (FastMCP's proxy, supergateway),
//! which `bench/peers.sh` installs from the package registries at bench time, and the test suite
//! installs nothing. `bench/run.sh` runs S6. Targets are not checked here (a debug build on a
//! shared machine misses most of them); the run must only measure every case without an error.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole smoke run's bound.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn smoke_run_of_scenarios_s1_to_s5_prints_the_table() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpmux-bench"))
        .args(["run", "--smoke", "--scenarios", "s1,s2,s3,s4,s5"])
        .args(["--mcpmux", env!("CARGO_BIN_EXE_mcpmux"), "--echo", env!("CARGO_BIN_EXE_mcpmux-bench-echo")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("cannot start mcpmux-bench");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            // The driver stops what it started on SIGTERM; the group kill is the backstop.
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
            std::thread::sleep(Duration::from_secs(5));
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let took = started.elapsed();
    eprintln!("bench smoke run took {took:.1?}\n{stdout}");
    let status = status.unwrap_or_else(|| panic!("the smoke run did not finish within {LIMIT:?}; stderr:\n{stderr}"));
    assert!(status.success(), "mcpmux-bench run --smoke failed ({status}); stderr:\n{stderr}\nstdout:\n{stdout}");

    assert!(stdout.contains("| Scenario | Case | Result | Target | Met? |"), "no table header:\n{stdout}");
    assert!(!stdout.contains("FAILED"), "a measurement failed:\n{stdout}");
    let rows = |scenario: &str| stdout.lines().filter(|l| l.starts_with(&format!("| {scenario} |"))).count();
    // S1: four paths and two targets; S2: four paths at two concurrencies and four targets;
    // S3: one; S4: idle and per session; S5: start and reload.
    for (scenario, want) in [("S1", 6), ("S2", 12), ("S3", 1), ("S4", 2), ("S5", 2)] {
        assert_eq!(rows(scenario), want, "rows of {scenario}:\n{stdout}");
    }
    assert_eq!(rows("S6"), 0, "S6 was not asked for");
    let is_row = |l: &&str| l.starts_with("| S") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit);
    for line in stdout.lines().filter(is_row) {
        let cells: Vec<&str> = line.split(" | ").collect();
        assert_eq!(cells.len(), 7, "a row has 7 columns: {line}");
        assert!(["—", "met", "**missed**"].contains(&cells[4]), "status of {line}");
        assert!(!cells[6].trim_end_matches(" |").is_empty(), "commit column of {line}");
    }
    assert!(took < LIMIT);
}
