//! The one task that owns the MQTT connection (rumqttc's `EventLoop` + `AsyncClient`).
//!
//! Telemetry (through the outbox drainer) and the shadow sync publish through a `ConnectionHandle`, which
//! refuses while the link is down, and receive `LinkEvent`s. The task connects, reconnects with the
//! `backoff` policy, re-renders the Last Will before every CONNECT (so `connectedAt` is that attempt's time),
//! re-subscribes when the broker has no session for us (rumqtt #250), and ends with a clean DISCONNECT.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use std::io::ErrorKind;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Outgoing,
    Packet, PublishNotice, PublishOptions, QoS, StateError, TlsConfiguration, TlsError, Transport,
};
use tokio::sync::mpsc;

use crate::backoff::{Backoff, ReconnectPolicy};
use crate::config::AgentConfig;
use crate::will::will_payload;

/// AWS IoT's maximum MQTT payload (reference 6.5).
pub const MAX_PACKET_BYTES: usize = 128 * 1024;

/// What the connection tells the rest of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// CONNACK received (and, without a session, subscriptions re-sent).
    Connected { session_present: bool },
    /// The connection dropped; the task is backing off before the next attempt.
    Disconnected,
    /// A message on one of our subscriptions.
    Message { topic: String, payload: Vec<u8> },
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PublishError {
    #[error("not connected")]
    NotConnected,
    #[error("publish refused by the MQTT client: {0}")]
    Client(String),
}

#[derive(Debug)]
enum Command {
    Disconnect { drain_timeout: Duration },
}

/// A cheap, cloneable way to talk to the connection task.
///
/// Publishes go straight into rumqttc's request queue (no hop through the connection task: that
/// wakeup per message was measurable on a Pi-class budget, see docs/benchmarks.md); the task keeps
/// `connected` current so nothing is queued while the link is down.
#[derive(Debug, Clone)]
pub struct ConnectionHandle {
    client: AsyncClient,
    connected: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
}

impl ConnectionHandle {
    /// QoS 1 publish; the returned notice resolves with the PUBACK (or fails when the session is lost).
    pub fn publish_tracked(
        &self,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<PublishNotice, PublishError> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(PublishError::NotConnected);
        }
        self.client
            .try_publish_tracked(topic, payload, PublishOptions::new(QoS::AtLeastOnce))
            .map_err(|e| PublishError::Client(e.to_string()))
    }

    /// QoS 1 publish nobody waits for (shadow requests: their answer is the response topic). Dropped
    /// while disconnected: the shadow sync asks again after every connect.
    pub fn publish_untracked(&self, topic: String, payload: Vec<u8>) {
        if !self.connected.load(Ordering::Acquire) {
            return;
        }
        let options = PublishOptions::new(QoS::AtLeastOnce);
        if let Err(error) = self.client.try_publish(topic, payload, options) {
            tracing::warn!(%error, "could not queue publish");
        }
    }

    /// Ask for a clean DISCONNECT (no Will) after in-flight QoS 1 publishes drained or `drain_timeout` passed.
    pub async fn disconnect(&self, drain_timeout: Duration) {
        let _ = self
            .commands
            .send(Command::Disconnect { drain_timeout })
            .await;
    }
}

/// Everything the connection task needs, derived from the config.
#[derive(Clone)]
pub struct ConnectionSettings {
    pub thing_name: String,
    pub endpoint: String,
    pub port: u16,
    pub keep_alive_secs: u16,
    pub persistent_session: bool,
    pub will_topic: String,
    pub agent_session: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub subscriptions: Vec<String>,
    pub reconnect: ReconnectPolicy,
    pub connect_timeout_secs: u64,
    pub max_in_flight: u16,
}

impl std::fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("thing_name", &self.thing_name)
            .field("endpoint", &self.endpoint)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ConnectionSettings {
    pub fn from_config(
        config: &AgentConfig,
        tls: rustls::ClientConfig,
        agent_session: String,
        subscriptions: Vec<String>,
    ) -> Self {
        Self {
            thing_name: config.thing_name.clone(),
            endpoint: config.endpoint.clone(),
            port: config.port,
            keep_alive_secs: config.keep_alive_secs,
            persistent_session: config.persistent_session,
            will_topic: config.will_topic(),
            agent_session,
            tls: Arc::new(tls),
            subscriptions,
            reconnect: ReconnectPolicy::from_config(&config.reconnect),
            connect_timeout_secs: config.reconnect.connect_timeout_secs,
            // A little headroom over the drainer's window for shadow requests.
            max_in_flight: u16::try_from(config.outbox.max_in_flight + 10).unwrap_or(100),
        }
    }

    fn will(&self, attempt_at: SystemTime) -> LastWill {
        let payload = will_payload(&self.thing_name, &self.agent_session, attempt_at);
        // QoS 1, not retained (contract, architecture section 3).
        LastWill::new(self.will_topic.clone(), payload, QoS::AtLeastOnce, false)
    }

    fn mqtt_options(&self) -> MqttOptions {
        // Client id = thing name: the device policy's iot:Connect resource requires it.
        let mut options =
            MqttOptions::new(self.thing_name.clone(), (self.endpoint.clone(), self.port));
        options.set_keep_alive(self.keep_alive_secs);
        options.set_clean_session(!self.persistent_session);
        options.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        options.set_inflight(self.max_in_flight.max(1));
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::clone(&self.tls),
        )));
        options.set_last_will(self.will(SystemTime::now()));
        options
    }
}

/// Create the MQTT client (no I/O yet): the handle for the rest of the agent, and the part
/// `run_connection` drives.
pub fn connection_pair(settings: ConnectionSettings) -> (ConnectionHandle, ConnectionDriver) {
    let (client, eventloop) = AsyncClient::builder(settings.mqtt_options())
        .capacity(512)
        .build();
    let (commands, rx) = mpsc::channel(4);
    let connected = Arc::new(AtomicBool::new(false));
    let handle = ConnectionHandle {
        client: client.clone(),
        connected: Arc::clone(&connected),
        commands,
    };
    let driver = ConnectionDriver {
        settings,
        client,
        eventloop,
        connected,
        rx,
    };
    (handle, driver)
}

/// What `run_connection` owns: rumqttc's event loop and the receiving side of the handles' commands.
pub struct ConnectionDriver {
    settings: ConnectionSettings,
    client: AsyncClient,
    eventloop: rumqttc::EventLoop,
    connected: Arc<AtomicBool>,
    rx: mpsc::Receiver<Command>,
}

impl std::fmt::Debug for ConnectionDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionDriver")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

const HINT_NOTHING_LISTENS: &str =
    "nothing listens there: check endpoint and port (8883, or 443 with ALPN)";
const HINT_DNS: &str =
    "the endpoint name does not resolve: check `endpoint` and the Pi's network/DNS";
const HINT_ROOT_CA: &str = "the broker's certificate is not signed by tls.root_ca: use AmazonRootCA1.pem with an ATS endpoint";
const HINT_CERTIFICATE_REFUSED: &str = "the broker refused our certificate: is it ACTIVE, attached to the thing, and not expired? (`device-agent check`)";
const HINT_POLICY: &str = "the broker closed the connection: check the policy allows iot:Connect for client id = thing name and iot:Publish on the will topic";
const HINT_TIMEOUT: &str =
    "no answer in time: check the network path and firewall (outbound 8883/443)";
const HINT_RETRY: &str = "will retry";

/// A short hint for the errors Pi owners hit most, appended to the log line.
pub fn explain(error: &ConnectionError) -> &'static str {
    match error {
        ConnectionError::Io(io)
        | ConnectionError::MqttState(StateError::Io(io))
        | ConnectionError::Tls(TlsError::Io(io)) => explain_io(io),
        ConnectionError::Tls(TlsError::TLS(tls)) => explain_tls(tls),
        ConnectionError::Tls(TlsError::DNSName(_)) => HINT_DNS,
        ConnectionError::Tls(TlsError::WebPki(_)) => HINT_ROOT_CA,
        ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized) => HINT_POLICY,
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => HINT_TIMEOUT,
        _ => HINT_RETRY,
    }
}

fn explain_io(error: &std::io::Error) -> &'static str {
    // tokio-rustls reports a failed handshake as an io::Error of kind InvalidData around the rustls error.
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return explain_tls(tls);
    }
    match error.kind() {
        ErrorKind::ConnectionRefused => HINT_NOTHING_LISTENS,
        ErrorKind::ConnectionReset => HINT_POLICY,
        ErrorKind::TimedOut => HINT_TIMEOUT,
        _ if is_resolver_failure(error) => HINT_DNS,
        _ => HINT_RETRY,
    }
}

/// Whether `error` comes from resolving the endpoint's name.
///
/// std reports a getaddrinfo failure as a custom io::Error of its unstable `Uncategorized` kind, which
/// cannot be named in a match; what sets it apart on rumqttc's connect path is that it is the only error
/// with neither an OS error code nor one of the kinds the socket calls produce. rumqttc's own "resolved
/// to no address" is `InvalidInput` without an OS code.
fn is_resolver_failure(error: &std::io::Error) -> bool {
    if error.raw_os_error().is_some() || error.get_ref().is_none() {
        return false;
    }
    !matches!(
        error.kind(),
        ErrorKind::Other
            | ErrorKind::InvalidData
            | ErrorKind::UnexpectedEof
            | ErrorKind::WriteZero
            | ErrorKind::BrokenPipe
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected
    )
}

fn explain_tls(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InvalidCertificate(_) => HINT_ROOT_CA,
        rustls::Error::AlertReceived(_) | rustls::Error::NoCertificatesPresented => {
            HINT_CERTIFICATE_REFUSED
        }
        _ => HINT_RETRY,
    }
}

/// `LinkEvent`s one consumer may have waiting before the connection task waits for it.
pub const LINK_EVENT_CAPACITY: usize = 32;

/// One consumer's queue of `LinkEvent`s (the drainer's, the shadow sync's).
///
/// Policy: bounded at [`LINK_EVENT_CAPACITY`], and nothing is dropped: when a queue is full the connection
/// task waits for its consumer (see [`LinkSubscribers::deliver`]). Neither consumer ever waits for the
/// connection task (they publish with rumqttc's non-blocking `try_publish`, and the drainer's PUBACK
/// notices are one arm of its `select!`, beside this queue), so the wait always ends. Dropping was not an
/// option: a lost `Connected { session_present: false }` would leave the drainer waiting for PUBACKs the
/// broker forgot, a lost delta would leave the motor in the old state until the next reconnect.
pub fn link_event_channel() -> (mpsc::Sender<LinkEvent>, mpsc::Receiver<LinkEvent>) {
    mpsc::channel(LINK_EVENT_CAPACITY)
}

/// The connection task's side of the consumers' queues.
#[derive(Debug)]
pub struct LinkSubscribers {
    queues: Vec<mpsc::Sender<LinkEvent>>,
    waits: u64,
}

impl LinkSubscribers {
    pub fn new(queues: Vec<mpsc::Sender<LinkEvent>>) -> Self {
        Self { queues, waits: 0 }
    }

    /// Hand `event` to every consumer that still listens, in order; wait for a consumer whose queue is full.
    ///
    /// While this waits, rumqttc's event loop is not polled: it stops reading the socket and TCP pushes
    /// back to the broker, which holds the unacknowledged QoS 1 messages (up to 100 per client, reference
    /// 6.5, and in the persistent session across a reconnect, reference 6.4). The number
    /// of waits is logged, so an operator sees a consumer that does not keep up (e.g. a slow actuator
    /// under a flood of deltas).
    pub async fn deliver(&mut self, event: LinkEvent) {
        for queue in &self.queues {
            match queue.try_send(event.clone()) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.waits += 1;
                    // 1, 2, 4, 8...: visible at once, and not a line per message under a flood.
                    if self.waits.is_power_of_two() {
                        tracing::warn!(
                            waits_total = self.waits,
                            capacity = LINK_EVENT_CAPACITY,
                            "a consumer's event queue is full: the MQTT event loop waits for it"
                        );
                    }
                    // Err only when the consumer has gone (shutdown): nobody left to tell.
                    let _ = queue.send(event).await;
                }
            }
        }
    }

    /// How often `deliver` found a queue full and waited.
    pub fn waits(&self) -> u64 {
        self.waits
    }
}

/// Own the connection until a `Disconnect` command (or every handle is dropped).
pub async fn run_connection(driver: ConnectionDriver, mut subscribers: LinkSubscribers) {
    let ConnectionDriver {
        settings,
        client,
        mut eventloop,
        connected: link_up,
        rx: mut commands,
    } = driver;
    eventloop
        .network_options
        .set_connection_timeout(settings.connect_timeout_secs.max(1));
    // Small MQTT packets must not wait for Nagle: a shadow report written right after a PUBACK
    // otherwise sits ~40 ms behind the broker's delayed ACK (measured in the emulator's
    // e2e_latency bench: delta -> reported p50 44 ms with Nagle, 1.6 ms without).
    eventloop.network_options.set_tcp_nodelay(true);
    let mut backoff = Backoff::new(settings.reconnect);
    let mut connected = false;
    let mut disconnecting: Option<Instant> = None;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
    let address = format!("{}:{}", settings.endpoint, settings.port);

    loop {
        if !connected {
            if disconnecting.is_some() {
                return;
            }
            // Back off before the next CONNECT; a disconnect request ends the wait (and the task).
            let delay = backoff.delay_before_attempt(Instant::now(), &mut rng);
            if !delay.is_zero() {
                // Said before waiting: a reconnect long after the broker is back is otherwise unexplained.
                tracing::info!(%address, retry_in_ms = delay.as_millis() as u64, "next connect attempt");
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                command = commands.recv() => match command {
                    None | Some(Command::Disconnect { .. }) => return,
                },
            }
            eventloop
                .mqtt_options
                .set_last_will(settings.will(SystemTime::now()));
            backoff.record_attempt(Instant::now());
        }

        tokio::select! {
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    connected = true;
                    link_up.store(true, Ordering::Release);
                    backoff.record_connected(Instant::now());
                    tracing::info!(%address, session_present = connack.session_present, "connected");
                    if !connack.session_present {
                        let filters = settings.subscriptions.iter().map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                        if let Err(error) = client.try_subscribe_many(filters) {
                            tracing::error!(%error, "could not queue subscriptions");
                        }
                    }
                    subscribers.deliver(LinkEvent::Connected { session_present: connack.session_present }).await;
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    subscribers.deliver(LinkEvent::Message {
                        topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                        payload: publish.payload.to_vec(),
                    }).await;
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    tracing::info!("sent DISCONNECT; the broker discards the Last Will");
                    return;
                }
                Ok(_) => {}
                Err(ConnectionError::RequestsDone) => return,
                Err(error) => {
                    if disconnecting.is_some() {
                        tracing::warn!(%error, "connection ended during shutdown");
                        return;
                    }
                    if connected {
                        subscribers.deliver(LinkEvent::Disconnected).await;
                        tracing::warn!(%address, %error, "connection lost");
                    } else {
                        tracing::warn!(%address, %error, hint = explain(&error), "connect failed");
                    }
                    connected = false;
                    link_up.store(false, Ordering::Release);
                    backoff.record_failure(Instant::now());
                }
            },
            command = commands.recv(), if connected && disconnecting.is_none() => {
                let drain_timeout = match command {
                    Some(Command::Disconnect { drain_timeout }) => drain_timeout,
                    None => Duration::from_secs(1),
                };
                disconnecting = Some(Instant::now());
                // From here on the handles refuse new publishes; in-flight ones may still complete.
                link_up.store(false, Ordering::Release);
                if client.try_disconnect_with_timeout(drain_timeout).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn settings() -> ConnectionSettings {
        let config =
            AgentConfig::from_toml_str("endpoint = \"example.com\"\nthing_name = \"ratchet\"")
                .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        ConnectionSettings::from_config(&config, tls, "session-1".into(), vec!["a/b".into()])
    }

    #[test]
    fn client_id_is_the_thing_name_and_the_will_follows_the_contract() {
        let settings = settings();
        let options = settings.mqtt_options();
        assert_eq!(options.client_id(), "ratchet");
        assert!(!options.clean_session(), "persistent session by default");
        let will = options.last_will().unwrap();
        assert_eq!(will.topic, "device/ratchet/lwt");
        assert_eq!((will.qos, will.retain), (QoS::AtLeastOnce, false));
        let payload: serde_json::Value = serde_json::from_slice(&will.message).unwrap();
        assert_eq!(payload["agentSession"], "session-1");
        assert_eq!(payload["reason"], "unexpected");
    }

    #[test]
    fn will_carries_the_attempt_time() {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000);
        let payload: serde_json::Value =
            serde_json::from_slice(&settings().will(at).message).unwrap();
        assert_eq!(payload["connectedAt"], 1_800_000_000_000u64);
    }

    #[test]
    fn common_failures_get_a_hint() {
        let refused =
            ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let hint = explain(&refused);
        assert!(hint.contains("nothing listens"), "{hint}");
        assert!(explain(&ConnectionError::NetworkTimeout).contains("firewall"));
    }

    #[test]
    fn the_hint_follows_the_error_variant_not_its_text() {
        use std::net::ToSocketAddrs;
        // A real resolver failure (`.invalid` never resolves, RFC 6761).
        let dns = ("device-agent-test.invalid", 8883)
            .to_socket_addrs()
            .unwrap_err();
        assert_eq!(explain(&ConnectionError::Io(dns)), HINT_DNS);
        let handshake = |error: rustls::Error| {
            ConnectionError::Tls(TlsError::Io(std::io::Error::new(
                ErrorKind::InvalidData,
                error,
            )))
        };
        let unknown_issuer =
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(explain(&handshake(unknown_issuer)), HINT_ROOT_CA);
        let bad_certificate =
            rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate);
        assert_eq!(
            explain(&handshake(bad_certificate)),
            HINT_CERTIFICATE_REFUSED
        );
        let not_authorized = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert_eq!(explain(&not_authorized), HINT_POLICY);
        let reset = ConnectionError::MqttState(StateError::Io(std::io::Error::from(
            ErrorKind::ConnectionReset,
        )));
        assert_eq!(explain(&reset), HINT_POLICY);
        // Text that merely mentions a cause does not count: only the variant does.
        let text_only = ConnectionError::Io(std::io::Error::other("certificate refused: timeout"));
        assert_eq!(explain(&text_only), HINT_RETRY);
    }

    fn message(n: u8) -> LinkEvent {
        LinkEvent::Message {
            topic: "t".into(),
            payload: vec![n],
        }
    }

    /// The bound's policy: a full queue makes the connection task wait, it never drops an event.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_makes_the_event_loop_wait_and_loses_nothing() {
        let (tx, mut slow) = link_event_channel();
        let mut subscribers = LinkSubscribers::new(vec![tx]);
        let total = LINK_EVENT_CAPACITY + 3;
        let producer = tokio::spawn(async move {
            for n in 0..total {
                subscribers.deliver(message(n as u8)).await;
            }
            subscribers.waits()
        });
        // The consumer does not read: the producer fills the queue and then waits, it does not go on.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !producer.is_finished(),
            "the producer must wait for the slow consumer"
        );
        assert_eq!(
            slow.len(),
            LINK_EVENT_CAPACITY,
            "bounded: nothing beyond the capacity is held"
        );
        let mut received = Vec::new();
        while received.len() < total {
            received.push(slow.recv().await.unwrap());
        }
        assert!(producer.await.unwrap() >= 1, "the wait is counted");
        let expected: Vec<_> = (0..total).map(|n| message(n as u8)).collect();
        assert_eq!(received, expected, "every event, in order");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_consumer_that_has_gone_does_not_hold_up_the_others() {
        let (gone_tx, gone) = link_event_channel();
        let (tx, mut listening) = link_event_channel();
        drop(gone);
        let mut subscribers = LinkSubscribers::new(vec![gone_tx, tx]);
        subscribers.deliver(LinkEvent::Disconnected).await;
        assert_eq!(listening.recv().await, Some(LinkEvent::Disconnected));
        assert_eq!(subscribers.waits(), 0);
    }
}
