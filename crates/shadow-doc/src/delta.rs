//! The delta between desired and reported (reference 3.5).

use serde_json::{Map, Number, Value};

use crate::metadata::{MetadataMap, MetadataNode};

/// Walk `desired` and keep what `reported` does not match (reference 3.5):
///
/// - a key missing from `reported` is included;
/// - a key whose values differ is included;
/// - keys only in `reported` never appear;
/// - two objects recurse, so the delta keeps the path from the root (`{"lights":{"color":{"g":255}}}`);
/// - anything else (arrays included) is compared as a whole value, and the whole desired value is copied.
///
/// Numbers compare by value (`1` equals `1.0`), as AWS's Greengrass shadow manager does.
pub fn delta(desired: &Map<String, Value>, reported: &Map<String, Value>) -> Map<String, Value> {
    let mut result = Map::new();
    for (key, desired_value) in desired {
        match (desired_value, reported.get(key)) {
            (_, None) => {
                result.insert(key.clone(), desired_value.clone());
            }
            (Value::Object(desired_child), Some(Value::Object(reported_child))) => {
                let child = delta(desired_child, reported_child);
                if !child.is_empty() {
                    result.insert(key.clone(), Value::Object(child));
                }
            }
            (_, Some(reported_value)) => {
                if !json_equal(desired_value, reported_value) {
                    result.insert(key.clone(), desired_value.clone());
                }
            }
        }
    }
    result
}

/// The desired metadata of the keys in `delta_state`: delta metadata mirrors the delta (reference 3.5).
pub fn delta_metadata(
    delta_state: &Map<String, Value>,
    desired_metadata: &MetadataMap,
) -> MetadataMap {
    let mut result = MetadataMap::new();
    for (key, delta_value) in delta_state {
        let Some(node) = desired_metadata.get(key) else {
            continue;
        };
        let entry = match (delta_value, node) {
            (Value::Object(delta_child), MetadataNode::Object(metadata_child)) => {
                MetadataNode::Object(delta_metadata(delta_child, metadata_child))
            }
            _ => node.clone(),
        };
        result.insert(key.clone(), entry);
    }
    result
}

/// JSON equality where numbers compare by value, so `1`, `1.0` and `1e0` are equal.
pub fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => numbers_equal(left, right),
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(l, r)| json_equal(l, r))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .all(|(key, l)| right.get(key).is_some_and(|r| json_equal(l, r)))
        }
        _ => left == right,
    }
}

fn numbers_equal(left: &Number, right: &Number) -> bool {
    match (as_integer(left), as_integer(right)) {
        (Some(left), Some(right)) => left == right,
        _ => match (left.as_f64(), right.as_f64()) {
            (Some(left), Some(right)) => left == right,
            _ => false,
        },
    }
}

fn as_integer(number: &Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn documented_delta_examples() {
        // DG device-shadow-document "Delta state", first example.
        let desired = object(json!({"color": "RED", "state": "STOP"}));
        let reported = object(json!({"color": "GREEN", "engine": "ON"}));
        assert_eq!(
            Value::Object(delta(&desired, &reported)),
            json!({"color": "RED", "state": "STOP"})
        );
        // Nested objects keep the path from the root.
        let desired = object(json!({"lights": {"color": {"r": 255, "g": 255, "b": 255}}}));
        let reported = object(json!({"lights": {"color": {"r": 255, "g": 0, "b": 255}}}));
        assert_eq!(
            Value::Object(delta(&desired, &reported)),
            json!({"lights": {"color": {"g": 255}}})
        );
    }

    #[test]
    fn arrays_are_compared_whole() {
        let desired = object(json!({"colors": ["RED", "GREEN"], "same": [1, 2]}));
        let reported = object(json!({"colors": ["RED"], "same": [1, 2]}));
        assert_eq!(
            Value::Object(delta(&desired, &reported)),
            json!({"colors": ["RED", "GREEN"]})
        );
    }

    #[test]
    fn type_change_copies_the_whole_desired_value() {
        let desired = object(json!({"cfg": {"a": 1}}));
        let reported = object(json!({"cfg": "flat"}));
        assert_eq!(
            Value::Object(delta(&desired, &reported)),
            json!({"cfg": {"a": 1}})
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&json!(1), &json!(1.0)));
        assert!(json_equal(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_equal(&json!(-1), &json!(u64::MAX)));
        assert!(json_equal(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_equal(&json!("1"), &json!(1)));
    }
}
