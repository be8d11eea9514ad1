//! Desired hygiene (architecture "Desired hygiene"): once `reported` has caught up with a `desired` key,
//! clear that key so a stale command can never replay. AWS never does this by itself (reference 3.4).

use serde_json::{Map, Value};

use crate::delta::json_equal;
use crate::document::{DocumentSnapshot, ShadowState};
use crate::request::UpdateRequest;

/// Top-level desired keys whose value equals `reported`'s (numbers by value), as a `{key: null}` patch.
pub fn satisfied_desired_keys(state: &ShadowState) -> Map<String, Value> {
    let (Some(desired), Some(reported)) = (&state.desired, &state.reported) else {
        return Map::new();
    };
    desired
        .iter()
        .filter(|(key, value)| reported.get(*key).is_some_and(|r| json_equal(value, r)))
        .map(|(key, _)| (key.clone(), Value::Null))
        .collect()
}

/// The update that clears the satisfied desired keys of `snapshot`, locked to its version so that a
/// concurrent change makes it fail with 409 instead of clearing a fresh command (reference 3.3).
/// `None` when there is nothing to clear.
pub fn clear_satisfied_desired(snapshot: &DocumentSnapshot) -> Option<UpdateRequest> {
    let cleared = satisfied_desired_keys(&snapshot.state);
    (!cleared.is_empty()).then(|| UpdateRequest::desire(cleared).with_version(snapshot.version))
}
