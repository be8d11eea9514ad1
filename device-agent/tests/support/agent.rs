//! The agent binary as a child process: its config file, its exit, and its `--log-json` output.

use super::*;

/// Paths and values for an agent config file.
pub struct AgentFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub outbox: PathBuf,
}

/// Write a config for the test broker. `extra` is appended (top-level keys must come before tables, so
/// `extra` may only contain tables or be given via `top`).
pub fn write_config(
    dir: &Path,
    pki: &Pki,
    identity: &Identity,
    port: u16,
    top: &str,
    tables: &str,
) -> AgentFiles {
    let outbox = dir.join("outbox");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "endpoint = \"127.0.0.1\"\nport = {port}\nthing_name = \"{THING}\"\nshutdown_flush_secs = 5\n{top}\n\
             [tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nroot_ca = \"{ca}\"\n\
             [sensors]\ntemperature = \"simulated\"\n\
             [actuator]\nkind = \"simulated\"\nsimulated_delay_ms = 300\n\
             [outbox]\npath = \"{outbox}\"\n\
             [reconnect]\ninitial_delay_secs = 1\nmax_delay_secs = 4\nconnect_timeout_secs = 3\n{tables}\n",
            cert = identity.cert.display(),
            key = identity.key.display(),
            ca = pki.ca_cert.display(),
            outbox = outbox.display(),
        ),
    )
    .unwrap();
    AgentFiles {
        dir: dir.to_path_buf(),
        config,
        outbox,
    }
}

/// The agent binary as a child process (logs to a file in the test dir).
pub struct AgentProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl AgentProcess {
    pub fn spawn(files: &AgentFiles, args: &[&str]) -> Self {
        let log = files.dir.join(format!(
            "agent-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_device-agent"))
            .arg("--config")
            .arg(&files.config)
            .args(args)
            .env("DEVICE_AGENT_LOG", "info,device_agent=debug")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Self { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait for the exit code.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        signal(self.child.id(), "TERM");
        let code = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        (code, self.log_text())
    }

    pub fn kill_9(mut self) {
        signal(self.child.id(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run the binary to completion (for `check` and fatal-config cases).
pub fn run_to_exit(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_device-agent"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// The agent's `--log-json` output: one JSON object per line (tracing-subscriber's format, the event's
/// fields under `fields`); lines that are not JSON (a panic message) are left out.
pub fn json_log_events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

/// The fields of the last event whose message is `message`.
pub fn last_event_fields<'a>(events: &'a [Value], message: &str) -> Option<&'a Value> {
    events
        .iter()
        .rev()
        .map(|event| &event["fields"])
        .find(|fields| fields["message"] == message)
}
