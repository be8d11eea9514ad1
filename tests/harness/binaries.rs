//! The project's binaries that the system tests run as processes: the two functions (behind the emulator's
//! Lambda service), the device agent and the emulator's own CLI.
//!
//! Cargo builds a package's binaries only when it builds that package, so `cargo test -p system-tests` alone
//! does not build them. They are looked up in the directory of the running test's profile
//! (`$CARGO_TARGET_DIR/debug` for tests, `.../release` for benches); `make test-e2e` builds them there first,
//! and `make test` (`cargo test --workspace`) builds every package's binaries before it runs any test.

use std::path::PathBuf;

/// The functions the stack's template names, built as binaries of the same name.
pub const FUNCTIONS: [&str; 2] = ["disconnect-recorder", "shadow-reconciler"];

/// The device agent's binary.
pub const DEVICE_AGENT: &str = "device-agent";

/// The emulator's command-line binary.
pub const EMULATOR_CLI: &str = "iot-emulator";

/// `$CARGO_TARGET_DIR/<profile>`: test and bench executables run from `<profile>/deps/`, and cargo puts the
/// workspace's binaries in `<profile>/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("a test executable lives in <target>/<profile>/deps/")
        .to_path_buf()
}

/// The path of the binary `name` (also its package's name) in [`profile_dir`]; panics, saying how to build it,
/// when it is not there.
pub fn project_binary(name: &str) -> PathBuf {
    let dir = profile_dir();
    let path = dir.join(name);
    if !path.is_file() {
        let release = if dir.ends_with("release") {
            " --release"
        } else {
            ""
        };
        panic!(
            "{} is missing: build the binaries the system tests run first, with the same CARGO_TARGET_DIR: \
             `make test-e2e`, or `cargo build{release} -p {} -p {} -p {DEVICE_AGENT} -p {EMULATOR_CLI}`",
            path.display(),
            FUNCTIONS[0],
            FUNCTIONS[1],
        );
    }
    path
}
