//! Shared by the HTTP API tests (control plane, data plane and CloudWatch Logs, through the SDKs, boto3 and the
//! AWS CLI): one of the emulator's routers served on 127.0.0.1 for the length of a test, and the AWS CLI or a
//! boto3 script pointed at it.

#![allow(dead_code)] // each test binary uses a part

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;

/// A router served on a free loopback port until [`ServedRouter::stop`].
pub struct ServedRouter {
    pub address: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl ServedRouter {
    pub async fn start(router: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        Self {
            address,
            shutdown,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, for `--endpoint-url` and the SDKs' `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Graceful shutdown; fails the test if the server failed.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        self.server.await.unwrap();
    }
}

/// The AWS CLI that `make setup` installs into the project's venv.
pub const AWS_CLI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/aws");

/// Whether the AWS CLI is installed: if not, the test prints `SKIPPED: <test>: aws CLI not found` and returns
/// early, or fails under REQUIRE_TEST_TOOLS (see `tool_support`).
pub fn aws_cli_installed() -> bool {
    crate::tool_support::tool_available("aws CLI", Path::new(AWS_CLI))
}

/// The venv's Python, where `make setup` installs boto3 (tools/requirements.txt).
pub const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python");

/// Whether the venv's Python (with boto3) is installed; skips or fails like [`aws_cli_installed`].
pub fn python_installed() -> bool {
    crate::tool_support::tool_available("Python venv with boto3", Path::new(PYTHON))
}

/// `python <script> <args>` with test credentials and nothing from the user's own AWS configuration.
pub async fn python(script: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(PYTHON)
        .arg(script)
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_IOT")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .await
        .unwrap()
}

/// `aws --endpoint-url <endpoint> --output json <args>` with test credentials and nothing from the
/// user's own AWS configuration.
pub async fn aws(endpoint: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(AWS_CLI)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_IOT")
        .env_remove("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
        .env_remove("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .output()
        .await
        .unwrap()
}
