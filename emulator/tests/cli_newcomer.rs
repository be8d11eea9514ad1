//! The `iot-emulator` binary on a newcomer's path (issue 18): what it prints when something goes wrong or is
//! missing, `logs tail`, `env`.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

fn emulator() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_iot-emulator"));
    command.kill_on_drop(true);
    command
}

/// A `http://127.0.0.1:<port>` URL that nothing listens on.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn ordinary_errors_are_one_short_message_even_with_rust_backtrace_set() {
    let state = tempfile::tempdir().unwrap();
    let url = closed_url();
    let failing: [Vec<&str>; 2] = [
        vec!["shadow", "get", "ratchet", "--data-plane-url", &url],
        vec!["certificate", "0123", "BOGUS"],
    ];
    for args in failing {
        for backtrace in ["1", "full"] {
            let output = emulator()
                .env("RUST_BACKTRACE", backtrace)
                .env("RUST_LIB_BACKTRACE", backtrace)
                .arg("--state-dir")
                .arg(state.path())
                .args(&args)
                .output()
                .await
                .unwrap();
            let text = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
            assert!(text.starts_with("error: "), "{args:?}: {text}");
            assert!(
                !text.to_lowercase().contains("backtrace"),
                "{args:?}: {text}"
            );
            assert!(text.lines().count() <= 3, "{args:?}: {text}");
            if args[0] == "shadow" {
                assert!(
                    text.contains(&format!("cannot reach {url}")) && text.contains("refused"),
                    "the message and its causes: {text}"
                );
            }
        }
    }
}

/// `iot-emulator up` on free ports in `state`, with its stdout and stderr piped; killed when dropped.
fn spawn_up(state: &std::path::Path, extra: &[&str]) -> tokio::process::Child {
    emulator()
        .arg("--state-dir")
        .arg(state)
        .args([
            "up",
            "--mqtt-port",
            "0",
            "--control-plane-port",
            "0",
            "--data-plane-port",
            "0",
            "--logs-port",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The first line of `lines` that contains `needle`, within 10 s.
async fn line_containing<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    needle: &str,
) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("no line with {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no line with {needle:?} within 10 s"))
}

#[tokio::test]
async fn up_without_a_template_says_what_is_missing_and_how_to_pass_one() {
    let state = tempfile::tempdir().unwrap();
    let mut up = spawn_up(state.path(), &[]);
    let mut stderr = BufReader::new(up.stderr.take().unwrap()).lines();
    let warning = line_containing(&mut stderr, "no --template given").await;
    assert!(warning.contains("WARN"), "{warning}");
    for expected in [
        "no rules, no functions and no policies",
        "--template target/demo/cdk.out/IotPresence.template.json",
        "make demo",
        "make synth",
    ] {
        assert!(warning.contains(expected), "{expected:?} in {warning}");
    }
    let mut stdout = BufReader::new(up.stdout.take().unwrap()).lines();
    let rules = line_containing(&mut stdout, "rules ").await;
    assert!(rules.ends_with("none (no --template)"), "{rules}");
    up.kill().await.unwrap();
}
