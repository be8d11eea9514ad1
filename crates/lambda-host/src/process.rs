//! Starting a function binary the way Lambda starts a `provided.al2023` bootstrap.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

/// The configuration Lambda would give the function.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub name: String,
    pub memory_mb: u32,
    pub region: String,
    /// The function's own environment variables (and, locally, its credentials and
    /// `AWS_ENDPOINT_URL_*` overrides).
    pub env: Vec<(String, String)>,
    /// Where stdout/stderr go; `None` inherits ours.
    pub log_file: Option<PathBuf>,
}

impl FunctionConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            memory_mb: 128,
            region: "us-east-1".into(),
            env: Vec::new(),
            log_file: None,
        }
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start function binary {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open function log file {path}: {source}")]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `kill_on_drop` covers every ending of the host but one: `kill -9` runs no destructor, and left a hanging
/// function running with nobody to stop it (issue 13). On Linux the kernel sends the function SIGKILL when the
/// thread that started it exits; functions are started from the host's runtime threads, which live as long
/// as the host.
#[cfg(target_os = "linux")]
fn die_with_this_process(command: &mut Command) {
    let host = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid) are made, and nothing is
    // allocated.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The host may have died between fork and prctl: then no signal would ever come.
            if libc::getppid() != host {
                return Err(std::io::Error::other(
                    "the host exited while starting the function",
                ));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_this_process(_command: &mut Command) {}

/// A running function instance; killed when dropped, like a Lambda sandbox that is reclaimed.
pub struct FunctionProcess {
    child: Child,
}

impl FunctionProcess {
    /// Start `binary` against the Runtime API at `runtime_api` (`host:port`).
    ///
    /// The environment is cleared first so the function sees only what Lambda would set: its own
    /// variables plus the reserved ones (`AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_RUNTIME_API`, ...).
    pub fn spawn(
        binary: &Path,
        config: &FunctionConfig,
        runtime_api: &str,
    ) -> Result<Self, ProcessError> {
        let mut command = Command::new(binary);
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let task_root = binary
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let reserved = [
            ("AWS_LAMBDA_FUNCTION_NAME", config.name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                config.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.into()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.name),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/[$LATEST]{}", std::process::id()),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_REGION", config.region.clone()),
            ("AWS_DEFAULT_REGION", config.region.clone()),
            ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
            ("_HANDLER", "bootstrap".into()),
            ("TZ", ":UTC".into()),
            ("LANG", "en_US.UTF-8".into()),
        ];
        command.envs(reserved);
        command.envs(config.env.iter().map(|(k, v)| (k, v)));
        command.stdin(Stdio::null()).kill_on_drop(true);
        die_with_this_process(&mut command);
        if let Some(path) = &config.log_file {
            let open = || {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| ProcessError::LogFile {
                        path: path.clone(),
                        source,
                    })
            };
            command.stdout(open()?).stderr(open()?);
        }
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            path: binary.to_path_buf(),
            source,
        })?;
        Ok(Self { child })
    }

    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Has the process exited (it should not, between invocations)?
    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Resolves when the process exits. Cancel-safe: dropping the future leaves the process running, so it
    /// can race an invocation in a `select!`.
    pub async fn exited(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}
