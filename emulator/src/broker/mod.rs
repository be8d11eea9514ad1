//! The emulator's MQTT broker: MQTT 3.1.1 over mutual TLS with AWS IoT's identity, policy, Last Will,
//! lifecycle-event and limit semantics (reference sections 1, 2, 4, 6). See `docs/emulator.md`.
//!
//! Shape (style.md, mini-redis): an accept loop spawns one [`session`] task per connection (read packet,
//! authorize, dispatch); the [`router`] owns subscriptions, retained messages and persistent sessions; the
//! lifecycle publisher owns `versionNumber`s; shutdown is a value every task holds.
//!
//! In-process services (shadow service, rules engine, data-plane publish) use [`Broker::subscribe_internal`] and
//! [`Broker::publish_internal`]; they act with a service identity and are not subject to device policies.

mod config;
mod connections;
mod denials;
mod internal;
mod journal;
mod lifecycle;
mod message;
mod observer;
mod router;
mod services;
mod session;
mod shutdown;
mod topics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iot_events::DisconnectReason;
use iot_policy::ArnScope;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use config::{BrokerConfig, LifecycleFaults, Limits, SubscribeDenial};
pub use connections::{
    ConnectionInfo, ConnectivityDetails, DISCONNECTED_VISIBLE_MS, DirectMessageError,
    RetainedSummary, ThingConnectivity,
};
pub use denials::{DecidingStatement, Denial, DenialOutcome, Denials, MAX_DENIALS};
pub use internal::{Admission, Backlog, ConsumerTask, InternalReceiver, drain_consumers};
pub use journal::JournalError;
pub use message::{Message, Origin, Qos};
pub use observer::{Observation, ObserverBound};
pub use services::ServicePublisher;
pub use topics::{TopicError, check_client_topic_name};

use crate::identity::{self, EmulatorCa, IdentityError};
use crate::registry::Registry;
use connections::DirectOutcome;
use lifecycle::Lifecycle;
use router::{Router, ToSession};
use shutdown::Shutdown;

/// The emulator's clock, re-exported where callers of the broker API have long found it.
pub use crate::clock::now_millis;

/// Errors from starting the broker or from its in-process API.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("binding {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("invalid topic: {0}")]
    Topic(#[from] TopicError),
    #[error("the broker has shut down")]
    ShutDown,
    /// An in-process subscriber (a rule, the shadow service) is at its queue bound (`broker::internal`).
    #[error("throttled: an in-process subscriber of this topic is not keeping up")]
    Throttled,
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0} observers are already watching; close one first")]
    TooManyObservers(usize),
    #[error("an observation needs at least one topic filter")]
    NoFilters,
}

/// State shared by the accept loop, every session and the in-process API.
pub(crate) struct Shared {
    pub(crate) config: BrokerConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) router: Arc<Router>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) tls: TlsAcceptor,
    pub(crate) arn_scope: ArnScope,
    pub(crate) next_connection_id: AtomicU64,
    pub(crate) is_shut_down: AtomicBool,
    /// Every policy refusal, with the evaluation that decided it (the console's "why was it denied").
    pub(crate) denials: Denials,
}

/// A handle on the broker for in-process services. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("bind", &self.shared.config.bind)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Binds the MQTT/TLS listener and starts accepting connections. The server certificate is issued by `ca`
    /// for `config.server_names`; client certificates must chain to `ca` and be ACTIVE in `registry`.
    pub async fn start(
        config: BrokerConfig,
        registry: Arc<Registry>,
        ca: &EmulatorCa,
    ) -> Result<RunningBroker, BrokerError> {
        let server = ca.issue_server_identity(&config.server_names)?;
        let tls = identity::server_tls_config(ca, &server, Arc::clone(&registry))?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| BrokerError::Bind {
                    address: config.bind,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| BrokerError::Bind {
            address: config.bind,
            source,
        })?;
        let router = Arc::new(match &config.state_dir {
            Some(dir) => {
                Router::with_journal(config.limits.clone(), config.persistent_session_expiry, dir)?
            }
            None => Router::new(config.limits.clone(), config.persistent_session_expiry),
        });
        let lifecycle = Arc::new(Lifecycle::new(
            Arc::clone(&router),
            config.version_reset_after,
            config.lifecycle_faults.clone(),
        ));
        let shared = Arc::new(Shared {
            arn_scope: ArnScope::new(config.region.clone(), config.account.clone()),
            config,
            registry,
            router,
            lifecycle,
            tls: TlsAcceptor::from(tls),
            next_connection_id: AtomicU64::new(1),
            is_shut_down: AtomicBool::new(false),
            denials: Denials::default(),
        });
        let (notify_shutdown, _) = broadcast::channel(1);
        let (done_sender, done_receiver) = mpsc::channel(1);
        // Subscribed before the task runs: a shutdown sent before its first poll is not missed.
        let accept_shutdown = Shutdown::new(notify_shutdown.subscribe());
        let accept_task = tokio::spawn(accept_loop(
            Arc::clone(&shared),
            listener,
            notify_shutdown.clone(),
            accept_shutdown,
            done_sender,
        ));
        tracing::info!(%local_addr, "MQTT over mutual TLS listening");
        Ok(RunningBroker {
            broker: Broker { shared },
            local_addr,
            notify_shutdown,
            accept_task,
            done_receiver,
        })
    }

    /// Every message published on a topic matching `filter` (AWS matching rules, reserved topics and Basic Ingest
    /// included), for in-process services. No policy applies. Dropping the receiver ends the subscription.
    pub fn subscribe_internal(&self, filter: &str) -> Result<InternalReceiver, BrokerError> {
        iot_sql::validate_topic_filter(filter).map_err(TopicError::from)?;
        Ok(self.shared.router.subscribe_internal(filter))
    }

    /// The policy refusals kept so far, newest first, and how many there have been ([`denials`]).
    pub fn denials(&self) -> (Vec<Denial>, u64) {
        self.shared.denials.newest_first()
    }

    /// Watches every message on a topic matching one of `filters` as a service identity, like the AWS console's
    /// MQTT test client: no policy applies, Basic Ingest is not seen, retained messages of filters without
    /// wildcards come first. Lossy by design ([`observer`]): a watcher that does not keep up misses messages
    /// (counted), publishers never wait for it. Dropping the [`Observation`] ends it.
    pub fn observe(
        &self,
        filters: &[String],
        bound: ObserverBound,
    ) -> Result<Observation, BrokerError> {
        if filters.is_empty() {
            return Err(BrokerError::NoFilters);
        }
        for filter in filters {
            iot_sql::validate_topic_filter(filter).map_err(TopicError::from)?;
        }
        if self.shared.is_shut_down.load(Ordering::Acquire) {
            return Err(BrokerError::ShutDown);
        }
        let mut unique = filters.to_vec();
        unique.sort();
        unique.dedup();
        self.shared
            .router
            .observe(unique, bound)
            .ok_or(BrokerError::TooManyObservers(router::MAX_OBSERVERS))
    }

    /// Publishes as an in-process service (no policy check; `iot:Receive` still applies to each device that gets
    /// it). Retained publishes to reserved topics are refused, as for devices (reference 6.3). Refused
    /// (`Throttled`) while an in-process subscriber it matches is at its bound ([`Admission::Bounded`]).
    pub fn publish_internal(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: Qos,
        retain: bool,
        origin: Origin,
    ) -> Result<(), BrokerError> {
        self.publish_as(topic, payload, qos, retain, origin, Admission::Bounded)
    }

    pub(crate) fn publish_as(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: Qos,
        retain: bool,
        origin: Origin,
        admission: Admission,
    ) -> Result<(), BrokerError> {
        if self.shared.is_shut_down.load(Ordering::Acquire) {
            return Err(BrokerError::ShutDown);
        }
        topics::check_topic_name(topic, &self.shared.config.limits)?;
        if retain && topic.starts_with('$') {
            return Err(TopicError::RetainOnReservedTopic.into());
        }
        self.shared
            .router
            .publish(
                Message {
                    topic: topic.to_owned(),
                    payload: payload.into(),
                    qos,
                    retain,
                    origin,
                    is_will: false,
                    timestamp_ms: now_millis(),
                },
                admission,
                Instant::now(),
            )
            .map_err(|_| {
                self.shared.router.count_internal_refusal();
                BrokerError::Throttled
            })
    }

    /// Disconnects `client_id` with `API_INITIATED_DISCONNECT`; its will is published unless
    /// `prevent_will_message` (reference 2.1). False when the client is not connected.
    pub fn disconnect_client(&self, client_id: &str, prevent_will_message: bool) -> bool {
        self.shared
            .router
            .send_to(
                client_id,
                ToSession::Close {
                    reason: DisconnectReason::ApiInitiatedDisconnect,
                    publish_will: !prevent_will_message,
                },
            )
            .is_some()
    }

    /// `DeleteConnection` (reference 3.10): like [`Broker::disconnect_client`], and with `clean_session` the
    /// client's persistent session (subscriptions, queued messages) is discarded too, whether it is connected or
    /// not. False when the client has neither a connection nor a persistent session (AWS:
    /// ResourceNotFoundException).
    pub fn delete_connection(
        &self,
        client_id: &str,
        clean_session: bool,
        prevent_will_message: bool,
    ) -> bool {
        self.shared.router.delete_connection(
            client_id,
            clean_session,
            prevent_will_message,
            Instant::now(),
        )
    }

    pub fn is_connected(&self, client_id: &str) -> bool {
        self.shared.router.is_connected(client_id)
    }

    /// `GetConnection`: the client's live connection, offline persistent session, or disconnect of the last
    /// [`DISCONNECTED_VISIBLE_MS`]; `None` when the broker knows nothing of it.
    pub fn connection_info(&self, client_id: &str) -> Option<ConnectionInfo> {
        self.shared
            .router
            .connection_info(client_id, Instant::now(), now_millis())
    }

    /// `ListSubscriptions`: the topic filters and granted QoS of the client's session, live or an offline
    /// persistent one, sorted by filter; `None` when it has no session.
    pub fn subscriptions(&self, client_id: &str) -> Option<Vec<(String, Qos)>> {
        self.shared.router.subscriptions(client_id, Instant::now())
    }

    /// The retained message of `topic` (what `GetRetainedMessage` returns).
    pub fn retained_message(&self, topic: &str) -> Option<Message> {
        self.shared
            .router
            .retained(topic)
            .map(|message| (*message).clone())
    }

    /// `ListRetainedMessages`: up to `limit` retained messages in topic order after the topic `after`, and the
    /// token for the next page (the last topic returned) when more follow.
    pub fn retained_messages(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<RetainedSummary>, Option<String>) {
        self.shared.router.retained_page(after, limit)
    }

    /// For the control plane's `GetThingConnectivityData`: a thing is connected while a client whose id is the
    /// thing's name, or whose certificate associates it with the thing (exclusively, or by that name:
    /// `registry::PrincipalView::thing_for_client`), is connected; `timestamp_ms` is then when it connected.
    /// Otherwise the last such client's disconnect gives the time and the lifecycle event's
    /// `disconnectReason` (reference 1.4). A thing never seen since the start is `connected: false` with
    /// neither; the control plane decides whether the thing exists.
    pub fn thing_connectivity(&self, thing_name: &str) -> ThingConnectivity {
        self.shared.router.thing_connectivity(thing_name)
    }

    /// `SendDirectMessage`: writes one message to the connected client `client_id` without a subscription
    /// (QoS 1 when `confirmation`, else 0), as the service `origin`. The receiver's `iot:Receive` applies; the
    /// message is not routed to subscribers or rules and is not retained or queued (AWS's Direct Messaging
    /// guide). With confirmation it returns once the client's PUBACK arrives; otherwise once the message is
    /// handed to the connection. `timeout` bounds both.
    pub async fn send_direct_message(
        &self,
        client_id: &str,
        topic: &str,
        payload: impl Into<Bytes>,
        confirmation: bool,
        timeout: Duration,
        origin: Origin,
    ) -> Result<(), DirectMessageError> {
        let qos = if confirmation {
            Qos::AtLeastOnce
        } else {
            Qos::AtMostOnce
        };
        let (reply, outcome) = oneshot::channel();
        let message = Arc::new(Message {
            topic: topic.to_owned(),
            payload: payload.into(),
            qos,
            retain: false,
            origin,
            is_will: false,
            timestamp_ms: now_millis(),
        });
        let sent = self.shared.router.send_to(
            client_id,
            ToSession::Direct {
                message,
                qos,
                reply,
            },
        );
        match sent {
            None | Some(router::Delivery::Gone) => {
                return Err(DirectMessageError::NotConnected(client_id.to_owned()));
            }
            // The client's queue is full: it does not keep up (and, for QoS 1, is being disconnected).
            Some(
                router::Delivery::Dropped
                | router::Delivery::Overflowed
                | router::Delivery::Closing,
            ) => {
                return Err(DirectMessageError::Busy);
            }
            Some(router::Delivery::Queued) => {}
        }
        match tokio::time::timeout(timeout, outcome).await {
            Ok(Ok(DirectOutcome::Delivered)) => Ok(()),
            Ok(Ok(DirectOutcome::NotAuthorized)) => {
                Err(DirectMessageError::NotAuthorized(topic.to_owned()))
            }
            Ok(Ok(DirectOutcome::Busy)) => Err(DirectMessageError::Busy),
            Ok(Err(_)) => Err(DirectMessageError::ConnectionEnded),
            Err(_) => Err(DirectMessageError::Timeout),
        }
    }

    /// (QoS 0 deliveries dropped, connections closed as THROTTLED) because a consumer did not keep up with its
    /// deliveries (`Limits::max_pending_outbound`), since the broker started.
    pub fn slow_consumer_counts(&self) -> (u64, u64) {
        self.shared.router.slow_consumer_counts()
    }

    /// Publishes refused because an in-process subscriber (a rule, the shadow service) stayed at its queue
    /// bound (`Limits::max_internal_queue_messages`), since the broker started.
    pub fn internal_refusals(&self) -> u64 {
        self.shared.router.internal_refusals()
    }

    /// Replaces the lifecycle fault injection while running.
    pub fn set_lifecycle_faults(&self, faults: LifecycleFaults) {
        self.shared.lifecycle.set_faults(faults);
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }
}

/// A started broker: its address, its in-process handle, and the way to stop it.
pub struct RunningBroker {
    broker: Broker,
    local_addr: SocketAddr,
    notify_shutdown: broadcast::Sender<()>,
    accept_task: JoinHandle<()>,
    done_receiver: mpsc::Receiver<()>,
}

impl RunningBroker {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Stops accepting, ends every session (`SERVER_INITIATED_DISCONNECT`, wills and events included) and waits
    /// until all of them have finished.
    pub async fn shutdown(mut self) {
        self.broker
            .shared
            .is_shut_down
            .store(true, Ordering::Release);
        let _ = self.notify_shutdown.send(());
        let _ = (&mut self.accept_task).await;
        // Every session holds a sender; `recv` returns None once the last one is dropped.
        let _ = self.done_receiver.recv().await;
        // Every session has ended and published its will and `disconnected` event: the in-process subscribers
        // (rules, shadow service) get nothing more, drain what is queued and see their queue end.
        self.broker.shared.lifecycle.release_held();
        self.broker.shared.router.close_internal();
        // The sessions' last changes (persistent sessions going offline) are on disk before we return.
        self.broker.shared.router.flush_journal().await;
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    notify_shutdown: broadcast::Sender<()>,
    mut shutdown: Shutdown,
    done: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.recv() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(session::serve_connection(
                    Arc::clone(&shared),
                    stream,
                    peer,
                    Shutdown::new(notify_shutdown.subscribe()),
                    done.clone(),
                ));
            }
            Err(error) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
