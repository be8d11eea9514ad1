//! What `iot-emulator provision` writes beside the certificate (a ready device-agent config) and what it warns
//! about. It keeps AWS's semantics (a thing may have several ACTIVE
//! certificates, a certificate may have no policy), but a newcomer seldom wants either, and both were silent
//! (issue 18).

use std::path::{Path, PathBuf};

/// The device-agent config file `provision` writes next to the certificate files.
pub const AGENT_CONFIG_FILE: &str = "agent.toml";
/// Where a Linux machine's CPU temperature can be read; without it the agent's temperature is simulated.
pub const THERMAL_ZONE: &str = "/sys/class/thermal/thermal_zone0/temp";
/// `up`'s default MQTT port, for a config written while no emulator runs.
pub const DEFAULT_MQTT_PORT: u16 = 8883;

/// Where the device will find the broker and its files.
#[derive(Debug, Clone)]
pub struct AgentConfigInput<'a> {
    pub thing: &'a str,
    /// `host:port` from `endpoints.json` when `up` runs, else `None` (the default port on localhost).
    pub mqtt: Option<&'a str>,
    /// Absolute paths.
    pub certificate: &'a Path,
    pub private_key: &'a Path,
    pub root_ca: &'a Path,
    pub outbox: &'a Path,
    pub thermal_zone_readable: bool,
}

/// A device-agent config (`device-agent/config.example.toml`'s keys) that runs the agent against this emulator
/// as it is: the eight keys a newcomer otherwise edits by hand (issue 18). The server certificate names
/// `localhost`, so a loopback address becomes that name.
pub fn agent_config_toml(input: &AgentConfigInput<'_>) -> String {
    let (host, port) = match input.mqtt.and_then(|mqtt| mqtt.rsplit_once(':')) {
        Some((host, port)) => (host, port.parse().unwrap_or(DEFAULT_MQTT_PORT)),
        None => ("localhost", DEFAULT_MQTT_PORT),
    };
    let host = match host.trim_matches(['[', ']']) {
        "127.0.0.1" | "::1" | "0.0.0.0" | "::" => "localhost",
        other => other,
    };
    let temperature = if input.thermal_zone_readable {
        "\"thermal-zone\"   # this machine's CPU temperature"
    } else {
        "\"simulated\"      # no readable thermal zone on this machine"
    };
    format!(
        "# device-agent config for thing {thing} against the local emulator, written by `iot-emulator provision`.\n\
         # Run: device-agent --config <this file> run   (docs/agent.md has every key)\n\
         endpoint = {host}\n\
         port = {port}\n\
         thing_name = {thing}\n\
         \n\
         [tls]\n\
         cert = {cert}\n\
         key = {key}\n\
         root_ca = {root_ca}\n\
         \n\
         [sensors]\n\
         temperature = {temperature}\n\
         \n\
         [actuator]\n\
         kind = \"simulated\"       # \"gpio\" with gpio_chip / gpio_line where a motor is wired\n\
         \n\
         [outbox]\n\
         path = {outbox}\n",
        thing = toml_string(input.thing),
        host = toml_string(host),
        cert = toml_path(input.certificate),
        key = toml_path(input.private_key),
        root_ca = toml_path(input.root_ca),
        outbox = toml_path(input.outbox),
    )
}

/// The command that runs the agent with `config`: the `device-agent` built next to this executable when there is
/// one (`cargo build` puts both in target/debug), else the one on the PATH.
pub fn run_agent_command(config: &Path) -> String {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("device-agent")))
        .filter(|agent| agent.is_file());
    let agent: PathBuf = beside.unwrap_or_else(|| PathBuf::from("device-agent"));
    format!("{} --config {} run", agent.display(), config.display())
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            control if control.is_control() => {
                quoted.push_str(&format!("\\u{:04X}", u32::from(control)));
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

fn toml_path(path: &Path) -> String {
    toml_string(&path.to_string_lossy())
}

/// What is known about one `provision` once its certificate exists.
#[derive(Debug, Clone)]
pub struct ProvisionOutcome<'a> {
    pub thing: &'a str,
    pub certificate_id: &'a str,
    /// The policies attached to the new certificate.
    pub policies: &'a [String],
    /// The thing's ACTIVE certificates before this one was attached (they stay attached and ACTIVE).
    pub earlier_active_certificates: &'a [String],
}

/// One sentence per thing worth knowing, for stderr and the `warnings` array of the JSON summary.
pub fn provision_warnings(outcome: &ProvisionOutcome<'_>) -> Vec<String> {
    let mut warnings = Vec::new();
    if outcome.policies.is_empty() {
        // Implicit deny: without an Allow for iot:Connect the broker refuses CONNECT with CONNACK 5 and
        // publishes connect_failed AUTHORIZATION_FAILED (reference 4.1, 4.5; broker::session).
        warnings.push(format!(
            "no policy is attached to certificate {}: the device will be refused at CONNECT (not authorized; \
             a connect_failed lifecycle event with AUTHORIZATION_FAILED) until one is; load one with \
             --template or --policy-file and name it with --policy, or `aws iot attach-policy`",
            outcome.certificate_id
        ));
    }
    let earlier = outcome.earlier_active_certificates;
    if !earlier.is_empty() {
        let plural = if earlier.len() == 1 { "" } else { "s" };
        warnings.push(format!(
            "thing {} already had {} ACTIVE certificate{plural} ({}); {} stay{} ACTIVE and attached next to \
             the new one (AWS allows several); if the new one replaces {}, run `iot-emulator certificate <id> \
             INACTIVE`",
            outcome.thing,
            earlier.len(),
            earlier.join(", "),
            if earlier.len() == 1 { "it" } else { "they" },
            if earlier.len() == 1 { "s" } else { "" },
            if earlier.len() == 1 { "it" } else { "them" },
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(mqtt: Option<&'a str>, dir: &'a Path, thermal: bool) -> AgentConfigInput<'a> {
        AgentConfigInput {
            thing: "ratchet",
            mqtt,
            certificate: dir,
            private_key: dir,
            root_ca: dir,
            outbox: dir,
            thermal_zone_readable: thermal,
        }
    }

    #[test]
    fn the_agent_config_points_at_the_running_emulator_by_name() {
        let dir = Path::new("/state/devices/rat\"chet");
        let text = agent_config_toml(&input(Some("127.0.0.1:40123"), dir, false));
        assert!(
            text.contains("endpoint = \"localhost\"\nport = 40123\n"),
            "{text}"
        );
        assert!(text.contains("thing_name = \"ratchet\""), "{text}");
        assert!(
            text.contains("cert = \"/state/devices/rat\\\"chet\""),
            "{text}"
        );
        assert!(text.contains("temperature = \"simulated\""), "{text}");
        let text = agent_config_toml(&input(None, dir, true));
        assert!(
            text.contains("endpoint = \"localhost\"\nport = 8883\n"),
            "{text}"
        );
        assert!(text.contains("temperature = \"thermal-zone\""), "{text}");
        let text = agent_config_toml(&input(Some("iot.example:8883"), dir, true));
        assert!(text.contains("endpoint = \"iot.example\""), "{text}");
    }

    fn outcome<'a>(policies: &'a [String], earlier: &'a [String]) -> ProvisionOutcome<'a> {
        ProvisionOutcome {
            thing: "ratchet",
            certificate_id: "c3",
            policies,
            earlier_active_certificates: earlier,
        }
    }

    #[test]
    fn a_first_certificate_with_a_policy_needs_no_warning() {
        assert!(provision_warnings(&outcome(&["device".into()], &[])).is_empty());
    }

    #[test]
    fn no_policy_and_earlier_active_certificates_are_each_named() {
        let earlier = ["c1".to_owned(), "c2".to_owned()];
        let warnings = provision_warnings(&outcome(&[], &earlier));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("no policy is attached to certificate c3"));
        assert!(warnings[0].contains("refused at CONNECT"));
        assert!(
            warnings[1]
                .starts_with("thing ratchet already had 2 ACTIVE certificates (c1, c2); they stay"),
            "{}",
            warnings[1]
        );
        let one = provision_warnings(&outcome(&["device".into()], &earlier[..1]));
        assert!(
            one[0].contains("1 ACTIVE certificate (c1); it stays ACTIVE"),
            "{}",
            one[0]
        );
    }
}
