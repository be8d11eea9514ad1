//! Applying an `/update` request (reference 3.3–3.7, 3.9).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::document::{DocumentSnapshot, ShadowDocument};
use crate::error::ShadowError;
use crate::metadata::{MetadataMap, MetadataNode, stamp_map};
use crate::record::ShadowRecord;
use crate::request::{SectionUpdate, ShadowLimits, UpdateRequest};
use crate::topic::{ShadowId, ShadowOperation, TopicSuffix};

/// When an accepted update publishes `/update/delta` (reference 3.5, 9 item 3).
///
/// AWS documents "when the request's desired and reported differ" and has been observed to: publish
/// after a desired write, publish after a reported-only update that leaves a difference, and stay
/// silent when a desired key is only set to `null` or when the delta is empty. The exact rule is not
/// documented, so the emulator can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeltaTrigger {
    /// Publish iff the resulting delta is non-empty **and** the request either wrote a non-null value
    /// into `desired`, or touched a `reported` path that also exists in `desired` (reference 3.5 emulator
    /// rule; a desired update made only of `null`s never triggers, awsdocs/aws-iot-docs#54).
    #[default]
    DesiredWriteOrReportedOverlap,
    /// Publish after every accepted update whose resulting delta is non-empty.
    WheneverNonEmpty,
}

/// Everything about the shadow service that is a choice rather than a fixed AWS rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowConfig {
    pub limits: ShadowLimits,
    pub delta_trigger: DeltaTrigger,
    /// How long a deleted shadow's version is remembered: a shadow recreated within this window carries
    /// on from the deleted version, later ones start again from 0 (reference 3.7: 48 hours).
    pub version_retention_secs: u64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self {
            limits: ShadowLimits::default(),
            delta_trigger: DeltaTrigger::default(),
            version_retention_secs: 48 * 60 * 60,
        }
    }
}

/// `/update/accepted` (also the HTTP 200 body): only the request's own `state`, the metadata of what it
/// touched, the new version, the time, and the token (reference 3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedResponse {
    pub state: Value,
    pub metadata: MetadataNode,
    pub version: u64,
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `/update/delta`: `state` is the bare delta, no `desired` wrapper, with the desired timestamps of its
/// keys (reference 3.5). It carries every differing key, not only the ones this update touched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaMessage {
    pub state: Map<String, Value>,
    #[serde(default)]
    pub metadata: MetadataMap,
    pub version: u64,
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `/update/documents`, published after every accepted update (reference 3.2, 3.6). `previous` is
/// `null` when the update created the shadow (aws-iot-device-sdk-js-v2 shadow sample transcript).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentsMessage {
    pub previous: Option<DocumentSnapshot>,
    pub current: DocumentSnapshot,
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// The result of an accepted update: the document to store and every message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The new stored document.
    pub document: ShadowDocument,
    /// For `/update/accepted` and the HTTP response.
    pub accepted: AcceptedResponse,
    /// For `/update/delta`, when [`DeltaTrigger`] says so.
    pub delta: Option<DeltaMessage>,
    /// For `/update/documents`.
    pub documents: DocumentsMessage,
}

/// One MQTT message the shadow service publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub topic: String,
    pub payload: Vec<u8>,
}

impl UpdateOutcome {
    /// The messages to publish for `shadow`, in the order a client saw them on live AWS:
    /// `/update/accepted`, `/update/documents`, then `/update/delta` if any (aws-iot-device-sdk-js-v2
    /// shadow sample transcript). Messages may still arrive out of order (reference 3.5).
    pub fn publications(&self, shadow: &ShadowId) -> Vec<Publication> {
        let mut publications = Vec::with_capacity(3);
        publications.push(Publication {
            topic: shadow.topic(ShadowOperation::Update, TopicSuffix::Accepted),
            payload: to_json_bytes(&self.accepted),
        });
        publications.push(Publication {
            topic: shadow.topic(ShadowOperation::Update, TopicSuffix::Documents),
            payload: to_json_bytes(&self.documents),
        });
        if let Some(delta) = &self.delta {
            publications.push(Publication {
                topic: shadow.topic(ShadowOperation::Update, TopicSuffix::Delta),
                payload: to_json_bytes(delta),
            });
        }
        publications
    }
}

/// Our message types hold only strings, numbers, maps and JSON values, whose serialization cannot fail;
/// an empty payload would be the visible symptom if it ever did.
fn to_json_bytes<T: Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// Apply `request` to the live shadow `current` (`None`: the shadow does not exist) at `now_secs`,
/// with AWS's default limits and delta rule. See [`apply_update_to_record`] for deleted shadows.
///
/// Errors carry the request's `clientToken` and AWS's timestamp convention.
pub fn apply_update(
    current: Option<&ShadowDocument>,
    request: &UpdateRequest,
    now_secs: u64,
) -> Result<UpdateOutcome, ShadowError> {
    let base_version = current.map_or(0, |document| document.version);
    apply(
        current,
        base_version,
        request,
        &ShadowConfig::default(),
        now_secs,
    )
}

/// Apply `request` to whatever the store holds for a shadow: nothing, a live document, or the
/// remembered version of a deleted one (reference 3.7).
pub fn apply_update_to_record(
    record: Option<&ShadowRecord>,
    request: &UpdateRequest,
    config: &ShadowConfig,
    now_secs: u64,
) -> Result<UpdateOutcome, ShadowError> {
    let live = record.and_then(ShadowRecord::live);
    let base_version = match record {
        None => 0,
        Some(ShadowRecord::Live(document)) => document.version,
        Some(ShadowRecord::Deleted(deleted)) => {
            deleted.version_for_recreate(now_secs, config.version_retention_secs)
        }
    };
    apply(live, base_version, request, config, now_secs)
}

/// Parse raw payload bytes and apply them: what the emulator does for an MQTT `/update` publish or an
/// HTTP `POST /things/{thing}/shadow`. The error is ready to publish on `/update/rejected`.
pub fn update_from_payload(
    record: Option<&ShadowRecord>,
    payload: &[u8],
    config: &ShadowConfig,
    now_secs: u64,
) -> Result<UpdateOutcome, ShadowError> {
    let request = UpdateRequest::parse_with_limits(payload, &config.limits)
        .map_err(|error| error.stamp(now_secs))?;
    apply_update_to_record(record, &request, config, now_secs)
}

fn apply(
    current: Option<&ShadowDocument>,
    base_version: u64,
    request: &UpdateRequest,
    config: &ShadowConfig,
    now_secs: u64,
) -> Result<UpdateOutcome, ShadowError> {
    let client_token = request.client_token().map(str::to_string);
    let reject = |error: ShadowError| {
        error
            .with_client_token(client_token.clone())
            .stamp(now_secs)
    };

    // Reference 3.3: the update applies only when `version` equals the stored one. A shadow that does
    // not exist has the version it would continue from (0, or a deleted shadow's, reference 3.7).
    if let Some(expected) = request.version()
        && expected != base_version
    {
        return Err(reject(ShadowError::version_conflict()));
    }

    let mut document = current.cloned().unwrap_or_default();
    merge_section(
        &mut document.state.desired,
        &mut document.metadata.desired,
        request.desired(),
        now_secs,
    );
    merge_section(
        &mut document.state.reported,
        &mut document.metadata.reported,
        request.reported(),
        now_secs,
    );

    // Reference 3.9: the limit applies to the merged document, not to the request.
    if document.state_size_bytes() > config.limits.max_state_bytes {
        return Err(reject(ShadowError::payload_too_large()));
    }

    document.version = base_version.saturating_add(1);
    document.timestamp = now_secs;

    let request_state = request.state_json();
    let accepted = AcceptedResponse {
        metadata: MetadataNode::stamped(&request_state, now_secs),
        state: request_state,
        version: document.version,
        timestamp: now_secs,
        client_token: client_token.clone(),
    };

    let delta_state = document.delta();
    let delta = (!delta_state.is_empty()
        && delta_is_triggered(config.delta_trigger, request, &document))
    .then(|| DeltaMessage {
        metadata: document.delta_metadata(&delta_state),
        state: delta_state,
        version: document.version,
        timestamp: now_secs,
        client_token: client_token.clone(),
    });

    let documents = DocumentsMessage {
        previous: current.map(ShadowDocument::snapshot),
        current: document.snapshot(),
        timestamp: now_secs,
        client_token,
    };

    Ok(UpdateOutcome {
        document,
        accepted,
        delta,
        documents,
    })
}

/// Merge one section, keeping metadata in step: touched leaves get `now_secs`, untouched leaves keep
/// their timestamps, deleted keys lose theirs, and an emptied section disappears (reference 3.4).
fn merge_section(
    state: &mut Option<Map<String, Value>>,
    metadata: &mut Option<MetadataMap>,
    update: &SectionUpdate,
    now_secs: u64,
) {
    match update {
        SectionUpdate::Untouched => {}
        SectionUpdate::Clear => {
            *state = None;
            *metadata = None;
        }
        SectionUpdate::Merge(patch) => {
            let mut merged_state = state.take().unwrap_or_default();
            let mut merged_metadata = match metadata.take() {
                Some(existing) => existing,
                None => stamp_map(&merged_state, now_secs),
            };
            merge_object(&mut merged_state, &mut merged_metadata, patch, now_secs);
            if !merged_state.is_empty() {
                *state = Some(merged_state);
                *metadata = Some(merged_metadata);
            }
        }
    }
}

/// Recursive merge: `null` deletes, objects merge, arrays and scalars replace, and an object left
/// empty is dropped (reference 3.4).
fn merge_object(
    target: &mut Map<String, Value>,
    metadata: &mut MetadataMap,
    patch: &Map<String, Value>,
    now_secs: u64,
) {
    for (key, patch_value) in patch {
        match patch_value {
            Value::Null => {
                target.remove(key);
                metadata.remove(key);
            }
            Value::Object(patch_child) => {
                if let Some(Value::Object(target_child)) = target.get_mut(key) {
                    let mut child_metadata = match metadata.remove(key) {
                        Some(MetadataNode::Object(existing)) => existing,
                        // Only reachable with a hand-made document whose metadata does not mirror its
                        // state; restamp rather than lose the untouched keys' metadata entirely.
                        _ => stamp_map(target_child, now_secs),
                    };
                    merge_object(target_child, &mut child_metadata, patch_child, now_secs);
                    if target_child.is_empty() {
                        target.remove(key);
                    } else {
                        metadata.insert(key.clone(), MetadataNode::Object(child_metadata));
                    }
                } else {
                    // Absent, or a scalar/array being replaced by an object: the new value is the patch
                    // itself with its nulls and empty objects dropped.
                    let mut fresh = Map::new();
                    let mut fresh_metadata = MetadataMap::new();
                    merge_object(&mut fresh, &mut fresh_metadata, patch_child, now_secs);
                    if fresh.is_empty() {
                        target.remove(key);
                        metadata.remove(key);
                    } else {
                        target.insert(key.clone(), Value::Object(fresh));
                        metadata.insert(key.clone(), MetadataNode::Object(fresh_metadata));
                    }
                }
            }
            _ => {
                target.insert(key.clone(), patch_value.clone());
                metadata.insert(key.clone(), MetadataNode::stamped(patch_value, now_secs));
            }
        }
    }
}

fn delta_is_triggered(
    trigger: DeltaTrigger,
    request: &UpdateRequest,
    document: &ShadowDocument,
) -> bool {
    match trigger {
        DeltaTrigger::WheneverNonEmpty => true,
        DeltaTrigger::DesiredWriteOrReportedOverlap => {
            let wrote_desired = match request.desired() {
                SectionUpdate::Merge(patch) => patch.values().any(holds_non_null_leaf),
                SectionUpdate::Untouched | SectionUpdate::Clear => false,
            };
            let touched_desired_in_reported = match (&document.state.desired, request.reported()) {
                (None, _) | (_, SectionUpdate::Untouched) => false,
                (Some(_), SectionUpdate::Clear) => true,
                (Some(desired), SectionUpdate::Merge(patch)) => paths_overlap(patch, desired),
            };
            wrote_desired || touched_desired_in_reported
        }
    }
}

fn holds_non_null_leaf(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(map) => map.values().any(holds_non_null_leaf),
        _ => true,
    }
}

/// Whether any path written (or deleted) by `patch` also exists in `desired`.
fn paths_overlap(patch: &Map<String, Value>, desired: &Map<String, Value>) -> bool {
    patch
        .iter()
        .any(|(key, patch_value)| match desired.get(key) {
            None => false,
            Some(desired_value) => match (patch_value, desired_value) {
                (Value::Object(patch_child), Value::Object(desired_child)) => {
                    paths_overlap(patch_child, desired_child)
                }
                _ => true,
            },
        })
}
