//! `kill -9` of the host must not leave a function process running (issue 13): no destructor runs then, so only
//! the kernel can stop the function. The test runs this test binary a second time as the host (selected by an
//! environment variable), kills it with SIGKILL, and watches the function's pid disappear.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lambda_host::{FunctionConfig, FunctionProcess};

const HOST_ROLE: &str = "LAMBDA_HOST_ORPHAN_TEST_HOST";

fn alive(pid: u32) -> bool {
    // A zombie has exited; its /proc entry stays until it is reaped by init.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The host's role: start a function that would hang for a minute, print its pid, wait to be killed.
#[tokio::test]
async fn host_role() {
    let Some(dir) = std::env::var_os(HOST_ROLE) else {
        return;
    };
    let script = Path::new(&dir).join("bootstrap");
    let mut config = FunctionConfig::new("hangs");
    // Not our stdout: the test reads that pipe until the pid line.
    config.log_file = Some(Path::new(&dir).join("function.log"));
    let mut function = FunctionProcess::spawn(&script, &config, "127.0.0.1:9").unwrap();
    println!("function-pid {}", function.id().unwrap());
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    let _ = function.exited().await;
}

#[test]
fn a_function_dies_with_a_host_killed_by_sigkill() {
    if std::env::var_os(HOST_ROLE).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bootstrap");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args(["host_role", "--exact", "--nocapture", "--test-threads", "1"])
        .env(HOST_ROLE, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    let function_pid: u32 = lines
        .by_ref()
        .map_while(Result::ok)
        // libtest prints `test host_role ... ` before the test's own output on the same line.
        .find_map(|line| line.split("function-pid ").nth(1).map(str::to_owned))
        .expect("the host prints the function's pid")
        .parse()
        .unwrap();
    assert!(alive(function_pid));
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(function_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let orphaned = alive(function_pid);
    if orphaned {
        let _ = Command::new("kill")
            .args(["-9", &function_pid.to_string()])
            .status();
    }
    assert!(!orphaned, "the function outlived its host");
}
