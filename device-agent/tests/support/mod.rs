//! Test harness: a throw-away PKI (rcgen), a mosquitto 2 broker with mTLS and a per-client ACL on a free
//! 127.0.0.1 port, an observer client, the agent binary, and a fake AWS shadow service.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS, TlsConfiguration, Transport,
};
use serde_json::{Value, json};

pub const THING: &str = "ratchet";

/// The mosquitto binary, or `None` (and a message saying why the test is skipped).
pub fn mosquitto_binary(test: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("mosquitto"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain([
            PathBuf::from("/usr/sbin/mosquitto"),
            PathBuf::from("/usr/local/sbin/mosquitto"),
        ]);
    for candidate in candidates {
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    // CI installs mosquitto (`make setup`); there a missing broker is a failure, not a skip.
    assert!(
        std::env::var_os("REQUIRE_TEST_TOOLS").is_none(),
        "{test}: REQUIRE_TEST_TOOLS is set but the `mosquitto` binary is not installed"
    );
    report_skipped(
        test,
        "mosquitto not found (apt-get install -y mosquitto; REQUIRE_TEST_TOOLS=1 makes this a failure)",
    );
    None
}

/// Say on the real stderr that `test` did not run: libtest captures `eprintln!` of passing tests, and a
/// test that returns early is reported `ok`, so without this a missing tool would look like a pass.
pub fn report_skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why} [{test}]");
}

/// The agent's `--log-json` output: one JSON object per line (tracing-subscriber's format, the event's
/// fields under `fields`); lines that are not JSON (a panic message) are left out.
pub fn json_log_events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

/// The fields of the last event whose message is `message`.
pub fn last_event_fields<'a>(events: &'a [Value], message: &str) -> Option<&'a Value> {
    events
        .iter()
        .rev()
        .map(|event| &event["fields"])
        .find(|fields| fields["message"] == message)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// File paths of one client identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA, a server certificate for 127.0.0.1 and client certificates (CN = thing name).
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server: Identity,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

fn write_private(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl Pki {
    pub fn new(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "device-agent test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let mut pki = Self {
            dir: dir.to_path_buf(),
            ca_cert: ca_path,
            server: Identity {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            ca_params,
            ca_key,
        };
        pki.server = pki.issue("server", &["127.0.0.1", "localhost"], None);
        pki
    }

    /// Issue a certificate; `not_after` lets a test make an expired one.
    pub fn issue(
        &self,
        common_name: &str,
        sans: &[&str],
        not_after: Option<(i32, u8, u8)>,
    ) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some((y, m, d)) = not_after {
            params.not_before = rcgen::date_time_ymd(y - 1, m, d);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let identity = Identity {
            cert: self.dir.join(format!("{common_name}.cert.pem")),
            key: self.dir.join(format!("{common_name}.key.pem")),
        };
        std::fs::write(&identity.cert, cert.pem()).unwrap();
        write_private(&identity.key, &key.serialize_pem());
        identity
    }

    /// A fresh key that belongs to no certificate.
    pub fn stray_key(&self, name: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.stray.key.pem"));
        write_private(&path, &KeyPair::generate().unwrap().serialize_pem());
        path
    }
}

/// mosquitto 2 with mTLS (`use_identity_as_username`: the certificate CN is the user) and an ACL that
/// scopes each device to its own topics, like the AWS device policy (architecture section 3).
pub struct Mosquitto {
    binary: PathBuf,
    pub port: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start(binary: PathBuf, pki: &Pki, dir: &Path) -> Self {
        let port = free_port();
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data).unwrap();
        let acl = data.join("acl");
        std::fs::write(
            &acl,
            "pattern write data/%u/#\n\
             pattern write device/%u/lwt\n\
             pattern write $aws/things/%u/shadow/get\n\
             pattern write $aws/things/%u/shadow/update\n\
             pattern read $aws/things/%u/shadow/get/#\n\
             pattern read $aws/things/%u/shadow/update/#\n\
             \n\
             user observer\n\
             topic read data/#\n\
             topic read device/#\n\
             topic readwrite $aws/things/#\n",
        )
        .unwrap();
        let conf = data.join("mosquitto.conf");
        // Started as root, mosquitto drops to user `mosquitto`, which cannot read our private temp dir.
        let running_as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.trim_ascii() == b"0")
            .unwrap_or(false);
        let user = if running_as_root { "user root\n" } else { "" };
        std::fs::write(
            &conf,
            format!(
                "{user}per_listener_settings false\n\
                 persistence true\n\
                 persistence_location {data}/\n\
                 log_dest stdout\n\
                 log_type all\n\
                 allow_anonymous false\n\
                 acl_file {acl}\n\
                 listener {port} 127.0.0.1\n\
                 cafile {ca}\n\
                 certfile {cert}\n\
                 keyfile {key}\n\
                 require_certificate true\n\
                 use_identity_as_username true\n",
                data = data.display(),
                acl = acl.display(),
                ca = pki.ca_cert.display(),
                cert = pki.server.cert.display(),
                key = pki.server.key.display(),
            ),
        )
        .unwrap();
        let mut broker = Self {
            binary,
            port,
            conf,
            log: data.join("mosquitto.log"),
            child: None,
        };
        broker.resume();
        broker
    }

    /// (Re)start on the same port and persistence file.
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop (SIGTERM, so it saves its persistence file) and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

pub fn tls_transport(pki: &Pki, identity: &Identity) -> Transport {
    Transport::tls_with_config(TlsConfiguration::Simple {
        ca: std::fs::read(&pki.ca_cert).unwrap(),
        alpn: None,
        client_auth: Some((
            std::fs::read(&identity.cert).unwrap(),
            std::fs::read(&identity.key).unwrap(),
        )),
    })
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Value,
    pub at: Instant,
}

/// A client (CN `observer`) that records everything on its filters, with a persistent session so
/// nothing published while it reconnects after a broker restart is lost.
pub struct Observer {
    pub messages: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    pub async fn start(
        pki: &Pki,
        identity: &Identity,
        port: u16,
        client_id: &str,
        filters: &[&str],
    ) -> Self {
        let mut options = MqttOptions::new(client_id, ("127.0.0.1", port));
        options.set_keep_alive(30);
        options.set_clean_session(false);
        options.set_transport(tls_transport(pki, identity));
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(1000).build();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&messages);
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            client
                                .subscribe(filter.clone(), QoS::AtLeastOnce)
                                .await
                                .unwrap();
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        sink.lock().unwrap().push(Received {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload,
                            at: Instant::now(),
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("observer subscribed")
            .unwrap();
        Self { messages, task }
    }

    pub fn on_topic(&self, topic: &str) -> Vec<Received> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Wait until `predicate` holds over the messages on `topic`.
    pub async fn wait_for(
        &self,
        topic: &str,
        timeout: Duration,
        predicate: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.on_topic(topic);
            if predicate(&messages) {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {topic}; have {} messages",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Paths and values for an agent config file.
pub struct AgentFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub outbox: PathBuf,
}

/// Write a config for the test broker. `extra` is appended (top-level keys must come before tables, so
/// `extra` may only contain tables or be given via `top`).
pub fn write_config(
    dir: &Path,
    pki: &Pki,
    identity: &Identity,
    port: u16,
    top: &str,
    tables: &str,
) -> AgentFiles {
    let outbox = dir.join("outbox");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "endpoint = \"127.0.0.1\"\nport = {port}\nthing_name = \"{THING}\"\nshutdown_flush_secs = 5\n{top}\n\
             [tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nroot_ca = \"{ca}\"\n\
             [sensors]\ntemperature = \"simulated\"\n\
             [actuator]\nkind = \"simulated\"\nsimulated_delay_ms = 300\n\
             [outbox]\npath = \"{outbox}\"\n\
             [reconnect]\ninitial_delay_secs = 1\nmax_delay_secs = 4\nconnect_timeout_secs = 3\n{tables}\n",
            cert = identity.cert.display(),
            key = identity.key.display(),
            ca = pki.ca_cert.display(),
            outbox = outbox.display(),
        ),
    )
    .unwrap();
    AgentFiles {
        dir: dir.to_path_buf(),
        config,
        outbox,
    }
}

/// The agent binary as a child process (logs to a file in the test dir).
pub struct AgentProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl AgentProcess {
    pub fn spawn(files: &AgentFiles, args: &[&str]) -> Self {
        let log = files.dir.join(format!(
            "agent-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_device-agent"))
            .arg("--config")
            .arg(&files.config)
            .args(args)
            .env("DEVICE_AGENT_LOG", "info,device_agent=debug")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Self { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait for the exit code.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        signal(self.child.id(), "TERM");
        let code = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        (code, self.log_text())
    }

    pub fn kill_9(mut self) {
        signal(self.child.id(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run the binary to completion (for `check` and fatal-config cases).
pub fn run_to_exit(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_device-agent"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// A fake AWS IoT classic-shadow service for one thing (reference 3.x), speaking MQTT through the broker.
/// It also checks, on every report, that the simulated motor is already in the reported state.
pub struct FakeShadow {
    pub state: Arc<Mutex<ShadowState>>,
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
pub struct ShadowState {
    pub desired: BTreeMap<String, Value>,
    pub reported: BTreeMap<String, Value>,
    pub version: u64,
    pub exists: bool,
    /// Reject the next N device updates with this code.
    pub reject_next: Vec<u16>,
    pub rejected_sent: u32,
    pub gets: u32,
    /// Every reported MOTOR value, in order.
    pub reports: Vec<String>,
    /// Reports that ran ahead of the actuator (must stay empty).
    pub violations: Vec<String>,
}

fn delta(state: &ShadowState) -> serde_json::Map<String, Value> {
    state
        .desired
        .iter()
        .filter(|(k, v)| state.reported.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn merge(section: &mut BTreeMap<String, Value>, update: Option<&Value>) {
    if let Some(Value::Object(map)) = update {
        for (k, v) in map {
            if v.is_null() {
                section.remove(k);
            } else {
                section.insert(k.clone(), v.clone());
            }
        }
    }
}

impl FakeShadow {
    pub async fn start(
        pki: &Pki,
        identity: &Identity,
        port: u16,
        motor: impl Fn() -> String + Send + 'static,
    ) -> Self {
        let mut options = MqttOptions::new("fake-shadow-service", ("127.0.0.1", port));
        options.set_keep_alive(30);
        options.set_clean_session(true);
        options.set_transport(tls_transport(pki, identity));
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(1000).build();
        let state = Arc::new(Mutex::new(ShadowState::default()));
        let shared = Arc::clone(&state);
        let publisher = client.clone();
        let prefix = format!("$aws/things/{THING}/shadow");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        publisher
                            .try_subscribe(format!("{prefix}/get"), QoS::AtLeastOnce)
                            .unwrap();
                        publisher
                            .try_subscribe(format!("{prefix}/update"), QoS::AtLeastOnce)
                            .unwrap();
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        let request: Value =
                            serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        let replies = {
                            let mut s = shared.lock().unwrap();
                            if topic.ends_with("/get") {
                                s.gets += 1;
                                get_reply(&s, &prefix, &request)
                            } else {
                                device_update(&mut s, &prefix, &request, &motor)
                            }
                        };
                        for (topic, body) in replies {
                            publisher
                                .try_publish(
                                    topic,
                                    body.to_string(),
                                    PublishOptions::new(QoS::AtLeastOnce),
                                )
                                .unwrap();
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("fake shadow subscribed")
            .unwrap();
        Self {
            state,
            client,
            task,
        }
    }

    /// What an app does: `{"state":{"desired":{"MOTOR":..}}}`. Publishes accepted + delta when `online`.
    pub fn set_desired(&self, motor: &str, online: bool) {
        let prefix = format!("$aws/things/{THING}/shadow");
        let replies = {
            let mut s = self.state.lock().unwrap();
            s.exists = true;
            s.desired.insert("MOTOR".into(), json!(motor));
            s.version += 1;
            let mut replies = vec![(
                format!("{prefix}/update/accepted"),
                json!({"state":{"desired":{"MOTOR":motor}},"version":s.version,"clientToken":"app-1","timestamp":1}),
            )];
            let d = delta(&s);
            if !d.is_empty() {
                replies.push((
                    format!("{prefix}/update/delta"),
                    json!({"state":d,"version":s.version,"timestamp":1}),
                ));
            }
            replies
        };
        if online {
            for (topic, body) in replies {
                self.client
                    .try_publish(
                        topic,
                        body.to_string(),
                        PublishOptions::new(QoS::AtLeastOnce),
                    )
                    .unwrap();
            }
        }
    }

    pub fn reported_motor(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .reported
            .get("MOTOR")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    pub async fn wait_reported(&self, motor: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.reported_motor().as_deref() != Some(motor) {
            assert!(
                Instant::now() < deadline,
                "reported.MOTOR never became {motor}: {:?}",
                self.state.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for FakeShadow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn get_reply(s: &ShadowState, prefix: &str, request: &Value) -> Vec<(String, Value)> {
    let token = request.get("clientToken").cloned().unwrap_or(Value::Null);
    if !s.exists {
        return vec![(
            format!("{prefix}/get/rejected"),
            json!({"code":404,"message":format!("No shadow exists with name: '{THING}'"),"clientToken":token}),
        )];
    }
    let mut state = serde_json::Map::new();
    if !s.desired.is_empty() {
        state.insert("desired".into(), json!(s.desired));
    }
    if !s.reported.is_empty() {
        state.insert("reported".into(), json!(s.reported));
    }
    let d = delta(s);
    if !d.is_empty() {
        state.insert("delta".into(), Value::Object(d));
    }
    vec![(
        format!("{prefix}/get/accepted"),
        json!({"state":state,"metadata":{},"version":s.version,"timestamp":1,"clientToken":token}),
    )]
}

fn device_update(
    s: &mut ShadowState,
    prefix: &str,
    request: &Value,
    motor: &impl Fn() -> String,
) -> Vec<(String, Value)> {
    let token = request.get("clientToken").cloned().unwrap_or(Value::Null);
    if let Some(code) = (!s.reject_next.is_empty()).then(|| s.reject_next.remove(0)) {
        s.rejected_sent += 1;
        return vec![(
            format!("{prefix}/update/rejected"),
            json!({"code":code,"message":"Version conflict","clientToken":token,"timestamp":1}),
        )];
    }
    if let Some(version) = request.get("version").and_then(Value::as_u64)
        && version != s.version
    {
        s.rejected_sent += 1;
        return vec![(
            format!("{prefix}/update/rejected"),
            json!({"code":409,"message":"Version conflict","clientToken":token,"timestamp":1}),
        )];
    }
    let state = request.get("state").cloned().unwrap_or(Value::Null);
    if let Some(reported_motor) = state.pointer("/reported/MOTOR").and_then(Value::as_str) {
        let actual = motor();
        if actual != reported_motor {
            s.violations.push(format!(
                "reported {reported_motor} while the motor was {actual}"
            ));
        }
        s.reports.push(reported_motor.to_string());
    }
    merge(&mut s.desired, state.get("desired"));
    merge(&mut s.reported, state.get("reported"));
    s.exists = true;
    s.version += 1;
    let mut replies = vec![(
        format!("{prefix}/update/accepted"),
        json!({"state":state,"version":s.version,"clientToken":token,"timestamp":1}),
    )];
    let d = delta(s);
    if !d.is_empty() && state.get("desired").is_some() {
        replies.push((
            format!("{prefix}/update/delta"),
            json!({"state":d,"version":s.version,"timestamp":1}),
        ));
    }
    replies
}

/// Sequence numbers of the telemetry on `topic`, in arrival order.
pub fn seqs(messages: &[Received]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| m.payload.get("seq").and_then(Value::as_u64))
        .collect()
}

/// Assert that, ignoring duplicates (at-least-once), seq numbers arrived as exactly 1..=last in order.
pub fn assert_complete_and_ordered(seqs: &[u64], last: u64) {
    let mut seen = std::collections::BTreeSet::new();
    let mut firsts = Vec::new();
    for &seq in seqs {
        if seen.insert(seq) {
            firsts.push(seq);
        }
    }
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(
        firsts.len(),
        expected.len(),
        "missing messages: have {} distinct, expected {last}",
        firsts.len()
    );
    assert_eq!(firsts, expected, "first arrivals are not in seq order");
}
