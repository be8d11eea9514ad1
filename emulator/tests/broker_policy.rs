//! Authorization with crates/iot-policy (reference 4): Connect at CONNECT (and the will), Publish, Subscribe on
//! the literal filter, Receive on every delivery, and AWS's reactions to denials on MQTT 3.1.1 (reference 4.5).

mod broker_support;
mod template_support;

use std::time::Duration;

use broker_support::*;
use iot_emulator::broker::{BrokerConfig, SubscribeDenial};
use iot_events::{DisconnectReason, LifecycleEvent};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet, SubscribeReasonCode};

fn expect_disconnect(event: Option<LifecycleEvent>, reason: DisconnectReason) {
    match event {
        Some(LifecycleEvent::Disconnected(event)) => {
            assert_eq!(event.disconnect_reason, Some(reason));
        }
        other => panic!("expected a disconnect with {reason}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_device_uses_its_own_topics() {
    let broker = TestBroker::start().await;
    let device = broker.device("ratchet");
    let mut client = RawClient::connect(broker.port(), &device).await;
    let ack = client
        .subscribe_ok("data/ratchet/cmd", QoS::AtLeastOnce)
        .await;
    assert_eq!(
        ack.return_codes,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    match client
        .publish("data/ratchet/cmd", b"self", QoS::AtLeastOnce, false)
        .await
    {
        Received::Packet(Packet::PubAck(_)) => {}
        other => panic!("expected PUBACK, got {other:?}"),
    }
    let delivered = client.next_publish(WAIT).await.expect("own message");
    assert_eq!(&delivered.payload[..], b"self");
    client.disconnect().await;
    broker.stop().await;
}

#[tokio::test]
async fn publishing_to_another_things_topic_disconnects_with_auth_error_and_sends_the_will() {
    let broker = TestBroker::start().await;
    broker.device("victim");
    let device = broker.device("intruder");
    let observer = broker.observer("observer-p");
    let mut watcher = RawClient::connect(broker.port(), &observer).await;
    watcher
        .subscribe_ok("data/victim/#", QoS::AtLeastOnce)
        .await;
    watcher
        .subscribe_ok("device/intruder/lwt", QoS::AtLeastOnce)
        .await;
    let mut events = broker.lifecycle_events();

    let mut client = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.last_will = Some(will("device/intruder/lwt", "bye", false));
    })
    .await;
    assert!(matches!(
        events.next_presence(WAIT).await,
        Some(LifecycleEvent::Connected(_))
    ));
    client
        .publish(
            "data/victim/temperature",
            b"forged",
            QoS::AtLeastOnce,
            false,
        )
        .await;
    client.expect_closed(WAIT).await;
    expect_disconnect(
        events.next_presence(WAIT).await,
        DisconnectReason::AuthError,
    );
    // Only the will reaches the watcher, never the forged message.
    let delivered = watcher.next_publish(WAIT).await.expect("will");
    assert_eq!(
        String::from_utf8_lossy(&delivered.topic),
        "device/intruder/lwt"
    );
    assert!(
        watcher
            .next_publish(Duration::from_millis(300))
            .await
            .is_none()
    );
    broker.stop().await;
}

#[tokio::test]
async fn subscribing_to_another_things_topic_disconnects_by_default_or_gets_suback_failure() {
    let broker = TestBroker::start().await;
    broker.device("victim");
    let device = broker.device("spy");
    let mut events = broker.lifecycle_events();
    let mut client = RawClient::connect(broker.port(), &device).await;
    events.next_presence(WAIT).await;
    // The policy grants `topicfilter/data/spy/*`; `data/#` is a different literal filter (reference 4.3).
    let mut subscribe = rumqttc::mqttbytes::v4::Subscribe::new("data/#", QoS::AtMostOnce);
    subscribe.pkid = 1;
    client.send(Packet::Subscribe(subscribe)).await;
    client.expect_closed(WAIT).await;
    expect_disconnect(
        events.next_presence(WAIT).await,
        DisconnectReason::AuthError,
    );
    broker.stop().await;

    let broker = TestBroker::start_with(BrokerConfig {
        subscribe_denial: SubscribeDenial::SubackFailure,
        ..test_config()
    })
    .await;
    broker.device("victim");
    let device = broker.device("spy");
    let mut client = RawClient::connect(broker.port(), &device).await;
    match client
        .subscribe(&[
            ("data/victim/temperature", QoS::AtMostOnce),
            ("data/spy/cmd", QoS::AtMostOnce),
        ])
        .await
    {
        Received::Packet(Packet::SubAck(ack)) => assert_eq!(
            ack.return_codes,
            vec![
                SubscribeReasonCode::Failure,
                SubscribeReasonCode::Success(QoS::AtMostOnce)
            ]
        ),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    client.disconnect().await;
    broker.stop().await;
}

#[tokio::test]
async fn receive_is_checked_on_every_delivery() {
    let broker = TestBroker::start().await;
    let observer = broker.observer("observer-r");
    let publisher = broker.observer("observer-pub");
    let mut watcher = RawClient::connect(broker.port(), &observer).await;
    // Subscribe is allowed on `app/#`, but the policy denies Receive on `app/secret`.
    watcher.subscribe_ok("app/#", QoS::AtMostOnce).await;
    let mut sender = RawClient::connect(broker.port(), &publisher).await;
    sender
        .publish("app/secret", b"hidden", QoS::AtLeastOnce, false)
        .await;
    sender
        .publish("app/public", b"shown", QoS::AtLeastOnce, false)
        .await;
    let delivered = watcher.next_publish(WAIT).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&delivered.topic), "app/public");
    // The denied message was dropped silently; the connection is still usable.
    watcher.send(Packet::PingReq).await;
    assert!(matches!(
        watcher.recv(WAIT).await,
        Received::Packet(Packet::PingResp)
    ));
    broker.stop().await;
}

#[tokio::test]
async fn connecting_as_another_client_id_is_refused_with_connect_failed() {
    let broker = TestBroker::start().await;
    let device = broker.device("ratchet");
    let mut events = broker.lifecycle_events();
    let (_, received) =
        RawClient::connect_with(broker.port(), &device, Connect::new("not-ratchet")).await;
    assert!(matches!(
        received,
        Received::Packet(Packet::ConnAck(ConnAck {
            code: ConnectReturnCode::NotAuthorized,
            session_present: false
        }))
    ));
    let (topic, json) = events.next_json(WAIT).await.unwrap();
    assert_eq!(topic, "$aws/events/presence/connect_failed/not-ratchet");
    assert_eq!(json["eventType"], "connect_failed");
    assert_eq!(json["connectFailureReason"], "AUTHORIZATION_FAILED");
    assert_eq!(json["clientId"], "not-ratchet");
    assert_eq!(json["principalIdentifier"], device.certificate_id());
    assert_eq!(json["ipAddress"], "127.0.0.1");
    assert!(
        json.get("versionNumber").is_none(),
        "connect_failed has no versionNumber"
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_will_on_a_forbidden_topic_gives_connect_failed() {
    let broker = TestBroker::start().await;
    let device = broker.device("ratchet");
    let mut events = broker.lifecycle_events();
    let mut connect = Connect::new("ratchet");
    connect.last_will = Some(will("device/other/lwt", "x", false));
    let (_, received) = RawClient::connect_with(broker.port(), &device, connect).await;
    assert!(matches!(
        received,
        Received::Packet(Packet::ConnAck(ConnAck {
            code: ConnectReturnCode::NotAuthorized,
            ..
        }))
    ));
    match events.next(WAIT).await {
        Some(LifecycleEvent::ConnectFailed(event)) => {
            assert_eq!(event.client_id, "ratchet");
            assert_eq!(event.connect_failure_reason, "AUTHORIZATION_FAILED");
        }
        other => panic!("expected connect_failed, got {other:?}"),
    }
    // A retained will needs iot:RetainPublish as well (granted on the device's own topics here).
    let mut client = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.last_will = Some(will("device/ratchet/lwt", "x", true));
    })
    .await;
    client.send(Packet::PingReq).await;
    assert!(matches!(
        client.recv(WAIT).await,
        Received::Packet(Packet::PingResp)
    ));
    broker.stop().await;
}

#[tokio::test]
async fn the_synthesized_template_policy_confines_a_device() {
    let text = template_support::stack_template();
    let broker = TestBroker::start().await;
    let names = broker
        .registry
        .load_policies_from_template(&text, ACCOUNT, REGION)
        .unwrap();
    assert!(!names.is_empty());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let device = broker.provision("pi-7", &names);

    let mut client = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.last_will = Some(will("device/pi-7/lwt", "{}", false));
    })
    .await;
    client
        .subscribe_ok("$aws/things/pi-7/shadow/update/delta", QoS::AtLeastOnce)
        .await;
    assert!(matches!(
        client
            .publish("data/pi-7/temperature", b"{}", QoS::AtLeastOnce, false)
            .await,
        Received::Packet(Packet::PubAck(_))
    ));
    client
        .publish("data/pi-8/temperature", b"{}", QoS::AtLeastOnce, false)
        .await;
    client.expect_closed(WAIT).await;
    broker.stop().await;
}

#[tokio::test]
async fn a_policy_change_applies_to_an_open_connection() {
    let broker = TestBroker::start().await;
    let device = broker.device("ratchet");
    let mut events = broker.lifecycle_events();
    let mut client = RawClient::connect(broker.port(), &device).await;
    events.next_presence(WAIT).await;
    assert!(matches!(
        client
            .publish("data/ratchet/t", b"1", QoS::AtLeastOnce, false)
            .await,
        Received::Packet(Packet::PubAck(_))
    ));
    // An explicit Deny attached while connected wins over the Allow at the next check (reference 4.1).
    broker
        .registry
        .put_policy_json(
            "quarantine",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish",
                "Resource":"arn:aws:iot:us-east-1:123456789012:topic/data/*"}]}"#,
        )
        .unwrap();
    broker
        .registry
        .attach_policy("quarantine", device.certificate_id())
        .unwrap();
    client
        .publish("data/ratchet/t", b"2", QoS::AtLeastOnce, false)
        .await;
    client.expect_closed(WAIT).await;
    expect_disconnect(
        events.next_presence(WAIT).await,
        DisconnectReason::AuthError,
    );
    broker.stop().await;
}
