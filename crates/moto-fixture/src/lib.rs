//! A moto server on 127.0.0.1 for integration tests.
//!
//! moto (PyPI `moto[server]`) serves the real wire protocols of CloudWatch Logs and the IoT data
//! plane, so a function under test talks to it through its unmodified AWS SDK client, pointed there
//! with `AWS_ENDPOINT_URL_*`. Each fixture is a separate process with its own state; it is killed
//! when the fixture is dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server not found (looked at $MOTO_SERVER, {0}, and PATH); run `make setup` to install it"
    )]
    NotInstalled(String),
    #[error("cannot start moto_server: {0}")]
    Spawn(std::io::Error),
    #[error("moto_server did not accept connections on {0} within {1:?}")]
    NotReady(SocketAddr, Duration),
    #[error("no free local port: {0}")]
    Port(std::io::Error),
    #[error("moto request failed: {0}")]
    Request(String),
}

pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
}

impl MotoServer {
    /// Start a fresh server on a free port and wait until it answers.
    pub async fn start() -> Result<Self, MotoError> {
        let binary = locate()?;
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(MotoError::Spawn)?;
        let server = Self { child, addr };
        server.wait_ready(Duration::from_secs(30)).await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_*` or `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), MotoError> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(MotoError::NotReady(self.addr, limit))
    }

    /// Register a thing (IoT `CreateThing`): moto's data plane serves shadows of registered things
    /// only. Plain HTTP, since moto does not check signatures, so tests need no IoT control-plane SDK.
    pub async fn create_thing(&self, name: &str) -> Result<(), MotoError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let failed = |detail: String| MotoError::Request(format!("CreateThing {name}: {detail}"));
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let request = format!(
            "POST /things/{name} HTTP/1.1\r\nhost: iot.us-east-1.amazonaws.com\r\n\
             authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=0\r\n\
             content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(failed(
                response.lines().next().unwrap_or_default().to_owned(),
            ))
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn locate() -> Result<PathBuf, MotoError> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Ok(path.into());
    }
    let venv = workspace_root().join(".tools/venv/bin/moto_server");
    if venv.is_file() {
        return Ok(venv);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| MotoError::NotInstalled(venv.display().to_string()))
}

fn free_port() -> Result<u16, MotoError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(MotoError::Port)?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(MotoError::Port)
}
