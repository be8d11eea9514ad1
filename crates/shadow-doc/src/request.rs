//! Request documents and their validation (reference 3.3, 3.8, 3.9).
//!
//! [`UpdateRequest::parse`] applies AWS's checks in this order, returning the first failure:
//!
//! | step | check | error |
//! |---|---|---|
//! | 1 | payload is UTF-8 | 415 `Unsupported documented encoding; ...` |
//! | 2 | payload parses as JSON (an empty payload does not) | 400 `Invalid JSON` |
//! | 3 | the document is an object (AWS answered a bare `66` with this) | 400 `Missing required node: state` |
//! | 4 | `clientToken`, if present, is a string of at most 64 bytes | 400 `Invalid clientToken` |
//! | 5 | `version`, if present, is a non-negative integer | 400 `Invalid version` |
//! | 6 | `state` is present | 400 `Missing required node: state` |
//! | 7 | `state` is an object or `null` (`null` clears the whole state, getmoto/moto#9237) | 400 `State node must be an object` |
//! | 8 | `state` holds only `desired` / `reported` | 400 `State contains an invalid node` |
//! | 9 | `desired`, `reported` are objects or `null` | 400 `Desired/Reported node must be an object` |
//! | 10 | nesting depth | 400 `JSON contains too many levels of nesting; maximum is 6` |
//! | 11 | no array holds `null` | 400 `Invalid JSON` (AWS's text unknown, reference 9 item 7) |
//!
//! The token is read before the rest of the document is judged, so later rejections can echo it
//! (reference 3.3). The checks that need the stored shadow (409 version conflict, 413 merged size) run in
//! [`crate::apply_update`]. Other top-level fields (`metadata`, `timestamp`, anything) are ignored and never
//! stored (reference 3.3, DG diagnosing-shadows).

use serde_json::{Map, Value};

use crate::error::{MAX_CLIENT_TOKEN_BYTES, ShadowError};

/// AWS's size and depth limits (reference 3.9), configurable for the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowLimits {
    /// Largest allowed stored state, counted as the compact JSON bytes of `desired` plus those of
    /// `reported` after the merge; metadata does not count (reference 3.9). Default 8192.
    pub max_state_bytes: usize,
    /// Most container levels allowed in `desired` or `reported`, counting the section object itself as
    /// level 1. Default 6: it is the number in AWS's error text, and it admits exactly the deepest example
    /// of the old quota page ("5 levels" below `desired`: `one.two.three.four.five: {}`); see reference
    /// 3.9 and 9 item 4. Arrays count as levels, empty objects too.
    pub max_nesting_levels: usize,
}

impl Default for ShadowLimits {
    fn default() -> Self {
        Self {
            max_state_bytes: 8 * 1024,
            max_nesting_levels: 6,
        }
    }
}

/// What a request does to one section (`desired` or `reported`).
#[derive(Debug, Clone, PartialEq)]
pub enum SectionUpdate {
    /// The section is absent from the request: leave it alone.
    Untouched,
    /// `"desired": null`: remove the whole section (reference 3.4).
    Clear,
    /// An object: merge it recursively; `null` values delete keys (reference 3.4).
    Merge(Map<String, Value>),
}

impl SectionUpdate {
    fn to_json(&self) -> Option<Value> {
        match self {
            Self::Untouched => None,
            Self::Clear => Some(Value::Null),
            Self::Merge(map) => Some(Value::Object(map.clone())),
        }
    }
}

/// A validated `/update` request (reference 3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    desired: SectionUpdate,
    reported: SectionUpdate,
    /// `"state": null` (both sections cleared); kept apart so the accepted echo says `"state":null`.
    state_is_null: bool,
    client_token: Option<String>,
    version: Option<u64>,
}

impl UpdateRequest {
    /// Parse and validate raw MQTT/HTTP payload bytes with AWS's default limits; see the module doc for
    /// the order of checks. The error carries the `clientToken` when one was read, but no timestamp:
    /// call [`ShadowError::stamp`] (or use [`crate::update_from_payload`]) before publishing it.
    pub fn parse(payload: &[u8]) -> Result<Self, ShadowError> {
        Self::parse_with_limits(payload, &ShadowLimits::default())
    }

    /// [`UpdateRequest::parse`] with explicit limits.
    pub fn parse_with_limits(payload: &[u8], limits: &ShadowLimits) -> Result<Self, ShadowError> {
        let text = std::str::from_utf8(payload).map_err(|_| ShadowError::unsupported_encoding())?;
        let document: Value =
            serde_json::from_str(text).map_err(|_| ShadowError::invalid_json())?;
        Self::from_json(document, limits)
    }

    /// Validate an already-parsed document (steps 3–11 of the module table).
    pub fn from_json(document: Value, limits: &ShadowLimits) -> Result<Self, ShadowError> {
        let Value::Object(mut document) = document else {
            return Err(ShadowError::missing_state());
        };

        let client_token = match document.remove("clientToken") {
            None => None,
            Some(Value::String(token)) if token.len() <= MAX_CLIENT_TOKEN_BYTES => Some(token),
            Some(_) => return Err(ShadowError::invalid_client_token()),
        };
        let reject = |error: ShadowError| error.with_client_token(client_token.clone());

        let version = match document.remove("version") {
            None => None,
            Some(Value::Number(number)) => Some(
                number
                    .as_u64()
                    .ok_or_else(|| reject(ShadowError::invalid_version()))?,
            ),
            Some(_) => return Err(reject(ShadowError::invalid_version())),
        };

        let (desired, reported, state_is_null) = match document.remove("state") {
            None => return Err(reject(ShadowError::missing_state())),
            Some(Value::Null) => (SectionUpdate::Clear, SectionUpdate::Clear, true),
            Some(Value::Object(mut state)) => {
                let desired = section(state.remove("desired"), ShadowError::desired_not_object);
                let reported = section(state.remove("reported"), ShadowError::reported_not_object);
                if !state.is_empty() {
                    return Err(reject(ShadowError::invalid_state_node()));
                }
                (desired.map_err(reject)?, reported.map_err(reject)?, false)
            }
            Some(_) => return Err(reject(ShadowError::state_not_object())),
        };

        for update in [&desired, &reported] {
            if let SectionUpdate::Merge(map) = update
                && object_levels_exceed(map, limits.max_nesting_levels)
            {
                return Err(reject(ShadowError::too_many_levels(
                    limits.max_nesting_levels,
                )));
            }
        }
        for update in [&desired, &reported] {
            if let SectionUpdate::Merge(map) = update
                && map.values().any(holds_array_with_null)
            {
                return Err(reject(ShadowError::array_contains_null()));
            }
        }

        Ok(Self {
            desired,
            reported,
            state_is_null,
            client_token,
            version,
        })
    }

    /// A request that merges `reported` (what a device sends after acting, architecture "Classic shadow").
    pub fn report(reported: Map<String, Value>) -> Self {
        Self::sections(SectionUpdate::Untouched, SectionUpdate::Merge(reported))
    }

    /// A request that merges `desired` (what an app or the reconciler sends).
    pub fn desire(desired: Map<String, Value>) -> Self {
        Self::sections(SectionUpdate::Merge(desired), SectionUpdate::Untouched)
    }

    /// A request with explicit section updates.
    pub fn sections(desired: SectionUpdate, reported: SectionUpdate) -> Self {
        Self {
            desired,
            reported,
            state_is_null: false,
            client_token: None,
            version: None,
        }
    }

    /// Set the token echoed in every response to this request. It must be at most 64 bytes for AWS to
    /// accept the request (reference 3.3); [`UpdateRequest::to_json_bytes`] does not check.
    pub fn with_client_token(mut self, client_token: impl Into<String>) -> Self {
        self.client_token = Some(client_token.into());
        self
    }

    /// Make the update conditional on the stored version (optimistic lock, reference 3.3).
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    pub fn desired(&self) -> &SectionUpdate {
        &self.desired
    }

    pub fn reported(&self) -> &SectionUpdate {
        &self.reported
    }

    pub fn client_token(&self) -> Option<&str> {
        self.client_token.as_deref()
    }

    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The request's `state` exactly as sent (nulls and all), which `/update/accepted` echoes
    /// (reference 3.6: "only the fields in the request").
    pub fn state_json(&self) -> Value {
        if self.state_is_null {
            return Value::Null;
        }
        let mut state = Map::new();
        if let Some(desired) = self.desired.to_json() {
            state.insert("desired".to_string(), desired);
        }
        if let Some(reported) = self.reported.to_json() {
            state.insert("reported".to_string(), reported);
        }
        Value::Object(state)
    }

    /// The request document, e.g. for the agent or the reconciler to publish.
    pub fn to_json(&self) -> Value {
        let mut document = Map::new();
        document.insert("state".to_string(), self.state_json());
        if let Some(token) = &self.client_token {
            document.insert("clientToken".to_string(), Value::String(token.clone()));
        }
        if let Some(version) = self.version {
            document.insert("version".to_string(), Value::from(version));
        }
        Value::Object(document)
    }

    /// [`UpdateRequest::to_json`] as bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }
}

fn section(
    value: Option<Value>,
    not_object: fn() -> ShadowError,
) -> Result<SectionUpdate, ShadowError> {
    match value {
        None => Ok(SectionUpdate::Untouched),
        Some(Value::Null) => Ok(SectionUpdate::Clear),
        Some(Value::Object(map)) => Ok(SectionUpdate::Merge(map)),
        Some(_) => Err(not_object()),
    }
}

/// Whether an object counted as level 1 has more than `max_levels` levels of objects/arrays.
fn object_levels_exceed(map: &Map<String, Value>, max_levels: usize) -> bool {
    match max_levels.checked_sub(1) {
        None => true,
        Some(remaining) => map.values().any(|child| levels_exceed(child, remaining)),
    }
}

fn levels_exceed(value: &Value, max_levels: usize) -> bool {
    match value {
        Value::Object(map) => object_levels_exceed(map, max_levels),
        Value::Array(items) => match max_levels.checked_sub(1) {
            None => true,
            Some(remaining) => items.iter().any(|item| levels_exceed(item, remaining)),
        },
        _ => false,
    }
}

/// Arrays are values and cannot contain `null` (reference 3.4). Objects inside arrays are stored as
/// they are, so only direct array elements are checked.
fn holds_array_with_null(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.values().any(holds_array_with_null),
        Value::Array(items) => items
            .iter()
            .any(|item| item.is_null() || holds_array_with_null(item)),
        _ => false,
    }
}

/// Number of container levels of a value (objects and arrays count, scalars do not); exposed for tests
/// and for callers that want to check a document before sending it.
pub fn nesting_levels(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(nesting_levels).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(nesting_levels).max().unwrap_or(0),
        _ => 0,
    }
}

/// A `/get` or `/delete` request. AWS ignores the payload (reference 3.2) except for a `clientToken`,
/// which it echoes: the AWS IoT Device SDK v2 sends `{"clientToken": ...}` and reads it back from both
/// `/accepted` and `/rejected` (aws-iot-device-sdk-js-v2 shadow sample transcript).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadRequest {
    pub client_token: Option<String>,
}

/// See [`ReadRequest`].
pub type GetRequest = ReadRequest;
/// See [`ReadRequest`].
pub type DeleteRequest = ReadRequest;

impl ReadRequest {
    /// Never fails: anything that is not an object with a string `clientToken` of at most 64 bytes is
    /// treated as an empty request.
    pub fn parse(payload: &[u8]) -> Self {
        let client_token = serde_json::from_slice::<Value>(payload)
            .ok()
            .and_then(|document| match document {
                Value::Object(mut map) => match map.remove("clientToken") {
                    Some(Value::String(token)) if token.len() <= MAX_CLIENT_TOKEN_BYTES => {
                        Some(token)
                    }
                    _ => None,
                },
                _ => None,
            });
        Self { client_token }
    }

    pub fn with_client_token(client_token: impl Into<String>) -> Self {
        Self {
            client_token: Some(client_token.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nesting_levels_counts_containers() {
        assert_eq!(nesting_levels(&json!(1)), 0);
        assert_eq!(nesting_levels(&json!({})), 1);
        assert_eq!(nesting_levels(&json!({"a": [1, {"b": {}}]})), 4);
    }

    #[test]
    fn levels_check_agrees_with_nesting_levels() {
        for doc in [
            json!({"a": 1}),
            json!({"a": {"b": [1, 2]}}),
            json!({"one": {"two": {"three": {"four": {"five": {}}}}}}),
            json!({"one": {"two": {"three": {"four": {"five": {"six": 1}}}}}}),
            json!({"a": [[[[[[1]]]]]]}),
        ] {
            let Value::Object(map) = &doc else {
                unreachable!()
            };
            for max in 0..9 {
                assert_eq!(
                    object_levels_exceed(map, max),
                    nesting_levels(&doc) > max,
                    "{doc} max {max}"
                );
            }
        }
    }

    #[test]
    fn read_request_keeps_only_a_valid_token() {
        assert_eq!(ReadRequest::parse(b""), ReadRequest::default());
        assert_eq!(
            ReadRequest::parse(br#"{"clientToken":"t1"}"#)
                .client_token
                .as_deref(),
            Some("t1")
        );
        assert_eq!(
            ReadRequest::parse(br#"{"clientToken":5}"#).client_token,
            None
        );
        let long = format!(r#"{{"clientToken":"{}"}}"#, "x".repeat(65));
        assert_eq!(ReadRequest::parse(long.as_bytes()).client_token, None);
    }
}
