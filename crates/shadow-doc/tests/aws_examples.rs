//! Documented and observed AWS exchanges, replayed through the algebra: request -> accepted / delta /
//! documents, compared as JSON.
//!
//! Sources:
//! - `sdk-js-v2`: aws/aws-iot-device-sdk-js-v2 `samples/node/shadow/README.md`, a transcript against
//!   live AWS IoT (2024) with exact timestamps and versions.
//! - `DG`: the AWS IoT developer guide pages cited in reference section 3.
//! - `moto#9237`: a live AWS response quoted in getmoto/moto issue 9237.

use serde_json::{Value, json};
use shadow_doc::{ShadowDocument, UpdateRequest, apply_update};

struct Example {
    name: &'static str,
    /// The stored document before the request (`state`, `metadata`, `version`), or none.
    before: Option<Value>,
    request: Value,
    now: u64,
    accepted: Value,
    delta: Option<Value>,
    documents: Value,
}

fn examples() -> Vec<Example> {
    let token_create = "2e073dae-7c50-458f-a495-c16fae14a406";
    let token_red = "79737dba-2252-406e-9204-3dec049eebce";
    let token_reported_red = "1317558e-0f69-40d7-8bdd-d3301a1cd6f7";
    let token_awful = "05ed8956-4958-4fcc-bdd8-e454182c3a45";

    let v4 = json!({
        "state": {"desired": {"Color": "green"}, "reported": {"Color": "green"}},
        "metadata": {"desired": {"Color": {"timestamp": 1719855311}}, "reported": {"Color": {"timestamp": 1719853620}}},
        "version": 4
    });
    let v5 = json!({
        "state": {"desired": {"Color": "red"}, "reported": {"Color": "green"}},
        "metadata": {"desired": {"Color": {"timestamp": 1719855498}}, "reported": {"Color": {"timestamp": 1719853620}}},
        "version": 5
    });
    let v6 = json!({
        "state": {"desired": {"Color": "red"}, "reported": {"Color": "red"}},
        "metadata": {"desired": {"Color": {"timestamp": 1719855498}}, "reported": {"Color": {"timestamp": 1719856038}}},
        "version": 6
    });
    let v8 = json!({
        "state": {"desired": {"Color": "red", "Status": "Great"}, "reported": {"Color": "red", "Status": "Great"}},
        "metadata": {
            "desired": {"Color": {"timestamp": 1719855498}, "Status": {"timestamp": 1719856710}},
            "reported": {"Color": {"timestamp": 1719856038}, "Status": {"timestamp": 1719856694}}
        },
        "version": 8
    });
    let v9 = json!({
        "state": {"desired": {"Color": "red", "Status": "Great"}, "reported": {"Color": "red", "Status": "Awful"}},
        "metadata": {
            "desired": {"Color": {"timestamp": 1719855498}, "Status": {"timestamp": 1719856710}},
            "reported": {"Color": {"timestamp": 1719856038}, "Status": {"timestamp": 1719857563}}
        },
        "version": 9
    });

    vec![
        Example {
            name: "sdk-js-v2: first reported update creates the shadow at version 1, previous is null",
            before: None,
            request: json!({"state": {"reported": {"Color": "green"}}, "clientToken": token_create}),
            now: 1719853620,
            accepted: json!({
                "state": {"reported": {"Color": "green"}},
                "metadata": {"reported": {"Color": {"timestamp": 1719853620}}},
                "version": 1, "timestamp": 1719853620, "clientToken": token_create
            }),
            delta: None,
            documents: json!({
                "previous": null,
                "current": {
                    "state": {"reported": {"Color": "green"}},
                    "metadata": {"reported": {"Color": {"timestamp": 1719853620}}},
                    "version": 1
                },
                "timestamp": 1719853620, "clientToken": token_create
            }),
        },
        Example {
            name: "sdk-js-v2: desired change publishes a delta with the desired timestamp",
            before: Some(v4.clone()),
            request: json!({"state": {"desired": {"Color": "red"}}, "clientToken": token_red}),
            now: 1719855498,
            accepted: json!({
                "state": {"desired": {"Color": "red"}},
                "metadata": {"desired": {"Color": {"timestamp": 1719855498}}},
                "version": 5, "timestamp": 1719855498, "clientToken": token_red
            }),
            delta: Some(json!({
                "version": 5, "timestamp": 1719855498, "state": {"Color": "red"},
                "metadata": {"Color": {"timestamp": 1719855498}}, "clientToken": token_red
            })),
            documents: json!({"previous": v4, "current": v5, "timestamp": 1719855498, "clientToken": token_red}),
        },
        Example {
            name: "sdk-js-v2: reporting the desired value ends the delta, no delta message",
            before: Some(v5.clone()),
            request: json!({"state": {"reported": {"Color": "red"}}, "clientToken": token_reported_red}),
            now: 1719856038,
            accepted: json!({
                "state": {"reported": {"Color": "red"}},
                "metadata": {"reported": {"Color": {"timestamp": 1719856038}}},
                "version": 6, "timestamp": 1719856038, "clientToken": token_reported_red
            }),
            delta: None,
            documents: json!({"previous": v5, "current": v6, "timestamp": 1719856038, "clientToken": token_reported_red}),
        },
        Example {
            name: "sdk-js-v2: reported-only update that creates a difference publishes only the differing key",
            before: Some(v8.clone()),
            request: json!({"state": {"reported": {"Status": "Awful"}}, "clientToken": token_awful}),
            now: 1719857563,
            accepted: json!({
                "state": {"reported": {"Status": "Awful"}},
                "metadata": {"reported": {"Status": {"timestamp": 1719857563}}},
                "version": 9, "timestamp": 1719857563, "clientToken": token_awful
            }),
            delta: Some(json!({
                "version": 9, "timestamp": 1719857563, "state": {"Status": "Great"},
                "metadata": {"Status": {"timestamp": 1719856710}}, "clientToken": token_awful
            })),
            documents: json!({"previous": v8, "current": v9, "timestamp": 1719857563, "clientToken": token_awful}),
        },
        Example {
            name: "reference 3.6: accepted example (desired color red at version 11)",
            before: Some(json!({
                "state": {"reported": {"color": "green"}},
                "metadata": {"reported": {"color": {"timestamp": 1591057000}}},
                "version": 10
            })),
            request: json!({"state": {"desired": {"color": "red"}}, "clientToken": "t"}),
            now: 1591057529,
            accepted: json!({
                "state": {"desired": {"color": "red"}},
                "metadata": {"desired": {"color": {"timestamp": 1591057529}}},
                "timestamp": 1591057529, "clientToken": "t", "version": 11
            }),
            delta: Some(json!({
                "state": {"color": "red"}, "metadata": {"color": {"timestamp": 1591057529}},
                "version": 11, "timestamp": 1591057529, "clientToken": "t"
            })),
            documents: json!({
                "previous": {
                    "state": {"reported": {"color": "green"}},
                    "metadata": {"reported": {"color": {"timestamp": 1591057000}}},
                    "version": 10
                },
                "current": {
                    "state": {"desired": {"color": "red"}, "reported": {"color": "green"}},
                    "metadata": {
                        "desired": {"color": {"timestamp": 1591057529}},
                        "reported": {"color": {"timestamp": 1591057000}}
                    },
                    "version": 11
                },
                "timestamp": 1591057529, "clientToken": "t"
            }),
        },
        Example {
            name: "DG optimistic locking: matching version replaces the array and bumps 10 -> 11",
            before: Some(json!({
                "state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}},
                "metadata": {"desired": {"colors": [{"timestamp": 100}, {"timestamp": 100}, {"timestamp": 100}]}},
                "version": 10
            })),
            request: json!({"state": {"desired": {"colors": ["BLUE"]}}, "version": 10}),
            now: 200,
            accepted: json!({
                "state": {"desired": {"colors": ["BLUE"]}},
                "metadata": {"desired": {"colors": [{"timestamp": 200}]}},
                "version": 11, "timestamp": 200
            }),
            delta: Some(json!({
                "state": {"colors": ["BLUE"]}, "metadata": {"colors": [{"timestamp": 200}]},
                "version": 11, "timestamp": 200
            })),
            documents: json!({
                "previous": {
                    "state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}},
                    "metadata": {"desired": {"colors": [{"timestamp": 100}, {"timestamp": 100}, {"timestamp": 100}]}},
                    "version": 10
                },
                "current": {
                    "state": {"desired": {"colors": ["BLUE"]}},
                    "metadata": {"desired": {"colors": [{"timestamp": 200}]}},
                    "version": 11
                },
                "timestamp": 200
            }),
        },
        Example {
            name: "DG empty sections: reported write with desired null removes desired",
            before: Some(json!({
                "state": {"desired": {"color": "red"}, "reported": {"color": "blue"}},
                "metadata": {"desired": {"color": {"timestamp": 5}}, "reported": {"color": {"timestamp": 5}}},
                "version": 3
            })),
            request: json!({"state": {"reported": {"color": "red"}, "desired": null}}),
            now: 9,
            accepted: json!({
                "state": {"reported": {"color": "red"}, "desired": null},
                "metadata": {"reported": {"color": {"timestamp": 9}}, "desired": {"timestamp": 9}},
                "version": 4, "timestamp": 9
            }),
            delta: None,
            documents: json!({
                "previous": {
                    "state": {"desired": {"color": "red"}, "reported": {"color": "blue"}},
                    "metadata": {"desired": {"color": {"timestamp": 5}}, "reported": {"color": {"timestamp": 5}}},
                    "version": 3
                },
                "current": {
                    "state": {"reported": {"color": "red"}},
                    "metadata": {"reported": {"color": {"timestamp": 9}}},
                    "version": 4
                },
                "timestamp": 9
            }),
        },
        Example {
            name: "moto#9237 (live AWS): state null clears everything and is answered with a bare timestamp",
            before: Some(json!({
                "state": {"reported": {"a": 1}},
                "metadata": {"reported": {"a": {"timestamp": 1756452000}}},
                "version": 17
            })),
            request: json!({"state": null}),
            now: 1756452769,
            accepted: json!({"state": null, "metadata": {"timestamp": 1756452769}, "version": 18, "timestamp": 1756452769}),
            delta: None,
            documents: json!({
                "previous": {
                    "state": {"reported": {"a": 1}},
                    "metadata": {"reported": {"a": {"timestamp": 1756452000}}},
                    "version": 17
                },
                "current": {"state": {}, "metadata": {}, "version": 18},
                "timestamp": 1756452769
            }),
        },
        Example {
            name: "DG nested delta keeps the path from the root",
            before: Some(json!({
                "state": {"reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}},
                "metadata": {"reported": {"lights": {"color": {"r": {"timestamp": 1}, "g": {"timestamp": 1}, "b": {"timestamp": 1}}}}},
                "version": 17
            })),
            request: json!({"state": {"desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}}}),
            now: 123456789,
            accepted: json!({
                "state": {"desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}},
                "metadata": {"desired": {"lights": {"color": {"r": {"timestamp": 123456789}, "g": {"timestamp": 123456789}, "b": {"timestamp": 123456789}}}}},
                "version": 18, "timestamp": 123456789
            }),
            delta: Some(json!({
                "state": {"lights": {"color": {"g": 255}}},
                "metadata": {"lights": {"color": {"g": {"timestamp": 123456789}}}},
                "version": 18, "timestamp": 123456789
            })),
            documents: json!({
                "previous": {
                    "state": {"reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}},
                    "metadata": {"reported": {"lights": {"color": {"r": {"timestamp": 1}, "g": {"timestamp": 1}, "b": {"timestamp": 1}}}}},
                    "version": 17
                },
                "current": {
                    "state": {
                        "desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}},
                        "reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}
                    },
                    "metadata": {
                        "desired": {"lights": {"color": {"r": {"timestamp": 123456789}, "g": {"timestamp": 123456789}, "b": {"timestamp": 123456789}}}},
                        "reported": {"lights": {"color": {"r": {"timestamp": 1}, "g": {"timestamp": 1}, "b": {"timestamp": 1}}}}
                    },
                    "version": 18
                },
                "timestamp": 123456789
            }),
        },
    ]
}

#[test]
fn documented_exchanges_match_exactly() {
    let examples = examples();
    assert_eq!(examples.len(), 9);
    for example in examples {
        let before: Option<ShadowDocument> = example
            .before
            .clone()
            .map(|document| serde_json::from_value(document).unwrap());
        let request = UpdateRequest::parse(example.request.to_string().as_bytes())
            .unwrap_or_else(|error| panic!("{}: rejected {error:?}", example.name));
        let outcome = apply_update(before.as_ref(), &request, example.now)
            .unwrap_or_else(|error| panic!("{}: rejected {error:?}", example.name));

        assert_eq!(
            serde_json::to_value(&outcome.accepted).unwrap(),
            example.accepted,
            "accepted: {}",
            example.name
        );
        assert_eq!(
            outcome
                .delta
                .as_ref()
                .map(|delta| serde_json::to_value(delta).unwrap()),
            example.delta,
            "delta: {}",
            example.name
        );
        assert_eq!(
            serde_json::to_value(&outcome.documents).unwrap(),
            example.documents,
            "documents: {}",
            example.name
        );
        assert_eq!(
            serde_json::to_value(outcome.document.snapshot()).unwrap(),
            example.documents["current"],
            "stored document: {}",
            example.name
        );
    }
}

#[test]
fn documented_409_echoes_the_client_token_without_timestamp() {
    // DG device-shadow-data-flow "Optimistic locking": version 9 against a version-10 shadow.
    let before: ShadowDocument = serde_json::from_value(json!({
        "state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}},
        "metadata": {"desired": {"colors": [{"timestamp": 1}, {"timestamp": 1}, {"timestamp": 1}]}},
        "version": 10
    }))
    .unwrap();
    let request = UpdateRequest::parse(
        br#"{"state":{"desired":{"colors":["BLUE"]}},"version":9,"clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"}"#,
    )
    .unwrap();
    let error = apply_update(Some(&before), &request, 50).unwrap_err();
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"code": 409, "message": "Version conflict", "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"})
    );
}
