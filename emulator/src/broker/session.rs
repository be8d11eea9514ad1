//! One MQTT connection: TLS handshake and identity, CONNECT with its authorization, then the loop that reads a
//! packet, authorizes it and dispatches it, writes deliveries (checking `iot:Receive` on each), watches the
//! keep-alive, and finally publishes the Last Will and the `disconnected` event for the reason it ended.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use iot_events::DisconnectReason;
use iot_events::lifecycle::{
    ConnectFailedEvent, ConnectedEvent, DisconnectedEvent, LifecycleEvent, SubscriptionEvent,
};
use iot_policy::{
    ArnBuffer, ConnectionContext, PolicySet, ResourceType, ThingAssociation, actions,
};
use rumqttc::mqttbytes::Error as CodecError;
use rumqttc::mqttbytes::v4::{
    Codec, ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PubAck, Publish, SubAck,
    Subscribe, SubscribeReasonCode, UnsubAck, Unsubscribe,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::server::TlsStream;
use tokio_util::codec::Framed;

use super::Shared;
use super::config::SubscribeDenial;
use super::connections::{ConnectionFacts, DirectOutcome};
use super::denials::{DenialOutcome, DeniedRequest};
use super::internal::{Admission, Saturated};
use super::message::{Message, Origin, Qos};
use super::router::{CloseOrder, ConnectionLink, SubscribeRefusal, ToSession};
use super::shutdown::Shutdown;
use super::topics::{check_client_topic_name, check_topic_filter};
use crate::clock::now_millis;
use crate::identity::{certificate_context, certificate_id};
use crate::registry::PrincipalView;

type Transport = Framed<TlsStream<TcpStream>, Codec>;

/// Deliveries written before one flush, so a burst costs one TLS record flush rather than one per message.
const DELIVERY_BATCH: usize = 64;

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ending {
    reason: DisconnectReason,
    /// False only for `DeleteConnection(preventWillMessage=true)`; the reason decides otherwise (reference 1.4).
    will_allowed: bool,
}

impl Ending {
    fn because(reason: DisconnectReason) -> Ending {
        Ending {
            reason,
            will_allowed: true,
        }
    }
}

enum Flow {
    Continue,
    End(Ending),
}

/// Serves one accepted TCP connection until it closes. `_done` is dropped on return, which is how the broker
/// knows every connection has finished during shutdown.
pub(crate) async fn serve_connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    mut shutdown: Shutdown,
    _done: mpsc::Sender<()>,
) {
    let _ = tcp.set_nodelay(true);
    // The address the client reached (GetConnection's targetIp/targetPort).
    let Ok(target) = tcp.local_addr() else {
        return;
    };
    let handshake = tokio::time::timeout(shared.config.connect_timeout, shared.tls.accept(tcp));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        () = shutdown.recv() => return,
    };
    let Some(certificate_der) = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| der.as_ref().to_vec())
    else {
        return;
    };
    let Some(principal) = shared.registry.principal(&certificate_id(&certificate_der)) else {
        return;
    };
    let limits = &shared.config.limits;
    // Room for the fixed and variable headers around a maximum-size payload; the payload limit itself is checked
    // per PUBLISH so that the reaction is AWS's (CLIENT_ERROR), not a codec error.
    let max_packet = limits.max_payload_bytes + limits.max_topic_bytes + 64;
    let mut transport = Framed::new(
        tls,
        Codec {
            max_incoming_size: max_packet,
            max_outgoing_size: max_packet,
        },
    );
    let first = tokio::select! {
        first = tokio::time::timeout(shared.config.connect_timeout, transport.next()) => first,
        () = shutdown.recv() => return,
    };
    let connect = match first {
        Ok(Some(Ok(Packet::Connect(connect)))) => connect,
        Ok(Some(Err(CodecError::InvalidProtocolLevel(level)))) => {
            // MQTT 5 (level 5) is not emulated: refuse the protocol version as a 3.1.1 server does.
            tracing::info!(%peer, level, "refused an MQTT protocol level other than 3.1.1");
            let refusal = ConnAck::new(ConnectReturnCode::RefusedProtocolVersion, false);
            let _ = transport.send(Packet::ConnAck(refusal)).await;
            return;
        }
        other => {
            tracing::debug!(%peer, ?other, "no CONNECT as the first packet");
            return;
        }
    };
    let Some(mut session) = Session::establish(
        shared,
        transport,
        connect,
        principal,
        &certificate_der,
        peer,
        target,
    )
    .await
    else {
        return;
    };
    let ending = session.run(&mut shutdown).await;
    session.finish(ending).await;
}

struct Session {
    shared: Arc<Shared>,
    transport: Transport,
    client_id: String,
    connection_id: u64,
    context: ConnectionContext,
    policies: PolicySet,
    /// The registry generation `policies` and the thing context were read at.
    policy_generation: u64,
    arns: ArnBuffer,
    principal_id: String,
    session_identifier: String,
    /// `thingName` appears in lifecycle events only for an exclusive thing association (reference 1.1).
    event_thing_name: Option<String>,
    will: Option<LastWill>,
    persistent: bool,
    keep_alive: Duration,
    last_activity: Instant,
    version_number: u64,
    outbox: mpsc::Receiver<ToSession>,
    /// The router's order to end this connection (takeover, DeleteConnection, a consumer that does not keep up).
    close_order: watch::Receiver<CloseOrder>,
    inflight: HashMap<u16, (Arc<Message>, Qos)>,
    /// Packet ids of in-flight direct messages whose sender waits for the PUBACK (SendDirectMessage with
    /// confirmation). A subset of `inflight`'s keys, so bounded by the same limit.
    direct_acks: HashMap<u16, oneshot::Sender<DirectOutcome>>,
    backlog: VecDeque<(Arc<Message>, Qos)>,
    next_packet_id: u16,
}

/// Why a CONNECT is refused before the session exists.
enum Refusal {
    /// Not authorized: `connect_failed` (AUTHORIZATION_FAILED) is published (reference 1.5, 4.5).
    Unauthorized,
    /// Malformed or outside AWS's rules; no lifecycle event.
    Invalid(ConnectReturnCode),
}

impl Session {
    async fn establish(
        shared: Arc<Shared>,
        mut transport: Transport,
        connect: Connect,
        principal: PrincipalView,
        certificate_der: &[u8],
        peer: SocketAddr,
        target: SocketAddr,
    ) -> Option<Session> {
        let client_id = connect.client_id.clone();
        let ip_address = peer.ip().to_string();
        let thing = principal.thing_for_client(&client_id);
        let event_thing_name = thing
            .as_ref()
            .filter(|thing| thing.association == ThingAssociation::Exclusive)
            .map(|thing| thing.name.clone());
        let associated_thing = thing.as_ref().map(|thing| thing.name.clone());
        let mut context = ConnectionContext::new(client_id.clone())
            .with_certificate(certificate_context(certificate_der))
            .with_source_ip(ip_address.clone());
        context.thing = thing;
        if !connect.clean_session {
            context
                .connect_attributes
                .push("PersistentConnect".to_owned());
        }
        if connect.last_will.is_some() {
            context.connect_attributes.push("LastWill".to_owned());
        }
        let mut arns = ArnBuffer::new(shared.arn_scope.clone());
        let policy_generation = shared.registry.generation();
        let session_identifier = uuid::Uuid::new_v4().to_string();

        let refusal = check_connect(
            &shared,
            &connect,
            &principal.certificate_id,
            &principal.policies,
            &context,
            &mut arns,
        );
        if let Err(refusal) = refusal {
            let code = match refusal {
                Refusal::Unauthorized => {
                    tracing::info!(client_id, %peer, "CONNECT not authorized");
                    shared
                        .lifecycle
                        .publish(&LifecycleEvent::ConnectFailed(ConnectFailedEvent {
                            client_id: client_id.clone(),
                            thing_name: event_thing_name,
                            timestamp: now_millis(),
                            connect_failure_reason: "AUTHORIZATION_FAILED".to_owned(),
                            principal_identifier: Some(principal.certificate_id.clone()),
                            session_identifier: Some(session_identifier),
                            ip_address: Some(ip_address),
                        }));
                    // AWS's 2023 doc says code 7 (outside MQTT 3.1.1); the codec can only write 3.1.1 codes.
                    ConnectReturnCode::NotAuthorized
                }
                Refusal::Invalid(code) => {
                    tracing::info!(client_id, %peer, ?code, "CONNECT refused");
                    code
                }
            };
            let _ = transport
                .send(Packet::ConnAck(ConnAck::new(code, false)))
                .await;
            return None;
        }

        let now = Instant::now();
        let (sender, outbox) = mpsc::channel(shared.config.limits.max_pending_outbound.max(1));
        let (closer, close_order) = watch::channel(None);
        let connection_id = shared.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let outcome = shared.router.connect(
            &client_id,
            connect.clean_session,
            ConnectionLink {
                id: connection_id,
                outbox: sender,
                closer: Arc::new(closer),
                facts: ConnectionFacts {
                    clean_session: connect.clean_session,
                    thing_name: associated_thing,
                    source: peer,
                    target,
                    keep_alive_secs: connect.keep_alive,
                    connected_since_ms: now_millis(),
                },
            },
            session_identifier,
            now,
        );
        let version_number = shared.lifecycle.connect_version(&client_id, now);
        let keep_alive = shared.config.effective_keep_alive(connect.keep_alive);
        let mut session = Session {
            shared,
            transport,
            client_id,
            connection_id,
            context,
            policies: principal.policies,
            policy_generation,
            arns,
            principal_id: principal.certificate_id,
            session_identifier: outcome.session_identifier,
            event_thing_name,
            will: connect.last_will,
            persistent: !connect.clean_session,
            keep_alive,
            last_activity: now,
            version_number,
            outbox,
            close_order,
            inflight: HashMap::new(),
            direct_acks: HashMap::new(),
            backlog: VecDeque::new(),
            next_packet_id: 1,
        };
        let connack = ConnAck::new(ConnectReturnCode::Success, outcome.session_present);
        if session
            .transport
            .send(Packet::ConnAck(connack))
            .await
            .is_err()
        {
            session
                .finish(Ending::because(DisconnectReason::ConnectionLost))
                .await;
            return None;
        }
        // The keep-alive timer starts when CONNACK is sent (reference 2.4).
        session.last_activity = Instant::now();
        tracing::info!(
            client_id = session.client_id,
            %peer,
            keep_alive_s = keep_alive.as_secs(),
            session_present = outcome.session_present,
            version = version_number,
            "connected"
        );
        session
            .shared
            .lifecycle
            .publish(&LifecycleEvent::Connected(ConnectedEvent {
                client_id: session.client_id.clone(),
                thing_name: session.event_thing_name.clone(),
                timestamp: now_millis(),
                session_identifier: session.session_identifier.clone(),
                principal_identifier: Some(session.principal_id.clone()),
                ip_address: Some(ip_address),
                version_number,
            }));
        Some(session)
    }

    async fn run(&mut self, shutdown: &mut Shutdown) -> Ending {
        enum Event {
            Packet(Option<Result<Packet, CodecError>>),
            Command(Option<ToSession>),
            Close,
            KeepAliveExpired,
            Shutdown,
        }
        let grace = self.keep_alive * 3 / 2;
        loop {
            let deadline = tokio::time::Instant::from_std(self.last_activity + grace);
            let event = tokio::select! {
                packet = self.transport.next() => Event::Packet(packet),
                _ = self.close_order.changed() => Event::Close,
                // A full backlog stops taking deliveries: the router's bounded channel then fills, and its
                // policy applies (`ConnectionLink::deliver`).
                command = self.outbox.recv(), if self.backlog.len() < self.shared.config.limits.max_pending_outbound
                    => Event::Command(command),
                () = tokio::time::sleep_until(deadline) => Event::KeepAliveExpired,
                () = shutdown.recv() => Event::Shutdown,
            };
            let flow = match event {
                Event::Packet(None) => Flow::End(Ending::because(DisconnectReason::ConnectionLost)),
                Event::Packet(Some(Err(error))) => {
                    Flow::End(Ending::because(codec_error_reason(&error)))
                }
                // A handler can block on a write to a peer that stopped reading: the router's close order and
                // the keep-alive deadline still end the connection then.
                Event::Packet(Some(Ok(packet))) => {
                    let mut close = self.close_order.clone();
                    tokio::select! {
                        flow = self.handle_packet(packet) => flow,
                        ending = stalled(&mut close, deadline) => Flow::End(ending),
                    }
                }
                Event::Command(Some(command)) => {
                    let mut close = self.close_order.clone();
                    tokio::select! {
                        flow = self.handle_command(command) => flow,
                        ending = stalled(&mut close, deadline) => Flow::End(ending),
                    }
                }
                // The router drops its handle right after ordering a close (takeover): the closed channel may be
                // seen before the order, which then says why.
                Event::Command(None) | Event::Close => match self.close_order.borrow().clone() {
                    Some((reason, publish_will)) => Flow::End(Ending {
                        reason,
                        will_allowed: publish_will,
                    }),
                    // The router's handle is gone: the router has dropped this connection.
                    None => Flow::End(Ending::because(DisconnectReason::ServerError)),
                },
                Event::KeepAliveExpired => {
                    Flow::End(Ending::because(DisconnectReason::MqttKeepAliveTimeout))
                }
                Event::Shutdown => {
                    Flow::End(Ending::because(DisconnectReason::ServerInitiatedDisconnect))
                }
            };
            if let Flow::End(ending) = flow {
                return ending;
            }
        }
    }

    async fn handle_packet(&mut self, packet: Packet) -> Flow {
        match packet {
            Packet::Publish(publish) => {
                self.touch();
                self.handle_publish(publish).await
            }
            Packet::PubAck(ack) => {
                self.touch();
                self.inflight.remove(&ack.pkid);
                if let Some(reply) = self.direct_acks.remove(&ack.pkid) {
                    let _ = reply.send(DirectOutcome::Delivered);
                }
                self.drain_backlog().await
            }
            Packet::Subscribe(subscribe) => {
                self.touch();
                self.handle_subscribe(subscribe).await
            }
            Packet::Unsubscribe(unsubscribe) => self.handle_unsubscribe(unsubscribe).await,
            Packet::PingReq => {
                self.touch();
                self.write(Packet::PingResp).await
            }
            Packet::Disconnect => {
                Flow::End(Ending::because(DisconnectReason::ClientInitiatedDisconnect))
            }
            // A second CONNECT, QoS 2 handshakes (unsupported, reference 6.1) and server-only packets.
            other => {
                tracing::info!(client_id = self.client_id, packet = ?other.packet_type(), "unexpected packet");
                Flow::End(Ending::because(DisconnectReason::ClientError))
            }
        }
    }

    /// PUBLISH: limits and reserved topics, then `iot:Publish` (+ `iot:RetainPublish`), route, PUBACK.
    async fn handle_publish(&mut self, publish: Publish) -> Flow {
        let Some(qos) = Qos::from_wire(publish.qos) else {
            // AWS does not acknowledge QoS 2 (reference 6.1); the message is not routed.
            tracing::debug!(client_id = self.client_id, "ignored a QoS 2 PUBLISH");
            return Flow::Continue;
        };
        let limits = &self.shared.config.limits;
        let Ok(topic) = std::str::from_utf8(&publish.topic) else {
            return Flow::End(Ending::because(DisconnectReason::ClientError));
        };
        if publish.payload.len() > limits.max_payload_bytes {
            tracing::info!(
                client_id = self.client_id,
                size = publish.payload.len(),
                "payload over the limit"
            );
            return Flow::End(Ending::because(DisconnectReason::ClientError));
        }
        if let Err(error) = check_client_topic_name(topic, publish.retain, &limits.topics()) {
            tracing::info!(client_id = self.client_id, topic, %error, "refused PUBLISH topic");
            return Flow::End(Ending::because(DisconnectReason::ClientError));
        }
        let topic = topic.to_owned();
        let denied = if !self.allowed(actions::PUBLISH, ResourceType::Topic, &topic) {
            Some(actions::PUBLISH)
        } else if publish.retain
            && !self.allowed(actions::RETAIN_PUBLISH, ResourceType::Topic, &topic)
        {
            Some(actions::RETAIN_PUBLISH)
        } else {
            None
        };
        if let Some(action) = denied {
            // MQTT 3.1.1: a denied publish closes the connection (reference 4.5).
            tracing::info!(
                client_id = self.client_id,
                topic,
                action,
                "PUBLISH not authorized"
            );
            self.record_denial(
                action,
                ResourceType::Topic,
                &topic,
                DenialOutcome::Disconnected,
            );
            return Flow::End(Ending::because(DisconnectReason::AuthError));
        }
        let message = Message {
            topic,
            payload: publish.payload,
            qos,
            retain: publish.retain,
            origin: self.origin(),
            is_will: false,
            timestamp_ms: now_millis(),
        };
        if !self.route_with_backpressure(message).await {
            if qos == Qos::AtLeastOnce {
                // No PUBACK: the client still holds the message and sends it again once reconnected.
                tracing::warn!(
                    client_id = self.client_id,
                    "an in-process subscriber (rule, shadow service) is not keeping up: disconnecting (THROTTLED)"
                );
                return Flow::End(Ending::because(DisconnectReason::Throttled));
            }
            tracing::debug!(
                client_id = self.client_id,
                "QoS 0 PUBLISH dropped: an in-process subscriber is not keeping up"
            );
            return Flow::Continue;
        }
        if qos == Qos::AtLeastOnce {
            return self.write(Packet::PubAck(PubAck::new(publish.pkid))).await;
        }
        Flow::Continue
    }

    /// Routes a device's message, waiting up to `Limits::internal_queue_wait` while an in-process subscriber it
    /// matches is at its bound (the socket is not read meanwhile: TCP pushes back on the client). False when it
    /// is still refused at the deadline; the refusal is counted.
    async fn route_with_backpressure(&self, mut message: Message) -> bool {
        let router = &self.shared.router;
        let deadline = tokio::time::Instant::now() + self.shared.config.limits.internal_queue_wait;
        loop {
            // Registered before trying, so room made between the refusal and the wait is not missed.
            let room = router.room_notifier().notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match router.publish(message, Admission::Bounded, Instant::now()) {
                Ok(()) => return true,
                Err(Saturated(refused)) => message = *refused,
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                router.count_internal_refusal();
                return false;
            }
        }
    }

    /// SUBSCRIBE: filter rules and limits, `iot:Subscribe` on the literal filter, SUBACK, retained messages for
    /// exact filters, and the `subscribed` event.
    async fn handle_subscribe(&mut self, subscribe: Subscribe) -> Flow {
        // A clone of the shared state, so `config` can be read while `self` is borrowed mutably below.
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let mut requested = Vec::with_capacity(subscribe.filters.len());
        for filter in &subscribe.filters {
            match Qos::from_wire(filter.qos) {
                Some(qos) => requested.push((filter.path.clone(), qos)),
                None => {
                    // A QoS 2 subscription gets no SUBACK at all (reference 6.1).
                    tracing::debug!(
                        client_id = self.client_id,
                        "ignored a SUBSCRIBE asking for QoS 2"
                    );
                    return Flow::Continue;
                }
            }
        }
        if requested.len() > config.limits.max_filters_per_subscribe {
            tracing::info!(
                client_id = self.client_id,
                filters = requested.len(),
                "too many filters in one SUBSCRIBE"
            );
            return Flow::End(Ending::because(DisconnectReason::ClientError));
        }
        let mut return_codes = Vec::with_capacity(requested.len());
        let mut retained = Vec::new();
        for (filter, qos) in &requested {
            if let Err(error) = check_topic_filter(filter, &config.limits) {
                tracing::info!(client_id = self.client_id, filter, %error, "refused topic filter");
                return_codes.push(SubscribeReasonCode::Failure);
                continue;
            }
            if !self.allowed(actions::SUBSCRIBE, ResourceType::TopicFilter, filter) {
                tracing::info!(
                    client_id = self.client_id,
                    filter,
                    "SUBSCRIBE not authorized"
                );
                match config.subscribe_denial {
                    SubscribeDenial::Disconnect => {
                        self.record_denial(
                            actions::SUBSCRIBE,
                            ResourceType::TopicFilter,
                            filter,
                            DenialOutcome::Disconnected,
                        );
                        return Flow::End(Ending::because(DisconnectReason::AuthError));
                    }
                    SubscribeDenial::SubackFailure => {
                        self.record_denial(
                            actions::SUBSCRIBE,
                            ResourceType::TopicFilter,
                            filter,
                            DenialOutcome::SubackFailure,
                        );
                        return_codes.push(SubscribeReasonCode::Failure);
                        continue;
                    }
                }
            }
            match self.shared.router.subscribe(&self.client_id, filter, *qos) {
                Ok(retained_message) => {
                    return_codes.push(SubscribeReasonCode::Success(qos.to_wire()));
                    if let Some(message) = retained_message {
                        retained.push((message, *qos));
                    }
                }
                Err(SubscribeRefusal::TooManySubscriptions) => {
                    tracing::info!(
                        client_id = self.client_id,
                        "over the subscriptions-per-connection limit"
                    );
                    return Flow::End(Ending::because(DisconnectReason::ClientError));
                }
                Err(SubscribeRefusal::NoSession) => {
                    return Flow::End(Ending::because(DisconnectReason::DuplicateClientId));
                }
            }
        }
        if let Flow::End(ending) = self
            .write(Packet::SubAck(SubAck::new(subscribe.pkid, return_codes)))
            .await
        {
            return Flow::End(ending);
        }
        let topics = requested.into_iter().map(|(filter, _)| filter).collect();
        self.publish_subscription_event(true, topics);
        for (message, subscription_qos) in retained {
            let qos = subscription_qos.min(message.qos);
            if let Flow::End(ending) = self.deliver(message, qos, true).await {
                return Flow::End(ending);
            }
        }
        self.flush().await
    }

    async fn handle_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Flow {
        for filter in &unsubscribe.topics {
            self.shared.router.unsubscribe(&self.client_id, filter);
        }
        let flow = self
            .write(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)))
            .await;
        self.publish_subscription_event(false, unsubscribe.topics);
        flow
    }

    async fn handle_command(&mut self, command: ToSession) -> Flow {
        let mut next = Some(command);
        let mut written = 0;
        while let Some(command) = next.take() {
            match command {
                ToSession::Deliver {
                    message,
                    qos,
                    retain,
                } => {
                    if let Flow::End(ending) = self.deliver(message, qos, retain).await {
                        return Flow::End(ending);
                    }
                }
                ToSession::Direct {
                    message,
                    qos,
                    reply,
                } => {
                    if let Flow::End(ending) = self.deliver_direct(message, qos, reply).await {
                        return Flow::End(ending);
                    }
                }
                ToSession::Close {
                    reason,
                    publish_will,
                } => {
                    return Flow::End(Ending {
                        reason,
                        will_allowed: publish_will,
                    });
                }
            }
            written += 1;
            if written < DELIVERY_BATCH {
                next = self.outbox.try_recv().ok();
            }
        }
        self.flush().await
    }

    /// Queues one delivery on the transport (flushed by the caller). `iot:Receive` is checked here, on every
    /// delivery; a denied message is dropped silently (reference 4.5).
    async fn deliver(&mut self, message: Arc<Message>, qos: Qos, retain: bool) -> Flow {
        if !self.allowed(actions::RECEIVE, ResourceType::Topic, &message.topic) {
            tracing::debug!(
                client_id = self.client_id,
                topic = message.topic,
                "Receive not authorized; dropped"
            );
            return Flow::Continue;
        }
        let mut publish = Publish::from_bytes(
            message.topic.as_str(),
            qos.to_wire(),
            message.payload.clone(),
        );
        publish.retain = retain;
        if qos == Qos::AtLeastOnce {
            if self.inflight.len() >= self.shared.config.limits.max_inflight_outbound {
                self.backlog.push_back((message, qos));
                return Flow::Continue;
            }
            let packet_id = self.allocate_packet_id();
            publish.pkid = packet_id;
            self.inflight.insert(packet_id, (message, qos));
        }
        match self.transport.feed(Packet::Publish(publish)).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End(Ending::because(DisconnectReason::ConnectionLost)),
        }
    }

    /// A direct message (SendDirectMessage): no subscription needed, `iot:Receive` still checked, and never
    /// backlogged: a client with a full in-flight window answers `Busy` at once. Without a reply wanted at
    /// PUBACK (QoS 0), the sender hears back once the message is handed to the transport.
    async fn deliver_direct(
        &mut self,
        message: Arc<Message>,
        qos: Qos,
        reply: oneshot::Sender<DirectOutcome>,
    ) -> Flow {
        if !self.allowed(actions::RECEIVE, ResourceType::Topic, &message.topic) {
            let _ = reply.send(DirectOutcome::NotAuthorized);
            return Flow::Continue;
        }
        let mut publish = Publish::from_bytes(
            message.topic.as_str(),
            qos.to_wire(),
            message.payload.clone(),
        );
        let mut reply = Some(reply);
        if qos == Qos::AtLeastOnce {
            if self.inflight.len() >= self.shared.config.limits.max_inflight_outbound {
                if let Some(reply) = reply.take() {
                    let _ = reply.send(DirectOutcome::Busy);
                }
                return Flow::Continue;
            }
            let packet_id = self.allocate_packet_id();
            publish.pkid = packet_id;
            self.inflight.insert(packet_id, (message, qos));
            if let Some(reply) = reply.take() {
                self.direct_acks.insert(packet_id, reply);
            }
        }
        let flow = match self.transport.feed(Packet::Publish(publish)).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End(Ending::because(DisconnectReason::ConnectionLost)),
        };
        if let Some(reply) = reply {
            let _ = reply.send(DirectOutcome::Delivered);
        }
        flow
    }

    async fn drain_backlog(&mut self) -> Flow {
        while self.inflight.len() < self.shared.config.limits.max_inflight_outbound {
            let Some((message, qos)) = self.backlog.pop_front() else {
                break;
            };
            if let Flow::End(ending) = self.deliver(message, qos, false).await {
                return Flow::End(ending);
            }
        }
        self.flush().await
    }

    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&id) {
                return id;
            }
        }
    }

    fn allowed(&mut self, action: &str, resource_type: ResourceType, name: &str) -> bool {
        let generation = self.shared.registry.generation();
        if generation != self.policy_generation {
            self.refresh_policies(generation);
        }
        let arn = self.arns.format(resource_type, name);
        self.policies
            .decide(action, arn, &self.context)
            .is_allowed()
    }

    /// Keeps a refusal in the broker's denials, evaluated again with its reasons (only on this slow path).
    fn record_denial(
        &mut self,
        action: &str,
        resource_type: ResourceType,
        name: &str,
        outcome: DenialOutcome,
    ) {
        let resource = self.arns.format(resource_type, name).to_owned();
        self.shared.denials.record(
            DeniedRequest {
                client_id: &self.client_id,
                principal: &self.principal_id,
                action,
                resource: &resource,
                outcome,
            },
            &self.policies,
            &self.context,
        );
    }

    /// Re-reads the certificate's policies and thing after a registry change, so a new policy (or a detached
    /// one) applies to the open connection. The certificate's status is not re-checked: deactivating a
    /// certificate does not cut an open connection on AWS either (reference 4.1, observed).
    fn refresh_policies(&mut self, generation: u64) {
        self.policy_generation = generation;
        if let Some(principal) = self.shared.registry.principal(&self.principal_id) {
            self.context.thing = principal.thing_for_client(&self.client_id);
            self.policies = principal.policies;
        }
    }

    /// PUBLISH, SUBSCRIBE, PINGREQ and PUBACK from the client reset the keep-alive timer (reference 2.4).
    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    fn origin(&self) -> Origin {
        Origin::Device {
            client_id: self.client_id.clone(),
            principal: self.principal_id.clone(),
            session_identifier: self.session_identifier.clone(),
        }
    }

    async fn write(&mut self, packet: Packet) -> Flow {
        match self.transport.send(packet).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End(Ending::because(DisconnectReason::ConnectionLost)),
        }
    }

    async fn flush(&mut self) -> Flow {
        match self.transport.flush().await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End(Ending::because(DisconnectReason::ConnectionLost)),
        }
    }

    fn publish_subscription_event(&self, subscribed: bool, topics: Vec<String>) {
        let event = SubscriptionEvent {
            client_id: self.client_id.clone(),
            thing_name: self.event_thing_name.clone(),
            timestamp: now_millis(),
            session_identifier: self.session_identifier.clone(),
            principal_identifier: Some(self.principal_id.clone()),
            topics,
        };
        self.shared.lifecycle.publish(&if subscribed {
            LifecycleEvent::Subscribed(event)
        } else {
            LifecycleEvent::Unsubscribed(event)
        });
    }

    /// Ends the session: the router forgets or parks it, the will goes out unless the reason suppresses it
    /// (reference 1.4, 2.1), and the `disconnected` event carries this connection's versionNumber.
    async fn finish(mut self, ending: Ending) {
        let now = Instant::now();
        // MQTT 3.1.1 has no server DISCONNECT; closing the TLS stream is the signal. Don't wait on a dead peer.
        let _ = tokio::time::timeout(Duration::from_millis(200), self.transport.close()).await;
        // Direct messages are not queued for offline clients (AWS's Direct Messaging guide); their senders
        // see the connection end when `direct_acks` is dropped.
        let direct = std::mem::take(&mut self.direct_acks);
        let mut unacknowledged: Vec<_> = self
            .inflight
            .drain()
            .filter(|(packet_id, _)| !direct.contains_key(packet_id))
            .map(|(_, entry)| entry)
            .collect();
        drop(direct);
        unacknowledged.extend(self.backlog.drain(..));
        // Deliveries still queued for this connection: QoS 1 ones stay with a persistent session (the router
        // parks them, bounded by `max_queued_offline`); QoS 0 ones and direct messages end here.
        self.outbox.close();
        while let Ok(command) = self.outbox.try_recv() {
            if let ToSession::Deliver {
                message,
                qos: Qos::AtLeastOnce,
                ..
            } = command
            {
                unacknowledged.push((message, Qos::AtLeastOnce));
            }
        }
        self.shared.router.disconnect(
            &self.client_id,
            self.connection_id,
            unacknowledged,
            &ending.reason,
            now,
        );
        if ending.will_allowed
            && ending.reason.publishes_will()
            && let Some(will) = self.will.take()
        {
            let qos = Qos::from_wire(will.qos).unwrap_or(Qos::AtLeastOnce);
            tracing::info!(client_id = self.client_id, topic = will.topic, reason = %ending.reason, "publishing Last Will");
            self.shared.router.publish_generated(
                Message {
                    topic: will.topic.clone(),
                    payload: will.message.clone(),
                    qos,
                    retain: will.retain,
                    origin: self.origin(),
                    is_will: true,
                    timestamp_ms: now_millis(),
                },
                now,
            );
        }
        let session_expiry = self
            .persistent
            .then_some(self.shared.config.persistent_session_expiry);
        self.shared
            .lifecycle
            .connection_ended(&self.client_id, now, session_expiry);
        tracing::info!(client_id = self.client_id, reason = %ending.reason, "disconnected");
        self.shared
            .lifecycle
            .publish(&LifecycleEvent::Disconnected(DisconnectedEvent {
                client_id: self.client_id.clone(),
                thing_name: self.event_thing_name.clone(),
                timestamp: now_millis(),
                session_identifier: self.session_identifier.clone(),
                principal_identifier: Some(self.principal_id.clone()),
                client_initiated_disconnect: Some(ending.reason.is_client_initiated()),
                disconnect_reason: Some(ending.reason),
                version_number: self.version_number,
            }));
    }
}

/// The CONNECT checks in AWS's order: client id rules, `iot:Connect`, then the will (reference 2.2, 4.2). A policy
/// refusal is kept in the broker's denials, with the evaluation that decided it.
fn check_connect(
    shared: &Shared,
    connect: &Connect,
    principal_id: &str,
    policies: &PolicySet,
    context: &ConnectionContext,
    arns: &mut ArnBuffer,
) -> Result<(), Refusal> {
    let limits = &shared.config.limits;
    let client_id = connect.client_id.as_str();
    // Client ids are 1..=128 bytes and `$` is reserved for AWS-generated ids (reference 6.5).
    if client_id.is_empty()
        || client_id.len() > limits.max_client_id_bytes
        || client_id.starts_with('$')
    {
        return Err(Refusal::Invalid(ConnectReturnCode::BadClientId));
    }
    let deny = |action: &str, resource: &str| {
        shared.denials.record(
            DeniedRequest {
                client_id,
                principal: principal_id,
                action,
                resource,
                outcome: DenialOutcome::ConnectRefused,
            },
            policies,
            context,
        );
        Refusal::Unauthorized
    };
    let client_arn = arns.client(client_id);
    if !policies
        .decide(actions::CONNECT, client_arn, context)
        .is_allowed()
    {
        return Err(deny(actions::CONNECT, client_arn));
    }
    if let Some(will) = &connect.last_will {
        if Qos::from_wire(will.qos).is_none() {
            // MQTT 5 would answer 0x9B QoS not supported; 3.1.1 has no such code.
            return Err(Refusal::Invalid(ConnectReturnCode::NotAuthorized));
        }
        if will.message.len() > limits.max_payload_bytes
            || check_client_topic_name(&will.topic, will.retain, &limits.topics()).is_err()
        {
            return Err(Refusal::Invalid(ConnectReturnCode::NotAuthorized));
        }
        let topic_arn = arns.topic(&will.topic);
        if !policies
            .decide(actions::PUBLISH, topic_arn, context)
            .is_allowed()
        {
            return Err(deny(actions::PUBLISH, topic_arn));
        }
        if will.retain
            && !policies
                .decide(actions::RETAIN_PUBLISH, topic_arn, context)
                .is_allowed()
        {
            return Err(deny(actions::RETAIN_PUBLISH, topic_arn));
        }
    }
    Ok(())
}

/// The disconnect reason for a packet the codec could not read.
fn codec_error_reason(error: &CodecError) -> DisconnectReason {
    match error {
        CodecError::Io(_) => DisconnectReason::ConnectionLost,
        // Oversized packets (over the payload limit) and malformed ones are the client's fault (reference 1.4).
        _ => DisconnectReason::ClientError,
    }
}

/// Resolves when the router orders the connection closed or the keep-alive deadline passes, whichever is first.
async fn stalled(
    close: &mut watch::Receiver<CloseOrder>,
    keep_alive_deadline: tokio::time::Instant,
) -> Ending {
    tokio::select! {
        // The order outlives its sender (a taken-over connection's handle is dropped right after the order).
        _ = close.changed() => match close.borrow().clone() {
            Some((reason, publish_will)) => Ending {
                reason,
                will_allowed: publish_will,
            },
            None => Ending::because(DisconnectReason::ServerError),
        },
        () = tokio::time::sleep_until(keep_alive_deadline) => {
            Ending::because(DisconnectReason::MqttKeepAliveTimeout)
        }
    }
}
