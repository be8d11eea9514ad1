//! The Lambda service: runs the real function binaries behind the Lambda Runtime API
//! (`lambda_host::RuntimeApi` + `FunctionProcess`) with asynchronous-invoke semantics, which is how IoT
//! rules invoke functions (reference 5.4).
//!
//! - `invoke_async` only queues (like `InvocationType=Event`): it fails only when the function does not
//!   exist, the one case where the IoT rule's error action fires (reference 5.4).
//! - Up to `max_concurrency` instances per function run at once (Lambda scales out per concurrent event),
//!   started on demand and kept warm; a free warm instance is always preferred to a new one. A timeout or a
//!   crashed/failed-to-init instance is replaced, as Lambda replaces a sandbox. So one hanging event holds one
//!   instance, not the function: the events behind it still run.
//! - Each function's queue holds at most [`MAX_QUEUED_EVENTS`]; beyond that `invoke_async` is throttled
//!   (`TooManyRequestsException`, as Lambda answers), which fires the IoT rule's error action: the event is
//!   handed to the rule's error path, never dropped silently.
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
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::logs::{InputLogEvent, LogsStore};

pub mod pending;

/// Where exhausted async invocations are recorded (our stand-in for the on-failure SQS destination).
pub const FAILURE_LOG_GROUP: &str = "/emulator/lambda-failures";
/// Events one function's queue holds (new ones and retries waiting for an instance); the bound's policy is
/// in the module docs.
pub const MAX_QUEUED_EVENTS: usize = 10_000;
/// Instances a function may run at once unless its spec says otherwise.
pub const DEFAULT_CONCURRENCY: u32 = 10;
/// How long an event waits for a warm instance before another instance is started (see [`Dispatcher`]). Lambda
/// scales out at once; on a developer's machine a process per overlapping event costs more than it saves.
pub const SCALE_UP_AFTER: Duration = Duration::from_millis(100);

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
    /// An event older than this (since it was first queued) is not invoked again: it goes to the on-failure
    /// destination with `condition: EventAgeExceeded` (`MaximumEventAgeInSeconds`).
    pub maximum_event_age: Duration,
    /// The on-failure destination ARN from the template, copied into the failure record.
    pub on_failure_destination: Option<String>,
    /// Where the function's stdout/stderr go; `None` inherits the emulator's.
    pub log_file: Option<PathBuf>,
    /// Instances that may run at once (Lambda's reserved concurrency); `None`: [`DEFAULT_CONCURRENCY`].
    /// `Some(1)` serves events one at a time, in arrival order.
    pub max_concurrency: Option<u32>,
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
    /// The function's queue is full ([`MAX_QUEUED_EVENTS`]): Lambda's throttling answer.
    #[error(
        "TooManyRequestsException: Rate Exceeded. ({queued} events queued for function {name})"
    )]
    Throttled { name: String, queued: usize },
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
    /// When it was first queued (wall clock, kept across a restart), for `MaximumEventAgeInSeconds`.
    queued_at_ms: i64,
}

/// An event the service had not finished when it stopped: queued, waiting for a retry, or still running at the
/// deadline (delivered again after a restart: at least once, as Lambda's async invocations are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub function: String,
    pub request_id: String,
    /// Attempts already made; a resumed event keeps its remaining retries.
    pub attempts: u32,
    pub payload: Vec<u8>,
    /// When it was first queued (epoch milliseconds): a resumed event keeps its age.
    pub queued_at_ms: i64,
}

/// The destination record's `condition` for an event that outlived `MaximumEventAgeInSeconds`.
pub const EVENT_AGE_EXCEEDED: &str = "EventAgeExceeded";

/// How long [`LambdaService::shutdown`] lets running invocations finish by default.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Events waiting for their retry, soonest first.
#[derive(Default)]
struct Delayed {
    due: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    events: HashMap<u64, QueuedEvent>,
    next_key: u64,
}

impl Delayed {
    fn push(&mut self, due: Instant, event: QueuedEvent) {
        let key = self.next_key;
        self.next_key += 1;
        self.due.push(std::cmp::Reverse((due, key)));
        self.events.insert(key, event);
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.peek().map(|std::cmp::Reverse((due, _))| *due)
    }

    fn pop_due(&mut self, now: Instant) -> Option<QueuedEvent> {
        let std::cmp::Reverse((due, key)) = *self.due.peek()?;
        if due > now {
            return None;
        }
        self.due.pop();
        self.events.remove(&key)
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn drain(&mut self) -> Vec<QueuedEvent> {
        self.due.clear();
        self.events.drain().map(|(_, event)| event).collect()
    }
}

/// The functions the emulator can invoke. Cheap to share behind an `Arc`.
pub struct LambdaService {
    queues: HashMap<String, mpsc::Sender<QueuedEvent>>,
    cold_starts: HashMap<String, Arc<AtomicU64>>,
    settings: LambdaSettings,
    /// Set to the deadline by [`LambdaService::shutdown`].
    stop: watch::Sender<Option<Instant>>,
    /// Each dispatcher hands back what it did not finish.
    dispatchers: std::sync::Mutex<Vec<(String, JoinHandle<Vec<QueuedEvent>>)>>,
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
        let mut dispatchers = Vec::new();
        let (stop, stopped) = watch::channel(None);
        for spec in functions {
            let (sender, receiver) = mpsc::channel(MAX_QUEUED_EVENTS);
            let started = Arc::new(AtomicU64::new(0));
            cold_starts.insert(spec.name.clone(), Arc::clone(&started));
            let function = Arc::new(Function {
                function_arn: format!(
                    "arn:aws:lambda:{}:{}:function:{}",
                    settings.region, settings.account, spec.name
                ),
                spec,
                settings: settings.clone(),
                logs: logs.clone(),
                cold_starts: started,
            });
            let name = function.spec.name.clone();
            queues.insert(name.clone(), sender);
            let dispatcher = tokio::spawn(Dispatcher::new(function).run(receiver, stopped.clone()));
            dispatchers.push((name, dispatcher));
        }
        Self {
            queues,
            cold_starts,
            settings,
            stop,
            dispatchers: std::sync::Mutex::new(dispatchers),
        }
    }

    /// Stops taking events, lets running invocations finish until `grace` has passed, and returns every event
    /// not finished by then (queued, waiting for a retry, or still running), for [`LambdaService::resume`] after
    /// a restart. Instances are stopped. Later invokes answer [`InvokeError::Stopped`].
    pub async fn shutdown(&self, grace: Duration) -> Vec<PendingEvent> {
        let _ = self.stop.send(Some(Instant::now() + grace));
        let dispatchers = std::mem::take(
            &mut *self
                .dispatchers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let mut pending = Vec::new();
        for (function, dispatcher) in dispatchers {
            match dispatcher.await {
                Ok(events) => pending.extend(events.into_iter().map(|event| PendingEvent {
                    function: function.clone(),
                    request_id: event.request_id,
                    attempts: event.attempts,
                    payload: event.payload,
                    queued_at_ms: event.queued_at_ms,
                })),
                Err(error) => {
                    tracing::error!(%function, %error, "the function's dispatcher failed; its queue is lost")
                }
            }
        }
        pending
    }

    /// Queues events handed back by [`LambdaService::shutdown`] before a restart, with their attempts so far.
    /// Waits for room in a full queue rather than drop one. Events of functions that no longer exist are
    /// logged and skipped.
    pub async fn resume(&self, events: Vec<PendingEvent>) {
        for event in events {
            let Some(queue) = self.queues.get(&event.function) else {
                tracing::error!(function = %event.function, request_id = %event.request_id,
                    "a resumed event names a function the stack no longer has; skipped");
                continue;
            };
            let queued = QueuedEvent {
                payload: event.payload,
                attempts: event.attempts,
                request_id: event.request_id,
                queued_at_ms: event.queued_at_ms,
            };
            if queue.send(queued).await.is_err() {
                tracing::error!(function = %event.function, "the Lambda service stopped while resuming");
                return;
            }
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
            .try_send(QueuedEvent {
                payload,
                attempts: 0,
                request_id: uuid::Uuid::new_v4().to_string(),
                queued_at_ms: crate::clock::now_millis(),
            })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => InvokeError::Throttled {
                    name: function_name.to_owned(),
                    queued: MAX_QUEUED_EVENTS,
                },
                mpsc::error::TrySendError::Closed(_) => InvokeError::Stopped,
            })
    }
}

/// A warm instance: its Runtime API endpoint and its process.
struct Instance {
    runtime: RuntimeApi,
    process: FunctionProcess,
}

/// What every invocation of one function shares.
struct Function {
    spec: FunctionSpec,
    function_arn: String,
    settings: LambdaSettings,
    logs: LogsStore,
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

/// What an invocation tells its dispatcher.
enum Report {
    /// The new instance it had to start is up (or failed to start): another may start now.
    Started,
    /// Done with the event of `ticket`: the instance when it may serve again, and the event again when it is
    /// to be retried (after `retry_delay` times its attempts).
    Finished {
        ticket: u64,
        instance: Option<Box<Instance>>,
        retry: Option<QueuedEvent>,
    },
}

/// Hands queued events to instances: a free warm one first (the most recently used, as Lambda keeps the
/// warmest sandbox busy); else, while fewer than `max_concurrency` run, a new one once the event has waited
/// [`SCALE_UP_AFTER`] for a warm one (at once for the first instance); else the event waits for an instance to
/// come back. New instances start one at a time and [`SCALE_UP_AFTER`] apart, so a burst of short events is
/// drained by a few warm instances instead of starting a process per event, while a hanging instance delays
/// the events behind it by [`SCALE_UP_AFTER`], not its timeout.
struct Dispatcher {
    function: Arc<Function>,
    idle: Vec<Instance>,
    /// Invocations running now (each holds its instance or is starting one).
    running: usize,
    /// An invocation is starting a new instance.
    starting: bool,
    /// When the last new instance came up (or failed to).
    last_started: Instant,
    max_concurrency: usize,
    reports_tx: mpsc::Sender<Report>,
    reports: mpsc::Receiver<Report>,
    /// What each running invocation is working on, so that a shutdown can hand it back.
    in_flight: HashMap<u64, QueuedEvent>,
    next_ticket: u64,
    /// Failed events waiting for their retry.
    delayed: Delayed,
}

impl Dispatcher {
    fn new(function: Arc<Function>) -> Self {
        let max_concurrency = function
            .spec
            .max_concurrency
            .unwrap_or(DEFAULT_CONCURRENCY)
            .max(1) as usize;
        // Every running invocation reports at most twice (started, finished), so this never holds more.
        let (reports_tx, reports) = mpsc::channel(2 * max_concurrency);
        Self {
            function,
            idle: Vec::new(),
            running: 0,
            starting: false,
            last_started: Instant::now(),
            max_concurrency,
            reports_tx,
            reports,
            in_flight: HashMap::new(),
            next_ticket: 0,
            delayed: Delayed::default(),
        }
    }

    /// Runs until the service stops (or is dropped); returns the events it did not finish.
    async fn run(
        mut self,
        mut queue: mpsc::Receiver<QueuedEvent>,
        mut stop: watch::Receiver<Option<Instant>>,
    ) -> Vec<QueuedEvent> {
        // The event taken off the queue (or due for its retry) that waits for an instance, and since when.
        let mut pending: Option<(QueuedEvent, Instant)> = None;
        loop {
            // A dropped service (no sender) stops like a shutdown without grace.
            if stop.borrow().is_some() || stop.has_changed().is_err() {
                break;
            }
            let now = Instant::now();
            if pending.is_none()
                && let Some(event) = self.delayed.pop_due(now)
            {
                pending = Some((event, now));
            }
            if let Some((event, since)) = pending.take() {
                if self.function.too_old(&event) {
                    self.function.record_too_old(&event);
                    continue;
                }
                // How long the event has waited since it was queued, not since it was taken off the queue: a long
                // queue of short events is a backlog too, and should start another instance.
                let queued_for = Duration::from_millis(
                    u64::try_from(crate::clock::now_millis().saturating_sub(event.queued_at_ms))
                        .unwrap_or(0),
                );
                let queued_since = now.checked_sub(queued_for).unwrap_or(since).min(since);
                let scale_up_at = queued_since.max(self.last_started) + SCALE_UP_AFTER;
                let may_start = self.running < self.max_concurrency && !self.starting;
                if !self.idle.is_empty() || (may_start && (self.running == 0 || now >= scale_up_at))
                {
                    self.dispatch(event);
                    continue;
                }
                pending = Some((event, since));
                tokio::select! {
                    biased;
                    _ = stop.changed() => {}
                    Some(report) = self.reports.recv() => self.handle(report),
                    () = tokio::time::sleep_until(scale_up_at), if may_start => {}
                }
                continue;
            }
            let next_due = self.delayed.next_due();
            tokio::select! {
                biased;
                _ = stop.changed() => {}
                Some(report) = self.reports.recv() => self.handle(report),
                // Retries waiting count against the bound: no new event is taken while they fill it.
                event = queue.recv(), if self.delayed.len() < MAX_QUEUED_EVENTS => match event {
                    Some(event) => pending = Some((event, Instant::now())),
                    None => break,
                },
                () = tokio::time::sleep_until(next_due.unwrap_or(now)), if next_due.is_some() => {}
            }
        }
        let deadline = (*stop.borrow()).unwrap_or_else(Instant::now);
        let mut unfinished: Vec<QueuedEvent> =
            pending.into_iter().map(|(event, _)| event).collect();
        queue.close();
        while let Ok(event) = queue.try_recv() {
            unfinished.push(event);
        }
        while self.running > 0 {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(report)) => self.handle(report),
                Ok(None) | Err(_) => break,
            }
        }
        unfinished.extend(self.delayed.drain());
        unfinished.extend(self.in_flight.drain().map(|(_, event)| event));
        for mut instance in self.idle.drain(..) {
            instance.process.kill().await;
        }
        if !unfinished.is_empty() {
            tracing::warn!(function = %self.function.spec.name, events = unfinished.len(),
                "stopping with unfinished events: handed back to be resumed");
        }
        unfinished
    }

    fn handle(&mut self, report: Report) {
        match report {
            Report::Started => {
                self.starting = false;
                self.last_started = Instant::now();
            }
            Report::Finished {
                ticket,
                instance,
                retry,
            } => {
                self.running -= 1;
                self.in_flight.remove(&ticket);
                if let Some(instance) = instance {
                    self.idle.push(*instance);
                }
                if let Some(event) = retry {
                    let delay = self.function.settings.retry_delay * event.attempts;
                    self.delayed.push(Instant::now() + delay, event);
                }
            }
        }
    }

    fn dispatch(&mut self, event: QueuedEvent) {
        self.running += 1;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.in_flight.insert(
            ticket,
            QueuedEvent {
                payload: event.payload.clone(),
                attempts: event.attempts,
                request_id: event.request_id.clone(),
                queued_at_ms: event.queued_at_ms,
            },
        );
        let instance = self.idle.pop();
        let announce_start = instance.is_none();
        self.starting |= announce_start;
        let function = Arc::clone(&self.function);
        let reports = self.reports_tx.clone();
        tokio::spawn(async move {
            let (instance, retry) = function
                .invoke(instance, event, &reports, announce_start)
                .await;
            let _ = reports
                .send(Report::Finished {
                    ticket,
                    instance: instance.map(Box::new),
                    retry,
                })
                .await;
        });
    }
}

impl Function {
    /// One attempt of `event` on `instance` (or a new one). Returns the instance when it may serve again, and
    /// the event when it is to be retried; when its retries are spent, the failure is recorded here.
    async fn invoke(
        &self,
        instance: Option<Instance>,
        mut event: QueuedEvent,
        reports: &mpsc::Sender<Report>,
        announce_start: bool,
    ) -> (Option<Instance>, Option<QueuedEvent>) {
        let (instance, outcome) = self
            .attempt(instance, &event, reports, announce_start)
            .await;
        event.attempts += 1;
        let Attempt::Failed {
            function_error,
            error_type,
            error_message,
        } = outcome
        else {
            return (instance, None);
        };
        tracing::warn!(function = %self.spec.name, request_id = %event.request_id,
            attempt = event.attempts, %error_type, %error_message, "async invocation failed");
        if event.attempts <= self.spec.maximum_retry_attempts {
            return (instance, Some(event));
        }
        self.record_failure(&event, function_error, &error_type, &error_message);
        (instance, None)
    }

    async fn attempt(
        &self,
        instance: Option<Instance>,
        event: &QueuedEvent,
        reports: &mpsc::Sender<Report>,
        announce_start: bool,
    ) -> (Option<Instance>, Attempt) {
        // An idle instance whose process exited meanwhile is not reused.
        let warm = instance.and_then(|mut instance| {
            instance
                .process
                .try_exit_status()
                .is_none()
                .then_some(instance)
        });
        let mut instance = match warm {
            Some(instance) => instance,
            None => match self
                .started(self.start_instance().await, reports, announce_start)
                .await
            {
                Ok(instance) => instance,
                Err(message) => {
                    return (
                        None,
                        Attempt::Failed {
                            function_error: "Unhandled",
                            error_type: "Runtime.InvalidEntrypoint".into(),
                            error_message: message,
                        },
                    );
                }
            },
        };
        let outcome = tokio::select! {
            outcome = instance.runtime.invoke(event.payload.clone(), self.spec.timeout) => outcome,
            status = instance.process.exited() => {
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(error) => error.to_string(),
                };
                // Lambda reports a runtime that dies mid-invocation as Runtime.ExitError.
                return (None, Attempt::Failed {
                    function_error: "Unhandled",
                    error_type: "Runtime.ExitError".into(),
                    error_message: format!(
                        "RequestId: {} Error: Runtime exited with error: {status}",
                        event.request_id
                    ),
                });
            }
        };
        match outcome {
            Ok(InvocationResult::Response(_)) => (Some(instance), Attempt::Succeeded),
            Ok(InvocationResult::Error {
                error_type,
                error_message,
            }) => (
                Some(instance),
                Attempt::Failed {
                    function_error: "Unhandled",
                    error_type,
                    error_message,
                },
            ),
            Err(error) => {
                // The sandbox is not trusted after a timeout or an init failure: replace it.
                instance.process.kill().await;
                let error_type = match &error {
                    HostError::Timeout(_) => "Sandbox.Timedout",
                    HostError::InitError { .. } => "Runtime.InitError",
                    _ => "Runtime.Unknown",
                };
                (
                    None,
                    Attempt::Failed {
                        function_error: "Unhandled",
                        error_type: error_type.into(),
                        error_message: error.to_string(),
                    },
                )
            }
        }
    }

    /// Passes a start's result through, telling the dispatcher first when it waits for this start.
    async fn started(
        &self,
        result: Result<Instance, String>,
        reports: &mpsc::Sender<Report>,
        announce: bool,
    ) -> Result<Instance, String> {
        if announce {
            let _ = reports.send(Report::Started).await;
        }
        result
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

    /// Whether `event` has waited longer than `MaximumEventAgeInSeconds` since it was first queued.
    fn too_old(&self, event: &QueuedEvent) -> bool {
        let age_ms = crate::clock::now_millis().saturating_sub(event.queued_at_ms);
        u128::try_from(age_ms).is_ok_and(|age| age > self.spec.maximum_event_age.as_millis())
    }

    /// An event past its maximum age goes to the destination instead of being invoked (again).
    fn record_too_old(&self, event: &QueuedEvent) {
        self.record(
            event,
            EVENT_AGE_EXCEEDED,
            "Unhandled",
            "EventAgeExceeded",
            &format!(
                "The event was not processed within MaximumEventAgeInSeconds ({} s)",
                self.spec.maximum_event_age.as_secs()
            ),
        );
    }

    /// The record Lambda sends to an on-failure destination when the retries are spent.
    fn record_failure(
        &self,
        event: &QueuedEvent,
        function_error: &str,
        error_type: &str,
        error_message: &str,
    ) {
        self.record(
            event,
            "RetriesExhausted",
            function_error,
            error_type,
            error_message,
        );
    }

    fn record(
        &self,
        event: &QueuedEvent,
        condition: &str,
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
        record["requestContext"]["condition"] = serde_json::json!(condition);
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
