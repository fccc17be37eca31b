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

fn main() -> ExitCode {
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
