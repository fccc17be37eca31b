//! The `pacer` binary: parse the command line, call into the library, map errors to exit codes
//! (0 success, 1 runtime failure, 2 usage or config error).

use std::process::ExitCode;

use clap::Parser;
use pacer::cli::Cli;

// mimalloc instead of the system allocator: the request path allocates many small, short-lived
// objects (header maps, boxed futures, buffers) across worker threads, which glibc's malloc
// serves with more locking and fragmentation; the pass-through benchmark measures the difference.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc advises its arenas for huge
/// pages, so the first touch of any 4 KiB page made the kernel back the whole 2 MiB around it:
/// resident memory then tracked what was allocated, not what was used, and each idle or queued
/// connection's untouched buffer space counted in full (bench/shaping.sh: +326 MiB instead of
/// +202 MiB for 10,000 queued requests). The same switch as mimalloc's own `MIMALLOC_ALLOW_THP=0`, set here because
/// mimalloc reads that before `main`.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    pacer::cli::init_tracing(&cli.log, cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pacer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pacer: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
