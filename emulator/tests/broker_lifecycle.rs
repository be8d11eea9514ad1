//! Lifecycle events (reference 1): topics and fields, disconnect reasons, versionNumber rules, duplicate client id
//! takeover, and the fault injection that duplicates and reorders events.

mod broker_support;

use std::time::Duration;

use broker_support::*;
use iot_emulator::broker::{BrokerConfig, LifecycleFaults};
use iot_events::{DisconnectReason, LifecycleEvent};
use rumqttc::mqttbytes::QoS;

#[tokio::test]
async fn connected_and_disconnected_carry_aws_fields() {
    let broker = TestBroker::start().await;
    let device = broker.device("ratchet");
    let mut events = broker.lifecycle_events();
    let before = iot_emulator::broker::now_millis();
    let client = RawClient::connect(broker.port(), &device).await;

    let (topic, connected) = events.next_json(WAIT).await.unwrap();
    assert_eq!(topic, "$aws/events/presence/connected/ratchet");
    assert_eq!(connected["eventType"], "connected");
    assert_eq!(connected["clientId"], "ratchet");
    assert_eq!(connected["principalIdentifier"], device.certificate_id());
    assert_eq!(connected["ipAddress"], "127.0.0.1");
    assert_eq!(connected["versionNumber"], 0);
    let timestamp = connected["timestamp"].as_i64().unwrap();
    assert!(
        timestamp >= before && timestamp < before + 5_000,
        "milliseconds since the epoch"
    );
    assert!(!connected["sessionIdentifier"].as_str().unwrap().is_empty());
    // Non-exclusive thing association: no thingName (reference 1.1).
    assert!(connected.get("thingName").is_none());

    client.disconnect().await;
    let (topic, disconnected) = events.next_json(WAIT).await.unwrap();
    assert_eq!(topic, "$aws/events/presence/disconnected/ratchet");
    assert_eq!(disconnected["eventType"], "disconnected");
    assert_eq!(
        disconnected["disconnectReason"],
        "CLIENT_INITIATED_DISCONNECT"
    );
    assert_eq!(disconnected["clientInitiatedDisconnect"], true);
    assert_eq!(
        disconnected["sessionIdentifier"],
        connected["sessionIdentifier"]
    );
    assert_eq!(disconnected["versionNumber"], connected["versionNumber"]);
    assert!(
        disconnected.get("ipAddress").is_none(),
        "ipAddress only on connect (reference 1.3)"
    );
    broker.stop().await;
}

#[tokio::test]
async fn subscription_events_list_the_requested_filters() {
    let broker = TestBroker::start().await;
    let device = broker.device("ratchet");
    let mut events = broker.lifecycle_events();
    let mut client = RawClient::connect(broker.port(), &device).await;
    events.next(WAIT).await;
    client
        .subscribe(&[
            ("data/ratchet/a", QoS::AtMostOnce),
            ("data/ratchet/b", QoS::AtLeastOnce),
        ])
        .await;
    let (topic, json) = events.next_json(WAIT).await.unwrap();
    assert_eq!(topic, "$aws/events/subscriptions/subscribed/ratchet");
    assert_eq!(
        json["topics"],
        serde_json::json!(["data/ratchet/a", "data/ratchet/b"])
    );
    assert!(json.get("versionNumber").is_none());
    client.unsubscribe("data/ratchet/a").await;
    let (topic, json) = events.next_json(WAIT).await.unwrap();
    assert_eq!(topic, "$aws/events/subscriptions/unsubscribed/ratchet");
    assert_eq!(json["topics"], serde_json::json!(["data/ratchet/a"]));
    broker.stop().await;
}

#[tokio::test]
async fn version_number_increases_per_connection_and_resets_after_offline_time() {
    let broker = TestBroker::start_with(BrokerConfig {
        version_reset_after: Duration::from_secs(2),
        ..test_config()
    })
    .await;
    let device = broker.device("pi");
    let mut events = broker.lifecycle_events();
    let mut versions = Vec::new();
    for _ in 0..3 {
        let client = RawClient::connect(broker.port(), &device).await;
        client.drop_connection();
        for _ in 0..2 {
            match events.next_presence(WAIT).await.unwrap() {
                LifecycleEvent::Connected(event) => {
                    versions.push(("connected", event.version_number))
                }
                LifecycleEvent::Disconnected(event) => {
                    versions.push(("disconnected", event.version_number))
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(
        versions,
        vec![
            ("connected", 0),
            ("disconnected", 0),
            ("connected", 1),
            ("disconnected", 1),
            ("connected", 2),
            ("disconnected", 2)
        ]
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let _client = RawClient::connect(broker.port(), &device).await;
    match events.next_presence(WAIT).await.unwrap() {
        LifecycleEvent::Connected(event) => {
            assert_eq!(event.version_number, 0, "reset after offline time")
        }
        other => panic!("{other:?}"),
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_duplicate_client_id_takes_over_and_the_old_connection_gets_duplicate_clientid() {
    let broker = TestBroker::start().await;
    let device = broker.device("twin");
    let observer = broker.observer("observer-t");
    let mut watcher = RawClient::connect(broker.port(), &observer).await;
    watcher
        .subscribe_ok("device/twin/lwt", QoS::AtLeastOnce)
        .await;
    let mut events = broker.lifecycle_events();

    let mut first = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.last_will = Some(will("device/twin/lwt", "first", false));
    })
    .await;
    let _second = RawClient::connect(broker.port(), &device).await;
    first.expect_closed(WAIT).await;

    let mut connected = Vec::new();
    let mut disconnected = Vec::new();
    while connected.len() < 2 || disconnected.is_empty() {
        match events.next_presence(WAIT).await.expect("events") {
            LifecycleEvent::Connected(event) => connected.push(event.version_number),
            LifecycleEvent::Disconnected(event) => disconnected.push(event),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(connected, vec![0, 1]);
    assert_eq!(disconnected.len(), 1);
    assert_eq!(
        disconnected[0].disconnect_reason,
        Some(DisconnectReason::DuplicateClientId)
    );
    assert_eq!(
        disconnected[0].version_number, 0,
        "the old connection's number"
    );
    // DUPLICATE_CLIENTID publishes the old connection's will (reference 1.4).
    let delivered = watcher
        .next_publish(WAIT)
        .await
        .expect("will of the old connection");
    assert_eq!(&delivered.payload[..], b"first");
    assert!(broker.broker().is_connected("twin"));
    broker.stop().await;
}

#[tokio::test]
async fn delete_connection_publishes_the_will_unless_prevented() {
    let broker = TestBroker::start().await;
    let device = broker.device("api");
    let observer = broker.observer("observer-api");
    let mut watcher = RawClient::connect(broker.port(), &observer).await;
    watcher
        .subscribe_ok("device/api/lwt", QoS::AtLeastOnce)
        .await;
    let mut events = broker.lifecycle_events();
    for prevent in [false, true] {
        let mut client = RawClient::connect_options(broker.port(), &device, |connect| {
            connect.last_will = Some(will("device/api/lwt", "w", false));
        })
        .await;
        events.next_presence(WAIT).await;
        assert!(broker.broker().disconnect_client("api", prevent));
        client.expect_closed(WAIT).await;
        match events.next_presence(WAIT).await {
            Some(LifecycleEvent::Disconnected(event)) => {
                assert_eq!(
                    event.disconnect_reason,
                    Some(DisconnectReason::ApiInitiatedDisconnect)
                )
            }
            other => panic!("{other:?}"),
        }
        let will = watcher.next_publish(Duration::from_millis(500)).await;
        assert_eq!(will.is_some(), !prevent, "preventWillMessage={prevent}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn client_ids_with_wildcards_get_no_lifecycle_events() {
    let broker = TestBroker::start().await;
    // A policy that lets this certificate connect under any observer* id, `observer+` included.
    let observer = broker.observer("observer+x");
    let mut events = broker.lifecycle_events();
    let client = RawClient::connect(broker.port(), &observer).await;
    client.disconnect().await;
    events.assert_quiet(Duration::from_millis(500)).await;
    broker.stop().await;
}

#[tokio::test]
async fn injected_duplicates_repeat_every_event() {
    let broker = TestBroker::start_with(BrokerConfig {
        lifecycle_faults: LifecycleFaults {
            duplicate_probability: 1.0,
            seed: Some(7),
            ..LifecycleFaults::default()
        },
        ..test_config()
    })
    .await;
    let device = broker.device("dup");
    let mut events = broker.lifecycle_events();
    let client = RawClient::connect(broker.port(), &device).await;
    client.disconnect().await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(events.next_presence(WAIT).await.unwrap().event_type());
    }
    assert_eq!(
        seen,
        vec!["connected", "connected", "disconnected", "disconnected"]
    );
    events.assert_quiet(Duration::from_millis(300)).await;
    broker.stop().await;
}

#[tokio::test]
async fn injected_reordering_delivers_disconnected_before_connected() {
    let broker = TestBroker::start_with(BrokerConfig {
        lifecycle_faults: LifecycleFaults {
            reorder_probability: 1.0,
            max_hold: Duration::from_secs(3),
            seed: Some(1),
            ..LifecycleFaults::default()
        },
        ..test_config()
    })
    .await;
    let device = broker.device("swap");
    let mut events = broker.lifecycle_events();
    let client = RawClient::connect(broker.port(), &device).await;
    // The connected event is held until the next event exists.
    assert!(events.next(Duration::from_millis(300)).await.is_none());
    client.disconnect().await;
    let first = events.next_presence(WAIT).await.unwrap();
    let second = events.next_presence(WAIT).await.unwrap();
    assert_eq!(
        (first.event_type(), second.event_type()),
        ("disconnected", "connected")
    );
    // Same connection: both carry the same versionNumber, which is how a consumer orders them (reference 1.8).
    let version = |event: &LifecycleEvent| match event {
        LifecycleEvent::Connected(e) => e.version_number,
        LifecycleEvent::Disconnected(e) => e.version_number,
        _ => unreachable!(),
    };
    assert_eq!(version(&first), version(&second));

    // A held event with no successor is released after max_hold.
    broker.broker().set_lifecycle_faults(LifecycleFaults {
        reorder_probability: 1.0,
        max_hold: Duration::from_millis(200),
        seed: Some(2),
        ..LifecycleFaults::default()
    });
    let _client = RawClient::connect(broker.port(), &device).await;
    assert_eq!(
        events.next_presence(WAIT).await.unwrap().event_type(),
        "connected"
    );
    broker.stop().await;
}

/// `Broker::thing_connectivity` (for GetThingConnectivityData): connected while a client named after the thing,
/// or associated with it exclusively, is connected; afterwards the time and reason of its disconnect.
#[tokio::test]
async fn thing_connectivity_follows_the_things_connections() {
    let broker = TestBroker::start().await;
    let api = broker.broker();
    let never = api.thing_connectivity("lamp");
    assert_eq!(
        (never.connected, never.timestamp_ms, never.disconnect_reason),
        (false, None, None)
    );
    let device = broker.device("lamp");
    let mut events = broker.lifecycle_events();
    let before = iot_emulator::broker::now_millis();
    let lamp = RawClient::connect(broker.port(), &device).await;
    events.next_presence(WAIT).await;
    let connected = api.thing_connectivity("lamp");
    assert!(connected.connected);
    assert!(connected.timestamp_ms.unwrap() >= before);
    assert_eq!(connected.disconnect_reason, None);

    lamp.drop_connection();
    match events.next_presence(WAIT).await {
        Some(LifecycleEvent::Disconnected(event)) => {
            let gone = api.thing_connectivity("lamp");
            assert!(!gone.connected);
            assert_eq!(gone.disconnect_reason.as_deref(), Some("CONNECTION_LOST"));
            assert!(gone.timestamp_ms.unwrap() >= connected.timestamp_ms.unwrap());
            assert!(gone.timestamp_ms.unwrap() <= event.timestamp);
        }
        other => panic!("{other:?}"),
    }

    // A certificate exclusively attached to `fan`, connecting under another client id. An exclusive
    // attachment must be the certificate's only one (AWS's EXCLUSIVE_THING), so it leaves its own thing first.
    let observer = broker.observer("observer-fan");
    broker
        .registry
        .detach_thing_principal("observer-fan-thing", observer.certificate_id())
        .unwrap();
    broker
        .registry
        .create_thing("fan", None, Default::default())
        .unwrap();
    broker
        .registry
        .attach_thing_principal(
            "fan",
            observer.certificate_id(),
            iot_emulator::registry::AttachmentKind::ExclusiveThing,
        )
        .unwrap();
    let fan = RawClient::connect(broker.port(), &observer).await;
    assert!(api.thing_connectivity("fan").connected);
    // Only the thing the connection is associated with counts (reference 1.1, 4.4).
    assert!(!api.thing_connectivity("observer-fan-thing").connected);
    fan.disconnect().await;
    events.next_presence(WAIT).await;
    events.next_presence(WAIT).await;
    let fan_gone = api.thing_connectivity("fan");
    assert!(!fan_gone.connected);
    assert_eq!(
        fan_gone.disconnect_reason.as_deref(),
        Some("CLIENT_INITIATED_DISCONNECT")
    );
    broker.stop().await;
}
