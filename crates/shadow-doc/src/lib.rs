//! The AWS IoT Device Shadow document algebra, as AWS behaves (reference = `aws-iot-behaviour.md`
//! section 3; the project doc is `docs/shadow.md`).
//!
//! Pure functions over documents, with time passed in as epoch seconds, shared by the emulator's shadow
//! service (MQTT and HTTP), the shadow-reconciler Lambda (desired hygiene) and the device agent (delta
//! handling):
//!
//! - [`UpdateRequest::parse`] validates a request in AWS's order with AWS's error codes and texts
//!   (reference 3.3, 3.8);
//! - [`apply_update`] / [`apply_update_to_record`] merge it (reference 3.4), keep per-leaf metadata,
//!   check the version (409) and the 8 KB merged size (413), and return every message to publish:
//!   `/update/accepted`, `/update/delta` (reference 3.5) and `/update/documents` (reference 3.6);
//! - [`get_response`] and [`delete`] answer the other two operations; a deleted shadow keeps its version
//!   counter (reference 3.7);
//! - [`ShadowTopic`] and [`ShadowId`] build and parse `$aws/things/{thing}/shadow[/name/{name}]/...`
//!   (reference 3.1, 3.2).
//!
//! ```
//! use shadow_doc::{apply_update, UpdateRequest};
//!
//! let request = UpdateRequest::parse(br#"{"state":{"desired":{"MOTOR":"ON"}},"clientToken":"t1"}"#)?;
//! let outcome = apply_update(None, &request, 1_700_000_000)?;
//! assert_eq!(outcome.accepted.version, 1);
//! let delta = outcome.delta.expect("desired differs from (absent) reported");
//! assert_eq!(delta.state["MOTOR"], "ON");
//! # Ok::<(), shadow_doc::ShadowError>(())
//! ```

mod delta;
mod document;
mod error;
mod hygiene;
mod metadata;
mod record;
mod request;
mod topic;
mod update;

pub use delta::{delta, delta_metadata, json_equal};
pub use document::{DocumentSnapshot, ShadowDocument, ShadowMetadata, ShadowState};
pub use error::{MAX_CLIENT_TOKEN_BYTES, ShadowError};
pub use hygiene::{clear_satisfied_desired, satisfied_desired_keys};
pub use metadata::{MetadataFormatError, MetadataMap, MetadataNode};
pub use record::{
    DeleteOutcome, DeleteResponse, DeletedShadow, GetResponse, GetState, ShadowRecord, delete,
    get_response,
};
pub use request::{
    DeleteRequest, GetRequest, ReadRequest, SectionUpdate, ShadowLimits, UpdateRequest,
    nesting_levels,
};
pub use topic::{
    MAX_SHADOW_NAME_LEN, MAX_THING_NAME_LEN, ShadowId, ShadowName, ShadowOperation, ShadowTopic,
    TopicError, TopicSuffix, is_valid_shadow_name, is_valid_thing_name,
};
pub use update::{
    AcceptedResponse, DeltaMessage, DeltaTrigger, DocumentsMessage, Publication, ShadowConfig,
    UpdateOutcome, apply_update, apply_update_to_record, update_from_payload,
};
