//! `iot-policy audit <template.json>`: audits the `AWS::IoT::Policy` resources of a synthesized CloudFormation
//! template (or a plain policy document) and exits non-zero when there are findings. The logic is in the library
//! (`iot_policy::audit`); this file only parses arguments and prints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use iot_policy::{AuditOptions, Finding, PolicyDocument, audit, load_policies_from_template};

#[derive(Parser)]
#[command(name = "iot-policy", about = "AWS IoT policy tools", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Audit the IoT policies of a CloudFormation template (or one policy document). Exit code 0 when there are
    /// no findings, 1 when there are, 2 when the input can't be read.
    Audit(AuditArgs),
}

#[derive(clap::Args)]
struct AuditArgs {
    /// A synthesized CloudFormation template (JSON) or a plain IoT policy document.
    path: PathBuf,
    /// Account id used to resolve intrinsics and build probe ARNs.
    #[arg(long, default_value = "123456789012")]
    account: String,
    /// Region used to resolve intrinsics and build probe ARNs.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Thing name of the probing device.
    #[arg(long, default_value = "audit-thing-a")]
    thing_a: String,
    /// Thing name of the other device whose resources thing A must not reach.
    #[arg(long, default_value = "audit-thing-b")]
    thing_b: String,
    /// Thing type of the probe things (`${iot:Connection.Thing.ThingTypeName}`).
    #[arg(long)]
    thing_type: Option<String>,
    /// A thing attribute of the probe things, `name=value` (`${iot:Connection.Thing.Attributes[name]}`); repeatable.
    #[arg(long = "thing-property", value_name = "NAME=VALUE", value_parser = parse_property)]
    thing_properties: Vec<(String, String)>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

fn main() -> ExitCode {
    let Cli {
        command: Command::Audit(args),
    } = Cli::parse();
    match run_audit(&args) {
        Ok(findings) => {
            print_findings(&findings, args.format);
            if findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            eprintln!("iot-policy: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_audit(args: &AuditArgs) -> Result<Vec<Finding>, String> {
    let text = std::fs::read_to_string(&args.path)
        .map_err(|error| format!("{}: {error}", args.path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|error| format!("{}: not JSON: {error}", args.path.display()))?;
    // A template has Resources; anything else is read as a single policy document named after the file.
    let policies = if value.get("Resources").is_some() {
        load_policies_from_template(&text, &args.account, &args.region)
            .map_err(|error| error.to_string())?
    } else {
        let name = args.path.file_stem().map_or_else(
            || "policy".to_owned(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        let document =
            PolicyDocument::from_value(&value).map_err(|error| format!("{name}: {error}"))?;
        vec![(name, document)]
    };
    let options = AuditOptions {
        account: args.account.clone(),
        region: args.region.clone(),
        thing_a: args.thing_a.clone(),
        thing_b: args.thing_b.clone(),
        thing_type: args.thing_type.clone(),
        thing_attributes: args
            .thing_properties
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>(),
    };
    Ok(audit(&policies, &options))
}

fn print_findings(findings: &[Finding], format: Format) {
    match format {
        Format::Json => match serde_json::to_string_pretty(findings) {
            Ok(json) => println!("{json}"),
            Err(error) => eprintln!("iot-policy: cannot serialize findings: {error}"),
        },
        Format::Text => {
            for finding in findings {
                println!("{finding}");
            }
            println!(
                "{} finding{}",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" }
            );
        }
    }
}
