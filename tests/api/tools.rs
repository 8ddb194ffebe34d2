//! Programs the suite takes from the machine (PostgreSQL, Chromium, chromedriver, systemd-analyze, a
//! Python validator). A missing one fails the test under `CI=true`, naming it; elsewhere the test says
//! "skipped: …" on the process's real stderr, which libtest does not capture (it only captures the
//! `print!` family), so a person running `cargo test` sees it even when the test passes. No `crate::`
//! paths, so benches can include this file too.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Whether this run is CI's (`CI=true`, as CI services set it), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The executable `program` on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `found`, or, when the tool is missing: a panic naming `tool` under CI, else a "skipped: <what>"
/// line and `None`. `what` says what does not run, e.g. "the browser tests".
pub fn require<T>(found: Option<T>, tool: &str, what: &str) -> Option<T> {
    if found.is_some() {
        return found;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    assert!(!in_ci(), "{test}: {tool} is not installed, so {what} cannot run, and under CI=true nothing is skipped");
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {tool} is not installed, so {what} did not run");
    None
}

/// The program on PATH, under `require`'s rules.
pub fn require_tool(program: &str, what: &str) -> Option<PathBuf> {
    require(find_program(program), program, what)
}
