//! `iot-emulator`: a local AWS IoT Core. `up` runs it; `provision` creates a device like
//! `create-keys-and-certificate` + `attach-policy` + `attach-thing-principal`; `policy` and `certificate` manage
//! the registry. See docs/emulator.md.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use iot_emulator::broker::{Broker, BrokerConfig, LifecycleFaults, SubscribeDenial};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::registry::{self, CertificateStatus, Registry};

#[derive(Parser)]
#[command(name = "iot-emulator", version, about = "A local AWS IoT Core")]
struct Cli {
    /// Where the CA, the registry and provisioned devices live.
    #[arg(long, global = true, default_value = ".iot-emulator")]
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
    #[arg(long, default_value_t = 8883)]
    mqtt_port: u16,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let state_dir = cli.state_dir;
    let registry = Arc::new(Registry::open(&state_dir).context("opening the registry")?);
    let ca = EmulatorCa::load_or_create(&state_dir).context("loading the emulator CA")?;
    match cli.command {
        Command::Up(args) => up(args, &state_dir, registry, &ca).await,
        Command::Provision(args) => provision(args, &state_dir, &registry, &ca),
        Command::Policy(source) => {
            let names = load_policies(&registry, &source)?;
            println!("loaded policies: {}", names.join(", "));
            Ok(())
        }
        Command::Certificate {
            certificate_id,
            status,
        } => {
            let status: CertificateStatus = status.parse()?;
            registry.set_certificate_status(&certificate_id, status)?;
            println!("{certificate_id} {status:?}");
            Ok(())
        }
    }
}

fn load_policies(registry: &Registry, source: &PolicySource) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    if let Some(template) = &source.template {
        let text = std::fs::read_to_string(template)
            .with_context(|| format!("reading {}", template.display()))?;
        names.extend(registry.load_policies_from_template(
            &text,
            &source.account,
            &source.region,
        )?);
    }
    for entry in &source.policy_files {
        let Some((name, path)) = entry.split_once('=') else {
            bail!("--policy-file takes NAME=PATH, got {entry}");
        };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        registry.put_policy_json(name, &text)?;
        names.push(name.to_owned());
    }
    Ok(names)
}

async fn up(
    args: UpArgs,
    state_dir: &Path,
    registry: Arc<Registry>,
    ca: &EmulatorCa,
) -> anyhow::Result<()> {
    load_policies(&registry, &args.policies)?;
    let mut server_names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if !args.bind.is_loopback() && !args.bind.is_unspecified() {
        server_names.push(args.bind.to_string());
    }
    let config = BrokerConfig {
        bind: SocketAddr::new(args.bind, args.mqtt_port),
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
    let running = Broker::start(config, Arc::clone(&registry), ca).await?;
    println!("iot-emulator is up");
    println!("  MQTT over mutual TLS : mqtts://{}", running.local_addr());
    println!(
        "  root CA              : {}",
        state_dir.join("ca/root-CA.pem").display()
    );
    println!(
        "  registry             : {}",
        state_dir.join("registry.json").display()
    );
    println!(
        "  policies             : {}",
        registry.policy_names().join(", ")
    );
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

fn provision(
    args: ProvisionArgs,
    state_dir: &Path,
    registry: &Registry,
    ca: &EmulatorCa,
) -> anyhow::Result<()> {
    load_policies(registry, &args.source)?;
    let policies = if args.policies.is_empty() {
        registry.policy_names()
    } else {
        args.policies
    };
    let device = registry::provision_thing(registry, ca, &args.thing, &policies)?;
    let out = args
        .out
        .unwrap_or_else(|| state_dir.join("devices").join(&args.thing));
    registry::write_device_files(&out, &device, ca.root_pem())?;
    let summary = serde_json::json!({
        "thingName": device.thing_name,
        "certificateId": device.certificate.certificate_id,
        "certificateArn": format!(
            "arn:aws:iot:{}:{}:cert/{}",
            args.source.region, args.source.account, device.certificate.certificate_id
        ),
        "policies": device.policies,
        "files": {
            "certificate": out.join(registry::CERTIFICATE_FILE),
            "privateKey": out.join(registry::PRIVATE_KEY_FILE),
            "publicKey": out.join(registry::PUBLIC_KEY_FILE),
            "rootCA": out.join(registry::ROOT_CA_FILE),
        },
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
