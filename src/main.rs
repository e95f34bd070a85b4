//! The `mcpmux` binary: everything lives in the library; see `mcpmux::cli`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mcpmux::cli::main()
}
