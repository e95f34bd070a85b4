//! Latency and memory bench, folded into the benchmark suite (`mcpmux-bench`, see
//! BENCHMARKS.md): `cargo bench --bench latency` runs its scenarios S1 (one-connection latency:
//! mcpmux → Rust stdio echo vs the same backend over its pipe, mcpmux → Rust HTTP echo vs that
//! backend called directly) and S4 (idle RSS of the daemon with 10 backends, growth per session)
//! with the release binaries Cargo builds for benches. Arguments after `--` go to
//! `mcpmux-bench run` (e.g. `cargo bench --bench latency -- --duration 1 --scenarios s1`);
//! `bench/run.sh` runs every scenario.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` to every bench binary.
    let extra: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpmux-bench"));
    cmd.arg("run").args(["--mcpmux", env!("CARGO_BIN_EXE_mcpmux"), "--echo", env!("CARGO_BIN_EXE_mcpmux-bench-echo")]);
    if !extra.iter().any(|a| a == "--scenarios") {
        cmd.args(["--scenarios", "s1,s4"]);
    }
    match cmd.args(&extra).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("latency bench: mcpmux-bench exited with {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("latency bench: cannot run mcpmux-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
