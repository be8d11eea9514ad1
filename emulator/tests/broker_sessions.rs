//! AWS limits and protocol deviations (reference 6), persistent sessions (6.4), and the in-process API the
//! shadow service and rules engine use.

mod broker_support;

use std::time::Duration;

use broker_support::*;
use iot_emulator::broker::{Origin, Qos};
use iot_events::{DisconnectReason, LifecycleEvent};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, Publish, SubscribeReasonCode,
};
use tokio::io::AsyncWriteExt;

async fn expect_disconnect_reason(events: &mut EventStream, reason: DisconnectReason) {
    match events.next_presence(WAIT).await {
        Some(LifecycleEvent::Disconnected(event)) => {
            assert_eq!(event.disconnect_reason, Some(reason))
        }
        other => panic!("expected disconnect {reason}, got {other:?}"),
    }
}

#[tokio::test]
async fn payload_over_128_kb_is_a_client_error() {
    let broker = TestBroker::start().await;
    let device = broker.device("big");
    let mut events = broker.lifecycle_events();
    let mut client = RawClient::connect(broker.port(), &device).await;
    events.next_presence(WAIT).await;
    let at_limit = vec![b'x'; 128 * 1024];
    assert!(matches!(
        client
            .publish("data/big/blob", &at_limit, QoS::AtLeastOnce, false)
            .await,
        Received::Packet(Packet::PubAck(_))
    ));
    let over = vec![b'x'; 128 * 1024 + 1];
    client
        .publish("data/big/blob", &over, QoS::AtLeastOnce, false)
        .await;
    client.expect_closed(WAIT).await;
    expect_disconnect_reason(&mut events, DisconnectReason::ClientError).await;
    broker.stop().await;
}

#[tokio::test]
async fn topic_and_subscription_limits() {
    let broker = TestBroker::start().await;
    let observer = broker.observer("observer-limits");
    let mut events = broker.lifecycle_events();

    // 8 filters per SUBSCRIBE are fine, 9 close the connection.
    let mut client = RawClient::connect(broker.port(), &observer).await;
    let filters: Vec<String> = (0..9).map(|index| format!("f/{index}")).collect();
    let eight: Vec<(&str, QoS)> = filters[..8]
        .iter()
        .map(|f| (f.as_str(), QoS::AtMostOnce))
        .collect();
    assert!(matches!(
        client.subscribe(&eight).await,
        Received::Packet(Packet::SubAck(_))
    ));
    let nine: Vec<(&str, QoS)> = filters
        .iter()
        .map(|f| (f.as_str(), QoS::AtMostOnce))
        .collect();
    client.subscribe(&nine).await;
    client.expect_closed(WAIT).await;

    // 50 subscriptions per connection; the 51st closes it.
    let mut client = RawClient::connect(broker.port(), &observer).await;
    for index in 0..50 {
        client
            .subscribe_ok(&format!("s/{index}"), QoS::AtMostOnce)
            .await;
    }
    client.subscribe(&[("s/50", QoS::AtMostOnce)]).await;
    client.expect_closed(WAIT).await;

    // A filter over 7 slashes gets SUBACK 0x80; a publish over 7 slashes closes the connection.
    let mut client = RawClient::connect(broker.port(), &observer).await;
    match client
        .subscribe(&[("a/b/c/d/e/f/g/h/i", QoS::AtMostOnce)])
        .await
    {
        Received::Packet(Packet::SubAck(ack)) => {
            assert_eq!(ack.return_codes, vec![SubscribeReasonCode::Failure])
        }
        other => panic!("{other:?}"),
    }
    client
        .publish("app/b/c/d/e/f/g/h/i", b"x", QoS::AtMostOnce, false)
        .await;
    client.expect_closed(WAIT).await;

    // Clients cannot publish lifecycle events.
    let mut client = RawClient::connect(broker.port(), &observer).await;
    client
        .publish(
            "$aws/events/presence/connected/forged",
            b"{}",
            QoS::AtMostOnce,
            false,
        )
        .await;
    client.expect_closed(WAIT).await;

    // Nor shadow responses, which only the shadow service publishes (reference 3.2, 6.2): refused as a topic
    // before any policy is consulted (the observer's policy would deny it with AUTH_ERROR).
    let mut client = RawClient::connect(broker.port(), &observer).await;
    client
        .publish(
            "$aws/things/lamp/shadow/update/accepted",
            b"{}",
            QoS::AtMostOnce,
            false,
        )
        .await;
    client.expect_closed(WAIT).await;

    let mut reasons = Vec::new();
    while let Some(event) = events.next_presence(Duration::from_millis(500)).await {
        if let LifecycleEvent::Disconnected(event) = event {
            reasons.push(event.disconnect_reason.unwrap());
        }
    }
    assert_eq!(reasons, vec![DisconnectReason::ClientError; 5]);
    broker.stop().await;
}

#[tokio::test]
async fn qos2_is_not_acknowledged_and_not_routed() {
    let broker = TestBroker::start().await;
    let observer = broker.observer("observer-q2");
    let mut watcher = RawClient::connect(broker.port(), &observer).await;
    watcher.subscribe_ok("app/q", QoS::AtLeastOnce).await;
    let publisher = broker.observer("observer-q2p");
    let mut client = RawClient::connect(broker.port(), &publisher).await;
    let mut publish = Publish::new("app/q", QoS::ExactlyOnce, b"two".to_vec());
    publish.pkid = 1;
    client.send(Packet::Publish(publish)).await;
    assert!(matches!(
        client.recv(Duration::from_millis(500)).await,
        Received::Timeout
    ));
    let mut subscribe = rumqttc::mqttbytes::v4::Subscribe::new("app/x", QoS::ExactlyOnce);
    subscribe.pkid = 2;
    client.send(Packet::Subscribe(subscribe)).await;
    assert!(matches!(
        client.recv(Duration::from_millis(500)).await,
        Received::Timeout
    ));
    // The connection stays up.
    client.send(Packet::PingReq).await;
    assert!(matches!(
        client.recv(WAIT).await,
        Received::Packet(Packet::PingResp)
    ));
    assert!(
        watcher
            .next_publish(Duration::from_millis(300))
            .await
            .is_none()
    );
    broker.stop().await;
}

#[tokio::test]
async fn connect_rules_client_id_second_connect_and_mqtt5() {
    let broker = TestBroker::start().await;
    let observer = broker.observer("observer-c");
    let (_, received) =
        RawClient::connect_with(broker.port(), &observer, Connect::new("$observer")).await;
    assert!(matches!(
        received,
        Received::Packet(Packet::ConnAck(ConnAck {
            code: ConnectReturnCode::BadClientId,
            ..
        }))
    ));

    let mut events = broker.lifecycle_events();
    let mut client = RawClient::connect(broker.port(), &observer).await;
    client
        .send(Packet::Connect(Connect::new("observer-c")))
        .await;
    client.expect_closed(WAIT).await;
    events.next_presence(WAIT).await;
    expect_disconnect_reason(&mut events, DisconnectReason::ClientError).await;

    // An MQTT 5 CONNECT (protocol level 5) is refused with return code 1: MQTT 5 is not emulated.
    let mut client = RawClient::open(broker.port(), &observer).await.unwrap();
    let mqtt5_connect = [
        0x10, 14, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x01,
        b'x',
    ];
    client
        .transport
        .get_mut()
        .write_all(&mqtt5_connect)
        .await
        .unwrap();
    client.transport.get_mut().flush().await.unwrap();
    assert!(matches!(
        client.recv(WAIT).await,
        Received::Packet(Packet::ConnAck(ConnAck {
            code: ConnectReturnCode::RefusedProtocolVersion,
            ..
        }))
    ));
    broker.stop().await;
}

#[tokio::test]
async fn persistent_sessions_keep_subscriptions_and_queue_qos1_while_offline() {
    let broker = TestBroker::start().await;
    let device = broker.device("persist");
    let mut client = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.clean_session = false;
    })
    .await;
    client
        .subscribe_ok("data/persist/cmd", QoS::AtLeastOnce)
        .await;
    client.disconnect().await;

    let service = Origin::Service {
        name: "test".into(),
    };
    let api = broker.broker();
    api.publish_internal(
        "data/persist/cmd",
        "q1",
        Qos::AtLeastOnce,
        false,
        service.clone(),
    )
    .unwrap();
    api.publish_internal(
        "data/persist/cmd",
        "q0",
        Qos::AtMostOnce,
        false,
        service.clone(),
    )
    .unwrap();

    let mut connect = Connect::new("persist");
    connect.clean_session = false;
    connect.keep_alive = 60;
    let (client, received) = RawClient::connect_with(broker.port(), &device, connect).await;
    assert!(matches!(
        received,
        Received::Packet(Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::Success
        }))
    ));
    let mut client = client.unwrap();
    let queued = client
        .next_publish(WAIT)
        .await
        .expect("queued QoS 1 message");
    assert_eq!(&queued.payload[..], b"q1");
    assert_eq!(queued.qos, QoS::AtLeastOnce);
    assert!(
        client
            .next_publish(Duration::from_millis(300))
            .await
            .is_none(),
        "QoS 0 is not queued"
    );
    // The subscription survived: live messages flow without resubscribing.
    api.publish_internal("data/persist/cmd", "live", Qos::AtLeastOnce, false, service)
        .unwrap();
    assert_eq!(
        &client.next_publish(WAIT).await.unwrap().payload[..],
        b"live"
    );
    client.disconnect().await;

    // A clean session discards it.
    let (_, received) =
        RawClient::connect_with(broker.port(), &device, Connect::new("persist")).await;
    assert!(matches!(
        received,
        Received::Packet(Packet::ConnAck(ConnAck {
            session_present: false,
            ..
        }))
    ));
    broker.stop().await;
}

#[tokio::test]
async fn in_process_api_sees_publisher_identity_and_flags_shadow_wills() {
    let broker = TestBroker::start().await;
    let registry = &broker.registry;
    registry
        .put_policy_json(
            "shadow-device",
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
                {"Effect":"Allow","Action":"iot:Publish","Resource":[
                  "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/update",
                  "arn:aws:iot:us-east-1:123456789012:topic/$aws/rules/*"]}]}"#,
        )
        .unwrap();
    let device = broker.provision("lamp", &["shadow-device"]);
    let mut shadow_updates = broker
        .broker()
        .subscribe_internal("$aws/things/+/shadow/update")
        .unwrap();
    let mut basic_ingest = broker.broker().subscribe_internal("$aws/rules/#").unwrap();

    let mut client = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.last_will = Some(will(
            "$aws/things/lamp/shadow/update",
            r#"{"state":{"reported":{"connected":false}}}"#,
            false,
        ));
    })
    .await;
    client
        .publish(
            "$aws/things/lamp/shadow/update",
            br#"{"state":{}}"#,
            QoS::AtLeastOnce,
            false,
        )
        .await;
    let update = tokio::time::timeout(WAIT, shadow_updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(update.client_id(), Some("lamp"));
    assert_eq!(update.principal(), Some(device.certificate_id()));
    assert!(!update.is_will && !update.is_will_on_shadow_topic());

    client
        .publish(
            "$aws/rules/DisconnectWill/x",
            b"{}",
            QoS::AtLeastOnce,
            false,
        )
        .await;
    let ingested = tokio::time::timeout(WAIT, basic_ingest.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ingested.topic, "$aws/rules/DisconnectWill/x");

    client.drop_connection();
    let will = tokio::time::timeout(WAIT, shadow_updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        will.is_will_on_shadow_topic(),
        "the shadow service must be able to ignore it"
    );
    assert_eq!(will.client_id(), Some("lamp"));

    // Internal publishes are validated like device ones where AWS would refuse them.
    let api = broker.broker();
    let origin = Origin::Service {
        name: "shadow".into(),
    };
    assert!(
        api.publish_internal("a/+", "x", Qos::AtMostOnce, false, origin.clone())
            .is_err()
    );
    assert!(
        api.publish_internal(
            "$aws/things/lamp/shadow/update/accepted",
            "x",
            Qos::AtMostOnce,
            true,
            origin
        )
        .is_err()
    );
    assert!(api.subscribe_internal("a/#/b").is_err());
    broker.stop().await;
}

#[tokio::test]
async fn basic_ingest_never_reaches_subscribers() {
    let broker = TestBroker::start().await;
    let observer = broker.observer("observer-bi");
    let mut watcher = RawClient::connect(broker.port(), &observer).await;
    watcher
        .subscribe_ok("$aws/rules/R/t", QoS::AtMostOnce)
        .await;
    broker
        .broker()
        .publish_internal(
            "$aws/rules/R/t",
            "x",
            Qos::AtMostOnce,
            false,
            Origin::Service { name: "t".into() },
        )
        .unwrap();
    assert!(
        watcher
            .next_publish(Duration::from_millis(300))
            .await
            .is_none()
    );
    broker.stop().await;
}

#[tokio::test]
async fn the_broker_is_the_publisher_of_in_process_services() {
    use iot_emulator::shadow::{OutboundMessage, PublishError, Publisher, QoS as ServiceQos};
    let broker = TestBroker::start().await;
    let device = broker.device("lamp");
    let mut client = RawClient::connect(broker.port(), &device).await;
    client.subscribe_ok("data/lamp/cmd", QoS::AtLeastOnce).await;
    let mut seen_by_rules = broker.broker().subscribe_internal("data/+/cmd").unwrap();
    let publisher = broker.broker().service_publisher("data-plane");

    publisher
        .publish(OutboundMessage::new(
            "data/lamp/cmd",
            b"on".to_vec(),
            ServiceQos::AtLeastOnce,
        ))
        .unwrap();
    let delivered = client.next_publish(WAIT).await.unwrap();
    assert_eq!(
        (&delivered.payload[..], delivered.qos),
        (&b"on"[..], QoS::AtLeastOnce)
    );
    let message = seen_by_rules.recv().await.unwrap();
    assert_eq!(
        message.origin,
        Origin::Service {
            name: "data-plane".into()
        }
    );
    assert_eq!(message.client_id(), None);

    let mut retained_reserved = OutboundMessage::new(
        "$aws/things/lamp/shadow/update/accepted",
        b"{}".to_vec(),
        ServiceQos::AtMostOnce,
    );
    retained_reserved.retain = true;
    assert!(matches!(
        publisher.publish(retained_reserved),
        Err(PublishError::Refused(_))
    ));

    // HTTP Publish carries outside input: refused (ThrottlingException) while a rule's queue is at its bound;
    // the shadow service's answers are not.
    let mut config = test_config();
    config.limits.max_internal_queue_messages = 1;
    let bounded = TestBroker::start_with(config).await;
    let _stalled_rule = bounded.broker().subscribe_internal("data/#").unwrap();
    let http_publish = bounded.broker().bounded_service_publisher("data-plane");
    let cmd = || OutboundMessage::new("data/lamp/cmd", b"on".to_vec(), ServiceQos::AtMostOnce);
    assert_eq!(http_publish.publish(cmd()), Ok(()));
    assert_eq!(http_publish.publish(cmd()), Err(PublishError::Throttled));
    let shadow_answers = bounded.broker().service_publisher("shadow");
    assert_eq!(shadow_answers.publish(cmd()), Ok(()));
    assert_eq!(bounded.broker().internal_refusals(), 1);
    bounded.stop().await;

    let handle = broker.broker().clone();
    broker.stop().await;
    let after = handle
        .service_publisher("shadow")
        .publish(OutboundMessage::new(
            "data/lamp/cmd",
            b"off".to_vec(),
            ServiceQos::AtMostOnce,
        ));
    assert_eq!(after, Err(PublishError::Unavailable));
}

/// A QoS 1 subscriber that stops reading and never acknowledges made the broker hold everything published to it
/// (+379 MiB for 4,000 messages of 100 kB, issue 13, item 2). Now its deliveries are bounded
/// (`Limits::max_pending_outbound`): when a QoS 1 delivery no longer fits, the connection ends as THROTTLED.
#[tokio::test]
async fn a_subscriber_that_stops_reading_is_disconnected_as_throttled_not_buffered() {
    let mut config = test_config();
    config.limits.max_pending_outbound = 50;
    let broker = TestBroker::start_with(config).await;
    let mut events = broker.lifecycle_events();
    let slow = broker.observer("observer-slow");
    let mut client = RawClient::connect(broker.port(), &slow).await;
    events.next_presence(WAIT).await;
    client.subscribe_ok("data/#", QoS::AtLeastOnce).await;
    // From here on the client reads nothing and acknowledges nothing.
    let payload = vec![b'x'; 4 * 1024];
    for n in 0..2_000 {
        broker
            .broker()
            .publish_internal(
                &format!("data/flood/{n}"),
                payload.clone(),
                Qos::AtLeastOnce,
                false,
                Origin::Broker,
            )
            .unwrap();
    }
    expect_disconnect_reason(&mut events, DisconnectReason::Throttled).await;
    let (_, disconnects) = broker.broker().slow_consumer_counts();
    assert_eq!(disconnects, 1);
    drop(client);
    broker.stop().await;
}

/// Issue 13, item 2: the rules engine's and the shadow service's queues were unbounded. A device whose
/// messages an in-process subscriber does not take waits for room (no PUBACK yet), gets its PUBACK once room is
/// made, and is disconnected as THROTTLED, without a PUBACK, when none is made in time; lifecycle events are
/// never refused.
#[tokio::test]
async fn a_full_in_process_queue_holds_back_device_publishes_then_throttles() {
    let mut config = test_config();
    config.limits.max_internal_queue_messages = 2;
    config.limits.internal_queue_wait = Duration::from_secs(2);
    let broker = TestBroker::start_with(config).await;
    let mut events = broker.lifecycle_events();
    let mut rule_queue = broker.broker().subscribe_internal("data/#").unwrap();
    let device = broker.device("thing-bp");
    let mut client = RawClient::connect(broker.port(), &device).await;
    events.next_presence(WAIT).await;
    let topic = "data/thing-bp/temperature";

    for n in 0..2 {
        match client.publish(topic, b"{}", QoS::AtLeastOnce, false).await {
            Received::Packet(Packet::PubAck(_)) => {}
            other => panic!("publish {n}: expected PUBACK, got {other:?}"),
        }
    }
    assert_eq!(rule_queue.len(), 2);

    // At the bound: no PUBACK while nothing is taken, then one as soon as a message is taken.
    client
        .send(Packet::Publish(qos1(topic, b"third", 98)))
        .await;
    match client.recv(Duration::from_millis(300)).await {
        Received::Timeout => {}
        other => panic!("expected the PUBACK to wait, got {other:?}"),
    }
    let first = rule_queue.recv().await.unwrap();
    assert_eq!(&first.payload[..], b"{}");
    match client.recv(WAIT).await {
        Received::Packet(Packet::PubAck(_)) => {}
        other => panic!("expected the held PUBACK once there was room, got {other:?}"),
    }
    assert_eq!(broker.broker().internal_refusals(), 0);

    // Nothing taken within the wait: THROTTLED, and the message was not routed.
    client
        .send(Packet::Publish(qos1(topic, b"fourth", 99)))
        .await;
    expect_disconnect_reason(&mut events, DisconnectReason::Throttled).await;
    assert_eq!(broker.broker().internal_refusals(), 1);
    let queued: Vec<_> = std::iter::from_fn(|| rule_queue.try_recv().ok())
        .map(|message| message.payload)
        .collect();
    assert_eq!(queued, vec![&b"{}"[..], &b"third"[..]]);
    drop(client);

    // The broker's own messages are not bounded by input: lifecycle events queue past the bound.
    for _ in 0..2 {
        RawClient::connect(broker.port(), &device)
            .await
            .disconnect()
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events.0.len() >= 4, "lifecycle events were refused");
    broker.stop().await;
}

fn qos1(topic: &str, payload: &[u8], pkid: u16) -> Publish {
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.to_vec());
    publish.pkid = pkid;
    publish
}
