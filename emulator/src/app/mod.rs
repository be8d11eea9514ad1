//! The whole emulator wired together (architecture section 4): the broker, the shadow service behind
//! it, the control-plane, data-plane and CloudWatch Logs HTTP APIs (one listener each), the rules engine and the
//! Lambda service running the real function binaries, all loaded from the synthesized template.
//!
//! Shadow glue: the shadow service subscribes through the broker's in-process API to
//! `$aws/things/+/shadow/#`, so every accepted publish on a request topic (from a device, the HTTP
//! Publish API or a rule's republish) reaches [`ShadowService::handle_mqtt`] after the broker has routed
//! the message itself, and the answers are published back through the broker at QoS 1 (reference 3.2).
//! Wills on shadow topics are passed as `MessageOrigin::LastWill` and ignored (reference 2.3).

pub mod template;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::broker::{
    Broker, BrokerConfig, BrokerError, ConsumerTask, RunningBroker, drain_consumers,
};
use crate::controlplane::{ControlPlane, ControlPlaneSettings};
use crate::dataplane::DataPlane;
use crate::http_listener::{self, BoundedListener};
use crate::identity::EmulatorCa;
use crate::lambda::{FunctionSpec, LambdaService, LambdaSettings, SHUTDOWN_GRACE};
use crate::logs::{LogsError, LogsIdentity, LogsService, LogsStore};
use crate::publish::Publisher;
use crate::registry::Registry;
use crate::rules::{RulesEngine, RulesError};
use crate::shadow::{MessageOrigin, ShadowService, ShadowStore, ShadowStoreError};
use template::StackTemplate;

/// How long the rules and the shadow service get at shutdown to handle what is queued (each message is
/// quick: a Lambda action only queues its event).
const QUEUE_DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// How long requests under way (functions writing their last records) get once the APIs stop.
const HTTP_DRAIN_DEADLINE: Duration = Duration::from_secs(2);

pub use template::TemplateError;

/// The service name the shadow service's publications carry (`Origin::Service`).
pub const SHADOW_SERVICE_NAME: &str = "shadow";
/// The service name of HTTP Publish (`clientid()` is `n/a` for it, reference 5.3).
pub const DATA_PLANE_SERVICE_NAME: &str = "data-plane";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Logs(#[from] LogsError),
    #[error(transparent)]
    Shadows(#[from] ShadowStoreError),
    #[error("creating {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding the {api} API on {address}: {source}")]
    Bind {
        api: &'static str,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Where to find each function's binary: an explicit map, else `<default_dir>/<function name>`.
#[derive(Debug, Clone, Default)]
pub struct FunctionBinaries {
    pub default_dir: PathBuf,
    pub overrides: BTreeMap<String, PathBuf>,
}

impl FunctionBinaries {
    /// The directory of the running executable: `cargo build` puts `iot-emulator` and the function
    /// binaries side by side in `$CARGO_TARGET_DIR/debug`.
    pub fn next_to_current_exe() -> Self {
        let default_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            default_dir,
            overrides: BTreeMap::new(),
        }
    }

    pub fn path(&self, function: &str) -> PathBuf {
        self.overrides
            .get(function)
            .cloned()
            .unwrap_or_else(|| self.default_dir.join(function))
    }
}

/// Everything `iot-emulator up` configures.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub broker: BrokerConfig,
    /// Address of the HTTP APIs; port 0 picks a free port.
    pub control_plane_bind: SocketAddr,
    pub data_plane_bind: SocketAddr,
    pub logs_bind: SocketAddr,
    /// The web console ([`crate::console`]).
    pub console_bind: SocketAddr,
    /// Shadows (`shadows/`), logs (`logs/`), the broker's retained messages and persistent sessions
    /// (`broker/journal.jsonl`) and function output (`lambda/<name>.log`) live here; `None` keeps them in
    /// memory and lets functions log to our stderr.
    pub state_dir: Option<PathBuf>,
    pub stack: StackTemplate,
    pub binaries: FunctionBinaries,
    /// Delay before the first async retry of a failed invocation (Lambda: about a minute).
    pub lambda_retry_delay: Duration,
    /// Extra environment for every function (e.g. `RUST_LOG`).
    pub function_environment: BTreeMap<String, String>,
}

impl EmulatorConfig {
    /// 127.0.0.1 with free ports, in-memory state: what tests want.
    pub fn local(broker: BrokerConfig, stack: StackTemplate) -> Self {
        let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            broker,
            control_plane_bind: any_port,
            data_plane_bind: any_port,
            logs_bind: any_port,
            console_bind: any_port,
            state_dir: None,
            stack,
            binaries: FunctionBinaries::next_to_current_exe(),
            lambda_retry_delay: Duration::from_secs(1),
            function_environment: BTreeMap::new(),
        }
    }
}

/// A running emulator: its endpoints, its services, and the way to stop it.
pub struct RunningEmulator {
    broker: RunningBroker,
    control_plane_addr: SocketAddr,
    data_plane_addr: SocketAddr,
    console_addr: SocketAddr,
    logs_addr: SocketAddr,
    shadows: Arc<ShadowService>,
    logs: LogsStore,
    lambda: Arc<LambdaService>,
    /// Where unfinished Lambda events are kept across a restart (`{state}/lambda`).
    lambda_dir: Option<PathBuf>,
    rules: RulesEngine,
    shadow_glue: ConsumerTask,
    http_servers: Vec<HttpServer>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("mqtt", &self.broker.local_addr())
            .field("control_plane", &self.control_plane_addr)
            .field("data_plane", &self.data_plane_addr)
            .field("logs", &self.logs_addr)
            .finish_non_exhaustive()
    }
}

async fn serve(
    api: &'static str,
    address: SocketAddr,
    router: axum::Router,
) -> Result<(SocketAddr, HttpServer), AppError> {
    let bind_error = |source| AppError::Bind {
        api,
        address,
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(http_listener::serve(
        BoundedListener::new(listener),
        router,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok((local, HttpServer { api, task, stop }))
}

/// One running HTTP API and the signal that starts its graceful shutdown (no new connections; requests under
/// way finish).
struct HttpServer {
    api: &'static str,
    task: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

/// Stops every server gracefully, waiting at most `deadline` for the requests under way.
async fn stop_http_servers(servers: Vec<HttpServer>, deadline: Duration) {
    let until = tokio::time::Instant::now() + deadline;
    let mut tasks = Vec::with_capacity(servers.len());
    for server in servers {
        let _ = server.stop.send(());
        tasks.push((server.api, server.task));
    }
    for (api, mut task) in tasks {
        if tokio::time::timeout_at(until, &mut task).await.is_err() {
            tracing::warn!(
                api,
                ?deadline,
                "requests still under way at the shutdown deadline: cut"
            );
            task.abort();
        }
    }
}

impl RunningEmulator {
    pub async fn start(
        config: EmulatorConfig,
        registry: Arc<Registry>,
        ca: Arc<EmulatorCa>,
    ) -> Result<RunningEmulator, AppError> {
        let (shadow_store, logs) = match &config.state_dir {
            Some(dir) => (
                ShadowStore::open(dir.join("shadows"))?,
                LogsStore::open(dir.join("logs"))?,
            ),
            None => (ShadowStore::in_memory(), LogsStore::in_memory()),
        };
        // Log group ARNs name the same region and account as IoT's (rule and function ARNs).
        let logs = logs.with_identity(LogsIdentity {
            region: config.broker.region.clone(),
            account_id: config.broker.account.clone(),
        });
        for (group, retention_days) in &config.stack.log_groups {
            match logs.create_log_group(group) {
                Ok(()) | Err(LogsError::LogGroupAlreadyExists) => {}
                Err(error) => return Err(error.into()),
            }
            if let Some(days) = retention_days
                && let Err(error) = logs.put_retention_policy(group, *days)
            {
                tracing::warn!(%group, %error, "retention not applied");
            }
        }

        let mut broker_config = config.broker.clone();
        if broker_config.state_dir.is_none() {
            // Retained messages and persistent sessions survive a restart on the same state directory.
            broker_config.state_dir = config.state_dir.as_ref().map(|dir| dir.join("broker"));
        }
        let running_broker = Broker::start(broker_config, Arc::clone(&registry), &ca).await?;
        let broker = running_broker.broker().clone();
        let mut http_servers = Vec::new();

        let control_plane = ControlPlane::new(
            registry,
            ca,
            ControlPlaneSettings {
                region: config.broker.region.clone(),
                account: config.broker.account.clone(),
                mqtt_host: display_host(running_broker.local_addr().ip()).to_string(),
                rules: config.stack.rules.clone(),
            },
        );
        let control_plane_router = control_plane.with_broker(broker.clone()).router();
        let (control_plane_addr, task) = serve(
            "control-plane",
            config.control_plane_bind,
            control_plane_router.clone(),
        )
        .await?;
        http_servers.push(task);

        let shadow_publisher: Arc<dyn Publisher> =
            Arc::new(broker.service_publisher(SHADOW_SERVICE_NAME));
        let shadows = Arc::new(ShadowService::new(shadow_store, shadow_publisher));
        let shadow_glue = spawn_shadow_glue(&broker, Arc::clone(&shadows))?;

        let data_plane = DataPlane::new(
            Arc::clone(&shadows),
            Arc::new(broker.bounded_service_publisher(DATA_PLANE_SERVICE_NAME)),
        )
        .with_broker(broker.clone());
        let (data_plane_addr, task) =
            serve("data-plane", config.data_plane_bind, data_plane.router()).await?;
        http_servers.push(task);
        let (logs_addr, task) = serve(
            "CloudWatch Logs",
            config.logs_bind,
            LogsService::new(logs.clone()).router(),
        )
        .await?;
        http_servers.push(task);
        // The console calls the same APIs in-process; what it publishes says it came from the console.
        let console_data_plane = DataPlane::new(
            Arc::clone(&shadows),
            Arc::new(broker.bounded_service_publisher(crate::console::CONSOLE_SERVICE_NAME)),
        )
        .with_broker(broker.clone());
        let (console_addr, task) = serve(
            "console",
            config.console_bind,
            crate::console::router(
                control_plane_router,
                console_data_plane.router(),
                LogsService::new(logs.clone()).router(),
            ),
        )
        .await?;
        http_servers.push(task);

        if let Some(dir) = &config.state_dir {
            let lambda_dir = dir.join("lambda");
            std::fs::create_dir_all(&lambda_dir).map_err(|source| AppError::StateDir {
                path: lambda_dir,
                source,
            })?;
        }
        let functions = function_specs(&config, data_plane_addr, logs_addr);
        let lambda = Arc::new(LambdaService::start(
            functions,
            LambdaSettings {
                region: config.broker.region.clone(),
                account: config.broker.account.clone(),
                retry_delay: config.lambda_retry_delay,
            },
            logs.clone(),
        ));
        let lambda_dir = config.state_dir.as_ref().map(|dir| dir.join("lambda"));
        if let Some(dir) = &lambda_dir {
            // Events the last clean shutdown could not finish, before any new one.
            match crate::lambda::pending::take(dir) {
                Ok(events) if !events.is_empty() => {
                    tracing::info!(events = events.len(), "resuming unfinished Lambda events");
                    lambda.resume(events).await;
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "cannot read the unfinished Lambda events"),
            }
        }
        let rules = RulesEngine::start(
            &config.stack.rules,
            &broker,
            Arc::clone(&lambda),
            logs.clone(),
        )?;
        Ok(RunningEmulator {
            broker: running_broker,
            control_plane_addr,
            data_plane_addr,
            logs_addr,
            console_addr,
            shadows,
            logs,
            lambda,
            lambda_dir,
            rules,
            shadow_glue,
            http_servers,
        })
    }

    pub fn mqtt_addr(&self) -> SocketAddr {
        self.broker.local_addr()
    }

    pub fn control_plane_addr(&self) -> SocketAddr {
        self.control_plane_addr
    }

    pub fn data_plane_addr(&self) -> SocketAddr {
        self.data_plane_addr
    }

    pub fn logs_addr(&self) -> SocketAddr {
        self.logs_addr
    }

    pub fn console_addr(&self) -> SocketAddr {
        self.console_addr
    }

    /// Base URL for `AWS_ENDPOINT_URL_IOT` / `aws iot --endpoint-url` / boto3's `endpoint_url`.
    pub fn control_plane_url(&self) -> String {
        format!("http://{}", self.control_plane_addr)
    }

    /// Base URL for `AWS_ENDPOINT_URL_IOT_DATA_PLANE` / `aws iot-data --endpoint-url`.
    pub fn data_plane_url(&self) -> String {
        format!("http://{}", self.data_plane_addr)
    }

    /// Base URL for `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS` / `aws logs --endpoint-url`.
    pub fn logs_url(&self) -> String {
        format!("http://{}", self.logs_addr)
    }

    pub fn broker(&self) -> &Broker {
        self.broker.broker()
    }

    pub fn shadows(&self) -> &Arc<ShadowService> {
        &self.shadows
    }

    pub fn logs(&self) -> &LogsStore {
        &self.logs
    }

    pub fn lambda(&self) -> &Arc<LambdaService> {
        &self.lambda
    }

    pub fn rule_names(&self) -> &[String] {
        self.rules.rule_names()
    }

    /// Stops in order, each stage under a deadline (docs/emulator.md, "Shutdown"): the broker ends every session
    /// (wills and `disconnected` events still reach the rules) and closes the in-process queues; the rules and
    /// the shadow service finish what is queued; the Lambda service finishes or keeps its events; the HTTP APIs,
    /// which functions write to until then, stop last.
    pub async fn shutdown(self) {
        let RunningEmulator {
            broker,
            rules,
            shadow_glue,
            http_servers,
            lambda,
            lambda_dir,
            ..
        } = self;
        broker.shutdown().await;
        let mut consumers = rules.into_consumers();
        consumers.push(shadow_glue);
        let lost = drain_consumers(consumers, QUEUE_DRAIN_DEADLINE).await;
        if lost > 0 {
            tracing::error!(
                messages = lost,
                "messages not handed to rules or shadows at shutdown"
            );
        }
        let unfinished = lambda.shutdown(SHUTDOWN_GRACE).await;
        if !unfinished.is_empty() {
            match &lambda_dir {
                Some(dir) => match crate::lambda::pending::save(dir, &unfinished) {
                    Ok(()) => tracing::info!(
                        events = unfinished.len(),
                        "unfinished Lambda events kept for the next start"
                    ),
                    Err(error) => tracing::error!(%error, events = unfinished.len(),
                        "cannot keep the unfinished Lambda events: they are lost"),
                },
                None => tracing::error!(
                    events = unfinished.len(),
                    "unfinished Lambda events are lost: the emulator runs without a state directory"
                ),
            }
        }
        stop_http_servers(http_servers, HTTP_DRAIN_DEADLINE).await;
    }
}

/// Each template function with its binary and Lambda's environment, pointed back at the emulator with
/// dummy credentials (architecture section 4).
fn function_specs(
    config: &EmulatorConfig,
    data_plane: SocketAddr,
    logs: SocketAddr,
) -> Vec<FunctionSpec> {
    config
        .stack
        .functions
        .iter()
        .filter_map(|function| {
            let binary = config.binaries.path(&function.name);
            if !binary.is_file() {
                tracing::warn!(function = %function.name, binary = %binary.display(),
                    "no binary for this function: invoking it fails as for a missing function \
                     (build it with `cargo build -p {}`)", function.name);
                return None;
            }
            let mut environment = function.environment.clone();
            environment.extend(config.function_environment.clone());
            for (key, value) in [
                ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", format!("http://{logs}")),
                (
                    "AWS_ENDPOINT_URL_IOT_DATA_PLANE",
                    format!("http://{data_plane}"),
                ),
                ("AWS_ACCESS_KEY_ID", "emulator".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "emulator".to_owned()),
                ("AWS_SESSION_TOKEN", "emulator".to_owned()),
            ] {
                environment.insert(key.to_owned(), value);
            }
            Some(FunctionSpec {
                name: function.name.clone(),
                binary,
                environment,
                timeout: Duration::from_secs(function.timeout_secs),
                memory_mb: function.memory_mb,
                maximum_retry_attempts: function.maximum_retry_attempts,
                maximum_event_age: Duration::from_secs(function.maximum_event_age_secs),
                on_failure_destination: function.on_failure_destination.clone(),
                log_file: config
                    .state_dir
                    .as_ref()
                    .map(|dir| dir.join("lambda").join(format!("{}.log", function.name))),
                max_concurrency: function.reserved_concurrency,
            })
        })
        .collect()
}

fn spawn_shadow_glue(
    broker: &Broker,
    shadows: Arc<ShadowService>,
) -> Result<ConsumerTask, BrokerError> {
    let requests = broker.subscribe_internal("$aws/things/+/shadow/#")?;
    Ok(ConsumerTask::spawn(
        "shadow service",
        requests,
        move |message| {
            let origin = if message.is_will {
                MessageOrigin::LastWill
            } else {
                MessageOrigin::Publish
            };
            // Responses (accepted/rejected/delta/documents) come back through this subscription too;
            // handle_mqtt answers requests only. The answers go out through the service's own publisher.
            shadows.publish_all(shadows.handle_mqtt(&message.topic, &message.payload, origin));
        },
    ))
}

/// The address to print for a listener bound on `bind` (an unspecified address is reachable on loopback).
pub fn display_host(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bind
    }
}
