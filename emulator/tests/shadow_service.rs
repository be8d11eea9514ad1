//! The shadow service as the broker and the data plane use it: MQTT requests in, AWS's publications
//! out (reference 3.2, 3.6), wills ignored (reference 2.3), HTTP updates publishing the same messages
//! (reference 3.2, 3.10), and the state directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use iot_emulator::shadow::{
    MessageOrigin, Publication, Publisher, QoS, RecordingPublisher, SHADOW_RESPONSE_QOS, ShadowId,
    ShadowService, ShadowStore,
};
use serde_json::{Value, json};

const T0: u64 = 1_800_000_000;

fn service() -> (ShadowService, Arc<RecordingPublisher>) {
    let publisher = Arc::new(RecordingPublisher::new());
    let service = ShadowService::new(
        ShadowStore::in_memory(),
        publisher.clone() as Arc<dyn Publisher>,
    )
    .with_clock(|| T0);
    (service, publisher)
}

fn topics(publications: &[Publication]) -> Vec<&str> {
    publications.iter().map(|p| p.topic.as_str()).collect()
}

fn body(publication: &Publication) -> Value {
    serde_json::from_slice(&publication.payload).unwrap()
}

fn mqtt(service: &ShadowService, topic: &str, payload: Value) -> Vec<Publication> {
    service.handle_mqtt(
        topic,
        payload.to_string().as_bytes(),
        MessageOrigin::Publish,
    )
}

#[test]
fn classic_update_publishes_accepted_documents_and_delta() {
    let (service, _) = service();
    let publications = mqtt(
        &service,
        "$aws/things/pi-1/shadow/update",
        json!({"state": {"desired": {"led": "on"}}, "clientToken": "t1"}),
    );
    assert_eq!(
        topics(&publications),
        [
            "$aws/things/pi-1/shadow/update/accepted",
            "$aws/things/pi-1/shadow/update/documents",
            "$aws/things/pi-1/shadow/update/delta",
        ]
    );
    assert_eq!(
        body(&publications[0]),
        json!({
            "state": {"desired": {"led": "on"}},
            "metadata": {"desired": {"led": {"timestamp": T0}}},
            "version": 1, "timestamp": T0, "clientToken": "t1"
        })
    );
    let documents = body(&publications[1]);
    assert_eq!(documents["previous"], Value::Null);
    assert_eq!(documents["current"]["version"], 1);
    assert_eq!(documents["clientToken"], "t1");
    assert_eq!(
        body(&publications[2]),
        json!({
            "state": {"led": "on"},
            "metadata": {"led": {"timestamp": T0}},
            "version": 1, "timestamp": T0, "clientToken": "t1"
        })
    );

    // Reporting the desired value: accepted + documents, no delta (reference 3.5).
    let publications = mqtt(
        &service,
        "$aws/things/pi-1/shadow/update",
        json!({"state": {"reported": {"led": "on"}}}),
    );
    assert_eq!(
        topics(&publications),
        [
            "$aws/things/pi-1/shadow/update/accepted",
            "$aws/things/pi-1/shadow/update/documents",
        ]
    );
    assert_eq!(body(&publications[1])["previous"]["version"], 1);
    assert_eq!(body(&publications[1])["current"]["version"], 2);
}

#[test]
fn rejected_update_goes_only_to_update_rejected() {
    let (service, _) = service();
    let publications = service.handle_mqtt(
        "$aws/things/pi-1/shadow/update",
        b"not json",
        MessageOrigin::Publish,
    );
    assert_eq!(
        topics(&publications),
        ["$aws/things/pi-1/shadow/update/rejected"]
    );
    assert_eq!(
        body(&publications[0]),
        json!({"code": 400, "message": "Invalid JSON", "timestamp": T0})
    );

    mqtt(
        &service,
        "$aws/things/pi-1/shadow/update",
        json!({"state": {"reported": {"a": 1}}}),
    );
    let conflict = mqtt(
        &service,
        "$aws/things/pi-1/shadow/update",
        json!({"state": {"reported": {"a": 2}}, "version": 7, "clientToken": "c"}),
    );
    assert_eq!(
        body(&conflict[0]),
        json!({"code": 409, "message": "Version conflict", "clientToken": "c"})
    );
}

#[test]
fn get_and_delete_answer_on_their_topics() {
    let (service, _) = service();
    let missing = mqtt(&service, "$aws/things/pi-1/shadow/get", json!({}));
    assert_eq!(topics(&missing), ["$aws/things/pi-1/shadow/get/rejected"]);
    assert_eq!(
        body(&missing[0]),
        json!({"code": 404, "message": "No shadow exists with name: 'pi-1'"})
    );

    mqtt(
        &service,
        "$aws/things/pi-1/shadow/update",
        json!({"state": {"desired": {"led": "on"}, "reported": {"led": "off"}}}),
    );
    // An empty payload is a valid get request (reference 3.2).
    let got = service.handle_mqtt("$aws/things/pi-1/shadow/get", b"", MessageOrigin::Publish);
    assert_eq!(topics(&got), ["$aws/things/pi-1/shadow/get/accepted"]);
    let document = body(&got[0]);
    assert_eq!(document["state"]["delta"], json!({"led": "on"}));
    assert_eq!(document["version"], 1);

    let deleted = mqtt(
        &service,
        "$aws/things/pi-1/shadow/delete",
        json!({"clientToken": "d1"}),
    );
    assert_eq!(
        topics(&deleted),
        ["$aws/things/pi-1/shadow/delete/accepted"]
    );
    assert_eq!(
        body(&deleted[0]),
        json!({"version": 1, "timestamp": T0, "clientToken": "d1"})
    );
    let again = mqtt(&service, "$aws/things/pi-1/shadow/delete", json!({}));
    assert_eq!(topics(&again), ["$aws/things/pi-1/shadow/delete/rejected"]);

    // A recreated shadow continues from the deleted version (reference 3.7).
    let recreated = mqtt(
        &service,
        "$aws/things/pi-1/shadow/update",
        json!({"state": {"reported": {"led": "off"}}}),
    );
    assert_eq!(body(&recreated[0])["version"], 2);
}

#[test]
fn named_shadows_use_their_own_topics_and_state() {
    let (service, _) = service();
    let publications = mqtt(
        &service,
        "$aws/things/pi-1/shadow/name/config/update",
        json!({"state": {"desired": {"interval": 30}}}),
    );
    assert_eq!(
        topics(&publications),
        [
            "$aws/things/pi-1/shadow/name/config/update/accepted",
            "$aws/things/pi-1/shadow/name/config/update/documents",
            "$aws/things/pi-1/shadow/name/config/update/delta",
        ]
    );
    // The classic shadow is separate and still missing.
    let classic = mqtt(&service, "$aws/things/pi-1/shadow/get", json!({}));
    assert_eq!(topics(&classic), ["$aws/things/pi-1/shadow/get/rejected"]);

    let named = mqtt(
        &service,
        "$aws/things/pi-1/shadow/name/config/get",
        json!({}),
    );
    assert_eq!(
        topics(&named),
        ["$aws/things/pi-1/shadow/name/config/get/accepted"]
    );
    assert_eq!(body(&named[0])["state"]["desired"], json!({"interval": 30}));

    let missing = mqtt(
        &service,
        "$aws/things/pi-1/shadow/name/other/delete",
        json!({}),
    );
    assert_eq!(
        topics(&missing),
        ["$aws/things/pi-1/shadow/name/other/delete/rejected"]
    );
    assert_eq!(body(&missing[0])["code"], 404);

    let deleted = mqtt(
        &service,
        "$aws/things/pi-1/shadow/name/config/delete",
        json!({}),
    );
    assert_eq!(
        topics(&deleted),
        ["$aws/things/pi-1/shadow/name/config/delete/accepted"]
    );
}

#[test]
fn wills_responses_and_other_topics_are_ignored() {
    let (service, publisher) = service();
    let update = json!({"state": {"reported": {"connected": false}}}).to_string();
    assert!(
        service
            .handle_mqtt(
                "$aws/things/pi-1/shadow/update",
                update.as_bytes(),
                MessageOrigin::LastWill
            )
            .is_empty()
    );
    // The will changed nothing.
    assert_eq!(
        topics(&mqtt(&service, "$aws/things/pi-1/shadow/get", json!({}))),
        ["$aws/things/pi-1/shadow/get/rejected"]
    );
    for topic in [
        "$aws/things/pi-1/shadow/update/accepted",
        "$aws/things/pi-1/shadow/update/delta",
        "$aws/things/pi-1/shadow/get/rejected",
        "$aws/things/pi-1/shadow/namedShadow1/update",
        "devices/pi-1/telemetry",
        "$aws/events/presence/connected/pi-1",
    ] {
        assert!(
            service
                .handle_mqtt(topic, update.as_bytes(), MessageOrigin::Publish)
                .is_empty(),
            "{topic}"
        );
    }
    assert!(ShadowService::is_request_topic(
        "$aws/things/pi-1/shadow/name/a/get"
    ));
    assert!(!ShadowService::is_request_topic(
        "$aws/things/pi-1/shadow/get/accepted"
    ));
    // MQTT requests return their publications instead of publishing them.
    assert!(publisher.messages().is_empty());
}

#[test]
fn http_update_publishes_the_same_messages_as_mqtt() {
    let (over_mqtt, _) = service();
    let (over_http, publisher) = service();
    let request = json!({"state": {"desired": {"led": "on"}, "reported": {"led": "off"}}, "clientToken": "x"});
    let expected = mqtt(
        &over_mqtt,
        "$aws/things/pi-1/shadow/name/cfg/update",
        request.clone(),
    );

    let shadow = ShadowId::named("pi-1", "cfg").unwrap();
    let accepted = over_http
        .update(&shadow, request.to_string().as_bytes())
        .unwrap();
    assert_eq!(accepted.version, 1);
    let published = publisher.take();
    assert_eq!(published.len(), expected.len());
    for (message, publication) in published.iter().zip(&expected) {
        assert_eq!(message.topic, publication.topic);
        assert_eq!(message.payload, publication.payload);
        assert_eq!(message.qos, SHADOW_RESPONSE_QOS);
        assert_eq!(message.qos, QoS::AtLeastOnce);
        assert!(!message.retain);
    }
    // The HTTP body is the /update/accepted document.
    assert_eq!(serde_json::to_value(&accepted).unwrap(), body(&expected[0]));

    // HTTP errors are returned, never published (reference 3.2).
    let error = over_http.update(&shadow, b"{}").unwrap_err();
    assert_eq!(error.code, 400);
    assert!(publisher.take().is_empty());

    // HTTP delete publishes /delete/accepted; HTTP get publishes nothing.
    over_http.get(&shadow).unwrap();
    assert!(publisher.take().is_empty());
    let deleted = over_http.delete(&shadow).unwrap();
    let published = publisher.take();
    assert_eq!(
        published
            .iter()
            .map(|m| m.topic.as_str())
            .collect::<Vec<_>>(),
        ["$aws/things/pi-1/shadow/name/cfg/delete/accepted"]
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&published[0].payload).unwrap(),
        serde_json::to_value(&deleted).unwrap()
    );
    assert_eq!(over_http.get(&shadow).unwrap_err().code, 404);
}

#[test]
fn list_named_shadows_pages_and_skips_classic_and_deleted() {
    let (service, _) = service();
    for name in ["b", "a", "c", "gone"] {
        service
            .update(
                &ShadowId::named("pi-1", name).unwrap(),
                br#"{"state":{"reported":{"x":1}}}"#,
            )
            .unwrap();
    }
    service
        .update(
            &ShadowId::classic("pi-1").unwrap(),
            br#"{"state":{"reported":{"x":1}}}"#,
        )
        .unwrap();
    service
        .update(
            &ShadowId::named("pi-2", "z").unwrap(),
            br#"{"state":{"reported":{"x":1}}}"#,
        )
        .unwrap();
    service
        .delete(&ShadowId::named("pi-1", "gone").unwrap())
        .unwrap();

    let all = service.list_named("pi-1", None, None).unwrap();
    assert_eq!(all.results, ["a", "b", "c"]);
    assert_eq!(all.next_token, None);
    assert_eq!(all.timestamp, T0);

    let first = service.list_named("pi-1", Some(2), None).unwrap();
    assert_eq!(first.results, ["a", "b"]);
    let second = service
        .list_named("pi-1", Some(2), first.next_token.as_deref())
        .unwrap();
    assert_eq!(second.results, ["c"]);
    assert_eq!(second.next_token, None);

    assert!(
        service
            .list_named("unknown", None, None)
            .unwrap()
            .results
            .is_empty()
    );
    assert_eq!(
        service.list_named("pi-1", Some(0), None).unwrap_err().code,
        400
    );
    assert_eq!(
        service.list_named("bad name", None, None).unwrap_err().code,
        400
    );
}

#[test]
fn state_directory_keeps_documents_and_deleted_versions() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(T0));
    let open = || {
        let clock = now.clone();
        ShadowService::new(
            ShadowStore::open(dir.path()).unwrap(),
            Arc::new(RecordingPublisher::new()),
        )
        .with_clock(move || clock.load(Ordering::SeqCst))
    };
    {
        let service = open();
        service
            .update(
                &ShadowId::classic("pi-1").unwrap(),
                br#"{"state":{"desired":{"led":"on"}}}"#,
            )
            .unwrap();
        let named = ShadowId::named("pi-1", "cfg").unwrap();
        service
            .update(&named, br#"{"state":{"reported":{"a":1}}}"#)
            .unwrap();
        service
            .update(&named, br#"{"state":{"reported":{"a":2}}}"#)
            .unwrap();
        service.delete(&named).unwrap();
    }
    let service = open();
    let classic = service.get(&ShadowId::classic("pi-1").unwrap()).unwrap();
    assert_eq!(classic.version, 1);
    assert_eq!(
        serde_json::to_value(&classic.state).unwrap(),
        json!({"desired": {"led": "on"}, "delta": {"led": "on"}})
    );
    let named = ShadowId::named("pi-1", "cfg").unwrap();
    assert_eq!(service.get(&named).unwrap_err().code, 404);
    // The tombstone survived: recreating continues at version 3 within 48 h...
    now.store(T0 + 3600, Ordering::SeqCst);
    assert_eq!(
        service
            .update(&named, br#"{"state":{"reported":{"a":3}}}"#)
            .unwrap()
            .version,
        3
    );
    service.delete(&named).unwrap();
    // ...and restarts at 1 after 48 h (reference 3.7).
    now.store(T0 + 3600 + 49 * 3600, Ordering::SeqCst);
    assert_eq!(
        service
            .update(&named, br#"{"state":{"reported":{"a":4}}}"#)
            .unwrap()
            .version,
        1
    );
}
