//! External tools some tests drive (curl, ...): skip loudly when missing, fail under CI.

/// Whether `cmd` can be run (found on PATH, or an existing path).
pub fn available(cmd: &str) -> bool {
    std::process::Command::new(cmd)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// True when `cmd` is there. When it is not: panics if `PACER_REQUIRE_EXTERNAL=1` (CI), else
/// prints a loud notice and returns false so the caller can skip.
pub fn require_or_skip(cmd: &str) -> bool {
    if available(cmd) {
        return true;
    }
    if std::env::var("PACER_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("{cmd} is required (PACER_REQUIRE_EXTERNAL=1) but cannot be run");
    }
    eprintln!("\n!!!!! SKIPPED: {cmd} is not installed; this test did not run !!!!!\n");
    false
}
