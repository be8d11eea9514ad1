//! `device-agent [run]` and `device-agent check`. Exit codes: 0 ok, 1 runtime failure, 2 bad config.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use device_agent::actuator::ConfiguredActuator;
use device_agent::config::{AgentConfig, CliOverrides, DEFAULT_CONFIG_PATH};
use device_agent::shutdown::{shutdown_channel, termination_signal};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "AWS IoT device agent: telemetry with a durable outbox, Last Will, MOTOR shadow sync"
)]
struct Cli {
    /// TOML config file; DEVICE_AGENT_* environment variables override it, flags override both.
    #[arg(long, short, global = true, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[arg(long, global = true)]
    endpoint: Option<String>,
    #[arg(long, global = true)]
    port: Option<u16>,
    #[arg(long, global = true)]
    thing_name: Option<String>,
    #[arg(long, global = true)]
    outbox_path: Option<PathBuf>,
    /// Log as JSON lines (journald/CloudWatch friendly).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect and run (the default).
    Run,
    /// Validate config, certificate, key and permissions; exit 2 if anything is fatal.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEVICE_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cli.log_json {
        builder.json().init()
    } else {
        builder.init()
    }

    let overrides = CliOverrides {
        endpoint: cli.endpoint.clone(),
        port: cli.port,
        thing_name: cli.thing_name.clone(),
        outbox_path: cli.outbox_path.clone(),
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => check(&cli.config, &overrides),
        Command::Run => run(&cli.config, &overrides),
    }
}

fn check(path: &std::path::Path, overrides: &CliOverrides) -> ExitCode {
    let config = match AgentConfig::load_unvalidated(path, overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ERROR   {error}");
            return ExitCode::from(2);
        }
    };
    let report = device_agent::check::run_checks(&config, SystemTime::now());
    for finding in &report.findings {
        println!("{finding}");
    }
    if report.has_errors() {
        eprintln!("check failed: fix the ERROR lines above");
        ExitCode::from(2)
    } else {
        println!("check passed");
        ExitCode::SUCCESS
    }
}

fn run(path: &std::path::Path, overrides: &CliOverrides) -> ExitCode {
    let config = match AgentConfig::load(path, overrides) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(2);
        }
    };
    // One connection and a few timers need no worker pool: a single-threaded runtime keeps the
    // resident set small (each extra thread brings its own stack and malloc arena). The outbox's
    // disk flushes (and DNS lookups) run on the blocking pool, one at a time.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let actuator = match ConfiguredActuator::from_config(&config.actuator) {
            Ok(actuator) => actuator,
            Err(error) => {
                tracing::error!("{error}");
                return ExitCode::from(2);
            }
        };
        let (trigger, shutdown) = shutdown_channel();
        tokio::spawn(async move {
            match termination_signal().await {
                Ok(signal) => tracing::info!(
                    signal,
                    "shutting down: flushing the outbox, then DISCONNECT"
                ),
                Err(error) => tracing::error!(%error, "cannot listen for signals"),
            }
            trigger.trigger();
        });
        match device_agent::agent::run_agent(config, actuator, shutdown).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(error @ device_agent::agent::AgentError::Check(_)) => {
                tracing::error!("{error}\nrun `device-agent check` for details");
                ExitCode::from(error.exit_code())
            }
            Err(error) => {
                tracing::error!("{error}");
                ExitCode::from(error.exit_code())
            }
        }
    })
}
