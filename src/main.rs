//! The `mcpmux` binary: everything lives in the library; see `mcpmux::cli`.

fn main() -> std::process::ExitCode {
    mcpmux::cli::main()
}
