//! The Lambda service: runs the real function binaries behind the Lambda Runtime API
//! (`lambda_host::RuntimeApi` + `FunctionProcess`) with asynchronous-invoke semantics, which is how IoT
//! rules invoke functions (reference 5.4).
//!
//! - `invoke_async` only queues (like `InvocationType=Event`): it fails only when the function does not
//!   exist, the one case where the IoT rule's error action fires (reference 5.4).
//! - One warm instance per function, started on the first event and reused; events run one at a time.
//!   A timeout or a crashed/failed-to-init instance is replaced, as Lambda replaces a sandbox.
//! - A function error is retried up to `MaximumRetryAttempts` times (Lambda's default 2) after a delay
//!   (Lambda: about 1 and 2 minutes; here `retry_delay`, then twice it); when they are spent the event and
//!   the error go to the on-failure destination, which the emulator records as a Lambda destination
//!   record in the log group [`FAILURE_LOG_GROUP`], stream = function name.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lambda_host::{FunctionConfig, FunctionProcess, HostError, InvocationResult, RuntimeApi};
use tokio::sync::mpsc;

use crate::logs::{InputLogEvent, LogsStore};

/// Where exhausted async invocations are recorded (our stand-in for the on-failure SQS destination).
pub const FAILURE_LOG_GROUP: &str = "/emulator/lambda-failures";

/// How to run one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    /// The function's environment (template variables, endpoints, credentials).
    pub environment: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub maximum_retry_attempts: u32,
    /// The on-failure destination ARN from the template, copied into the failure record.
    pub on_failure_destination: Option<String>,
    /// Where the function's stdout/stderr go; `None` inherits the emulator's.
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// What Lambda answers for an unknown function; the rule's error action fires (reference 5.4).
    #[error("Function not found: arn:aws:lambda:{region}:{account}:function:{name}")]
    FunctionNotFound {
        name: String,
        region: String,
        account: String,
    },
    #[error("the Lambda service has stopped")]
    Stopped,
}

/// The service's settings that are not per function.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    pub region: String,
    pub account: String,
    /// Delay before the first async retry; the second waits twice as long.
    pub retry_delay: Duration,
}

impl Default for LambdaSettings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            retry_delay: Duration::from_secs(1),
        }
    }
}

struct QueuedEvent {
    payload: Vec<u8>,
    /// Attempts made so far (0 for a fresh event).
    attempts: u32,
    request_id: String,
}

/// The functions the emulator can invoke. Cheap to share behind an `Arc`.
pub struct LambdaService {
    queues: HashMap<String, mpsc::UnboundedSender<QueuedEvent>>,
    cold_starts: HashMap<String, Arc<AtomicU64>>,
    settings: LambdaSettings,
}

impl std::fmt::Debug for LambdaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaService")
            .field("functions", &self.queues.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl LambdaService {
    /// Starts one worker per function (no process yet: instances start on their first event).
    /// Failure records go to `logs` ([`FAILURE_LOG_GROUP`]).
    pub fn start(functions: Vec<FunctionSpec>, settings: LambdaSettings, logs: LogsStore) -> Self {
        let mut queues = HashMap::new();
        let mut cold_starts = HashMap::new();
        for spec in functions {
            let (sender, receiver) = mpsc::unbounded_channel();
            let started = Arc::new(AtomicU64::new(0));
            cold_starts.insert(spec.name.clone(), Arc::clone(&started));
            let worker = Worker {
                function_arn: format!(
                    "arn:aws:lambda:{}:{}:function:{}",
                    settings.region, settings.account, spec.name
                ),
                spec,
                settings: settings.clone(),
                logs: logs.clone(),
                requeue: sender.downgrade(),
                instance: None,
                cold_starts: started,
            };
            queues.insert(worker.spec.name.clone(), sender);
            tokio::spawn(worker.run(receiver));
        }
        Self {
            queues,
            cold_starts,
            settings,
        }
    }

    /// How many instances of `function` have been started: 1 while the warm instance keeps serving,
    /// more after timeouts, crashes or init errors. `None` for an unknown function.
    pub fn cold_starts(&self, function_name: &str) -> Option<u64> {
        self.cold_starts
            .get(function_name)
            .map(|started| started.load(Ordering::Relaxed))
    }

    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.queues.keys().cloned().collect();
        names.sort();
        names
    }

    /// `Invoke` with `InvocationType=Event`: queues `payload` and returns (HTTP 202 on AWS).
    pub fn invoke_async(&self, function_name: &str, payload: Vec<u8>) -> Result<(), InvokeError> {
        let queue =
            self.queues
                .get(function_name)
                .ok_or_else(|| InvokeError::FunctionNotFound {
                    name: function_name.to_owned(),
                    region: self.settings.region.clone(),
                    account: self.settings.account.clone(),
                })?;
        queue
            .send(QueuedEvent {
                payload,
                attempts: 0,
                request_id: uuid::Uuid::new_v4().to_string(),
            })
            .map_err(|_| InvokeError::Stopped)
    }
}

/// A warm instance: its Runtime API endpoint and its process.
struct Instance {
    runtime: RuntimeApi,
    process: FunctionProcess,
}

struct Worker {
    spec: FunctionSpec,
    function_arn: String,
    settings: LambdaSettings,
    logs: LogsStore,
    /// Weak, so that dropping the service ends the worker once the queue is empty.
    requeue: mpsc::WeakUnboundedSender<QueuedEvent>,
    instance: Option<Instance>,
    cold_starts: Arc<AtomicU64>,
}

/// How one attempt ended, in Lambda's terms.
enum Attempt {
    Succeeded,
    /// `functionError` + the error object Lambda puts in `responsePayload`.
    Failed {
        function_error: &'static str,
        error_type: String,
        error_message: String,
    },
}

impl Worker {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<QueuedEvent>) {
        while let Some(mut event) = receiver.recv().await {
            let outcome = self.attempt(&event).await;
            event.attempts += 1;
            let Attempt::Failed {
                function_error,
                error_type,
                error_message,
            } = outcome
            else {
                continue;
            };
            tracing::warn!(function = %self.spec.name, request_id = %event.request_id,
                attempt = event.attempts, %error_type, %error_message, "async invocation failed");
            if event.attempts <= self.spec.maximum_retry_attempts {
                let delay = self.settings.retry_delay * event.attempts;
                let requeue = self.requeue.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(queue) = requeue.upgrade() {
                        let _ = queue.send(event);
                    }
                });
            } else {
                self.record_failure(&event, function_error, &error_type, &error_message);
            }
        }
        if let Some(mut instance) = self.instance.take() {
            instance.process.kill().await;
        }
    }

    async fn attempt(&mut self, event: &QueuedEvent) -> Attempt {
        if let Some(instance) = &mut self.instance
            && instance.process.try_exit_status().is_some()
        {
            self.instance = None;
        }
        if self.instance.is_none() {
            match self.start_instance().await {
                Ok(instance) => self.instance = Some(instance),
                Err(message) => {
                    return Attempt::Failed {
                        function_error: "Unhandled",
                        error_type: "Runtime.InvalidEntrypoint".into(),
                        error_message: message,
                    };
                }
            }
        }
        let Some(instance) = &mut self.instance else {
            return Attempt::Failed {
                function_error: "Unhandled",
                error_type: "Runtime.Unknown".into(),
                error_message: "no instance".into(),
            };
        };
        let outcome = tokio::select! {
            outcome = instance.runtime.invoke(event.payload.clone(), self.spec.timeout) => outcome,
            status = instance.process.exited() => {
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(error) => error.to_string(),
                };
                // Lambda reports a runtime that dies mid-invocation as Runtime.ExitError.
                self.instance = None;
                return Attempt::Failed {
                    function_error: "Unhandled",
                    error_type: "Runtime.ExitError".into(),
                    error_message: format!(
                        "RequestId: {} Error: Runtime exited with error: {status}",
                        event.request_id
                    ),
                };
            }
        };
        match outcome {
            Ok(InvocationResult::Response(_)) => Attempt::Succeeded,
            Ok(InvocationResult::Error {
                error_type,
                error_message,
            }) => Attempt::Failed {
                function_error: "Unhandled",
                error_type,
                error_message,
            },
            Err(error) => {
                // The sandbox is not trusted after a timeout or an init failure: replace it.
                if let Some(mut instance) = self.instance.take() {
                    instance.process.kill().await;
                }
                let error_type = match &error {
                    HostError::Timeout(_) => "Sandbox.Timedout",
                    HostError::InitError { .. } => "Runtime.InitError",
                    _ => "Runtime.Unknown",
                };
                Attempt::Failed {
                    function_error: "Unhandled",
                    error_type: error_type.into(),
                    error_message: error.to_string(),
                }
            }
        }
    }

    async fn start_instance(&self) -> Result<Instance, String> {
        let runtime = RuntimeApi::bind(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            self.function_arn.clone(),
        )
        .await
        .map_err(|error| error.to_string())?;
        let mut config = FunctionConfig::new(self.spec.name.clone());
        config.memory_mb = self.spec.memory_mb;
        config.region = self.settings.region.clone();
        config.log_file = self.spec.log_file.clone();
        config.env = self
            .spec
            .environment
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let process = FunctionProcess::spawn(&self.spec.binary, &config, &runtime.address())
            .map_err(|error| error.to_string())?;
        self.cold_starts.fetch_add(1, Ordering::Relaxed);
        tracing::info!(function = %self.spec.name, pid = ?process.id(), "function instance started");
        Ok(Instance { runtime, process })
    }

    /// The record Lambda sends to an on-failure destination (`condition: RetriesExhausted`).
    fn record_failure(
        &self,
        event: &QueuedEvent,
        function_error: &str,
        error_type: &str,
        error_message: &str,
    ) {
        let now = crate::clock::now_millis();
        let request_payload = serde_json::from_slice::<serde_json::Value>(&event.payload)
            .unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&event.payload).into_owned())
            });
        // The on-failure destination record, in the one shape the functions' redrive reads back.
        let mut record = redrive::failure_record(
            &iso8601_millis(now),
            &event.request_id,
            &format!("{}:$LATEST", self.function_arn),
            event.attempts,
            request_payload,
            function_error,
            error_type,
            error_message,
        );
        record["destination"] = serde_json::json!(self.spec.on_failure_destination);
        let stored = self
            .logs
            .ensure_log_stream(FAILURE_LOG_GROUP, &self.spec.name)
            .and_then(|()| {
                self.logs.put_log_events(
                    FAILURE_LOG_GROUP,
                    &self.spec.name,
                    &[InputLogEvent {
                        timestamp: now,
                        message: record.to_string(),
                    }],
                )
            });
        match stored {
            Ok(_) => {
                tracing::error!(function = %self.spec.name, request_id = %event.request_id,
                    "async invocation failed after all retries; recorded in {FAILURE_LOG_GROUP}");
            }
            Err(error) => {
                tracing::error!(function = %self.spec.name, %error, %record, "cannot record a failed invocation");
            }
        }
    }
}

/// `2026-12-02T10:00:00.000Z`: destination records carry ISO 8601 timestamps, not epoch numbers.
fn iso8601_millis(epoch_millis: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_millis) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| epoch_millis.to_string())
}

#[cfg(test)]
mod tests {
    use super::iso8601_millis;

    #[test]
    fn destination_timestamps_are_iso_8601_in_utc_with_milliseconds() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_millis(1_764_144_000_611),
            "2025-11-26T08:00:00.611Z"
        );
    }
}
