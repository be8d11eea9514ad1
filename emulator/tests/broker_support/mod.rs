//! Shared pieces of the broker tests: a broker on 127.0.0.1 port 0 with its own state directory, provisioned
//! devices, a raw MQTT 3.1.1 client over mutual TLS (built on the same codec crate, for exact control of packets),
//! and wrappers around mosquitto's command-line clients (the independent implementation).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iot_emulator::broker::{Broker, BrokerConfig, InternalReceiver, RunningBroker};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::registry::{self, ProvisionedDevice, Registry};
use iot_events::LifecycleEvent;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    Codec, ConnAck, Connect, LastWill, Packet, PubAck, Publish, SubAck, Subscribe, Unsubscribe,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// The contract's shape for test topics: each thing owns `data/{thing}/...` and `device/{thing}/...`.
pub const DEVICE_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}",
     "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"],
     "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/data/${iot:Connection.Thing.ThingName}/*",
                  "arn:aws:iot:us-east-1:123456789012:topic/device/${iot:Connection.Thing.ThingName}/*"]},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/data/${iot:Connection.Thing.ThingName}/*",
                  "arn:aws:iot:us-east-1:123456789012:topicfilter/device/${iot:Connection.Thing.ThingName}/*"]}
  ]
}"#;

/// An application that may watch everything, including lifecycle events, but publish only under `app/`.
pub const OBSERVER_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:us-east-1:123456789012:client/observer*"},
    {"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"], "Resource": [
       "arn:aws:iot:us-east-1:123456789012:topicfilter/*", "arn:aws:iot:us-east-1:123456789012:topic/*"]},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:RetainPublish"],
     "Resource": "arn:aws:iot:us-east-1:123456789012:topic/app/*"},
    {"Effect": "Deny", "Action": "iot:Receive", "Resource": "arn:aws:iot:us-east-1:123456789012:topic/app/secret"}
  ]
}"#;

pub struct TestBroker {
    pub running: RunningBroker,
    pub registry: Arc<Registry>,
    pub ca: EmulatorCa,
    pub state: tempfile::TempDir,
}

/// Test defaults: AWS values except that a keep-alive may be as short as 1 s (AWS: 30 s), so the keep-alive
/// timeout (1.5 x) fires within seconds.
pub fn test_config() -> BrokerConfig {
    BrokerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        keep_alive_floor: Duration::from_secs(1),
        ..BrokerConfig::default()
    }
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        TestBroker::start_with(test_config()).await
    }

    pub async fn start_with(config: BrokerConfig) -> TestBroker {
        let state = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(state.path()).unwrap());
        registry.put_policy_json("device", DEVICE_POLICY).unwrap();
        registry
            .put_policy_json("observer", OBSERVER_POLICY)
            .unwrap();
        let ca = EmulatorCa::load_or_create(state.path()).unwrap();
        let running = Broker::start(config, Arc::clone(&registry), &ca)
            .await
            .unwrap();
        TestBroker {
            running,
            registry,
            ca,
            state,
        }
    }

    pub fn port(&self) -> u16 {
        self.running.local_addr().port()
    }

    pub fn broker(&self) -> &Broker {
        self.running.broker()
    }

    /// `iot-emulator provision {thing}` with the device policy.
    pub fn device(&self, thing: &str) -> Device {
        self.provision(thing, &["device"])
    }

    /// A certificate with the observer policy; connect with a client id starting with `observer`.
    pub fn observer(&self, client_id: &str) -> Device {
        // Client ids may hold characters thing names may not (`observer+x`); the registry refuses those as AWS does.
        let thing: String = client_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut device = self.provision(&format!("{thing}-thing"), &["observer"]);
        device.client_id = client_id.to_owned();
        device
    }

    pub fn provision(&self, thing: &str, policies: &[&str]) -> Device {
        let policies: Vec<String> = policies.iter().map(|name| (*name).to_owned()).collect();
        Device::provision(
            &self.registry,
            &self.ca,
            self.state.path(),
            thing,
            &policies,
        )
    }

    /// Every lifecycle event from now on, through the in-process API.
    pub fn lifecycle_events(&self) -> EventStream {
        EventStream(self.broker().subscribe_internal("$aws/events/#").unwrap())
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

pub struct Device {
    pub client_id: String,
    pub dir: PathBuf,
    pub provisioned: ProvisionedDevice,
}

impl Device {
    /// `iot-emulator provision <thing>`: the thing and a certificate from `ca` with `policies` attached, and the
    /// device's files (certificate, key, root CA) in `<state>/devices/<thing>/`.
    pub fn provision(
        registry: &Registry,
        ca: &EmulatorCa,
        state: &Path,
        thing: &str,
        policies: &[String],
    ) -> Device {
        let provisioned = registry::provision_thing(registry, ca, thing, policies).unwrap();
        let dir = state.join("devices").join(thing);
        registry::write_device_files(&dir, &provisioned, ca.root_pem()).unwrap();
        Device {
            client_id: thing.to_owned(),
            dir,
            provisioned,
        }
    }

    pub fn certificate_id(&self) -> &str {
        &self.provisioned.certificate.certificate_id
    }

    pub fn with_client_id(&self, client_id: &str) -> Device {
        Device {
            client_id: client_id.to_owned(),
            dir: self.dir.clone(),
            provisioned: self.provisioned.clone(),
        }
    }

    /// mosquitto's TLS and identity arguments.
    pub fn mosquitto_args(&self, port: u16) -> Vec<String> {
        let file = |name: &str| self.dir.join(name).display().to_string();
        vec![
            "-h".into(),
            "localhost".into(),
            "-p".into(),
            port.to_string(),
            "--cafile".into(),
            file(registry::ROOT_CA_FILE),
            "--cert".into(),
            file(registry::CERTIFICATE_FILE),
            "--key".into(),
            file(registry::PRIVATE_KEY_FILE),
            "-i".into(),
            self.client_id.clone(),
        ]
    }
}

pub struct EventStream(pub InternalReceiver);

impl EventStream {
    pub async fn next(&mut self, within: Duration) -> Option<LifecycleEvent> {
        let message = tokio::time::timeout(within, self.0.recv()).await.ok()??;
        Some(serde_json::from_slice(&message.payload).unwrap())
    }

    /// The next event that isn't a subscribe/unsubscribe event.
    pub async fn next_presence(&mut self, within: Duration) -> Option<LifecycleEvent> {
        loop {
            match self.next(within).await? {
                LifecycleEvent::Subscribed(_) | LifecycleEvent::Unsubscribed(_) => continue,
                event => return Some(event),
            }
        }
    }

    /// Raw JSON of the next message (to check field names and absent fields).
    pub async fn next_json(&mut self, within: Duration) -> Option<(String, serde_json::Value)> {
        let message = tokio::time::timeout(within, self.0.recv()).await.ok()??;
        Some((
            message.topic.clone(),
            serde_json::from_slice(&message.payload).unwrap(),
        ))
    }

    pub async fn assert_quiet(&mut self, within: Duration) {
        if let Ok(Some(message)) = tokio::time::timeout(within, self.0.recv()).await {
            panic!(
                "unexpected event on {}: {}",
                message.topic,
                String::from_utf8_lossy(&message.payload)
            );
        }
    }
}

pub const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------------------
// Raw MQTT 3.1.1 client over mutual TLS.

pub type ClientTransport = Framed<tokio_rustls::client::TlsStream<TcpStream>, Codec>;

pub struct RawClient {
    pub transport: ClientTransport,
    next_packet_id: u16,
}

#[derive(Debug)]
pub enum Received {
    Packet(Packet),
    Closed,
    Timeout,
}

fn tls_connector(device: &Device) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let root = CertificateDer::from_pem_file(device.dir.join(registry::ROOT_CA_FILE)).unwrap();
    roots.add(root).unwrap();
    let certificate =
        CertificateDer::from_pem_file(device.dir.join(registry::CERTIFICATE_FILE)).unwrap();
    let key = PrivateKeyDer::from_pem_file(device.dir.join(registry::PRIVATE_KEY_FILE)).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(vec![certificate], key)
    .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

impl RawClient {
    /// TCP + TLS only. With TLS 1.3 a refused client certificate shows up on the first read, not here.
    pub async fn open(port: u16, device: &Device) -> std::io::Result<RawClient> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let tls = tls_connector(device)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        Ok(RawClient {
            transport: Framed::new(
                tls,
                Codec {
                    max_incoming_size: 1 << 20,
                    max_outgoing_size: 1 << 20,
                },
            ),
            next_packet_id: 1,
        })
    }

    /// Opens and sends `connect`; returns the CONNACK, or what happened instead.
    pub async fn connect_with(
        port: u16,
        device: &Device,
        connect: Connect,
    ) -> (Option<RawClient>, Received) {
        let Ok(mut client) = RawClient::open(port, device).await else {
            return (None, Received::Closed);
        };
        if client
            .transport
            .send(Packet::Connect(connect))
            .await
            .is_err()
        {
            return (None, Received::Closed);
        }
        let received = client.recv(WAIT).await;
        (Some(client), received)
    }

    /// A clean-session CONNECT with `keep_alive` seconds that must succeed.
    pub async fn connect(port: u16, device: &Device) -> RawClient {
        RawClient::connect_options(port, device, |_| {}).await
    }

    pub async fn connect_options(
        port: u16,
        device: &Device,
        configure: impl FnOnce(&mut Connect),
    ) -> RawClient {
        let mut connect = Connect::new(device.client_id.clone());
        connect.keep_alive = 60;
        connect.clean_session = true;
        configure(&mut connect);
        let (client, received) = RawClient::connect_with(port, device, connect).await;
        match received {
            Received::Packet(Packet::ConnAck(ConnAck {
                code: rumqttc::mqttbytes::v4::ConnectReturnCode::Success,
                ..
            })) => {}
            other => panic!("CONNECT of {} failed: {other:?}", device.client_id),
        }
        client.unwrap()
    }

    pub async fn send(&mut self, packet: Packet) {
        self.transport.send(packet).await.unwrap();
    }

    pub async fn recv(&mut self, within: Duration) -> Received {
        match tokio::time::timeout(within, self.transport.next()).await {
            Err(_) => Received::Timeout,
            Ok(None) | Ok(Some(Err(_))) => Received::Closed,
            Ok(Some(Ok(packet))) => Received::Packet(packet),
        }
    }

    /// Waits until the server closes the connection (other packets are skipped).
    pub async fn expect_closed(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(remaining).await {
                Received::Closed => return,
                Received::Timeout => panic!("the connection stayed open"),
                Received::Packet(_) => continue,
            }
        }
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_packet_id;
        self.next_packet_id += 1;
        id
    }

    pub async fn subscribe(&mut self, filters: &[(&str, QoS)]) -> Received {
        let mut subscribe = Subscribe::new_many(filters.iter().map(|(filter, qos)| {
            rumqttc::mqttbytes::v4::SubscribeFilter::new((*filter).to_owned(), *qos)
        }));
        subscribe.pkid = self.packet_id();
        self.send(Packet::Subscribe(subscribe)).await;
        self.recv(WAIT).await
    }

    pub async fn subscribe_ok(&mut self, filter: &str, qos: QoS) -> SubAck {
        match self.subscribe(&[(filter, qos)]).await {
            Received::Packet(Packet::SubAck(ack)) => ack,
            other => panic!("expected SUBACK for {filter}, got {other:?}"),
        }
    }

    pub async fn unsubscribe(&mut self, filter: &str) {
        let mut unsubscribe = Unsubscribe::new(filter);
        unsubscribe.pkid = self.packet_id();
        self.send(Packet::Unsubscribe(unsubscribe)).await;
        match self.recv(WAIT).await {
            Received::Packet(Packet::UnsubAck(_)) => {}
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    /// Publishes; for QoS 1 returns whether the PUBACK arrived.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Received {
        let mut publish = Publish::new(topic, qos, payload.to_vec());
        publish.retain = retain;
        if qos != QoS::AtMostOnce {
            publish.pkid = self.packet_id();
        }
        self.send(Packet::Publish(publish)).await;
        if qos == QoS::AtMostOnce {
            return Received::Timeout;
        }
        self.recv(WAIT).await
    }

    /// The next PUBLISH (acknowledged when QoS 1), or None on timeout.
    pub async fn next_publish(&mut self, within: Duration) -> Option<Publish> {
        loop {
            match self.recv(within).await {
                Received::Packet(Packet::Publish(publish)) => {
                    if publish.qos == QoS::AtLeastOnce {
                        self.send(Packet::PubAck(PubAck::new(publish.pkid))).await;
                    }
                    return Some(publish);
                }
                Received::Packet(_) => continue,
                Received::Closed | Received::Timeout => return None,
            }
        }
    }

    pub async fn disconnect(mut self) {
        let _ = self.transport.send(Packet::Disconnect).await;
        let _ = self.transport.close().await;
    }

    /// Drops the socket without DISCONNECT (what a crash looks like to the broker).
    pub fn drop_connection(self) {
        drop(self);
    }
}

pub fn will(topic: &str, payload: &str, retain: bool) -> LastWill {
    LastWill::new(topic, payload.as_bytes().to_vec(), QoS::AtLeastOnce, retain)
}

// ---------------------------------------------------------------------------------------------------------
// mosquitto command-line clients.

/// A running `mosquitto_sub -d`: waits for its SUBACK, then yields `(retain, qos, topic, payload)` per message.
pub struct MosquittoSub {
    pub child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received1 {
    pub retain: bool,
    pub qos: u8,
    pub topic: String,
    pub payload: String,
}

impl MosquittoSub {
    pub async fn start(device: &Device, port: u16, extra: &[&str]) -> MosquittoSub {
        // stdbuf: line-buffered stdout, or the debug lines (SUBACK) sit in stdio's buffer. stdbuf execs
        // mosquitto_sub, so the child's pid is mosquitto_sub's.
        let mut command = tokio::process::Command::new("stdbuf");
        command
            .args(["-oL", "mosquitto_sub"])
            .args(device.mosquitto_args(port))
            .args(["-d", "-F", "MSG %r %q %t %p"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .expect("mosquitto_sub (apt-get install mosquitto-clients)");
        let stdout = child.stdout.take().unwrap();
        let (sender, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.recv().await {
                if line.contains("received SUBACK") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "mosquitto_sub did not get its SUBACK");
        MosquittoSub { child, lines }
    }

    pub async fn next_message(&mut self, within: Duration) -> Option<Received1> {
        tokio::time::timeout(within, async {
            while let Some(line) = self.lines.recv().await {
                let Some(rest) = line.strip_prefix("MSG ") else {
                    continue;
                };
                let mut parts = rest.splitn(4, ' ');
                let retain = parts.next()? == "1";
                let qos = parts.next()?.parse().ok()?;
                let topic = parts.next()?.to_owned();
                let payload = parts.next().unwrap_or("").to_owned();
                return Some(Received1 {
                    retain,
                    qos,
                    topic,
                    payload,
                });
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// SIGKILL: the process dies without sending DISCONNECT.
    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }

    /// SIGSTOP: the process stays connected but stops sending anything, PINGREQ included.
    pub fn freeze(&self) {
        let status = std::process::Command::new("kill")
            .args(["-STOP", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Runs `mosquitto_pub` to completion (killed after 10 s).
pub async fn mosquitto_pub(device: &Device, port: u16, extra: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new("mosquitto_pub")
        .args(device.mosquitto_args(port))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)");
    tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("mosquitto_pub finished")
        .unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// mosquitto 2 as a reference broker (benchmarks): TLS with client certificates from the same CA, an ACL that
// confines each client to `data/{clientId}/#` for writing and lets everyone read `data/#`, TCP_NODELAY like the
// emulator.

pub struct MosquittoBroker {
    pub child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl MosquittoBroker {
    pub fn start(ca: &EmulatorCa) -> MosquittoBroker {
        let dir = tempfile::tempdir().unwrap();
        let server = ca
            .issue_server_identity(&["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let cafile = write("ca.pem", ca.root_pem());
        let certfile = write("server.pem", &server.certificate_pem);
        let keyfile = write("server.key", &server.private_key_pem);
        // `pattern` lines apply to every client (`topic` lines before any `user` line only to anonymous ones).
        let aclfile = write("acl", "pattern readwrite data/%c/#\npattern read data/#\n");
        let port = free_port();
        // BROKER_BENCH_MOSQUITTO_LOG=/path logs everything mosquitto does there (to explain a stall).
        let logging = match std::env::var("BROKER_BENCH_MOSQUITTO_LOG") {
            Ok(path) => format!("log_type all\nlog_dest file {path}\n"),
            Err(_) => "log_type error\n".to_owned(),
        };
        let config = write(
            "mosquitto.conf",
            &format!(
                "per_listener_settings false\nlistener {port} 127.0.0.1\ncafile {cafile}\ncertfile {certfile}\n\
                 keyfile {keyfile}\nrequire_certificate true\nuse_identity_as_username true\n\
                 acl_file {aclfile}\npersistence false\nmax_inflight_messages 100\n\
                 max_queued_messages 0\nmax_connections -1\nset_tcp_nodelay true\n{logging}"
            ),
        );
        let child = std::process::Command::new("mosquitto")
            .args(["-c", &config])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (apt-get install mosquitto)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        MosquittoBroker {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for MosquittoBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident set size of a process in KiB (Linux `/proc/{pid}/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
