//! External tools some tests drive (promtool, prometheus, JMeter). A missing tool skips the test
//! with a loud message on a developer machine, and fails it when `PACER_REQUIRE_EXTERNAL=1` (CI,
//! where `.ci/run` installs the tools), so a broken install can never pass as a skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The tool's path on PATH, or None after saying loudly that the calling test is skipped.
/// Panics instead when `PACER_REQUIRE_EXTERNAL=1`. `install` says how to get it.
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let path = find(name);
    require_or_skip(
        &format!("`{name}` on PATH (install: {install})"),
        path.is_some(),
    );
    path
}

/// How the tools these tests use are installed on Debian and Ubuntu.
pub const PROMETHEUS_INSTALL: &str = "apt-get install -y prometheus";

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
    if std::env::var("PACER_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
        panic!("{what} is required (PACER_REQUIRE_EXTERNAL=1, so this is a failure, not a skip)");
    }
    // Straight to the stderr handle rather than `eprintln!`, which the test harness captures
    // and hides for a passing test: a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED: {what} is not available; this test did not run\n\
         !!! (set PACER_REQUIRE_EXTERNAL=1 to make this a failure)\n"
    );
    false
}

fn find(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
