//! Bad config, wrong key, expired certificate, unsafe key permissions, unreachable broker: the agent says
//! what is wrong and how to fix it, and exits non-zero (2) when the problem is fatal.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::{AgentProcess, Pki, free_port, run_to_exit, write_config};

fn setup() -> (tempfile::TempDir, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    (dir, pki)
}

#[test]
fn valid_setup_passes_check() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], None);
    let files = write_config(dir.path(), &pki, &device, 8883, "", "");
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("the key belongs to the certificate"), "{out}");
    assert!(out.contains("check passed"), "{out}");
}

#[test]
fn missing_config_file_is_fatal_with_a_hint() {
    let (dir, _) = setup();
    let missing = dir.path().join("nope.toml");
    for args in [&["check"][..], &[][..]] {
        let (code, out) = run_to_exit(&missing, args);
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains("config.example.toml"), "{out}");
    }
}

#[test]
fn invalid_values_are_all_listed_with_fixes() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], None);
    let files = write_config(
        dir.path(),
        &pki,
        &device,
        8883,
        "keep_alive_secs = 5",
        "[telemetry]\ntemperature_interval_secs = 0\n",
    );
    let text = std::fs::read_to_string(&files.config)
        .unwrap()
        .replace("thing_name = \"ratchet\"", "thing_name = \"bad name!\"");
    std::fs::write(&files.config, text).unwrap();
    let (code, out) = run_to_exit(&files.config, &[]);
    assert_eq!(code, Some(2), "{out}");
    for expected in [
        "thing_name",
        "keep_alive_secs",
        "temperature_interval_secs",
        "fix:",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("AWS IoT clamps keep-alive"), "{out}");
}

#[test]
fn unknown_key_is_rejected_by_name() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], None);
    let files = write_config(dir.path(), &pki, &device, 8883, "endpiont = \"x\"", "");
    let (code, out) = run_to_exit(&files.config, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("endpiont"), "{out}");
}

#[test]
fn key_of_another_certificate_is_fatal() {
    let (dir, pki) = setup();
    let mut device = pki.issue(support::THING, &[], None);
    device.key = pki.stray_key("other");
    let files = write_config(dir.path(), &pki, &device, 8883, "", "");
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("do not belong together"), "{out}");
    let (code, out) = run_to_exit(&files.config, &[]);
    assert_eq!(code, Some(2), "run must refuse too:\n{out}");
    assert!(out.contains("do not belong together"), "{out}");
}

#[test]
fn expired_certificate_is_fatal() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], Some((2021, 1, 1)));
    let files = write_config(dir.path(), &pki, &device, 8883, "", "");
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("expired") && out.contains("create-keys-and-certificate"),
        "{out}"
    );
    let (code, out) = run_to_exit(&files.config, &[]);
    assert_eq!(code, Some(2), "{out}");
}

#[test]
fn private_key_readable_by_others_is_refused() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], None);
    std::fs::set_permissions(&device.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let files = write_config(dir.path(), &pki, &device, 8883, "", "");
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("chmod 600"), "{out}");
    std::fs::set_permissions(&device.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(0), "group-readable is only a warning:\n{out}");
    assert!(out.contains("warning"), "{out}");
}

#[test]
fn missing_certificate_file_names_the_path() {
    let (dir, pki) = setup();
    let mut device = pki.issue(support::THING, &[], None);
    device.cert = dir.path().join("no-such-cert.pem");
    let files = write_config(dir.path(), &pki, &device, 8883, "", "");
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("no-such-cert.pem"), "{out}");
}

/// An unreachable broker is not fatal: the agent keeps retrying with backoff, says why, and still stops
/// cleanly on SIGTERM.
#[test]
fn unreachable_broker_is_retried_with_a_clear_message() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], None);
    let files = write_config(dir.path(), &pki, &device, free_port(), "", "");
    let agent = AgentProcess::spawn(&files, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while agent.log_text().matches("connect failed").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no retries logged:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let started = std::time::Instant::now();
    let (code, log) = agent.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "offline shutdown must not wait for the flush timeout"
    );
    assert!(log.contains("nothing listens there"), "{log}");
    // Readings taken while offline are kept for the next start.
    let outbox = device_agent::outbox::Outbox::open(
        &files.outbox,
        10,
        device_agent::config::OverflowPolicy::DropOldest,
    )
    .unwrap();
    assert!(!outbox.is_empty(), "offline readings were not stored");
}

#[test]
fn environment_and_flags_override_the_file() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], None);
    let files = write_config(dir.path(), &pki, &device, 8883, "", "");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_device-agent"))
        .arg("--config")
        .arg(&files.config)
        .arg("check")
        .env("DEVICE_AGENT_KEEP_ALIVE_SECS", "7")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("keep_alive_secs: 7 is outside"), "{out}");
    let (code, out) = run_to_exit(&files.config, &["check", "--thing-name", "not valid!"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("`not valid!` is not a valid thing name"),
        "{out}"
    );
}

#[test]
fn an_outbox_path_that_is_a_file_is_refused_by_check_and_run() {
    let (dir, pki) = setup();
    let device = pki.issue(support::THING, &[], None);
    let files = write_config(dir.path(), &pki, &device, free_port(), "", "");
    // Earlier builds kept the outbox in one redb file at this kind of path.
    std::fs::write(&files.outbox, b"redb").unwrap();
    let (code, out) = run_to_exit(&files.config, &["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("is a file; the outbox is a directory"),
        "{out}"
    );
    let (code, out) = run_to_exit(&files.config, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(
        std::fs::read(&files.outbox).unwrap(),
        b"redb",
        "the old file is left alone"
    );
}
