//! The stack's CloudFormation template, as the CDK app synthesizes it: tests load its policies, rules and
//! functions instead of keeping their own copies.
//!
//! `make test` synthesizes the template first and passes its path in IOT_PRESENCE_TEMPLATE, so the tests check
//! the stack as it is now. Without it (a plain `cargo test`, no node) they read the one committed copy,
//! `tests/fixtures/IotPresence.template.json`, and say so once; `make test-infra` fails when that copy differs
//! from a fresh synth, and `make fixtures` refreshes it. The emulator's tests and the system tests include this
//! file; both packages sit one level below the workspace root.
#![allow(dead_code)] // each test binary uses a part

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The variable `make test` sets to the template it synthesized in the same run.
pub const TEMPLATE_VARIABLE: &str = "IOT_PRESENCE_TEMPLATE";

/// The committed copy, relative to the workspace root.
pub const COMMITTED_COPY: &str = "tests/fixtures/IotPresence.template.json";

/// The template's path: IOT_PRESENCE_TEMPLATE when set, otherwise the committed copy.
pub fn stack_template_path() -> PathBuf {
    if let Some(path) = std::env::var_os(TEMPLATE_VARIABLE) {
        return PathBuf::from(path);
    }
    let copy = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(COMMITTED_COPY);
    static NOTE: Once = Once::new();
    NOTE.call_once(|| {
        // Straight to the stderr handle: libtest captures the print macros of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "note: {TEMPLATE_VARIABLE} is unset, so the tests read the committed {COMMITTED_COPY} \
             (`make test` synthesizes a fresh template and passes it)"
        );
    });
    copy
}

/// The template's text; panics, naming the file, when it cannot be read.
pub fn stack_template() -> String {
    let path = stack_template_path();
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read the stack template {} ({TEMPLATE_VARIABLE}): {error}",
            path.display()
        )
    })
}
