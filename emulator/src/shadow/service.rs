//! The Device Shadow service: the MQTT side (requests on `$aws/things/{thing}/shadow[/name/{n}]/{op}`,
//! answers on `/accepted`, `/rejected`, `/update/delta`, `/update/documents`, reference 3.2) and the
//! operations behind the HTTP data plane (reference 3.10). All document rules come from `shadow-doc`.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use shadow_doc::{
    AcceptedResponse, DeleteResponse, GetResponse, Publication, ReadRequest, ShadowConfig,
    ShadowError, ShadowId, ShadowOperation, ShadowRecord, ShadowTopic, TopicSuffix,
    is_valid_thing_name, update_from_payload,
};

use super::store::ShadowStore;
use crate::publish::{OutboundMessage, Publisher, Qos};

/// The QoS of the messages the shadow service publishes. AWS does not document it; subscribers get
/// at most their subscription's QoS anyway, so 1 lets QoS 1 subscribers have reliable delivery.
pub const SHADOW_RESPONSE_QOS: Qos = Qos::AtLeastOnce;

/// Largest `pageSize` of ListNamedShadowsForThing we accept (AWS documents no bound; ours).
pub const MAX_NAMED_SHADOW_PAGE: usize = 100;

/// How an MQTT message reached the broker, which matters to the shadow service: it ignores Last Will
/// messages sent to its topics (reference 2.3), while subscribers and rules still see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOrigin {
    /// A PUBLISH from a client, an HTTP Publish, or a rule's republish.
    Publish,
    /// A Last Will delivery after an unclean disconnect (reference 2.1).
    LastWill,
}

/// ListNamedShadowsForThing response body (reference 3.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedShadowList {
    pub results: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// Epoch seconds, like every shadow timestamp (reference 3.6).
    pub timestamp: u64,
}

type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The shadow service. Share it behind an `Arc` between the broker glue and the data-plane router.
pub struct ShadowService {
    store: Mutex<ShadowStore>,
    config: ShadowConfig,
    publisher: Arc<dyn Publisher>,
    clock: Clock,
}

impl std::fmt::Debug for ShadowService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn rejected(topic: &ShadowTopic, error: &ShadowError) -> Publication {
    Publication {
        topic: topic.sibling(topic.operation, TopicSuffix::Rejected),
        payload: error.to_json_bytes(),
    }
}

fn accepted<T: Serialize>(topic: &ShadowTopic, body: &T) -> Publication {
    Publication {
        topic: topic.sibling(topic.operation, TopicSuffix::Accepted),
        payload: to_json_bytes(body),
    }
}

/// Our response types hold strings, numbers and JSON values only, so serializing cannot fail; an empty
/// payload would be the visible symptom if it ever did.
fn to_json_bytes<T: Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

impl ShadowService {
    /// A service with AWS's default limits and delta rule (`ShadowConfig::default()`) and the system
    /// clock. `publisher` receives the MQTT side effects of HTTP requests (reference 3.2, 3.10).
    pub fn new(store: ShadowStore, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            store: Mutex::new(store),
            config: ShadowConfig::default(),
            publisher,
            clock: Arc::new(crate::clock::now_secs),
        }
    }

    /// Use other limits, delta trigger or version retention.
    pub fn with_config(mut self, config: ShadowConfig) -> Self {
        self.config = config;
        self
    }

    /// Use another clock (epoch seconds), e.g. to test the 48 h version retention (reference 3.7).
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Every mutation is a single insert, so a lock poisoned by a panic elsewhere is still consistent.
    fn store(&self) -> MutexGuard<'_, ShadowStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the broker should hand a message on `topic` to [`ShadowService::handle_mqtt`]: a
    /// request (`get`, `update`, `delete` without suffix) of a classic or named shadow.
    pub fn is_request_topic(topic: &str) -> bool {
        ShadowTopic::parse(topic).is_ok_and(|parsed| parsed.is_request())
    }

    /// Act on an MQTT message published to a shadow request topic and return what AWS publishes in
    /// answer (reference 3.2, 3.6): for an update `/update/accepted`, `/update/documents` and maybe
    /// `/update/delta`, or `/update/rejected`; for get/delete their `/accepted` or `/rejected`.
    ///
    /// Returns nothing for topics that are not shadow requests (including the service's own answers)
    /// and for Last Will deliveries (reference 2.3). The broker publishes the result like any message,
    /// so subscribers and rules see it.
    pub fn handle_mqtt(
        &self,
        topic: &str,
        payload: &[u8],
        origin: MessageOrigin,
    ) -> Vec<Publication> {
        if origin == MessageOrigin::LastWill {
            return Vec::new();
        }
        let Ok(topic) = ShadowTopic::parse(topic) else {
            return Vec::new();
        };
        if !topic.is_request() {
            return Vec::new();
        }
        match topic.operation {
            ShadowOperation::Update => match self.apply_update(&topic.shadow, payload) {
                Ok((_, publications)) => publications,
                Err(error) => vec![rejected(&topic, &error)],
            },
            ShadowOperation::Get => match self.read(&topic.shadow, &ReadRequest::parse(payload)) {
                Ok(response) => vec![accepted(&topic, &response)],
                Err(error) => vec![rejected(&topic, &error)],
            },
            ShadowOperation::Delete => {
                match self.remove(&topic.shadow, &ReadRequest::parse(payload)) {
                    Ok(response) => vec![accepted(&topic, &response)],
                    Err(error) => vec![rejected(&topic, &error)],
                }
            }
        }
    }

    /// GetThingShadow (reference 3.10): the full document with the delta, or 404.
    pub fn get(&self, shadow: &ShadowId) -> Result<GetResponse, ShadowError> {
        self.read(shadow, &ReadRequest::default())
    }

    /// UpdateThingShadow (reference 3.10): the `/update/accepted` document. The same messages as for an
    /// MQTT update go out through the [`Publisher`] (reference 3.2: a REST update also publishes the
    /// delta, and presumably accepted and documents). Errors are only returned, never published
    /// (reference 3.2).
    pub fn update(
        &self,
        shadow: &ShadowId,
        payload: &[u8],
    ) -> Result<AcceptedResponse, ShadowError> {
        let (response, publications) = self.apply_update(shadow, payload)?;
        self.publish_all(publications);
        Ok(response)
    }

    /// DeleteThingShadow (reference 3.10): `{"version","timestamp"}`, and `/delete/accepted` through the
    /// [`Publisher`] so that devices learn about it as they would from an MQTT delete (our inference:
    /// AWS documents the topic, not who triggers it).
    pub fn delete(&self, shadow: &ShadowId) -> Result<DeleteResponse, ShadowError> {
        let response = self.remove(shadow, &ReadRequest::default())?;
        self.publish_all(vec![Publication {
            topic: shadow.topic(ShadowOperation::Delete, TopicSuffix::Accepted),
            payload: to_json_bytes(&response),
        }]);
        Ok(response)
    }

    /// ListNamedShadowsForThing (reference 3.10): live named shadows in name order, never the classic
    /// one; an unknown thing gives an empty list. Without `page_size` everything comes in one page (AWS
    /// documents no default). `next_token` is the last name of the previous page.
    pub fn list_named(
        &self,
        thing_name: &str,
        page_size: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<NamedShadowList, ShadowError> {
        let now = self.now();
        if !is_valid_thing_name(thing_name) {
            return Err(
                invalid_request("Invalid thing name: must match [a-zA-Z0-9:_-]{1,128}").stamp(now),
            );
        }
        let page_size = match page_size {
            None => usize::MAX,
            Some(size) if (1..=MAX_NAMED_SHADOW_PAGE).contains(&size) => size,
            Some(_) => {
                return Err(invalid_request(format!(
                    "pageSize must be between 1 and {MAX_NAMED_SHADOW_PAGE}"
                ))
                .stamp(now));
            }
        };
        let store = self.store();
        let mut names = store
            .named_shadows(thing_name)
            .filter(|name| next_token.is_none_or(|after| *name > after));
        let results: Vec<String> = names.by_ref().take(page_size).map(str::to_string).collect();
        let more = names.next().is_some();
        Ok(NamedShadowList {
            next_token: more.then(|| results.last().cloned()).flatten(),
            results,
            timestamp: now,
        })
    }

    fn apply_update(
        &self,
        shadow: &ShadowId,
        payload: &[u8],
    ) -> Result<(AcceptedResponse, Vec<Publication>), ShadowError> {
        let now = self.now();
        let mut store = self.store();
        let outcome = update_from_payload(store.record(shadow), payload, &self.config, now)?;
        let publications = outcome.publications(shadow);
        let client_token = outcome.accepted.client_token.clone();
        if let Err(error) = store.put(shadow, ShadowRecord::Live(outcome.document)) {
            tracing::error!(%error, %shadow, "could not store shadow");
            return Err(ShadowError::internal_failure()
                .with_client_token(client_token)
                .stamp(now));
        }
        Ok((outcome.accepted, publications))
    }

    fn read(&self, shadow: &ShadowId, request: &ReadRequest) -> Result<GetResponse, ShadowError> {
        let store = self.store();
        let live = store.record(shadow).and_then(ShadowRecord::live);
        shadow_doc::get_response(live, shadow, request, self.now())
    }

    fn remove(
        &self,
        shadow: &ShadowId,
        request: &ReadRequest,
    ) -> Result<DeleteResponse, ShadowError> {
        let now = self.now();
        let mut store = self.store();
        let live = store.record(shadow).and_then(ShadowRecord::live);
        let outcome = shadow_doc::delete(live, shadow, request, now)?;
        if let Err(error) = store.put(shadow, ShadowRecord::Deleted(outcome.tombstone)) {
            tracing::error!(%error, %shadow, "could not store shadow deletion");
            return Err(ShadowError::internal_failure()
                .with_client_token(request.client_token.clone())
                .stamp(now));
        }
        Ok(outcome.response)
    }

    /// Publish `publications` (as returned by [`ShadowService::handle_mqtt`]) at
    /// [`SHADOW_RESPONSE_QOS`] through the service's publisher.
    pub fn publish_all(&self, publications: Vec<Publication>) {
        for publication in publications {
            let topic = publication.topic.clone();
            let message =
                OutboundMessage::new(publication.topic, publication.payload, SHADOW_RESPONSE_QOS);
            if let Err(error) = self.publisher.publish(message) {
                // The HTTP caller's change is stored either way, as on AWS where MQTT delivery is
                // asynchronous to the REST answer.
                tracing::warn!(%error, topic, "could not publish shadow message");
            }
        }
    }
}

/// A 400 with a text of ours (shadow-doc has no constructor for HTTP-only checks).
fn invalid_request(message: impl Into<String>) -> ShadowError {
    ShadowError {
        code: 400,
        message: message.into(),
        timestamp: None,
        client_token: None,
    }
}
