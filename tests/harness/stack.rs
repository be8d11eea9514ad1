//! The whole emulator in this process, as `iot-emulator up --template` runs it: broker over mutual TLS, shadow
//! service, HTTP APIs, the rules and policies of the stack's synthesized template (see [`template_support`]) and
//! the **real function binaries** behind its Lambda service (see [`binaries`]). Things are provisioned with the
//! template's device policy, the real device agent runs against it, and records and shadows are read back
//! through the AWS SDKs (as a user would) or straight from the stores (when a bench polls thousands of them).
//!
//! [`template_support`]: crate::template_support
//! [`binaries`]: crate::binaries

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use iot_emulator::app::template::StackTemplate;
use iot_emulator::app::{EmulatorConfig, FunctionBinaries, RunningEmulator};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::logs::GetLogEventsRequest;
use iot_emulator::registry::{self, Registry};
use iot_emulator::shadow::ShadowId;
use serde_json::Value;
use shadow_doc::ShadowName;

use crate::binaries::{self, FUNCTIONS};
use crate::broker_support::{ACCOUNT, Device, REGION, test_config};
use crate::template_support::stack_template;

/// The stack's template as JSON, for a test that changes it before [`Stack::start_with`].
pub fn template_json() -> Value {
    let text = stack_template();
    serde_json::from_str(&text).expect("the stack template is JSON")
}

/// How a [`Stack`] starts; [`StackOptions::default`] is what the end-to-end tests use.
pub struct StackOptions {
    pub template: Value,
    /// Delay before the Lambda service retries a failed async invocation; `None`: the emulator's default.
    pub lambda_retry_delay: Option<Duration>,
    /// A registry in memory instead of a file, so that provisioning a thousand devices does not rewrite the
    /// registry file a thousand times (a bench's setup, not its measured path).
    pub registry_in_memory: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            template: template_json(),
            lambda_retry_delay: Some(Duration::from_millis(200)),
            registry_in_memory: false,
        }
    }
}

pub struct Stack {
    pub emulator: RunningEmulator,
    pub registry: Arc<Registry>,
    pub ca: Arc<EmulatorCa>,
    pub state: tempfile::TempDir,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub data: aws_sdk_iotdataplane::Client,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_options(StackOptions::default()).await
    }

    pub async fn start_with(template: Value, lambda_retry_delay: Duration) -> Stack {
        Stack::start_options(StackOptions {
            template,
            lambda_retry_delay: Some(lambda_retry_delay),
            registry_in_memory: false,
        })
        .await
    }

    pub async fn start_options(options: StackOptions) -> Stack {
        let binaries = FunctionBinaries {
            default_dir: binaries::profile_dir(),
            overrides: Default::default(),
        };
        for function in FUNCTIONS {
            binaries::project_binary(function);
        }
        let text = options.template.to_string();
        let state = tempfile::tempdir().unwrap();
        let registry = Arc::new(if options.registry_in_memory {
            Registry::in_memory()
        } else {
            Registry::open(state.path()).unwrap()
        });
        registry
            .load_policies_from_template(&text, ACCOUNT, REGION)
            .unwrap();
        let ca = Arc::new(EmulatorCa::load_or_create(state.path()).unwrap());
        let stack = StackTemplate::parse(&text, REGION, ACCOUNT).unwrap();
        let mut config = EmulatorConfig::local(test_config(), stack);
        config.binaries = binaries;
        if let Some(delay) = options.lambda_retry_delay {
            config.lambda_retry_delay = delay;
        }
        config.state_dir = Some(state.path().join("emulator"));
        let emulator = RunningEmulator::start(config, Arc::clone(&registry), Arc::clone(&ca))
            .await
            .unwrap();
        let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .http_client(lambda_init::https_client())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new("test", "test", None, None, "test"))
                .endpoint_url(emulator.logs_url())
                .build(),
        );
        let data = aws_sdk_iotdataplane::Client::from_conf(
            aws_sdk_iotdataplane::Config::builder()
                .behavior_version(aws_sdk_iotdataplane::config::BehaviorVersion::latest())
                .http_client(lambda_init::https_client())
                .region(aws_sdk_iotdataplane::config::Region::new(REGION))
                .credentials_provider(aws_sdk_iotdataplane::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .endpoint_url(emulator.data_plane_url())
                .build(),
        );
        Stack {
            emulator,
            registry,
            ca,
            state,
            logs,
            data,
        }
    }

    pub fn port(&self) -> u16 {
        self.emulator.mqtt_addr().port()
    }

    /// `iot-emulator provision <thing>` with the template's device policy.
    pub fn device(&self, thing: &str) -> Device {
        Device::provision(
            &self.registry,
            &self.ca,
            self.state.path(),
            thing,
            &self.registry.policy_names(),
        )
    }

    /// The real device agent for `device`, connected to this stack (see [`Agent`]).
    pub fn start_agent(&self, device: &Device) -> Agent {
        Agent::start(self.port(), device)
    }

    /// Every event of a stream, oldest first, through GetLogEvents (the SDK against the emulator);
    /// messages parsed as JSON. A stream that does not exist yet reads as empty.
    pub async fn log_events(&self, group: &str, stream: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .logs
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await;
            let Ok(page) = page else {
                return events;
            };
            for event in page.events() {
                events.push(serde_json::from_str(event.message().unwrap_or_default()).unwrap());
            }
            let next = page.next_forward_token().map(str::to_owned);
            if next == token || page.events().is_empty() {
                return events;
            }
            token = next;
        }
    }

    /// Every event of a stream straight from the emulator's log store (the one its HTTP API serves), all
    /// pages, messages that are JSON; no HTTP, for polling many streams.
    pub fn stored_log_events(&self, group: &str, stream: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = GetLogEventsRequest {
                log_group_name: Some(group.to_owned()),
                log_stream_name: stream.to_owned(),
                start_from_head: Some(true),
                next_token: token.clone(),
                ..Default::default()
            };
            let Ok(page) = self.emulator.logs().get_log_events(&request) else {
                return events;
            };
            let empty = page.events.is_empty();
            events.extend(
                page.events
                    .iter()
                    .filter_map(|event| serde_json::from_str::<Value>(&event.message).ok()),
            );
            if empty || token.as_deref() == Some(page.next_forward_token.as_str()) {
                return events;
            }
            token = Some(page.next_forward_token);
        }
    }

    /// A shadow document through GetThingShadow; `None` while it does not exist.
    pub async fn shadow(&self, thing: &str, name: Option<&str>) -> Option<Value> {
        let response = self
            .data
            .get_thing_shadow()
            .thing_name(thing)
            .set_shadow_name(name.map(str::to_owned))
            .send()
            .await
            .ok()?;
        Some(serde_json::from_slice(response.payload()?.as_ref()).unwrap())
    }

    /// `state.reported` of a shadow straight from the shadow service (no HTTP); `None` while it is missing.
    pub fn stored_reported(&self, thing: &str, shadow: ShadowName) -> Option<Value> {
        let id = ShadowId::new(thing, shadow).unwrap();
        let document = serde_json::to_value(self.emulator.shadows().get(&id).ok()?).unwrap();
        Some(document["state"]["reported"].clone())
    }

    pub async fn stop(self) {
        self.emulator.shutdown().await;
    }
}

/// The real `device-agent` binary, run against a [`Stack`] with a certificate from its CA, 1 s telemetry, a
/// simulated sensor and actuator, and its outbox in a directory of its own. Killed when dropped.
pub struct Agent {
    pub process: tokio::process::Child,
    pub work: tempfile::TempDir,
}

impl Agent {
    fn start(port: u16, device: &Device) -> Agent {
        let binary = binaries::project_binary(binaries::DEVICE_AGENT);
        let work = tempfile::tempdir().unwrap();
        let file = |name: &str| device.dir.join(name).display().to_string();
        let config = format!(
            r#"endpoint = "localhost"
port = {port}
thing_name = "{thing}"
[tls]
cert = "{cert}"
key = "{key}"
root_ca = "{ca}"
[telemetry]
temperature_interval_secs = 1.0
[sensors]
temperature = "simulated"
[actuator]
simulated_delay_ms = 10
[outbox]
path = "{outbox}"
"#,
            thing = device.client_id,
            cert = file(registry::CERTIFICATE_FILE),
            key = file(registry::PRIVATE_KEY_FILE),
            ca = file(registry::ROOT_CA_FILE),
            outbox = work.path().join("outbox").display(),
        );
        let config_path = work.path().join("agent.toml");
        std::fs::write(&config_path, config).unwrap();
        let process = tokio::process::Command::new(&binary)
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Agent { process, work }
    }

    /// SIGKILL: no DISCONNECT, so the broker publishes the agent's will.
    pub async fn kill9(&mut self) {
        self.process.start_kill().unwrap();
        self.process.wait().await.unwrap();
    }
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics after `within` saying what it waited for.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
