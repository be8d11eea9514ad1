//! shadow-reconciler: keeps two shadows honest.
//!
//! * **Connectivity** (rule `PresenceEvents`): every `connected` / `disconnected` lifecycle event is
//!   folded into the thing's named shadow `connectivity` with the order-proof reducer of the
//!   `presence` crate. The write is read–decide–update with the shadow `version` as an optimistic
//!   lock, so two invocations racing on one thing cannot overwrite each other: the loser gets 409,
//!   re-reads and decides again (architecture section 3).
//! * **Desired hygiene** (rule `ShadowDocuments`): when a classic shadow update leaves a `desired`
//!   key equal to `reported`, the key is cleared with a version-locked update, so a stale command can
//!   never replay. Clearing it produces another `documents` event in which nothing is left to clear,
//!   so the function cannot loop.
//!
//! Bad input is logged and answered without writing anything; a write that still fails after the
//! bounded retries fails the invocation, so Lambda's async retries and on-failure destination take over.

pub mod memory;
mod store;

use std::time::Duration;

use iot_events::LifecycleEvent;
use presence::{Connectivity, Decision, Observation, Reducer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shadow_doc::{DocumentSnapshot, clear_satisfied_desired};

pub use store::{DataPlaneStore, ShadowStore, StoreError, StoredShadow};

/// Named shadow used when `CONNECTIVITY_SHADOW_NAME` is not set.
pub const DEFAULT_CONNECTIVITY_SHADOW: &str = "connectivity";

/// Written once into a connectivity shadow that does not exist yet. A shadow update merges, so this
/// constant key can be written by any number of racing invocations without clobbering one another;
/// afterwards the shadow has a version and every real write is version-locked.
const SCHEMA_MARKER: (&str, &str) = ("schema", "iot.connectivity.v1");

/// What an invocation did (its response, visible in destinations and `cargo lambda invoke`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    /// The connectivity shadow now reflects the event.
    #[serde(rename_all = "camelCase")]
    Applied {
        thing: String,
        reason: &'static str,
        shadow_version: u64,
        conflicts: u32,
    },
    /// The event is stale or a duplicate; the shadow already says something at least as recent.
    #[serde(rename_all = "camelCase")]
    Unchanged { thing: String, reason: &'static str },
    /// Desired keys that matched reported were cleared.
    #[serde(rename_all = "camelCase")]
    DesiredCleared {
        thing: String,
        keys: Vec<String>,
        shadow_version: u64,
        conflicts: u32,
    },
    /// Nothing in desired equals reported.
    #[serde(rename_all = "camelCase")]
    NothingToClear { thing: String },
    /// Not an event this function acts on (`subscribed`, a console client, an unknown thing, ...).
    #[serde(rename_all = "camelCase")]
    Skipped { why: String },
    /// Input that is not what the rules send; nothing was written.
    #[serde(rename_all = "camelCase")]
    Rejected { error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{thing}: still conflicting after {attempts} attempts (shadow {shadow})")]
    RetriesSpent {
        thing: String,
        shadow: String,
        attempts: u32,
    },
    #[error("{thing}: {source}")]
    Store {
        thing: String,
        #[source]
        source: StoreError,
    },
}

impl From<ReconcileError> for lambda_runtime::Diagnostic {
    fn from(error: ReconcileError) -> Self {
        let error_type = match &error {
            ReconcileError::RetriesSpent { .. } => "VersionConflictRetriesSpent",
            ReconcileError::Store { .. } => "ShadowStoreError",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// How hard to try before handing the event back to Lambda's async retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Read–decide–update rounds per invocation.
    pub max_attempts: u32,
    /// Upper bound of the first jittered pause after a 409; doubles per conflict.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform pause in `[0, min(max, base * 2^conflicts))`, so racing invocations
    /// spread out instead of colliding again in lock step.
    fn pause(&self, conflicts: u32) -> Duration {
        let cap = self
            .base_backoff
            .saturating_mul(1u32 << conflicts.min(16))
            .min(self.max_backoff);
        cap.mul_f64(rand::random::<f64>())
    }
}

pub struct Reconciler<S> {
    store: S,
    connectivity_shadow: String,
    reducer: Reducer,
    retry: RetryPolicy,
}

impl Reconciler<DataPlaneStore> {
    /// Build the data-plane client from the Lambda environment (credentials, region, and any
    /// `AWS_ENDPOINT_URL_IOT_DATA_PLANE` override used locally); `CONNECTIVITY_SHADOW_NAME` names the
    /// shadow it maintains.
    pub async fn from_env() -> Self {
        let config = lambda_init::sdk_config().await;
        let shadow = std::env::var("CONNECTIVITY_SHADOW_NAME")
            .unwrap_or_else(|_| DEFAULT_CONNECTIVITY_SHADOW.to_owned());
        Self::new(
            DataPlaneStore::new(aws_sdk_iotdataplane::Client::new(&config)),
            shadow,
        )
    }
}

impl<S: ShadowStore> Reconciler<S> {
    pub fn new(store: S, connectivity_shadow: impl Into<String>) -> Self {
        Self {
            store,
            connectivity_shadow: connectivity_shadow.into(),
            reducer: Reducer::default(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Handle one rule output: a lifecycle event or a classic shadow `documents` event.
    pub async fn handle(&self, event: &Value) -> Result<Outcome, ReconcileError> {
        if event.get("eventType").is_some() {
            return match LifecycleEvent::deserialize(event) {
                Ok(lifecycle) => self.on_lifecycle(&lifecycle).await,
                Err(e) if is_known_event_type(event) => {
                    Ok(reject(format!("invalid lifecycle event: {e}")))
                }
                Err(_) => Ok(skip(format!(
                    "event type {} is not a connectivity event",
                    event["eventType"]
                ))),
            };
        }
        if event.get("current").is_some() {
            return self.on_documents(event).await;
        }
        Ok(reject(
            "neither a lifecycle event (no eventType) nor a shadow documents event (no current)"
                .into(),
        ))
    }

    async fn on_lifecycle(&self, event: &LifecycleEvent) -> Result<Outcome, ReconcileError> {
        let Some(observation) = Observation::from_lifecycle(event) else {
            return Ok(skip(format!(
                "{} events do not change connectivity",
                event.event_type()
            )));
        };
        // Thing name = client id in this project; an exclusive-thing connection names it (reference 1.1).
        let thing = event.thing_name().unwrap_or(event.client_id());
        if let Some(why) = not_a_thing(thing) {
            return Ok(skip(why));
        }
        self.apply_connectivity(thing, &observation).await
    }

    async fn apply_connectivity(
        &self,
        thing: &str,
        observation: &Observation,
    ) -> Result<Outcome, ReconcileError> {
        let shadow = Some(self.connectivity_shadow.as_str());
        let store_error = |source| ReconcileError::Store {
            thing: thing.to_owned(),
            source,
        };
        let mut conflicts = 0;
        for _ in 0..self.retry.max_attempts {
            let Some(current) = self.store.get(thing, shadow).await.map_err(store_error)? else {
                // Create the shadow with the merge-safe marker, then decide against what is there.
                let marker = json!({"state": {"reported": {SCHEMA_MARKER.0: SCHEMA_MARKER.1}}});
                match self.store.update(thing, shadow, &marker).await {
                    Ok(_) => continue,
                    Err(StoreError::ThingNotFound(_)) => {
                        return Ok(skip(format!("no thing named {thing}")));
                    }
                    Err(e) => return Err(store_error(e)),
                }
            };
            let stored = stored_connectivity(thing, &current.document);
            let decision = self.reducer.reduce(stored.as_ref(), observation);
            let reason = decision.reason_str();
            let state = match decision {
                Decision::Ignore(_) => {
                    tracing::info!(
                        thing,
                        reason,
                        version = observation.version_number,
                        "event does not change connectivity"
                    );
                    return Ok(Outcome::Unchanged {
                        thing: thing.to_owned(),
                        reason,
                    });
                }
                Decision::Apply { state, .. } => state,
            };
            let request = json!({"state": {"reported": state}, "version": current.version});
            match self.store.update(thing, shadow, &request).await {
                Ok(shadow_version) => {
                    tracing::info!(
                        thing,
                        reason,
                        connected = state.connected,
                        shadow_version,
                        conflicts,
                        "connectivity updated"
                    );
                    return Ok(Outcome::Applied {
                        thing: thing.to_owned(),
                        reason,
                        shadow_version,
                        conflicts,
                    });
                }
                Err(StoreError::Conflict) => {
                    conflicts += 1;
                    tracing::debug!(thing, conflicts, "version conflict; re-reading");
                    tokio::time::sleep(self.retry.pause(conflicts)).await;
                }
                Err(StoreError::ThingNotFound(_)) => {
                    return Ok(skip(format!("no thing named {thing}")));
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ReconcileError::RetriesSpent {
            thing: thing.to_owned(),
            shadow: self.connectivity_shadow.clone(),
            attempts: self.retry.max_attempts,
        })
    }

    async fn on_documents(&self, event: &Value) -> Result<Outcome, ReconcileError> {
        let Some(thing) = event.get("thing").and_then(Value::as_str) else {
            return Ok(reject(
                "documents event without `thing` (the ShadowDocuments rule adds topic(3) AS thing)"
                    .into(),
            ));
        };
        let mut snapshot = match DocumentSnapshot::deserialize(&event["current"]) {
            Ok(s) => s,
            Err(e) => return Ok(reject(format!("invalid `current` document: {e}"))),
        };
        let store_error = |source| ReconcileError::Store {
            thing: thing.to_owned(),
            source,
        };
        let mut conflicts = 0;
        for _ in 0..self.retry.max_attempts {
            let Some(request) = clear_satisfied_desired(&snapshot) else {
                tracing::debug!(thing, "no desired key equals reported");
                return Ok(Outcome::NothingToClear {
                    thing: thing.to_owned(),
                });
            };
            let keys: Vec<String> = request
                .state_json()
                .get("desired")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            match self.store.update(thing, None, &request.to_json()).await {
                Ok(shadow_version) => {
                    tracing::info!(
                        thing,
                        ?keys,
                        shadow_version,
                        "satisfied desired keys cleared"
                    );
                    return Ok(Outcome::DesiredCleared {
                        thing: thing.to_owned(),
                        keys,
                        shadow_version,
                        conflicts,
                    });
                }
                Err(StoreError::Conflict) => {
                    // The shadow moved on since this event: decide again from what it is now.
                    conflicts += 1;
                    tokio::time::sleep(self.retry.pause(conflicts)).await;
                    let Some(fresh) = self.store.get(thing, None).await.map_err(store_error)?
                    else {
                        return Ok(Outcome::NothingToClear {
                            thing: thing.to_owned(),
                        });
                    };
                    snapshot = match serde_json::from_value(fresh.document) {
                        Ok(s) => s,
                        Err(e) => {
                            return Err(store_error(StoreError::Service {
                                operation: "GetThingShadow",
                                message: format!("unexpected shadow document: {e}"),
                            }));
                        }
                    };
                }
                Err(StoreError::ThingNotFound(_)) => {
                    return Ok(skip(format!("no thing named {thing}")));
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ReconcileError::RetriesSpent {
            thing: thing.to_owned(),
            shadow: "classic".into(),
            attempts: self.retry.max_attempts,
        })
    }
}

/// The reported section of a connectivity shadow, or `None` when it holds no state yet (only the
/// schema marker) or something that is not ours, which the next write replaces.
fn stored_connectivity(thing: &str, document: &Value) -> Option<Connectivity> {
    let reported = document.pointer("/state/reported")?;
    match Connectivity::deserialize(reported) {
        Ok(state) => Some(state),
        Err(e) => {
            if reported.as_object().is_some_and(|m| m.len() > 1) {
                tracing::warn!(thing, error = %e, "connectivity shadow holds unexpected state; replacing it");
            }
            None
        }
    }
}

/// Why a client id cannot be a thing, if it cannot. Thing names are `[a-zA-Z0-9:_-]{1,128}`; the AWS
/// console's MQTT test client connects as `iotconsole-…` and is never a device.
fn not_a_thing(client_id: &str) -> Option<String> {
    if !shadow_doc::is_valid_thing_name(client_id) {
        Some(format!("client id {client_id:?} is not a valid thing name"))
    } else if client_id.starts_with("iotconsole-") {
        Some(format!(
            "client id {client_id:?} is the AWS console's test client"
        ))
    } else {
        None
    }
}

fn is_known_event_type(event: &Value) -> bool {
    event["eventType"]
        .as_str()
        .is_some_and(LifecycleEvent::is_known_type)
}

fn skip(why: String) -> Outcome {
    tracing::info!(%why, "skipped");
    Outcome::Skipped { why }
}

fn reject(error: String) -> Outcome {
    tracing::error!(%error, "input rejected; nothing written");
    Outcome::Rejected { error }
}
