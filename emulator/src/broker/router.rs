//! The router: sessions (live and persistent), subscriptions, retained messages and in-process subscribers.
//! Publishing hands each matching session its copy; the session itself checks `iot:Receive` when it writes the
//! message to the wire, so the check happens on every delivery (reference 4.2), queued ones included.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iot_events::DisconnectReason;
use iot_sql::{has_wildcards, is_basic_ingest};
use tokio::sync::mpsc;

use super::config::Limits;
use super::message::{Message, Qos};

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
    /// End the connection for `reason` (takeover, `DeleteConnection`).
    Close {
        reason: DisconnectReason,
        publish_will: bool,
    },
}

/// The router's handle on one live connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLink {
    pub id: u64,
    pub outbox: mpsc::UnboundedSender<ToSession>,
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

#[derive(Debug)]
struct InternalSubscription {
    filter: String,
    sender: mpsc::UnboundedSender<Message>,
}

#[derive(Debug, Default)]
struct RouterState {
    sessions: HashMap<String, SessionState>,
    /// Filter -> client id -> granted QoS.
    by_filter: HashMap<String, HashMap<String, Qos>>,
    /// The keys of `by_filter` that contain wildcards; the others are looked up by topic directly.
    wildcard_filters: HashSet<String>,
    internal: Vec<InternalSubscription>,
    retained: HashMap<String, Arc<Message>>,
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

#[derive(Debug)]
pub(crate) struct Router {
    state: Mutex<RouterState>,
    limits: Limits,
    session_expiry: Duration,
}

impl Router {
    pub(crate) fn new(limits: Limits, session_expiry: Duration) -> Router {
        Router {
            state: Mutex::new(RouterState::default()),
            limits,
            session_expiry,
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
        if let Some(existing) = state.sessions.get_mut(client_id) {
            let expired = existing.is_expired(now);
            if let Some(old) = existing.connection.take() {
                let _ = old.outbox.send(ToSession::Close {
                    reason: DisconnectReason::DuplicateClientId,
                    publish_will: true,
                });
            }
            resume = !clean_session && existing.persistent && !expired;
        }
        if resume && let Some(session) = state.sessions.get_mut(client_id) {
            for (message, qos) in session.queued.drain(..) {
                let _ = link.outbox.send(ToSession::Deliver {
                    message,
                    qos,
                    retain: false,
                });
            }
            session.connection = Some(link);
            session.offline_expires_at = None;
            return ConnectOutcome {
                session_present: true,
                session_identifier: session.session_identifier.clone(),
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
        now: Instant,
    ) {
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(client_id) else {
            return;
        };
        match &session.connection {
            Some(link) if link.id == connection_id => {
                if session.persistent {
                    session.connection = None;
                    session.offline_expires_at = Some(now + self.session_expiry);
                    for entry in unacknowledged.into_iter().rev() {
                        session.queued.push_front(entry);
                    }
                    session.queued.truncate(self.limits.max_queued_offline);
                } else {
                    state.remove_session(client_id);
                }
            }
            Some(link) if session.persistent => {
                for (message, qos) in unacknowledged {
                    let _ = link.outbox.send(ToSession::Deliver {
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
        state
            .by_filter
            .entry(filter.to_owned())
            .or_default()
            .insert(client_id.to_owned(), qos);
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
            state.remove_filter_entry(filter, client_id);
        }
    }

    /// An in-process subscriber (shadow service, rules engine). It sees every matching message, reserved topics
    /// and Basic Ingest included, without policy checks.
    pub(crate) fn subscribe_internal(&self, filter: &str) -> mpsc::UnboundedReceiver<Message> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().internal.push(InternalSubscription {
            filter: filter.to_owned(),
            sender,
        });
        receiver
    }

    /// Stores or clears the retained message (reference 6.3) and delivers `message` to every matching
    /// subscriber: live sessions get it at once, offline persistent sessions queue QoS 1 copies for QoS 1
    /// subscriptions (reference 6.4).
    pub(crate) fn publish(&self, message: Message, now: Instant) {
        let message = Arc::new(message);
        let topic = message.topic.as_str();
        let mut state = self.lock();
        let state = &mut *state;
        if message.retain && !topic.starts_with('$') {
            if message.payload.is_empty() {
                state.retained.remove(topic);
            } else {
                state
                    .retained
                    .insert(topic.to_owned(), Arc::clone(&message));
            }
        }
        state
            .internal
            .retain(|subscription| !subscription.sender.is_closed());
        for subscription in &state.internal {
            // Filters are validated before they are stored (Broker::subscribe_internal, SUBSCRIBE
            // handling), so each message only matches.
            if iot_sql::matches_valid_filter(&subscription.filter, topic) {
                let _ = subscription.sender.send((*message).clone());
            }
        }
        if is_basic_ingest(topic) {
            return;
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
        for (client_id, granted) in targets {
            let Some(session) = state.sessions.get_mut(&client_id) else {
                continue;
            };
            let qos = granted.min(message.qos);
            match &session.connection {
                Some(link) => {
                    let _ = link.outbox.send(ToSession::Deliver {
                        message: Arc::clone(&message),
                        qos,
                        retain: false,
                    });
                }
                None if session.is_expired(now) => expired.push(client_id),
                None => {
                    if qos == Qos::AtLeastOnce
                        && session.queued.len() < self.limits.max_queued_offline
                    {
                        session.queued.push_back((Arc::clone(&message), qos));
                    }
                }
            }
        }
        for client_id in expired {
            state.remove_session(&client_id);
        }
    }

    /// Sends `command` to the live connection of `client_id`; false when it is not connected.
    pub(crate) fn send_to(&self, client_id: &str, command: ToSession) -> bool {
        let state = self.lock();
        match state
            .sessions
            .get(client_id)
            .and_then(|session| session.connection.as_ref())
        {
            Some(link) => link.outbox.send(command).is_ok(),
            None => false,
        }
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

    fn link(id: u64) -> (ConnectionLink, mpsc::UnboundedReceiver<ToSession>) {
        let (outbox, receiver) = mpsc::unbounded_channel();
        (ConnectionLink { id, outbox }, receiver)
    }

    fn delivered(receiver: &mut mpsc::UnboundedReceiver<ToSession>) -> Vec<(String, Qos, bool)> {
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
        router.publish(message("sensor", "r", Qos::AtLeastOnce, true), now);
        assert!(
            router
                .subscribe("a", "sensor/#", Qos::AtLeastOnce)
                .unwrap()
                .is_none()
        );
        let retained = router.subscribe("a", "sensor", Qos::AtMostOnce).unwrap();
        assert_eq!(retained.unwrap().payload, "r");
        router.publish(message("sensor", "live", Qos::AtLeastOnce, true), now);
        router.publish(message("sensor/t", "x", Qos::AtLeastOnce, false), now);
        assert_eq!(
            delivered(&mut a_rx),
            vec![
                ("sensor".into(), Qos::AtMostOnce, false),
                ("sensor/t".into(), Qos::AtLeastOnce, false)
            ]
        );
        router.publish(message("sensor", "", Qos::AtMostOnce, true), now);
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
        router.disconnect("c", 1, Vec::new(), now);
        assert!(router.is_connected("c"));
        router.disconnect("c", 2, Vec::new(), now);
        router.publish(message("t", "q1", Qos::AtLeastOnce, false), now);
        router.publish(message("t", "q0", Qos::AtMostOnce, false), now);
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
        router.disconnect("c", 3, Vec::new(), now);
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
        router.publish(message("$aws/rules/r/x", "p", Qos::AtMostOnce, false), now);
        assert_eq!(internal.try_recv().unwrap().topic, "$aws/rules/r/x");
    }
}
