//! External tools some tests drive: a missing tool skips the test with a loud message on a
//! developer machine, and fails it when `PACER_REQUIRE_EXTERNAL=1` (CI, where `.ci/run` installs
//! the tools), so a broken install never passes as a skip.

use std::process::{Command, Stdio};

/// Whether `cmd --version` runs and exits 0 (`cmd` is a name on PATH or a path).
pub fn available(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns `found`. When it is false: panics if `PACER_REQUIRE_EXTERNAL=1`, else prints a loud
/// SKIP naming `what`, so the caller can return early.
pub fn require_or_skip(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("PACER_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("{what} is required (PACER_REQUIRE_EXTERNAL=1) but is not available");
    }
    eprintln!("\n!!!!! SKIPPED: {what} is not available; this test did not run !!!!!\n");
    false
}
