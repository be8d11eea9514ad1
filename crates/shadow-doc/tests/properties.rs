//! Merge/delta invariants over generated documents.

use proptest::prelude::*;
use serde_json::{Map, Value};
use shadow_doc::{
    MetadataMap, MetadataNode, SectionUpdate, ShadowDocument, UpdateRequest, apply_update,
    clear_satisfied_desired, json_equal,
};

/// Scalars, including numbers written as integers or floats so that numeric equality is exercised.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (0i64..4).prop_map(Value::from),
        (0i64..4).prop_map(|n| Value::from(n as f64)),
        "[ab]{0,2}".prop_map(Value::String),
    ]
}

/// Patch values: scalars, null (delete), arrays of scalars, nested objects (which may end up empty).
fn patch_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => scalar(),
        1 => Just(Value::Null),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::btree_map("[a-d]", inner, 0..4)
            .prop_map(|map| Value::Object(map.into_iter().collect()))
    })
}

fn patch() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-d]", patch_value(), 0..5)
        .prop_map(|map| map.into_iter().collect())
}

fn section() -> impl Strategy<Value = SectionUpdate> {
    prop_oneof![
        1 => Just(SectionUpdate::Untouched),
        1 => Just(SectionUpdate::Clear),
        4 => patch().prop_map(SectionUpdate::Merge),
    ]
}

fn update_request() -> impl Strategy<Value = UpdateRequest> {
    (section(), section())
        .prop_map(|(desired, reported)| UpdateRequest::sections(desired, reported))
}

fn run(history: &[UpdateRequest]) -> Option<ShadowDocument> {
    let mut document: Option<ShadowDocument> = None;
    for (step, request) in history.iter().enumerate() {
        let outcome = apply_update(document.as_ref(), request, step as u64 + 1).ok()?;
        document = Some(outcome.document);
    }
    document
}

/// No nulls and no empty objects are ever stored, and metadata mirrors the state exactly.
fn assert_well_formed(state: &Map<String, Value>, metadata: &MetadataMap) {
    assert!(!state.is_empty(), "empty section stored");
    // Compare as sets: serde_json keeps insertion order when another crate in the build enables
    // its `preserve_order` feature, while the metadata map is always sorted.
    let mut state_keys: Vec<_> = state.keys().collect();
    state_keys.sort();
    let mut metadata_keys: Vec<_> = metadata.keys().collect();
    metadata_keys.sort();
    assert_eq!(state_keys, metadata_keys);
    for (key, value) in state {
        let node = &metadata[key];
        match value {
            Value::Null => panic!("null stored at {key}"),
            Value::Object(child) => match node {
                MetadataNode::Object(child_metadata) => assert_well_formed(child, child_metadata),
                other => panic!("object {key} has metadata {other:?}"),
            },
            Value::Array(items) => match node {
                MetadataNode::Array(nodes) => assert_eq!(items.len(), nodes.len()),
                other => panic!("array {key} has metadata {other:?}"),
            },
            _ => assert!(matches!(node, MetadataNode::Leaf(_)), "{key}: {node:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stored_documents_stay_well_formed(history in prop::collection::vec(update_request(), 1..6)) {
        let document = run(&history).expect("small documents are always accepted");
        prop_assert_eq!(document.version, history.len() as u64);
        for (state, metadata) in [
            (&document.state.desired, &document.metadata.desired),
            (&document.state.reported, &document.metadata.reported),
        ] {
            prop_assert_eq!(state.is_some(), metadata.is_some());
            if let (Some(state), Some(metadata)) = (state, metadata) {
                assert_well_formed(state, metadata);
            }
        }
    }

    #[test]
    fn reporting_exactly_the_desired_state_empties_the_delta(
        history in prop::collection::vec(update_request(), 1..5),
    ) {
        let document = run(&history).expect("accepted");
        let Some(desired) = document.state.desired.clone() else {
            prop_assert!(document.delta().is_empty());
            return Ok(());
        };
        let report = UpdateRequest::report(desired);
        let outcome = apply_update(Some(&document), &report, 100).expect("accepted");
        prop_assert!(outcome.document.delta().is_empty());
        prop_assert!(outcome.delta.is_none());
    }

    #[test]
    fn reporting_the_delta_empties_it(history in prop::collection::vec(update_request(), 1..5)) {
        let document = run(&history).expect("accepted");
        let delta = document.delta();
        if delta.is_empty() {
            return Ok(());
        }
        // Every delta key comes from desired.
        let desired = document.state.desired.clone().expect("a delta needs a desired section");
        for key in delta.keys() {
            prop_assert!(desired.contains_key(key));
        }
        let outcome = apply_update(Some(&document), &UpdateRequest::report(delta), 100)
            .expect("accepted");
        prop_assert!(outcome.document.delta().is_empty());
    }

    #[test]
    fn applying_an_update_twice_is_idempotent_on_state(
        history in prop::collection::vec(update_request(), 0..4),
        request in update_request(),
    ) {
        let document = run(&history);
        let once = apply_update(document.as_ref(), &request, 50).expect("accepted").document;
        let twice = apply_update(Some(&once), &request, 60).expect("accepted").document;
        prop_assert_eq!(&twice.state, &once.state);
        prop_assert_eq!(twice.version, once.version + 1);
    }

    #[test]
    fn untouched_sections_keep_state_and_metadata(
        history in prop::collection::vec(update_request(), 1..4),
        reported in patch(),
    ) {
        let document = run(&history).expect("accepted");
        let outcome = apply_update(Some(&document), &UpdateRequest::report(reported), 99)
            .expect("accepted");
        prop_assert_eq!(&outcome.document.state.desired, &document.state.desired);
        prop_assert_eq!(&outcome.document.metadata.desired, &document.metadata.desired);
    }

    #[test]
    fn hygiene_never_changes_the_delta(history in prop::collection::vec(update_request(), 1..5)) {
        let document = run(&history).expect("accepted");
        let Some(cleanup) = clear_satisfied_desired(&document.snapshot()) else {
            return Ok(());
        };
        let cleaned = apply_update(Some(&document), &cleanup, 100).expect("version matches");
        prop_assert_eq!(cleaned.document.delta(), document.delta());
        if let (Some(desired), Some(reported)) =
            (&cleaned.document.state.desired, &cleaned.document.state.reported)
        {
            for (key, value) in desired {
                prop_assert!(!reported.get(key).is_some_and(|r| json_equal(value, r)));
            }
        }
    }

    #[test]
    fn documents_round_trip_through_json(history in prop::collection::vec(update_request(), 1..5)) {
        let document = run(&history).expect("accepted");
        let text = serde_json::to_string(&document).expect("serializable");
        let back: ShadowDocument = serde_json::from_str(&text).expect("parses back");
        prop_assert_eq!(back, document);
    }

    #[test]
    fn built_requests_survive_the_wire(request in update_request()) {
        let parsed = UpdateRequest::parse(&request.to_json_bytes()).expect("valid");
        prop_assert_eq!(parsed, request);
    }
}
