//! External tools some tests drive (promtool, prometheus, helm, curl, JMeter). A missing tool
//! skips the test with a loud message on a developer machine, and fails it when
//! `PACER_REQUIRE_EXTERNAL=1` (CI, where `.ci/run` installs the tools), so a broken install can
//! never pass as a skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The tool's path on PATH, or None after saying loudly that the calling test is skipped.
/// Panics instead when `PACER_REQUIRE_EXTERNAL=1`. `install` says how to get it.
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    if let Some(path) = find(name) {
        return Some(path);
    }
    unavailable(&format!(
        "`{name}` is not on PATH; install it with: {install}"
    ));
    None
}

/// For a tool reached another way than PATH (a launcher that fetches it on first use): says
/// loudly that the calling test is skipped, and why (`msg`), so the caller can return. Panics
/// instead when `PACER_REQUIRE_EXTERNAL=1`.
pub fn unavailable(msg: &str) {
    if required() {
        panic!("{msg} (PACER_REQUIRE_EXTERNAL=1, so this is a failure, not a skip)");
    }
    // Straight to the stderr handle rather than `eprintln!`, which the test harness captures
    // and hides for a passing test: a skip must be seen. The harness names each test's thread
    // after the test, so the line says which one did not run.
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: {msg}\n!!! (set PACER_REQUIRE_EXTERNAL=1 to make this a failure)\n"
    );
}

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

/// Returns `found`. When it is false, [`unavailable`] says loudly that `what` is missing (or
/// panics under `PACER_REQUIRE_EXTERNAL=1`), so the caller can return early.
pub fn require_or_skip(what: &str, found: bool) -> bool {
    if !found {
        unavailable(&format!("{what} is not available; this test did not run"));
    }
    found
}

/// How the tools these tests use are installed on Debian and Ubuntu.
pub const PROMETHEUS_INSTALL: &str = "apt-get install -y prometheus";

/// Where an external tool is: `$env_var` if set, else `name` on PATH, else the launcher
/// `../shared/tools/NAME` beside the repository (how CI lays the shared tools out). None when
/// none of them exists.
pub fn locate(name: &str, env_var: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        return Some(path.into());
    }
    find(name).or_else(|| beside_repository(name))
}

/// `../shared/tools/NAME` beside the repository, if it is there.
pub fn beside_repository(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tools")
        .join(name);
    path.exists().then_some(path)
}

/// `name` on PATH, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    find(name)
}

fn required() -> bool {
    std::env::var("PACER_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
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
