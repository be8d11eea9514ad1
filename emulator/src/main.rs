//! `iot-emulator`: a local AWS IoT Core. `up` runs it; `provision` creates a device like
//! `create-keys-and-certificate` + `attach-policy` + `attach-thing-principal`; `policy` and `certificate` manage
//! the registry; `shadow`, `logs` and `publish` talk to a running emulator over its HTTP APIs. See
//! docs/emulator.md.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use iot_emulator::app::template::StackTemplate;
use iot_emulator::app::{EmulatorConfig, FunctionBinaries, RunningEmulator, display_host};
use iot_emulator::broker::{BrokerConfig, LifecycleFaults, SubscribeDenial};
use iot_emulator::cli::client;
use iot_emulator::cli::control_plane::ControlPlaneClient;
use iot_emulator::cli::endpoints::{Endpoints, EndpointsError};
use iot_emulator::cli::logs_tail::{LogTail, LogsClient, RetryBackoff, format_timestamp};
use iot_emulator::cli::provision::{
    AGENT_CONFIG_FILE, AgentConfigInput, ProvisionOutcome, THERMAL_ZONE, agent_config_toml,
    provision_warnings, run_agent_command,
};
use iot_emulator::cli::subscribe::{self, SubscribeError, TailLine};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::percent;
use iot_emulator::registry::{self, CertificateStatus, Registry};
use iot_emulator::state_lock::StateLock;

#[derive(Parser)]
#[command(name = "iot-emulator", version, about = "A local AWS IoT Core")]
struct Cli {
    /// Where the CA, the registry and provisioned devices live.
    #[arg(
        long,
        global = true,
        env = "IOT_EMULATOR_STATE_DIR",
        default_value = ".iot-emulator"
    )]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the emulator until Ctrl-C.
    Up(UpArgs),
    /// Create a thing with an ACTIVE certificate signed by the emulator CA, attach policies, write the files.
    Provision(ProvisionArgs),
    /// Load policies into the registry.
    Policy(PolicySource),
    /// Set a certificate's status (UpdateCertificate).
    Certificate {
        certificate_id: String,
        /// ACTIVE, INACTIVE or REVOKED
        status: String,
    },
    /// Read or update a shadow of the running emulator (GetThingShadow / UpdateThingShadow over HTTP).
    #[command(subcommand)]
    Shadow(ShadowCommand),
    /// The things of the running emulator (its control-plane API).
    #[command(subcommand)]
    Things(ThingsCommand),
    /// Read log groups of the running emulator (FilterLogEvents over HTTP).
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Print `export` lines that point the AWS CLI and SDKs at the running emulator: `eval "$(iot-emulator env)"`.
    Env,
    /// Watch the messages on topics matching the filters, live, as a service identity (no device policy
    /// applies): `time topic payload` per line. Follows the emulator across restarts.
    Subscribe {
        /// MQTT topic filters, e.g. 'data/#' '$aws/things/+/shadow/#' '$aws/events/#'.
        #[arg(required = true)]
        filters: Vec<String>,
        /// Print each message as a JSON line (timestamp, topic, qos, retain, publisher, payload).
        #[arg(long)]
        json: bool,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
        /// Exit after this many seconds (with status 0, whatever arrived).
        #[arg(long)]
        duration: Option<f64>,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Publish a message through the running emulator's data-plane Publish API.
    Publish {
        topic: String,
        payload: String,
        #[arg(long, default_value_t = 0)]
        qos: u8,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
}

#[derive(Args)]
struct EndpointArgs {
    /// The data-plane URL; default: from {state-dir}/endpoints.json written by `up`.
    #[arg(long)]
    data_plane_url: Option<String>,
    /// The CloudWatch Logs URL; default: from {state-dir}/endpoints.json written by `up`.
    #[arg(long)]
    logs_url: Option<String>,
}

#[derive(Subcommand)]
enum ShadowCommand {
    /// Print a shadow document.
    Get {
        thing: String,
        /// A named shadow (default: the classic shadow).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Send an update document, e.g. '{"state":{"desired":{"MOTOR":"ON"}}}'.
    Update {
        thing: String,
        document: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// Delete a shadow (DeleteThingShadow); prints what AWS answers (the version deleted).
    Delete {
        thing: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
    /// The thing's named shadows (ListNamedShadowsForThing).
    List {
        thing: String,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
}

#[derive(Subcommand)]
enum ThingsCommand {
    /// Every thing of the running emulator with its attributes (ListThings, all pages).
    List,
}

#[derive(Subcommand)]
enum LogsCommand {
    /// Print the events of a log group (all streams, oldest first); `--follow` keeps polling.
    Tail {
        group: String,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
        /// Keep polling for new events; when the emulator goes away, wait for it and go on from the last event.
        #[arg(long)]
        follow: bool,
        /// Print timestamps as milliseconds since the epoch (as FilterLogEvents answers) instead of RFC 3339 UTC.
        #[arg(long)]
        epoch_millis: bool,
        /// Exit after this many events (with --follow: wait until there are that many).
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        endpoints: EndpointArgs,
    },
}

#[derive(Args)]
struct PolicySource {
    /// A synthesized CloudFormation template; every AWS::IoT::Policy in it is loaded.
    #[arg(long)]
    template: Option<PathBuf>,
    /// A plain policy document, as NAME=PATH. Repeatable.
    #[arg(long = "policy-file", value_name = "NAME=PATH")]
    policy_files: Vec<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "123456789012")]
    account: String,
}

#[derive(Args)]
struct UpArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// MQTT over TLS port (AWS: 8883).
    /// [default: 8883]
    #[arg(long)]
    mqtt_port: Option<u16>,
    #[command(flatten)]
    policies: PolicySource,
    /// Lowest keep-alive accepted, in seconds (AWS: 30). Lower only for tests of the keep-alive timeout.
    #[arg(long, default_value_t = 30)]
    keep_alive_floor: u64,
    /// Lifecycle versionNumber reset after this many seconds offline (AWS: about 3600).
    #[arg(long, default_value_t = 3600)]
    version_reset_after: u64,
    /// Persistent session expiry in seconds (AWS default: 3600).
    #[arg(long, default_value_t = 3600)]
    session_expiry: u64,
    /// Answer a denied SUBSCRIBE with SUBACK 0x80 instead of disconnecting (AWS observed: disconnect).
    #[arg(long)]
    suback_on_denied_subscribe: bool,
    /// Fault injection: probability that a lifecycle event is published twice.
    #[arg(long, default_value_t = 0.0)]
    lifecycle_duplicate: f64,
    /// Fault injection: probability that a lifecycle event is swapped with the next one.
    #[arg(long, default_value_t = 0.0)]
    lifecycle_reorder: f64,
    /// Control-plane HTTP API port (things, certificates, policies: `aws iot`, boto3 "iot"); 0 picks a free one.
    /// [default: 8090]
    #[arg(long)]
    control_plane_port: Option<u16>,
    /// Data-plane HTTP API port (shadows, publish); 0 picks a free one.
    /// [default: 8088]
    #[arg(long)]
    data_plane_port: Option<u16>,
    /// CloudWatch Logs HTTP API port; 0 picks a free one.
    /// [default: 8089]
    #[arg(long)]
    logs_port: Option<u16>,
    /// Web console port (things, shadows, MQTT test client); 0 picks a free one.
    /// [default: 8091]
    #[arg(long)]
    console_port: Option<u16>,
    /// Every port not given picks a free one (MQTT and all the HTTP APIs), e.g. for a second emulator or a
    /// test; `endpoints.json` says where they are.
    #[arg(long)]
    free_ports: bool,
    /// Where the function binaries are (`<dir>/<FunctionName>`); default: next to this executable.
    #[arg(long)]
    functions_dir: Option<PathBuf>,
    /// A function binary, as NAME=PATH (repeatable; wins over --functions-dir).
    #[arg(long = "function", value_name = "NAME=PATH")]
    function_binaries: Vec<String>,
    /// Seconds before the first async retry of a failed invocation (Lambda: about 60); the second waits twice as long.
    #[arg(long, default_value_t = 1.0)]
    lambda_retry_delay: f64,
}

#[derive(Args)]
struct ProvisionArgs {
    thing: String,
    /// Policy to attach (repeatable). Default: every policy in the registry.
    #[arg(long = "policy")]
    policies: Vec<String>,
    #[command(flatten)]
    source: PolicySource,
    /// Output directory; default {state-dir}/devices/{thing}.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Ordinary errors end as `error: <message>: <cause>: ...` and exit status 1. `main` returning the error
/// would print its `Debug` form instead, which with `RUST_BACKTRACE=1` (a common setting) is a backtrace of
/// some 70 lines for a typo or an emulator that is not running.
#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error_report(&error));
            ExitCode::FAILURE
        }
    }
}

/// What the CLI prints for `error`: the message and its causes (as `{:#}` would), never a backtrace. Many
/// of the crate's errors already quote their source in their message; such a cause is not repeated.
fn error_report(error: &anyhow::Error) -> String {
    let mut report = String::from("error: ");
    let mut said = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if said.contains(&text) {
            continue;
        }
        if !said.is_empty() {
            report.push_str(": ");
        }
        report.push_str(&text);
        said = text;
    }
    report
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let state_dir = cli.state_dir;
    // Only the commands that change identities open the state; the HTTP clients (shadow, logs, publish)
    // must not create a registry or a CA in whatever directory they were pointed at.
    let registry = || Registry::open(&state_dir).context("opening the registry");
    let ca = || EmulatorCa::load_or_create(&state_dir).context("loading the emulator CA");
    // The registry's files have one writer at a time: `up` for as long as it runs, else the command at hand.
    // While `up` runs, the registry commands go through its control plane, so the change applies at once.
    match cli.command {
        Command::Up(args) => {
            let _lock = StateLock::try_acquire(&state_dir, "up")?;
            up(args, &state_dir, Arc::new(registry()?), Arc::new(ca()?)).await
        }
        Command::Provision(args) => match RegistryAccess::open(&state_dir, "provision")? {
            RegistryAccess::Files(_lock) => provision(args, &state_dir, &registry()?, &ca()?),
            RegistryAccess::Running(client) => provision_running(args, &state_dir, &client).await,
        },
        Command::Policy(source) => {
            let template = read_template(&source)?;
            let names = match RegistryAccess::open(&state_dir, "policy")? {
                RegistryAccess::Files(_lock) => {
                    load_policies(&registry()?, &source, template.as_deref())?
                }
                RegistryAccess::Running(client) => {
                    put_policies_running(&client, &source, template.as_deref()).await?
                }
            };
            println!("loaded policies: {}", names.join(", "));
            Ok(())
        }
        Command::Certificate {
            certificate_id,
            status,
        } => {
            let status: CertificateStatus = status.parse()?;
            match RegistryAccess::open(&state_dir, "certificate")? {
                RegistryAccess::Files(_lock) => {
                    registry()?.set_certificate_status(&certificate_id, status)?
                }
                RegistryAccess::Running(client) => {
                    client.update_certificate(&certificate_id, status).await?
                }
            }
            println!("{certificate_id} {status:?}");
            Ok(())
        }
        Command::Env => {
            print!("{}", running_endpoints(&state_dir)?.shell_exports());
            Ok(())
        }
        Command::Shadow(command) => shadow_command(command, &state_dir).await,
        Command::Things(ThingsCommand::List) => list_things(&state_dir).await,
        Command::Logs(command) => logs_command(command, &state_dir).await,
        Command::Subscribe {
            filters,
            json,
            count,
            duration,
            endpoints,
        } => {
            let watch = subscribe(&filters, json, count, &endpoints, &state_dir);
            match duration {
                Some(seconds) => {
                    let limit = Duration::try_from_secs_f64(seconds)
                        .context("--duration must be a number of seconds")?;
                    tokio::time::timeout(limit, watch).await.unwrap_or(Ok(()))
                }
                None => watch.await,
            }
        }
        Command::Publish {
            topic,
            payload,
            qos,
            endpoints,
        } => {
            let url = endpoints.data_plane(&state_dir)?;
            let path = format!("/topics/{}?qos={qos}", percent::url_component(&topic));
            let response = client::request("POST", &url, &path, &[], payload.as_bytes()).await?;
            print_response(&response)
        }
    }
}

/// The endpoints file of the emulator running in `state_dir`; a missing file says how to get one.
fn running_endpoints(state_dir: &Path) -> anyhow::Result<Endpoints> {
    match Endpoints::read(state_dir) {
        Err(EndpointsError::Read { path, source }) if source.kind() == ErrorKind::NotFound => {
            bail!(
                "no running emulator found: {} does not exist; start one with `iot-emulator up` \
                 (and give this command the --state-dir it runs with)",
                path.display()
            )
        }
        other => Ok(other?),
    }
}

/// The `--template` file's text, if one was given.
fn read_template(source: &PolicySource) -> anyhow::Result<Option<String>> {
    source
        .template
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        })
        .transpose()
}

/// Where a registry change goes: the files, under the state directory's lock, or the control plane of the
/// `up` that holds the lock.
enum RegistryAccess {
    Files(StateLock),
    Running(ControlPlaneClient),
}

impl RegistryAccess {
    fn open(state_dir: &Path, purpose: &str) -> anyhow::Result<RegistryAccess> {
        let in_use = match StateLock::try_acquire(state_dir, purpose) {
            Ok(lock) => return Ok(RegistryAccess::Files(lock)),
            Err(error) if error.is_in_use() => error,
            Err(error) => return Err(error.into()),
        };
        let endpoints = Endpoints::read(state_dir)
            .with_context(|| format!("{in_use}; and its endpoints file cannot be read"))?;
        let Some(url) = endpoints.control_plane else {
            bail!(
                "{in_use}; it serves no control-plane API (an older iot-emulator): stop it first"
            );
        };
        Ok(RegistryAccess::Running(ControlPlaneClient::new(url)))
    }
}

/// The template's policies (`template` is the text of `source.template`) and the `--policy-file`s, as
/// (name, document JSON).
fn policy_documents(
    source: &PolicySource,
    template: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut documents = Vec::new();
    if let Some(text) = template {
        for (name, document) in
            iot_policy::load_policies_from_template(text, &source.account, &source.region)?
        {
            documents.push((name, document.to_json().to_string()));
        }
    }
    for entry in &source.policy_files {
        let Some((name, path)) = entry.split_once('=') else {
            bail!("--policy-file takes NAME=PATH, got {entry}");
        };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        documents.push((name.to_owned(), text));
    }
    Ok(documents)
}

/// Stores the policies of `source` in the registry's files; returns their names.
fn load_policies(
    registry: &Registry,
    source: &PolicySource,
    template: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for (name, document) in policy_documents(source, template)? {
        registry.put_policy_json(&name, &document)?;
        names.push(name);
    }
    Ok(names)
}

/// `load_policies` through the running emulator's control plane.
async fn put_policies_running(
    client: &ControlPlaneClient,
    source: &PolicySource,
    template: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for (name, document) in policy_documents(source, template)? {
        client.put_policy(&name, &document).await?;
        names.push(name);
    }
    Ok(names)
}

/// What `up` says when it starts without a stack: a newcomer's first `up` otherwise runs with nothing in it
/// and says nothing about why.
const NO_TEMPLATE_WARNING: &str = "no --template given: there are no rules, no functions and no \
policies from the stack (only those already in the registry or given with --policy-file), so devices \
are refused at CONNECT unless a policy allows them; pass --template \
target/demo/cdk.out/IotPresence.template.json (written by `make demo`) or \
infra/cdk.out/IotPresence.template.json (written by `make synth`)";

async fn up(
    args: UpArgs,
    state_dir: &Path,
    registry: Arc<Registry>,
    ca: Arc<EmulatorCa>,
) -> anyhow::Result<()> {
    match iot_emulator::os_limits::raise_open_file_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    }
    let template = read_template(&args.policies)?;
    if template.is_none() {
        tracing::warn!("{NO_TEMPLATE_WARNING}");
    }
    load_policies(&registry, &args.policies, template.as_deref())?;
    let mut server_names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if !args.bind.is_loopback() && !args.bind.is_unspecified() {
        server_names.push(args.bind.to_string());
    }
    let config = BrokerConfig {
        bind: SocketAddr::new(args.bind, args.port(args.mqtt_port, 8883)),
        server_names,
        region: args.policies.region.clone(),
        account: args.policies.account.clone(),
        keep_alive_floor: Duration::from_secs(args.keep_alive_floor),
        persistent_session_expiry: Duration::from_secs(args.session_expiry),
        version_reset_after: Duration::from_secs(args.version_reset_after),
        subscribe_denial: if args.suback_on_denied_subscribe {
            SubscribeDenial::SubackFailure
        } else {
            SubscribeDenial::Disconnect
        },
        lifecycle_faults: LifecycleFaults {
            duplicate_probability: args.lifecycle_duplicate,
            reorder_probability: args.lifecycle_reorder,
            max_hold: Duration::from_secs(2),
            seed: None,
        },
        ..BrokerConfig::default()
    };
    let stack = match &template {
        Some(text) => StackTemplate::parse(text, &args.policies.region, &args.policies.account)?,
        None => StackTemplate::default(),
    };
    let mut binaries = FunctionBinaries::next_to_current_exe();
    if let Some(dir) = args.functions_dir.clone() {
        binaries.default_dir = dir;
    }
    for entry in &args.function_binaries {
        let Some((name, path)) = entry.split_once('=') else {
            bail!("--function takes NAME=PATH, got {entry}");
        };
        binaries
            .overrides
            .insert(name.to_owned(), PathBuf::from(path));
    }
    let host = display_host(args.bind);
    let mut emulator_config = EmulatorConfig::local(config, stack);
    emulator_config.control_plane_bind =
        SocketAddr::new(args.bind, args.port(args.control_plane_port, 8090));
    emulator_config.data_plane_bind =
        SocketAddr::new(args.bind, args.port(args.data_plane_port, 8088));
    emulator_config.logs_bind = SocketAddr::new(args.bind, args.port(args.logs_port, 8089));
    emulator_config.console_bind = SocketAddr::new(args.bind, args.port(args.console_port, 8091));
    emulator_config.state_dir = Some(state_dir.to_path_buf());
    emulator_config.binaries = binaries;
    emulator_config.lambda_retry_delay =
        Duration::try_from_secs_f64(args.lambda_retry_delay).context("--lambda-retry-delay")?;
    if let Ok(filter) = std::env::var("RUST_LOG") {
        emulator_config
            .function_environment
            .insert("RUST_LOG".into(), filter);
    }
    let running = RunningEmulator::start(emulator_config, Arc::clone(&registry), ca).await?;
    let mqtt = SocketAddr::new(host, running.mqtt_addr().port());
    let control_plane_url = format!(
        "http://{}",
        SocketAddr::new(host, running.control_plane_addr().port())
    );
    let data_plane_url = format!(
        "http://{}",
        SocketAddr::new(host, running.data_plane_addr().port())
    );
    let logs_url = format!(
        "http://{}",
        SocketAddr::new(host, running.logs_addr().port())
    );
    let console_url = format!(
        "http://{}",
        SocketAddr::new(host, running.console_addr().port())
    );
    Endpoints {
        mqtt: mqtt.to_string(),
        control_plane: Some(control_plane_url.clone()),
        data_plane: data_plane_url.clone(),
        logs: logs_url.clone(),
        root_ca: state_dir.join("ca/root-CA.pem"),
        region: Some(args.policies.region.clone()),
        console: Some(console_url.clone()),
    }
    .write(state_dir)?;
    println!("iot-emulator is up");
    println!("  MQTT over mutual TLS : mqtts://{mqtt}");
    println!("  control-plane API    : {control_plane_url}   (AWS_ENDPOINT_URL_IOT)");
    println!("  data-plane HTTP API  : {data_plane_url}   (AWS_ENDPOINT_URL_IOT_DATA_PLANE)");
    println!("  CloudWatch Logs API  : {logs_url}   (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS)");
    println!("  web console          : {console_url}/   (things, shadows, MQTT test client)");
    let none = if template.is_some() {
        "none"
    } else {
        "none (no --template)"
    };
    let names_or_none = |names: &[String]| {
        if names.is_empty() {
            none.to_owned()
        } else {
            names.join(", ")
        }
    };
    println!(
        "  rules                : {}",
        names_or_none(running.rule_names())
    );
    println!(
        "  functions            : {}",
        names_or_none(&running.lambda().function_names())
    );
    println!(
        "  root CA              : {}",
        state_dir.join("ca/root-CA.pem").display()
    );
    println!(
        "  registry             : {} (+ registry.journal)",
        state_dir.join("registry.json").display()
    );
    println!(
        "  policies             : {}",
        names_or_none(&registry.policy_names())
    );
    println!(
        "  endpoints file       : {}",
        Endpoints::path(state_dir).display()
    );
    println!("Ctrl-C (or SIGTERM) stops it.");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

impl UpArgs {
    /// The port given, else 0 (a free one) with `--free-ports`, else the default.
    fn port(&self, given: Option<u16>, default: u16) -> u16 {
        given.unwrap_or(if self.free_ports { 0 } else { default })
    }
}

impl EndpointArgs {
    fn data_plane(&self, state_dir: &Path) -> anyhow::Result<String> {
        match &self.data_plane_url {
            Some(url) => Ok(url.clone()),
            None => Ok(Endpoints::read(state_dir)?.data_plane),
        }
    }

    fn logs(&self, state_dir: &Path) -> anyhow::Result<String> {
        match &self.logs_url {
            Some(url) => Ok(url.clone()),
            None => Ok(Endpoints::read(state_dir)?.logs),
        }
    }
}

/// Prints the body (pretty when JSON); a non-2xx status is an error exit.
fn print_response(response: &client::Response) -> anyhow::Result<()> {
    let text = match serde_json::from_slice::<serde_json::Value>(&response.body) {
        Ok(json) => serde_json::to_string_pretty(&json)?,
        Err(_) => String::from_utf8_lossy(&response.body).into_owned(),
    };
    if response.is_success() {
        println!("{text}");
        Ok(())
    } else {
        bail!("HTTP {}: {text}", response.status)
    }
}

/// ListThings through every page, printed as one JSON document `{"things": [...]}`.
async fn list_things(state_dir: &Path) -> anyhow::Result<()> {
    let endpoints = running_endpoints(state_dir)?;
    let Some(url) = endpoints.control_plane else {
        bail!(
            "this emulator's endpoints.json names no control plane (written by an older iot-emulator up)"
        );
    };
    let mut things = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let mut path = "/things?maxResults=250".to_owned();
        if let Some(token) = &next_token {
            path.push_str(&format!("&nextToken={}", percent::url_component(token)));
        }
        let response = client::request("GET", &url, &path, &[], b"").await?;
        if !response.is_success() {
            return print_response(&response);
        }
        let page: serde_json::Value = serde_json::from_slice(&response.body)
            .context("ListThings answered with something other than JSON")?;
        if let Some(items) = page["things"].as_array() {
            things.extend(items.iter().cloned());
        }
        match page["nextToken"].as_str() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "things": things }))?
    );
    Ok(())
}

async fn list_named_shadows(
    thing: &str,
    endpoints: &EndpointArgs,
    state_dir: &Path,
) -> anyhow::Result<()> {
    let url = endpoints.data_plane(state_dir)?;
    let path = format!(
        "/api/things/shadow/ListNamedShadowsForThing/{}",
        percent::url_component(thing)
    );
    let response = client::request("GET", &url, &path, &[], b"").await?;
    print_response(&response)
}

async fn shadow_command(command: ShadowCommand, state_dir: &Path) -> anyhow::Result<()> {
    let (method, thing, name, endpoints, body) = match command {
        ShadowCommand::Get {
            thing,
            name,
            endpoints,
        } => ("GET", thing, name, endpoints, Vec::new()),
        ShadowCommand::Update {
            thing,
            document,
            name,
            endpoints,
        } => ("POST", thing, name, endpoints, document.into_bytes()),
        ShadowCommand::Delete {
            thing,
            name,
            endpoints,
        } => ("DELETE", thing, name, endpoints, Vec::new()),
        ShadowCommand::List { thing, endpoints } => {
            return list_named_shadows(&thing, &endpoints, state_dir).await;
        }
    };
    let url = endpoints.data_plane(state_dir)?;
    let mut path = format!("/things/{}/shadow", percent::url_component(&thing));
    if let Some(name) = name {
        path.push_str(&format!("?name={}", percent::url_component(&name)));
    }
    let response = client::request(method, &url, &path, &[], &body).await?;
    print_response(&response)
}

async fn logs_command(command: LogsCommand, state_dir: &Path) -> anyhow::Result<()> {
    let LogsCommand::Tail {
        group,
        stream,
        follow,
        epoch_millis,
        count,
        endpoints,
    } = command;
    let mut printed = 0;
    let mut waiting_for_group = false;
    let mut url = endpoints.logs(state_dir)?;
    let mut client = LogsClient::new(url.clone());
    let mut tail = LogTail::new(group, stream);
    let mut backoff = RetryBackoff::new();
    let mut unreachable = false;
    loop {
        match tail.read_new(&client).await {
            Ok(events) => {
                if unreachable {
                    eprintln!("iot-emulator: the emulator at {url} answers again; following on");
                    unreachable = false;
                    backoff.reset();
                }
                for event in events {
                    let time = if epoch_millis {
                        event.timestamp.to_string()
                    } else {
                        format_timestamp(event.timestamp)
                    };
                    println!("{time} {} {}", event.log_stream_name, event.message);
                    printed += 1;
                    if count.is_some_and(|count| printed >= count) {
                        return Ok(());
                    }
                }
            }
            // The tail keeps its place, so after the wait it reads exactly what it has not printed yet.
            Err(error) if follow && error.is_unreachable() => {
                if !unreachable {
                    eprintln!(
                        "warning: {error}; retrying (every {}-{} s) until it is back",
                        RetryBackoff::FIRST.as_secs(),
                        RetryBackoff::MAX.as_secs()
                    );
                    unreachable = true;
                }
                tokio::time::sleep(backoff.next_wait()).await;
                // A restarted `up` may listen on other ports (port 0); its endpoints file says where.
                if endpoints.logs_url.is_none()
                    && let Ok(current) = Endpoints::read(state_dir)
                    && current.logs != url
                {
                    url = current.logs;
                    client = LogsClient::new(url.clone());
                }
                continue;
            }
            // Followed before anything was logged there (the function writes it on its first record).
            Err(error) if follow && error.is_not_found() => {
                if !waiting_for_group {
                    eprintln!(
                        "iot-emulator: nothing logged there yet (the log group or stream does not exist); \
                         waiting for its first event"
                    );
                    waiting_for_group = true;
                }
            }
            Err(error) => return Err(error.into()),
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn subscribe(
    filters: &[String],
    json: bool,
    count: Option<u64>,
    endpoints: &EndpointArgs,
    state_dir: &Path,
) -> anyhow::Result<()> {
    let mut url = endpoints.data_plane(state_dir)?;
    let mut backoff = RetryBackoff::new();
    let mut seen = 0;
    let mut reported_dropped = 0;
    let mut away = false;
    if count == Some(0) {
        return Ok(());
    }
    loop {
        let outcome = async {
            let mut tail = subscribe::open(&url, filters).await?;
            eprintln!(
                "iot-emulator: subscribed to {} at {url} (Ctrl-C stops)",
                filters.join(" ")
            );
            backoff.reset();
            away = false;
            while let Some(line) = tail.next().await? {
                match line {
                    TailLine::Message(message) => {
                        if json {
                            println!("{}", serde_json::to_string(&message)?);
                        } else {
                            println!("{}", subscribe::format_message(&message));
                        }
                        seen += 1;
                        if count.is_some_and(|count| seen >= count) {
                            return Ok(true);
                        }
                    }
                    TailLine::Dropped(total) => {
                        eprintln!(
                            "warning: {} messages missed: this watcher fell behind the traffic (its queue holds 1,000)",
                            total.saturating_sub(reported_dropped)
                        );
                        reported_dropped = total;
                    }
                    TailLine::Heartbeat => {}
                }
            }
            // The emulator ended the stream: it is shutting down.
            Ok::<bool, anyhow::Error>(false)
        }
        .await;
        match outcome {
            Ok(true) => return Ok(()),
            Ok(false) => {
                eprintln!(
                    "warning: the emulator at {url} stopped; subscribing again once it is back \
                     (what is published meanwhile is not seen)"
                );
                away = true;
            }
            Err(error)
                if error
                    .downcast_ref::<SubscribeError>()
                    .is_some_and(SubscribeError::is_unreachable) =>
            {
                if !away {
                    eprintln!(
                        "warning: {error}; retrying (every {}-{} s) until it is back",
                        RetryBackoff::FIRST.as_secs(),
                        RetryBackoff::MAX.as_secs()
                    );
                    away = true;
                }
            }
            Err(error) => return Err(error),
        }
        reported_dropped = 0;
        tokio::time::sleep(backoff.next_wait()).await;
        // A restarted `up` may listen on other ports (port 0); its endpoints file says where.
        if endpoints.data_plane_url.is_none()
            && let Ok(current) = Endpoints::read(state_dir)
        {
            url = current.data_plane;
        }
    }
}

fn provision(
    args: ProvisionArgs,
    state_dir: &Path,
    registry: &Registry,
    ca: &EmulatorCa,
) -> anyhow::Result<()> {
    let template = read_template(&args.source)?;
    load_policies(registry, &args.source, template.as_deref())?;
    let policies = if args.policies.is_empty() {
        registry.policy_names()
    } else {
        args.policies.clone()
    };
    let earlier_active = registry.active_thing_certificates(&args.thing);
    let device = registry::provision_thing(registry, ca, &args.thing, &policies)?;
    let arn = format!(
        "arn:aws:iot:{}:{}:cert/{}",
        args.source.region, args.source.account, device.certificate.certificate_id
    );
    write_provisioned(
        &args,
        state_dir,
        &device,
        &arn,
        ca.root_pem(),
        &earlier_active,
    )
}

/// `provision` through the running emulator's control plane: the same calls, in the same order, as the AWS CLI
/// would make them.
async fn provision_running(
    args: ProvisionArgs,
    state_dir: &Path,
    client: &ControlPlaneClient,
) -> anyhow::Result<()> {
    let template = read_template(&args.source)?;
    put_policies_running(client, &args.source, template.as_deref()).await?;
    let existing = client.policy_names().await?;
    let policies = if args.policies.is_empty() {
        existing
    } else {
        // Checked before anything is created, so a typo leaves no thing or certificate behind.
        if let Some(missing) = args.policies.iter().find(|name| !existing.contains(name)) {
            bail!("no policy named {missing}");
        }
        args.policies.clone()
    };
    let earlier_active = client.active_thing_certificates(&args.thing).await?;
    client.ensure_thing(&args.thing).await?;
    let created = client.create_keys_and_certificate().await?;
    for policy in &policies {
        client.attach_policy(policy, &created.arn).await?;
    }
    client
        .attach_thing_principal(&args.thing, &created.arn)
        .await?;
    let device = registry::ProvisionedDevice {
        thing_name: args.thing.clone(),
        certificate: created.issued,
        policies,
    };
    let root_ca_path = state_dir.join("ca").join(registry::ROOT_CA_FILE);
    let root_ca = std::fs::read_to_string(&root_ca_path)
        .with_context(|| format!("reading the emulator CA {}", root_ca_path.display()))?;
    write_provisioned(
        &args,
        state_dir,
        &device,
        &created.arn,
        &root_ca,
        &earlier_active,
    )
}

/// Writes the device's files, prints what was provisioned as JSON and each warning on stderr.
/// `earlier_active` are the thing's ACTIVE certificates before this one.
fn write_provisioned(
    args: &ProvisionArgs,
    state_dir: &Path,
    device: &registry::ProvisionedDevice,
    certificate_arn: &str,
    root_ca_pem: &str,
    earlier_active: &[String],
) -> anyhow::Result<()> {
    let warnings = provision_warnings(&ProvisionOutcome {
        thing: &device.thing_name,
        certificate_id: &device.certificate.certificate_id,
        policies: &device.policies,
        earlier_active_certificates: earlier_active,
    });
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| state_dir.join("devices").join(&args.thing));
    registry::write_device_files(&out, device, root_ca_pem)?;
    // Absolute, so the agent runs from any directory.
    let out =
        std::fs::canonicalize(&out).with_context(|| format!("resolving {}", out.display()))?;
    let running = Endpoints::read(state_dir).ok();
    let agent_config = out.join(AGENT_CONFIG_FILE);
    let config_text = agent_config_toml(&AgentConfigInput {
        thing: &device.thing_name,
        mqtt: running.as_ref().map(|endpoints| endpoints.mqtt.as_str()),
        certificate: &out.join(registry::CERTIFICATE_FILE),
        private_key: &out.join(registry::PRIVATE_KEY_FILE),
        root_ca: &out.join(registry::ROOT_CA_FILE),
        outbox: &out.join("outbox"),
        thermal_zone_readable: std::fs::read_to_string(THERMAL_ZONE).is_ok(),
    });
    std::fs::write(&agent_config, config_text)
        .with_context(|| format!("writing {}", agent_config.display()))?;
    let summary = serde_json::json!({
        "thingName": device.thing_name,
        "certificateId": device.certificate.certificate_id,
        "certificateArn": certificate_arn,
        "policies": device.policies,
        "files": {
            "certificate": out.join(registry::CERTIFICATE_FILE),
            "privateKey": out.join(registry::PRIVATE_KEY_FILE),
            "publicKey": out.join(registry::PUBLIC_KEY_FILE),
            "rootCA": out.join(registry::ROOT_CA_FILE),
        },
        "agentConfig": agent_config,
        "runAgent": run_agent_command(&agent_config),
        "warnings": warnings,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading endpoints.json: {source}")]
    struct QuotesItsSource {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn the_error_report_names_every_cause_once() {
        let quoted = anyhow::Error::new(QuotesItsSource {
            source: std::io::Error::other("no such file"),
        })
        .context("opening the state");
        assert_eq!(
            error_report(&quoted),
            "error: opening the state: reading endpoints.json: no such file"
        );
        let plain = anyhow::anyhow!("refused").context("connecting");
        assert_eq!(error_report(&plain), "error: connecting: refused");
    }
}
