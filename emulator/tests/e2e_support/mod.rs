//! The whole emulator for end-to-end tests: broker over mutual TLS, shadow service, HTTP APIs, rules from
//! the project's synthesized template (`tests/fixtures/IotPresence.template.json`, a copy of what
//! `make test-infra` writes to `target/synth-check/cdk.out/`) and the **real function binaries**, which
//! must have been built into the same target directory first:
//! `cargo build -p disconnect-recorder -p shadow-reconciler`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use iot_emulator::app::template::StackTemplate;
use iot_emulator::app::{EmulatorConfig, FunctionBinaries, RunningEmulator};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::registry::{self, Registry};
use serde_json::Value;

use crate::broker_support::{ACCOUNT, Device, REGION, test_config};

pub const TEMPLATE: &str = include_str!("../fixtures/IotPresence.template.json");
pub const FUNCTIONS: [&str; 2] = ["disconnect-recorder", "shadow-reconciler"];

pub fn template_json() -> Value {
    serde_json::from_str(TEMPLATE).unwrap()
}

/// `target/debug`: integration tests run from `target/debug/deps/`, and cargo puts workspace binaries
/// in `target/debug/`.
pub fn target_debug_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

pub struct Stack {
    pub emulator: RunningEmulator,
    pub registry: Arc<Registry>,
    pub ca: EmulatorCa,
    pub state: tempfile::TempDir,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub data: aws_sdk_iotdataplane::Client,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(template_json(), Duration::from_millis(200)).await
    }

    pub async fn start_with(template: Value, lambda_retry_delay: Duration) -> Stack {
        let binaries = FunctionBinaries {
            default_dir: target_debug_dir(),
            overrides: Default::default(),
        };
        for function in FUNCTIONS {
            assert!(
                binaries.path(function).is_file(),
                "{} is missing: run `cargo build -p disconnect-recorder -p shadow-reconciler` first \
                 (with the same CARGO_TARGET_DIR)",
                binaries.path(function).display()
            );
        }
        let text = template.to_string();
        let state = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(state.path()).unwrap());
        registry
            .load_policies_from_template(&text, ACCOUNT, REGION)
            .unwrap();
        let ca = EmulatorCa::load_or_create(state.path()).unwrap();
        let stack = StackTemplate::parse(&text, REGION, ACCOUNT).unwrap();
        let mut config = EmulatorConfig::local(test_config(), stack);
        config.binaries = binaries;
        config.lambda_retry_delay = lambda_retry_delay;
        config.state_dir = Some(state.path().join("emulator"));
        let emulator = RunningEmulator::start(config, Arc::clone(&registry), &ca)
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
        let provisioned = registry::provision_thing(
            &self.registry,
            &self.ca,
            thing,
            &self.registry.policy_names(),
        )
        .unwrap();
        let dir = self.state.path().join("devices").join(thing);
        registry::write_device_files(&dir, &provisioned, self.ca.root_pem()).unwrap();
        Device {
            client_id: thing.to_owned(),
            dir,
            provisioned,
        }
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

    pub async fn stop(self) {
        self.emulator.shutdown().await;
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
