//! The `pacer` binary: parse the command line, call into the library, map errors to exit codes
//! (0 success, 1 runtime failure, 2 usage or config error).

use std::process::ExitCode;

use clap::Parser;
use pacer::cli::Cli;

// jemalloc instead of the system allocator, for two measured reasons (docs/benchmarks.md):
// - memory: hyper gives every HTTP/1.1 connection 8 KiB read and write buffers, mostly never
//   written. jemalloc keeps its free-block bookkeeping outside the blocks, so an unwritten buffer
//   costs no resident memory; glibc's malloc and mimalloc write into every block they hand out,
//   which made each buffer cost a 4 KiB page (10,000 idle connections: +21 MiB, against +111 MiB).
// - speed: the request path allocates many small, short-lived objects across worker threads; the
//   pass-through benchmark and callgrind put jemalloc level with or ahead of mimalloc.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Turns transparent huge pages off for this process. Where THP is `always`, the first touch of
/// any 4 KiB page can make the kernel back the whole 2 MiB around it, so resident memory tracks
/// what the allocator reserved, not what is used, and each connection's untouched buffer space
/// counts in full (bench/shaping.sh measured +326 MiB instead of +202 MiB for 10,000 queued
/// requests before this switch).
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
