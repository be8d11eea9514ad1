//! Command-line tools that some tests drive (the AWS CLI today). Without its tool a test is skipped and says so
//! on stderr; where the tools must be there (REQUIRE_TEST_TOOLS set, as CI and `make test` after `make setup`
//! have it) a missing tool fails the test instead. One helper for the emulator's tests and the system tests,
//! which include this file.
#![allow(dead_code)] // each test binary uses a part

use std::io::Write as _;
use std::path::Path;

/// Whether `tool` (e.g. "aws CLI") is installed at `path`. When it is not: panics if REQUIRE_TEST_TOOLS is set,
/// otherwise prints `SKIPPED: <test>: <tool> not found` and returns false, and the caller returns early.
pub fn tool_available(tool: &str, path: &Path) -> bool {
    if path.exists() {
        return true;
    }
    let test = current_test();
    assert!(
        std::env::var_os("REQUIRE_TEST_TOOLS").is_none(),
        "{test}: REQUIRE_TEST_TOOLS is set but the {tool} is not installed ({} is missing; `make setup` installs it)",
        path.display()
    );
    // Straight to the stderr handle, not eprintln!: libtest captures the print macros of a passing test, and
    // a skip has to show in a normal `cargo test` run.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: {tool} not found ({} is missing; `make setup` installs it)",
        path.display()
    );
    false
}

/// `<test binary>::<test>`: libtest runs each test on a thread named after it; the binary's file name is
/// `<name>-<hash>`.
fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, _hash)) => name.to_owned(),
            None => stem,
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    format!("{binary}::{}", thread.name().unwrap_or("?"))
}
