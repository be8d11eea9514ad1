//! The `iot-emulator` binary on a newcomer's path (issue 18): what it prints when something goes wrong or is
//! missing, `logs tail`, `env`.

use std::process::Output;

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
