//! The router: sessions (live and persistent), subscriptions, retained messages and in-process subscribers.
//! Publishing hands each matching session its copy; the session itself checks `iot:Receive` when it writes the
//! message to the wire, so the check happens on every delivery (reference 4.2), queued ones included.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iot_events::DisconnectReason;
use iot_sql::{has_wildcards, is_basic_ingest};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::config::Limits;
use super::connections::{
    ConnectionFacts, ConnectionInfo, ConnectivityDetails, DISCONNECTED_VISIBLE_MS, Departure,
    Departures, DirectOutcome, RetainedSummary, ThingConnectivity,
};
use super::internal::{Admission, InternalReceiver, InternalSubscription, QueueBound, Saturated};
use super::journal::{self, Journal, JournalError, Record, StoredMessage, StoredSession};
use super::message::{Message, Qos};
use super::observer::{Observation, ObserverBound, ObserverSubscription};

/// What the router (or the broker's API) asks a live session to do.
#[derive(Debug)]
pub(crate) enum ToSession {
    /// Write `message` to the client at `qos` (already reduced to the subscription's QoS). `retain` is the RETAIN
    /// flag on the wire: set only for a retained message sent in reply to a SUBSCRIBE (reference 6.3).
    Deliver {
        message: Arc<Message>,
        qos: Qos,
        retain: bool,
    },
    /// SendDirectMessage: write `message` to this client although it has no subscription; `iot:Receive` still
    /// applies. `reply` gets the outcome once written (QoS 0) or acknowledged (QoS 1).
    Direct {
        message: Arc<Message>,
        qos: Qos,
        reply: oneshot::Sender<DirectOutcome>,
    },
    /// End the connection for `reason` (takeover, `DeleteConnection`).
    Close {
        reason: DisconnectReason,
        publish_will: bool,
    },
}

/// Why and how a connection is to end, as the session reads it from [`ConnectionLink::close`].
pub(crate) type CloseOrder = Option<(DisconnectReason, bool)>;

/// The router's handle on one live connection: a bounded channel of deliveries and, apart from it, the order to
/// close (which must get through when the channel is full).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLink {
    pub id: u64,
    pub outbox: mpsc::Sender<ToSession>,
    pub closer: Arc<watch::Sender<CloseOrder>>,
    pub facts: ConnectionFacts,
}

/// What [`ConnectionLink::deliver`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Queued,
    /// The consumer's queue was full: a QoS 0 delivery is dropped.
    Dropped,
    /// The consumer's queue was full for a QoS 1 delivery: the connection is closed (THROTTLED); the message is
    /// handed back so a persistent session can keep it.
    Overflowed,
    /// The consumer's queue was full and its connection is already closing: the message is handed back.
    Closing,
    /// The session has ended.
    Gone,
}

impl ConnectionLink {
    /// Asks the session to end; the first order wins.
    pub(crate) fn close(&self, reason: DisconnectReason, publish_will: bool) {
        self.closer.send_if_modified(|order| {
            if order.is_some() {
                return false;
            }
            *order = Some((reason, publish_will));
            true
        });
    }

    /// Queues `command` without waiting. The bound's policy (`Limits::max_pending_outbound`; AWS allows 100
    /// unacknowledged QoS 1 messages per client and discards what exceeds a connection's rate, reference 6.5):
    /// a QoS 0 delivery that does not fit is dropped and counted; a QoS 1 delivery that does not fit ends the
    /// connection as THROTTLED, since a consumer that stays at its limit would otherwise hold memory without end.
    pub(crate) fn deliver(&self, command: ToSession) -> Delivery {
        match self.outbox.try_send(command) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
            Err(mpsc::error::TrySendError::Full(ToSession::Deliver {
                qos: Qos::AtMostOnce,
                ..
            })) => Delivery::Dropped,
            // Already on its way out: the first overflow (or a takeover, a DeleteConnection) closed it.
            Err(mpsc::error::TrySendError::Full(_)) if self.closer.borrow().is_some() => {
                Delivery::Closing
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(DisconnectReason::Throttled, true);
                Delivery::Overflowed
            }
        }
    }
}

#[derive(Debug)]
struct SessionState {
    session_identifier: String,
    subscriptions: HashMap<String, Qos>,
    connection: Option<ConnectionLink>,
    persistent: bool,
    offline_expires_at: Option<Instant>,
    queued: VecDeque<(Arc<Message>, Qos)>,
}

impl SessionState {
    fn is_expired(&self, now: Instant) -> bool {
        self.connection.is_none() && self.offline_expires_at.is_some_and(|at| at <= now)
    }
}

#[derive(Debug, Default)]
struct RouterState {
    sessions: HashMap<String, SessionState>,
    /// Filter -> client id -> granted QoS.
    by_filter: HashMap<String, HashMap<String, Qos>>,
    /// The keys of `by_filter` that contain wildcards; the others are looked up by topic directly.
    wildcard_filters: HashSet<String>,
    internal: Vec<InternalSubscription>,
    /// Watchers of the traffic (`iot-emulator subscribe`, the console): lossy, never refuse a publish.
    observers: Vec<ObserverSubscription>,
    /// Ordered by topic, so ListRetainedMessages pages with a topic as its token.
    retained: BTreeMap<String, Arc<Message>>,
    departures: Departures,
}

impl RouterState {
    fn remove_session(&mut self, client_id: &str) -> Option<SessionState> {
        let session = self.sessions.remove(client_id)?;
        for filter in session.subscriptions.keys() {
            self.remove_filter_entry(filter, client_id);
        }
        Some(session)
    }

    fn remove_filter_entry(&mut self, filter: &str, client_id: &str) {
        if let Some(clients) = self.by_filter.get_mut(filter) {
            clients.remove(client_id);
            if clients.is_empty() {
                self.by_filter.remove(filter);
                self.wildcard_filters.remove(filter);
            }
        }
    }
}

/// The result of registering a new connection.
#[derive(Debug)]
pub(crate) struct ConnectOutcome {
    pub session_present: bool,
    pub session_identifier: String,
}

/// Why a SUBSCRIBE could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscribeRefusal {
    /// Over the subscriptions-per-connection limit (reference 6.5: the connection is closed).
    TooManySubscriptions,
    /// The session is gone (taken over meanwhile).
    NoSession,
}

/// How many observers may watch at once; one more is refused, so watchers cannot multiply the work of every
/// publish without bound.
pub(crate) const MAX_OBSERVERS: usize = 64;

#[derive(Debug)]
pub(crate) struct Router {
    state: Mutex<RouterState>,
    limits: Limits,
    /// QoS 0 deliveries dropped because their consumer's queue was full.
    slow_consumer_drops: AtomicU64,
    /// Connections closed (THROTTLED) because a QoS 1 delivery did not fit their queue.
    slow_consumer_disconnects: AtomicU64,
    /// Publishes refused for good because an in-process subscriber stayed at its bound.
    internal_refusals: AtomicU64,
    /// Signalled whenever an in-process subscriber takes a message, for publishers waiting for room.
    drained: Arc<Notify>,
    session_expiry: Duration,
    /// Where retained messages and persistent sessions are kept across restarts; `None`: memory only.
    journal: Option<Journal>,
}

impl Router {
    pub(crate) fn new(limits: Limits, session_expiry: Duration) -> Router {
        Router {
            state: Mutex::new(RouterState::default()),
            limits,
            slow_consumer_drops: AtomicU64::new(0),
            slow_consumer_disconnects: AtomicU64::new(0),
            internal_refusals: AtomicU64::new(0),
            drained: Arc::new(Notify::new()),
            session_expiry,
            journal: None,
        }
    }

    /// (QoS 0 deliveries dropped, connections closed) because a consumer did not keep up.
    pub(crate) fn slow_consumer_counts(&self) -> (u64, u64) {
        (
            self.slow_consumer_drops.load(Ordering::Relaxed),
            self.slow_consumer_disconnects.load(Ordering::Relaxed),
        )
    }

    /// Publishes refused because an in-process subscriber (a rule, the shadow service) stayed at its bound.
    pub(crate) fn internal_refusals(&self) -> u64 {
        self.internal_refusals.load(Ordering::Relaxed)
    }

    pub(crate) fn count_internal_refusal(&self) {
        self.internal_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Notified each time an in-process subscriber takes a message: a publisher refused with [`Saturated`]
    /// waits on it (enable the `Notified` before publishing, so a wake-up in between is not missed).
    pub(crate) fn room_notifier(&self) -> &Notify {
        &self.drained
    }

    fn internal_bound(&self) -> QueueBound {
        QueueBound {
            messages: self.limits.max_internal_queue_messages,
            bytes: self.limits.max_internal_queue_bytes,
        }
    }

    /// A router whose retained messages and persistent sessions are restored from, and kept in, the journal in
    /// `dir` (reference 6.3, 6.4: AWS keeps both across anything the client can see). Restored sessions are
    /// offline; one that was connected when the emulator stopped without a clean shutdown starts its expiry
    /// now; expired ones are dropped.
    pub(crate) fn with_journal(
        limits: Limits,
        session_expiry: Duration,
        dir: &std::path::Path,
    ) -> Result<Router, JournalError> {
        let restored = journal::load(dir, limits.max_queued_offline)?;
        let now = Instant::now();
        let now_ms = crate::clock::now_millis();
        let mut state = RouterState::default();
        for (topic, stored) in restored.retained {
            if state.retained.len() >= limits.max_retained_messages {
                break;
            }
            if let Some((message, _)) = stored.to_message(true) {
                state.retained.insert(topic, Arc::new(message));
            }
        }
        for (client_id, stored) in restored.sessions {
            let remaining = match stored.offline_expires_at_ms {
                Some(at_ms) => match u64::try_from(at_ms.saturating_sub(now_ms)) {
                    Ok(ms) if ms > 0 => Duration::from_millis(ms),
                    _ => continue,
                },
                None => session_expiry,
            };
            let subscriptions: HashMap<String, Qos> = stored
                .subscriptions
                .iter()
                .filter_map(|(filter, level)| Some((filter.clone(), Qos::from_level(*level)?)))
                .collect();
            for (filter, qos) in &subscriptions {
                state
                    .by_filter
                    .entry(filter.clone())
                    .or_default()
                    .insert(client_id.clone(), *qos);
                if has_wildcards(filter) {
                    state.wildcard_filters.insert(filter.clone());
                }
            }
            let queued = stored
                .queued
                .iter()
                .filter_map(|message| message.to_message(false))
                .map(|(message, qos)| (Arc::new(message), qos))
                .take(limits.max_queued_offline)
                .collect();
            state.sessions.insert(
                client_id,
                SessionState {
                    session_identifier: stored.session_identifier,
                    subscriptions,
                    connection: None,
                    persistent: true,
                    offline_expires_at: Some(now + remaining),
                    queued,
                },
            );
        }
        let mut router = Router::new(limits, session_expiry);
        let records = router.snapshot(&state, now);
        router.journal = Some(Journal::open(dir, records)?);
        router.state = Mutex::new(state);
        Ok(router)
    }

    /// Waits until every change so far is written to the journal (shutdown).
    pub(crate) async fn flush_journal(&self) {
        if let Some(journal) = &self.journal {
            journal.flush().await;
        }
    }

    /// The records that recreate the durable part of `state`: retained messages and live persistent sessions.
    fn snapshot(&self, state: &RouterState, now: Instant) -> Vec<Record> {
        let retained = state.retained.values().map(|message| Record::Retain {
            message: StoredMessage::from_message(message, message.qos),
        });
        let sessions = state
            .sessions
            .iter()
            .filter(|(_, session)| session.persistent && !session.is_expired(now))
            .map(|(client_id, session)| Record::Session {
                session: stored_session(client_id, session, now),
            });
        retained.chain(sessions).collect()
    }

    /// Appends `record`, and compacts the journal when it has grown enough (under the router's lock, so the
    /// snapshot and the records around it stay in order).
    fn journal(&self, state: &RouterState, record: Record, now: Instant) {
        let Some(journal) = &self.journal else {
            return;
        };
        journal.append(&record);
        if journal.wants_compaction() {
            journal.compact(&self.snapshot(state, now));
        }
    }

    /// Journals the whole state of `client_id`'s session when it is persistent.
    fn journal_session(&self, state: &RouterState, client_id: &str, now: Instant) {
        if self.journal.is_none() {
            return;
        }
        if let Some(session) = state.sessions.get(client_id)
            && session.persistent
        {
            let record = Record::Session {
                session: stored_session(client_id, session, now),
            };
            self.journal(state, record, now);
        }
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection for `client_id`. An existing live connection is told to close with
    /// `DUPLICATE_CLIENTID` (the new connection wins, reference 6.1). A persistent session is resumed when the
    /// client asks for one (cleanSession=0) and it has not expired (reference 6.4); its queued messages are handed
    /// to the new connection.
    pub(crate) fn connect(
        &self,
        client_id: &str,
        clean_session: bool,
        link: ConnectionLink,
        new_session_identifier: String,
        now: Instant,
    ) -> ConnectOutcome {
        let mut state = self.lock();
        let mut resume = false;
        let was_persistent = state
            .sessions
            .get(client_id)
            .is_some_and(|session| session.persistent);
        if let Some(existing) = state.sessions.get_mut(client_id) {
            let expired = existing.is_expired(now);
            if let Some(old) = existing.connection.take() {
                old.close(DisconnectReason::DuplicateClientId, true);
            }
            resume = !clean_session && existing.persistent && !expired;
        }
        if resume && let Some(session) = state.sessions.get_mut(client_id) {
            // At most `max_queued_offline` messages, which the connection's bound (`max_pending_outbound`)
            // holds: a resumed session starts within its limit.
            for (message, qos) in session.queued.drain(..) {
                link.deliver(ToSession::Deliver {
                    message,
                    qos,
                    retain: false,
                });
            }
            session.connection = Some(link);
            session.offline_expires_at = None;
            let session_identifier = session.session_identifier.clone();
            // The queue went to the connection: the journal's copy is replaced by the empty one.
            self.journal_session(&state, client_id, now);
            return ConnectOutcome {
                session_present: true,
                session_identifier,
            };
        }
        state.remove_session(client_id);
        state.sessions.insert(
            client_id.to_owned(),
            SessionState {
                session_identifier: new_session_identifier.clone(),
                subscriptions: HashMap::new(),
                connection: Some(link),
                persistent: !clean_session,
                offline_expires_at: None,
                queued: VecDeque::new(),
            },
        );
        if !clean_session {
            self.journal_session(&state, client_id, now);
        } else if was_persistent {
            let record = Record::DropSession {
                client_id: client_id.to_owned(),
            };
            self.journal(&state, record, now);
        }
        ConnectOutcome {
            session_present: false,
            session_identifier: new_session_identifier,
        }
    }

    /// The connection `connection_id` of `client_id` has ended. A clean session is discarded; a persistent one
    /// keeps its subscriptions and the unacknowledged messages until it expires. When the client id has already
    /// been taken over, only the unacknowledged messages move to the new connection (persistent sessions only).
    pub(crate) fn disconnect(
        &self,
        client_id: &str,
        connection_id: u64,
        unacknowledged: Vec<(Arc<Message>, Qos)>,
        reason: &DisconnectReason,
        now: Instant,
    ) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(session) = state.sessions.get_mut(client_id) else {
            return;
        };
        match &session.connection {
            Some(link) if link.id == connection_id => {
                state.departures.record(
                    client_id,
                    Departure {
                        facts: link.facts.clone(),
                        at_ms: crate::clock::now_millis(),
                        reason: reason.clone(),
                    },
                );
                if session.persistent {
                    session.connection = None;
                    session.offline_expires_at = Some(now + self.session_expiry);
                    for entry in unacknowledged.into_iter().rev() {
                        session.queued.push_front(entry);
                    }
                    session.queued.truncate(self.limits.max_queued_offline);
                    self.journal_session(state, client_id, now);
                } else {
                    state.remove_session(client_id);
                }
            }
            Some(link) if session.persistent => {
                for (message, qos) in unacknowledged {
                    link.deliver(ToSession::Deliver {
                        message,
                        qos,
                        retain: false,
                    });
                }
            }
            _ => {}
        }
    }

    /// Records a subscription. Returns the retained message to send with RETAIN=1: only for a filter without
    /// wildcards (AWS never sends retained messages to wildcard subscriptions, reference 6.1).
    pub(crate) fn subscribe(
        &self,
        client_id: &str,
        filter: &str,
        qos: Qos,
    ) -> Result<Option<Arc<Message>>, SubscribeRefusal> {
        let mut state = self.lock();
        let state = &mut *state;
        let session = state
            .sessions
            .get_mut(client_id)
            .ok_or(SubscribeRefusal::NoSession)?;
        if !session.subscriptions.contains_key(filter)
            && session.subscriptions.len() >= self.limits.max_subscriptions_per_connection
        {
            return Err(SubscribeRefusal::TooManySubscriptions);
        }
        session.subscriptions.insert(filter.to_owned(), qos);
        let persistent = session.persistent;
        state
            .by_filter
            .entry(filter.to_owned())
            .or_default()
            .insert(client_id.to_owned(), qos);
        if persistent {
            self.journal_session(state, client_id, Instant::now());
        }
        if has_wildcards(filter) {
            state.wildcard_filters.insert(filter.to_owned());
            return Ok(None);
        }
        Ok(state.retained.get(filter).cloned())
    }

    pub(crate) fn unsubscribe(&self, client_id: &str, filter: &str) {
        let mut state = self.lock();
        if let Some(session) = state.sessions.get_mut(client_id)
            && session.subscriptions.remove(filter).is_some()
        {
            let persistent = session.persistent;
            state.remove_filter_entry(filter, client_id);
            if persistent {
                self.journal_session(&state, client_id, Instant::now());
            }
        }
    }

    /// An in-process subscriber (shadow service, rules engine). It sees every matching message, reserved topics
    /// and Basic Ingest included, without policy checks.
    pub(crate) fn subscribe_internal(&self, filter: &str) -> InternalReceiver {
        let (subscription, receiver) = InternalSubscription::new(filter, Arc::clone(&self.drained));
        self.lock().internal.push(subscription);
        receiver
    }

    /// Ends every in-process subscription and observer: each receiver still gets what was queued, then
    /// `None`. Called once the broker has stopped taking messages, so the services drain and stop in order.
    pub(crate) fn close_internal(&self) {
        let mut state = self.lock();
        state.internal.clear();
        state.observers.clear();
    }

    /// A new observer of every message matching one of `filters` (already validated), see
    /// [`super::observer`]. Its queue starts with the retained message of each filter without wildcards, as a
    /// SUBSCRIBE would (reference 6.3). `None` when [`MAX_OBSERVERS`] are already watching.
    pub(crate) fn observe(
        &self,
        filters: Vec<String>,
        bound: ObserverBound,
    ) -> Option<Observation> {
        let mut state = self.lock();
        state.observers.retain(|observer| !observer.is_closed());
        if state.observers.len() >= MAX_OBSERVERS {
            return None;
        }
        let (observer, observation) = ObserverSubscription::new(filters, bound);
        for filter in observer.filters() {
            if !has_wildcards(filter)
                && let Some(message) = state.retained.get(filter)
            {
                observer.offer(message);
            }
        }
        state.observers.push(observer);
        Some(observation)
    }

    /// Stores or clears the retained message (reference 6.3) and delivers `message` to every matching
    /// subscriber: live sessions get it at once, offline persistent sessions queue QoS 1 copies for QoS 1
    /// subscriptions (reference 6.4). A [`Admission::Bounded`] message that matches an in-process
    /// subscriber at its bound is handed back untouched (all or nothing), see [`super::internal`].
    pub(crate) fn publish(
        &self,
        message: Message,
        admission: Admission,
        now: Instant,
    ) -> Result<(), Saturated> {
        let mut state = self.lock();
        let state = &mut *state;
        state
            .internal
            .retain(|subscription| !subscription.is_closed());
        // Checked and sent under the same lock, and receivers only ever make room: no race between the two.
        if admission == Admission::Bounded {
            let bound = self.internal_bound();
            if state.internal.iter().any(|subscription| {
                subscription.is_full(bound)
                    && iot_sql::matches_valid_filter(&subscription.filter, &message.topic)
            }) {
                return Err(Saturated(Box::new(message)));
            }
        }
        let message = Arc::new(message);
        let topic = message.topic.as_str();
        if message.retain && !topic.starts_with('$') {
            if message.payload.is_empty() {
                if state.retained.remove(topic).is_some() {
                    let record = Record::Unretain {
                        topic: topic.to_owned(),
                    };
                    self.journal(state, record, now);
                }
            } else if state.retained.len() >= self.limits.max_retained_messages
                && !state.retained.contains_key(topic)
            {
                // AWS throttles retained publishes over the account's quota (reference 6.3); the message is
                // still delivered, only not kept.
                tracing::warn!(
                    topic,
                    limit = self.limits.max_retained_messages,
                    "retained-message limit reached; not retained"
                );
            } else {
                state
                    .retained
                    .insert(topic.to_owned(), Arc::clone(&message));
                let record = Record::Retain {
                    message: StoredMessage::from_message(&message, message.qos),
                };
                self.journal(state, record, now);
            }
        }
        for subscription in &state.internal {
            // Filters are validated before they are stored (Broker::subscribe_internal, SUBSCRIBE
            // handling), so each message only matches.
            if iot_sql::matches_valid_filter(&subscription.filter, topic) {
                subscription.send((*message).clone());
            }
        }
        if is_basic_ingest(topic) {
            return Ok(());
        }
        state.observers.retain(|observer| !observer.is_closed());
        for observer in &state.observers {
            if observer.matches(topic) {
                observer.offer(&message);
            }
        }

        // One delivery per client, at the highest QoS among its matching filters.
        let mut targets: Vec<(String, Qos)> = Vec::new();
        let mut add = |clients: &HashMap<String, Qos>| {
            for (client_id, granted) in clients {
                match targets.iter_mut().find(|(id, _)| id == client_id) {
                    Some((_, qos)) => *qos = (*qos).max(*granted),
                    None => targets.push((client_id.clone(), *granted)),
                }
            }
        };
        if let Some(clients) = state.by_filter.get(topic) {
            add(clients);
        }
        for filter in &state.wildcard_filters {
            if iot_sql::matches_valid_filter(filter, topic)
                && let Some(clients) = state.by_filter.get(filter)
            {
                add(clients);
            }
        }

        let mut expired = Vec::new();
        let mut enqueued = Vec::new();
        for (client_id, granted) in targets {
            let Some(session) = state.sessions.get_mut(&client_id) else {
                continue;
            };
            let qos = granted.min(message.qos);
            match &session.connection {
                Some(link) => {
                    let delivery = link.deliver(ToSession::Deliver {
                        message: Arc::clone(&message),
                        qos,
                        retain: false,
                    });
                    match delivery {
                        Delivery::Queued | Delivery::Gone => {}
                        Delivery::Dropped => {
                            self.slow_consumer_drops.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%client_id, topic = %message.topic,
                                "QoS 0 delivery dropped: the consumer does not keep up");
                        }
                        Delivery::Overflowed | Delivery::Closing => {
                            if delivery == Delivery::Overflowed {
                                self.slow_consumer_disconnects
                                    .fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(%client_id, limit = self.limits.max_pending_outbound,
                                    "the consumer does not keep up with its QoS 1 deliveries: disconnecting (THROTTLED)");
                            }
                            // A persistent session keeps the message for its next connection.
                            if session.persistent
                                && session.queued.len() < self.limits.max_queued_offline
                            {
                                session.queued.push_back((Arc::clone(&message), qos));
                                enqueued.push(client_id.clone());
                            }
                        }
                    }
                }
                None if session.is_expired(now) => expired.push(client_id),
                None => {
                    if qos == Qos::AtLeastOnce
                        && session.queued.len() < self.limits.max_queued_offline
                    {
                        session.queued.push_back((Arc::clone(&message), qos));
                        enqueued.push(client_id);
                    }
                }
            }
        }
        for client_id in enqueued {
            let record = Record::Enqueue {
                client_id,
                message: StoredMessage::from_message(&message, Qos::AtLeastOnce),
            };
            self.journal(state, record, now);
        }
        for client_id in expired {
            state.remove_session(&client_id);
            self.journal(state, Record::DropSession { client_id }, now);
        }
        Ok(())
    }

    /// Publishes a message the broker or a service generated in answer to admitted input (a lifecycle event, a
    /// Last Will, a shadow response): [`Admission::Always`], so it cannot be refused.
    pub(crate) fn publish_generated(&self, message: Message, now: Instant) {
        if self.publish(message, Admission::Always, now).is_err() {
            unreachable!("Admission::Always is never refused");
        }
    }

    /// Sends `command` to the live connection of `client_id` (a close as an order that always gets through, a
    /// delivery within the connection's bound); `None` when it is not connected.
    pub(crate) fn send_to(&self, client_id: &str, command: ToSession) -> Option<Delivery> {
        let state = self.lock();
        let link = state
            .sessions
            .get(client_id)
            .and_then(|session| session.connection.as_ref())?;
        Some(match command {
            ToSession::Close {
                reason,
                publish_will,
            } => {
                link.close(reason, publish_will);
                Delivery::Queued
            }
            other => link.deliver(other),
        })
    }

    pub(crate) fn is_connected(&self, client_id: &str) -> bool {
        self.lock()
            .sessions
            .get(client_id)
            .is_some_and(|session| session.connection.is_some())
    }

    pub(crate) fn retained(&self, topic: &str) -> Option<Arc<Message>> {
        self.lock().retained.get(topic).cloned()
    }

    /// Up to `limit` retained messages in topic order, starting after the topic `after`; the second value is
    /// the last topic returned when more follow (the next page's token).
    pub(crate) fn retained_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<RetainedSummary>, Option<String>) {
        use std::ops::Bound;
        let state = self.lock();
        let start = match after {
            Some(topic) => Bound::Excluded(topic),
            None => Bound::Unbounded,
        };
        let mut page = Vec::with_capacity(limit.min(state.retained.len()));
        let mut more = false;
        for (topic, message) in state.retained.range::<str, _>((start, Bound::Unbounded)) {
            if page.len() == limit {
                more = true;
                break;
            }
            page.push(RetainedSummary {
                topic: topic.clone(),
                payload_size: message.payload.len(),
                qos: message.qos,
                last_modified_ms: message.timestamp_ms,
            });
        }
        let next = more
            .then(|| page.last().map(|summary| summary.topic.clone()))
            .flatten();
        (page, next)
    }

    /// GetConnection: the live connection, else the offline persistent session or the departure of the last
    /// 30 minutes (`disconnectedSince` is kept that long); `None` when the broker knows nothing of the client.
    pub(crate) fn connection_info(
        &self,
        client_id: &str,
        now: Instant,
        now_ms: i64,
    ) -> Option<ConnectionInfo> {
        let state = self.lock();
        let session = state
            .sessions
            .get(client_id)
            .filter(|session| !session.is_expired(now));
        let expiry_secs = |persistent: bool| {
            if persistent {
                self.session_expiry.as_secs()
            } else {
                0
            }
        };
        if let Some(link) = session.and_then(|session| session.connection.as_ref()) {
            let facts = &link.facts;
            return Some(ConnectionInfo {
                client_id: client_id.to_owned(),
                connected: true,
                clean_session: facts.clean_session,
                thing_name: facts.thing_name.clone(),
                source: Some(facts.source),
                target: Some(facts.target),
                keep_alive_secs: Some(facts.keep_alive_secs),
                connected_since_ms: Some(facts.connected_since_ms),
                disconnected_since_ms: None,
                disconnect_reason: None,
                session_expiry_secs: expiry_secs(!facts.clean_session),
            });
        }
        let departure = state.departures.of_client(client_id);
        let recent = departure
            .filter(|departure| now_ms.saturating_sub(departure.at_ms) <= DISCONNECTED_VISIBLE_MS);
        let persistent = session.is_some_and(|session| session.persistent);
        if !persistent && recent.is_none() {
            return None;
        }
        // An offline persistent session restored from the journal has no departure: its connection was
        // before the restart, so only what the session itself says is known.
        let facts = departure.map(|departure| &departure.facts);
        Some(ConnectionInfo {
            client_id: client_id.to_owned(),
            connected: false,
            clean_session: !persistent && facts.is_none_or(|facts| facts.clean_session),
            thing_name: facts.and_then(|facts| facts.thing_name.clone()),
            source: facts.map(|facts| facts.source),
            target: facts.map(|facts| facts.target),
            keep_alive_secs: facts.map(|facts| facts.keep_alive_secs),
            connected_since_ms: None,
            disconnected_since_ms: recent.map(|departure| departure.at_ms),
            disconnect_reason: recent.map(|departure| departure.reason.clone()),
            session_expiry_secs: expiry_secs(persistent),
        })
    }

    /// The subscriptions of the live or offline persistent session of `client_id`, sorted by filter; `None`
    /// when there is no such session.
    pub(crate) fn subscriptions(
        &self,
        client_id: &str,
        now: Instant,
    ) -> Option<Vec<(String, Qos)>> {
        let state = self.lock();
        let session = state
            .sessions
            .get(client_id)
            .filter(|session| !session.is_expired(now))?;
        let mut subscriptions: Vec<_> = session
            .subscriptions
            .iter()
            .map(|(filter, qos)| (filter.clone(), *qos))
            .collect();
        subscriptions.sort();
        Some(subscriptions)
    }

    /// DeleteConnection: closes the live connection with `API_INITIATED_DISCONNECT` (its will unless
    /// `prevent_will_message`), and with `clean_session` discards the persistent session, connected or not.
    /// False when the client has neither a connection nor a persistent session.
    pub(crate) fn delete_connection(
        &self,
        client_id: &str,
        clean_session: bool,
        prevent_will_message: bool,
        now: Instant,
    ) -> bool {
        let mut state = self.lock();
        let Some(session) = state
            .sessions
            .get_mut(client_id)
            .filter(|session| !session.is_expired(now))
        else {
            return false;
        };
        let dropped_persistent = clean_session && session.persistent;
        if clean_session {
            // The session's own disconnect then discards it instead of keeping it (Router::disconnect).
            session.persistent = false;
        }
        if dropped_persistent {
            let record = Record::DropSession {
                client_id: client_id.to_owned(),
            };
            self.journal(&state, record, now);
        }
        let Some(session) = state.sessions.get(client_id) else {
            return true;
        };
        match &session.connection {
            Some(link) => {
                link.close(
                    DisconnectReason::ApiInitiatedDisconnect,
                    !prevent_will_message,
                );
            }
            None if clean_session => {
                state.remove_session(client_id);
                state.departures.forget_client(client_id);
            }
            None => {}
        }
        true
    }

    /// GetThingConnectivityData: the thing is connected when a live connection has its name as client id or is
    /// associated with it; otherwise its last departure (by client id or association) tells when and why.
    /// A scan over the live sessions when the client id is not the thing's name: a control-plane call, rare.
    pub(crate) fn thing_connectivity(&self, thing: &str) -> ThingConnectivity {
        let state = self.lock();
        let by_client_id = state
            .sessions
            .get(thing)
            .and_then(|session| session.connection.as_ref())
            .map(|link| (thing, link));
        let live = by_client_id.or_else(|| {
            state.sessions.iter().find_map(|(client_id, session)| {
                session
                    .connection
                    .as_ref()
                    .filter(|link| link.facts.thing_name.as_deref() == Some(thing))
                    .map(|link| (client_id.as_str(), link))
            })
        });
        if let Some((client_id, link)) = live {
            return ThingConnectivity {
                connected: true,
                timestamp_ms: Some(link.facts.connected_since_ms),
                disconnect_reason: None,
                client_id: Some(client_id.to_owned()),
                connection: Some(ConnectivityDetails::of(&link.facts)),
            };
        }
        match state.departures.of_thing(thing) {
            Some(departure) => ThingConnectivity {
                connected: false,
                timestamp_ms: Some(departure.at_ms),
                disconnect_reason: Some(departure.reason.as_str().to_owned()),
                client_id: None,
                connection: Some(ConnectivityDetails::of(&departure.facts)),
            },
            None => ThingConnectivity {
                connected: false,
                timestamp_ms: None,
                disconnect_reason: None,
                client_id: None,
                connection: None,
            },
        }
    }
}

fn stored_session(client_id: &str, session: &SessionState, now: Instant) -> StoredSession {
    let now_ms = crate::clock::now_millis();
    let mut subscriptions: Vec<_> = session
        .subscriptions
        .iter()
        .map(|(filter, qos)| (filter.clone(), qos.level()))
        .collect();
    subscriptions.sort();
    StoredSession {
        client_id: client_id.to_owned(),
        session_identifier: session.session_identifier.clone(),
        subscriptions,
        offline_expires_at_ms: session.offline_expires_at.map(|at| {
            let remaining = at.saturating_duration_since(now).as_millis();
            now_ms.saturating_add(i64::try_from(remaining).unwrap_or(i64::MAX))
        }),
        queued: session
            .queued
            .iter()
            .map(|(message, qos)| StoredMessage::from_message(message, *qos))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::Origin;

    fn message(topic: &str, payload: &str, qos: Qos, retain: bool) -> Message {
        Message {
            topic: topic.to_owned(),
            payload: bytes::Bytes::from(payload.to_owned()),
            qos,
            retain,
            origin: Origin::Broker,
            is_will: false,
            timestamp_ms: 0,
        }
    }

    fn facts(clean_session: bool, thing_name: Option<&str>) -> ConnectionFacts {
        ConnectionFacts {
            clean_session,
            thing_name: thing_name.map(str::to_owned),
            source: std::net::SocketAddr::from(([127, 0, 0, 1], 50_000)),
            target: std::net::SocketAddr::from(([127, 0, 0, 1], 8883)),
            keep_alive_secs: 60,
            connected_since_ms: 1_000,
        }
    }

    /// What a session would read: the close order first, then the deliveries.
    struct TestRx {
        deliveries: mpsc::Receiver<ToSession>,
        close: watch::Receiver<CloseOrder>,
        close_seen: bool,
    }

    impl TestRx {
        fn try_recv(&mut self) -> Result<ToSession, mpsc::error::TryRecvError> {
            if !self.close_seen
                && let Some((reason, publish_will)) = self.close.borrow().clone()
            {
                self.close_seen = true;
                return Ok(ToSession::Close {
                    reason,
                    publish_will,
                });
            }
            self.deliveries.try_recv()
        }
    }

    fn link(id: u64) -> (ConnectionLink, TestRx) {
        link_with(id, facts(true, None))
    }

    fn delivered(receiver: &mut TestRx) -> Vec<(String, Qos, bool)> {
        let mut out = Vec::new();
        while let Ok(ToSession::Deliver {
            message,
            qos,
            retain,
        }) = receiver.try_recv()
        {
            out.push((message.topic.clone(), qos, retain));
        }
        out
    }

    #[test]
    fn hash_does_not_match_the_parent_and_retained_goes_only_to_exact_filters() {
        let router = Router::new(Limits::default(), Duration::from_secs(60));
        let now = Instant::now();
        let (a, mut a_rx) = link(1);
        router.connect("a", true, a, "s".into(), now);
        router.publish_generated(message("sensor", "r", Qos::AtLeastOnce, true), now);
        assert!(
            router
                .subscribe("a", "sensor/#", Qos::AtLeastOnce)
                .unwrap()
                .is_none()
        );
        let retained = router.subscribe("a", "sensor", Qos::AtMostOnce).unwrap();
        assert_eq!(retained.unwrap().payload, "r");
        router.publish_generated(message("sensor", "live", Qos::AtLeastOnce, true), now);
        router.publish_generated(message("sensor/t", "x", Qos::AtLeastOnce, false), now);
        assert_eq!(
            delivered(&mut a_rx),
            vec![
                ("sensor".into(), Qos::AtMostOnce, false),
                ("sensor/t".into(), Qos::AtLeastOnce, false)
            ]
        );
        router.publish_generated(message("sensor", "", Qos::AtMostOnce, true), now);
        assert!(router.retained("sensor").is_none());
    }

    #[test]
    fn takeover_closes_the_old_connection_and_persistent_sessions_queue_qos1() {
        let router = Router::new(Limits::default(), Duration::from_secs(60));
        let now = Instant::now();
        let (first, mut first_rx) = link(1);
        router.connect("c", false, first, "s1".into(), now);
        router.subscribe("c", "t", Qos::AtLeastOnce).unwrap();
        let (second, _second_rx) = link(2);
        let outcome = router.connect("c", false, second, "s2".into(), now);
        assert!(outcome.session_present);
        assert_eq!(outcome.session_identifier, "s1");
        assert!(matches!(
            first_rx.try_recv(),
            Ok(ToSession::Close {
                reason: DisconnectReason::DuplicateClientId,
                ..
            })
        ));
        // The old connection ending does not touch the new one.
        router.disconnect(
            "c",
            1,
            Vec::new(),
            &DisconnectReason::DuplicateClientId,
            now,
        );
        assert!(router.is_connected("c"));
        router.disconnect("c", 2, Vec::new(), &DisconnectReason::ConnectionLost, now);
        router.publish_generated(message("t", "q1", Qos::AtLeastOnce, false), now);
        router.publish_generated(message("t", "q0", Qos::AtMostOnce, false), now);
        let (third, mut third_rx) = link(3);
        assert!(
            router
                .connect("c", false, third, "s3".into(), now)
                .session_present
        );
        assert_eq!(
            delivered(&mut third_rx),
            vec![("t".into(), Qos::AtLeastOnce, false)]
        );
        // An expired session is not resumed.
        router.disconnect("c", 3, Vec::new(), &DisconnectReason::ConnectionLost, now);
        let (fourth, _fourth_rx) = link(4);
        let later = now + Duration::from_secs(61);
        assert!(
            !router
                .connect("c", false, fourth, "s4".into(), later)
                .session_present
        );
    }

    #[test]
    fn subscription_limit_and_internal_subscribers() {
        let limits = Limits {
            max_subscriptions_per_connection: 2,
            ..Limits::default()
        };
        let router = Router::new(limits, Duration::from_secs(60));
        let now = Instant::now();
        let (a, _rx) = link(1);
        router.connect("a", true, a, "s".into(), now);
        router.subscribe("a", "x", Qos::AtMostOnce).unwrap();
        router.subscribe("a", "y", Qos::AtMostOnce).unwrap();
        router.subscribe("a", "y", Qos::AtLeastOnce).unwrap();
        assert_eq!(
            router.subscribe("a", "z", Qos::AtMostOnce),
            Err(SubscribeRefusal::TooManySubscriptions)
        );
        let mut internal = router.subscribe_internal("$aws/rules/#");
        router.publish_generated(message("$aws/rules/r/x", "p", Qos::AtMostOnce, false), now);
        assert_eq!(internal.try_recv().unwrap().topic, "$aws/rules/r/x");
    }

    fn link_with(id: u64, facts: ConnectionFacts) -> (ConnectionLink, TestRx) {
        link_bounded(id, facts, Limits::default().max_pending_outbound)
    }

    fn link_bounded(id: u64, facts: ConnectionFacts, capacity: usize) -> (ConnectionLink, TestRx) {
        let (outbox, deliveries) = mpsc::channel(capacity);
        let (closer, close) = watch::channel(None);
        (
            ConnectionLink {
                id,
                outbox,
                closer: Arc::new(closer),
                facts,
            },
            TestRx {
                deliveries,
                close,
                close_seen: false,
            },
        )
    }

    #[test]
    fn retained_messages_page_in_topic_order() {
        let router = Router::new(Limits::default(), Duration::from_secs(60));
        let now = Instant::now();
        for topic in ["c", "a", "b/x", "b"] {
            router.publish_generated(message(topic, "payload", Qos::AtLeastOnce, true), now);
        }
        router.publish_generated(message("$aws/x", "p", Qos::AtMostOnce, true), now);
        let (first, next) = router.retained_page(None, 2);
        let topics: Vec<_> = first.iter().map(|summary| summary.topic.as_str()).collect();
        assert_eq!(topics, ["a", "b"]);
        assert_eq!(first[0].payload_size, 7);
        assert_eq!(first[0].qos, Qos::AtLeastOnce);
        assert_eq!(next.as_deref(), Some("b"));
        let (second, next) = router.retained_page(next.as_deref(), 2);
        let topics: Vec<_> = second
            .iter()
            .map(|summary| summary.topic.as_str())
            .collect();
        assert_eq!(topics, ["b/x", "c"]);
        assert_eq!(next, None, "no token when nothing follows");
    }

    #[test]
    fn connection_info_subscriptions_and_delete_follow_the_session() {
        let router = Router::new(Limits::default(), Duration::from_secs(60));
        let now = Instant::now();
        assert!(router.connection_info("p", now, 0).is_none());
        let (live, mut live_rx) = link_with(1, facts(false, Some("lamp")));
        router.connect("p", false, live, "s".into(), now);
        router.subscribe("p", "b/#", Qos::AtLeastOnce).unwrap();
        router.subscribe("p", "a", Qos::AtMostOnce).unwrap();
        let info = router.connection_info("p", now, 2_000).unwrap();
        assert!(info.connected && !info.clean_session);
        assert_eq!(info.thing_name.as_deref(), Some("lamp"));
        assert_eq!(info.connected_since_ms, Some(1_000));
        assert_eq!(info.session_expiry_secs, 60);
        assert_eq!(
            router.subscriptions("p", now).unwrap(),
            vec![
                ("a".to_owned(), Qos::AtMostOnce),
                ("b/#".to_owned(), Qos::AtLeastOnce)
            ]
        );

        router.disconnect("p", 1, Vec::new(), &DisconnectReason::ConnectionLost, now);
        let offline = router
            .connection_info("p", now, crate::clock::now_millis())
            .unwrap();
        assert!(!offline.connected);
        assert_eq!(
            offline.disconnect_reason,
            Some(DisconnectReason::ConnectionLost)
        );
        assert!(offline.disconnected_since_ms.is_some() && offline.connected_since_ms.is_none());
        assert_eq!(
            router.subscriptions("p", now).unwrap().len(),
            2,
            "kept offline"
        );

        // Offline without cleanSession: nothing to do, but the session exists.
        assert!(router.delete_connection("p", false, false, now));
        assert!(router.subscriptions("p", now).is_some());
        assert!(router.delete_connection("p", true, false, now));
        assert!(router.subscriptions("p", now).is_none());
        assert!(!router.delete_connection("p", true, false, now));
        assert!(live_rx.try_recv().is_err(), "no command to a closed link");

        // Live with cleanSession: told to close, and its end discards the session.
        let (again, mut again_rx) = link_with(2, facts(false, None));
        router.connect("p", false, again, "s2".into(), now);
        router.subscribe("p", "a", Qos::AtMostOnce).unwrap();
        assert!(router.delete_connection("p", true, true, now));
        assert!(matches!(
            again_rx.try_recv(),
            Ok(ToSession::Close {
                reason: DisconnectReason::ApiInitiatedDisconnect,
                publish_will: false
            })
        ));
        router.disconnect(
            "p",
            2,
            Vec::new(),
            &DisconnectReason::ApiInitiatedDisconnect,
            now,
        );
        assert!(router.subscriptions("p", now).is_none());
        // A departure older than 30 minutes is no longer reported.
        let much_later = crate::clock::now_millis() + DISCONNECTED_VISIBLE_MS + 1;
        assert!(router.connection_info("p", now, much_later).is_none());
    }

    #[test]
    fn thing_connectivity_by_client_id_or_association() {
        let router = Router::new(Limits::default(), Duration::from_secs(60));
        let now = Instant::now();
        let never = router.thing_connectivity("lamp");
        assert_eq!(
            (never.connected, never.timestamp_ms, never.disconnect_reason),
            (false, None, None)
        );
        // A client with another id whose certificate is exclusively attached to the thing.
        let (exclusive, _rx) = link_with(1, facts(true, Some("lamp")));
        router.connect("lamp-app", true, exclusive, "s".into(), now);
        let connected = router.thing_connectivity("lamp");
        assert!(connected.connected);
        assert_eq!(connected.timestamp_ms, Some(1_000));
        assert_eq!(connected.disconnect_reason, None);
        router.disconnect(
            "lamp-app",
            1,
            Vec::new(),
            &DisconnectReason::MqttKeepAliveTimeout,
            now,
        );
        let gone = router.thing_connectivity("lamp");
        assert!(!gone.connected);
        assert!(gone.timestamp_ms.is_some());
        assert_eq!(
            gone.disconnect_reason.as_deref(),
            Some("MQTT_KEEP_ALIVE_TIMEOUT")
        );
        // The client id is the thing's name, no association needed.
        let (named, _rx2) = link_with(2, facts(true, None));
        router.connect("lamp", true, named, "s".into(), now);
        assert!(router.thing_connectivity("lamp").connected);
        assert!(!router.thing_connectivity("lamp-app").connected);
    }

    #[tokio::test]
    async fn a_journaled_router_restores_retained_messages_and_unexpired_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        {
            let router =
                Router::with_journal(Limits::default(), Duration::from_secs(60), dir.path())
                    .unwrap();
            router.publish_generated(message("kept", "k", Qos::AtLeastOnce, true), now);
            router.publish_generated(message("cleared", "c", Qos::AtLeastOnce, true), now);
            router.publish_generated(message("cleared", "", Qos::AtLeastOnce, true), now);
            let (p, _p_rx) = link(1);
            router.connect("p", false, p, "sp".into(), now);
            router.subscribe("p", "t/+", Qos::AtLeastOnce).unwrap();
            router.disconnect("p", 1, Vec::new(), &DisconnectReason::ConnectionLost, now);
            router.publish_generated(message("t/1", "queued", Qos::AtLeastOnce, false), now);
            // Connected when the process "dies": restored offline, expiry from the restart.
            let (q, _q_rx) = link(2);
            router.connect("q", false, q, "sq".into(), now);
            // A clean session is never journaled.
            let (c, _c_rx) = link(3);
            router.connect("c", true, c, "sc".into(), now);
            router.flush_journal().await;
        }
        let router =
            Router::with_journal(Limits::default(), Duration::from_secs(60), dir.path()).unwrap();
        assert_eq!(router.retained("kept").unwrap().payload, "k");
        assert!(router.retained("cleared").is_none());
        assert_eq!(router.subscriptions("p", now).unwrap().len(), 1);
        assert!(router.subscriptions("q", now).is_some());
        assert!(router.subscriptions("c", now).is_none());
        let restored = router
            .connection_info("p", now, crate::clock::now_millis())
            .unwrap();
        assert!(!restored.connected && !restored.clean_session);
        assert_eq!((restored.source, restored.disconnect_reason), (None, None));
        let (p, mut p_rx) = link(4);
        let outcome = router.connect("p", false, p, "new".into(), now);
        assert!(outcome.session_present);
        assert_eq!(outcome.session_identifier, "sp");
        assert_eq!(
            delivered(&mut p_rx),
            vec![("t/1".into(), Qos::AtLeastOnce, false)]
        );

        // A session whose expiry passed while the emulator was down is not restored.
        drop(router);
        let short =
            Router::with_journal(Limits::default(), Duration::from_millis(1), dir.path()).unwrap();
        let (q, _q_rx) = link(5);
        short.connect("q", false, q, "sq2".into(), Instant::now());
        short.disconnect(
            "q",
            5,
            Vec::new(),
            &DisconnectReason::ConnectionLost,
            Instant::now(),
        );
        short.flush_journal().await;
        drop(short);
        std::thread::sleep(Duration::from_millis(5));
        let after =
            Router::with_journal(Limits::default(), Duration::from_secs(60), dir.path()).unwrap();
        assert!(after.subscriptions("q", Instant::now()).is_none());
    }

    #[tokio::test]
    async fn the_journal_stays_bounded_when_one_topic_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let router =
            Router::with_journal(Limits::default(), Duration::from_secs(60), dir.path()).unwrap();
        let payload = "x".repeat(64 * 1024);
        let now = Instant::now();
        // About 27 MB of appends, well over the 16 MB compaction threshold.
        for _ in 0..310 {
            router.publish_generated(message("big", &payload, Qos::AtMostOnce, true), now);
        }
        router.flush_journal().await;
        let size = std::fs::metadata(dir.path().join("journal.jsonl"))
            .unwrap()
            .len();
        assert!(
            size < super::journal::COMPACT_ABOVE_MIN_BYTES,
            "compacted to about one message and what followed: {size} bytes"
        );
        drop(router);
        let restored =
            Router::with_journal(Limits::default(), Duration::from_secs(60), dir.path()).unwrap();
        assert_eq!(
            restored.retained("big").unwrap().payload.len(),
            payload.len()
        );
    }

    #[test]
    fn retained_messages_beyond_the_limit_are_delivered_but_not_kept() {
        let limits = Limits {
            max_retained_messages: 1,
            ..Limits::default()
        };
        let router = Router::new(limits, Duration::from_secs(60));
        let now = Instant::now();
        router.publish_generated(message("a", "1", Qos::AtMostOnce, true), now);
        router.publish_generated(message("b", "2", Qos::AtMostOnce, true), now);
        router.publish_generated(message("a", "3", Qos::AtMostOnce, true), now);
        assert!(router.retained("b").is_none());
        assert_eq!(
            router.retained("a").unwrap().payload,
            "3",
            "replacing stays possible"
        );
    }

    /// A measurement, not a check: `cargo test -p iot-emulator --lib journal_cost -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "measurement; prints numbers"]
    async fn journal_cost() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits::default();
        let router =
            Router::with_journal(limits.clone(), Duration::from_secs(3600), dir.path()).unwrap();
        let payload = "x".repeat(1024);
        let now = Instant::now();
        let started = Instant::now();
        for index in 0..10_000 {
            router.publish_generated(
                message(
                    &format!("data/{index}/state"),
                    &payload,
                    Qos::AtLeastOnce,
                    true,
                ),
                now,
            );
        }
        for index in 0..1_000 {
            let (link, _rx) = link(index);
            let client = format!("c{index}");
            router.connect(&client, false, link, "s".into(), now);
            router
                .subscribe(&client, &format!("cmd/{index}"), Qos::AtLeastOnce)
                .unwrap();
            router.disconnect(
                &client,
                index,
                Vec::new(),
                &DisconnectReason::ConnectionLost,
                now,
            );
        }
        for index in 0..1_000 {
            router.publish_generated(
                message(&format!("cmd/{index}"), "q", Qos::AtLeastOnce, false),
                now,
            );
        }
        router.flush_journal().await;
        let written = started.elapsed();
        let size = std::fs::metadata(dir.path().join("journal.jsonl"))
            .unwrap()
            .len();
        drop(router);
        let started = Instant::now();
        let restored = Router::with_journal(limits, Duration::from_secs(3600), dir.path()).unwrap();
        let restore = started.elapsed();
        assert_eq!(restored.retained_page(None, 200).0.len(), 200);
        println!(
            "journal: 10,000 retained (1 KiB) + 1,000 persistent sessions with 1 queued message: \
             written in {written:?}, {size} bytes, restored (replay + compaction) in {restore:?}"
        );
    }

    /// A consumer that does not keep up held everything published to it (issue 13, item 2): past its bound a
    /// QoS 0 delivery is dropped and counted, and a QoS 1 delivery ends the connection (THROTTLED) while a
    /// persistent session keeps the message for its next connection.
    #[test]
    fn a_consumer_that_does_not_keep_up_loses_qos0_and_is_closed_at_qos1() {
        let router = Router::new(Limits::default(), Duration::from_secs(60));
        let now = Instant::now();
        let (slow, mut slow_rx) = link_bounded(1, facts(false, None), 2);
        router.connect("slow", false, slow, "s".into(), now);
        router.subscribe("slow", "t/#", Qos::AtLeastOnce).unwrap();
        for n in 0..3 {
            router.publish_generated(message(&format!("t/{n}"), "p", Qos::AtMostOnce, false), now);
        }
        assert_eq!(
            router.slow_consumer_counts(),
            (1, 0),
            "the third QoS 0 delivery is dropped"
        );
        router.publish_generated(message("t/q1", "p", Qos::AtLeastOnce, false), now);
        assert_eq!(router.slow_consumer_counts(), (1, 1));
        assert!(matches!(
            slow_rx.try_recv(),
            Ok(ToSession::Close {
                reason: DisconnectReason::Throttled,
                publish_will: true
            })
        ));
        assert_eq!(
            delivered(&mut slow_rx).len(),
            2,
            "what fit is still delivered"
        );
        // The session ends; its persistent session kept the QoS 1 message that did not fit.
        router.disconnect("slow", 1, Vec::new(), &DisconnectReason::Throttled, now);
        let (again, mut again_rx) = link_with(2, facts(false, None));
        let outcome = router.connect("slow", false, again, "s2".into(), now);
        assert!(outcome.session_present);
        assert_eq!(
            delivered(&mut again_rx),
            vec![("t/q1".to_owned(), Qos::AtLeastOnce, false)]
        );
    }
}
