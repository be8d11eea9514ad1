//! Conformance with an independent client: mosquitto 2's `mosquitto_pub` / `mosquitto_sub` over mutual TLS with
//! certificates from `provision`. Each test starts and stops its own broker on 127.0.0.1 port 0.

mod broker_support;

use std::time::Duration;

use broker_support::*;
use iot_events::{DisconnectReason, LifecycleEvent};

#[tokio::test]
async fn connect_and_qos1_round_trip_with_mosquitto() {
    let broker = TestBroker::start().await;
    let port = broker.port();
    let device = broker.device("ratchet");
    let observer = broker.observer("observer-rt");
    let mut watcher = MosquittoSub::start(
        &observer,
        port,
        &["-t", "data/ratchet/temperature", "-q", "1"],
    )
    .await;

    // mosquitto_pub at QoS 1 exits 0 only after the PUBACK.
    let output = mosquitto_pub(
        &device,
        port,
        &[
            "-t",
            "data/ratchet/temperature",
            "-m",
            "{\"temp\":48.3}",
            "-q",
            "1",
        ],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let message = watcher
        .next_message(WAIT)
        .await
        .expect("QoS 1 message delivered");
    assert_eq!(
        message,
        Received1 {
            retain: false,
            qos: 1,
            topic: "data/ratchet/temperature".into(),
            payload: "{\"temp\":48.3}".into()
        }
    );
    // A QoS 0 publish reaches a QoS 1 subscription at QoS 0.
    let output = mosquitto_pub(
        &device,
        port,
        &["-t", "data/ratchet/temperature", "-m", "zero", "-q", "0"],
    )
    .await;
    assert!(output.status.success());
    let message = watcher.next_message(WAIT).await.unwrap();
    assert_eq!((message.qos, message.payload.as_str()), (0, "zero"));

    // The other direction: the device subscribed with mosquitto_sub gets a QoS 1 command from a service.
    let mut device_sub =
        MosquittoSub::start(&device, port, &["-t", "data/ratchet/cmd", "-q", "1"]).await;
    broker
        .broker()
        .publish_internal(
            "data/ratchet/cmd",
            "MOTOR=ON",
            iot_emulator::broker::Qos::AtLeastOnce,
            false,
            iot_emulator::broker::Origin::Service {
                name: "test".into(),
            },
        )
        .unwrap();
    let message = device_sub
        .next_message(WAIT)
        .await
        .expect("command delivered to the device");
    assert_eq!((message.qos, message.payload.as_str()), (1, "MOTOR=ON"));

    device_sub.kill9().await;
    watcher.kill9().await;
    broker.stop().await;
}

#[tokio::test]
async fn retained_messages_follow_aws_rules() {
    let broker = TestBroker::start().await;
    let port = broker.port();
    let device = broker.device("thermo");
    let output = mosquitto_pub(
        &device,
        port,
        &["-t", "data/thermo/state", "-m", "on", "-q", "1", "-r"],
    )
    .await;
    assert!(output.status.success(), "{output:?}");

    // Exact-topic subscription: the retained message arrives with RETAIN=1.
    let observer = broker.observer("observer-exact");
    let mut exact =
        MosquittoSub::start(&observer, port, &["-t", "data/thermo/state", "-q", "1"]).await;
    let message = exact
        .next_message(WAIT)
        .await
        .expect("retained message on subscribe");
    assert_eq!((message.retain, message.payload.as_str()), (true, "on"));

    // Wildcard subscription: no retained message on subscribe (reference 6.1) ...
    let wildcard_observer = broker.observer("observer-wild");
    let mut wildcard = MosquittoSub::start(
        &wildcard_observer,
        port,
        &["-t", "data/thermo/#", "-q", "1"],
    )
    .await;
    assert_eq!(
        wildcard.next_message(Duration::from_millis(500)).await,
        None
    );

    // ... and live deliveries of a retained publish carry RETAIN=0 (reference 6.3).
    let output = mosquitto_pub(
        &device,
        port,
        &["-t", "data/thermo/state", "-m", "off", "-q", "1", "-r"],
    )
    .await;
    assert!(output.status.success());
    for sub in [&mut exact, &mut wildcard] {
        let message = sub.next_message(WAIT).await.unwrap();
        assert_eq!((message.retain, message.payload.as_str()), (false, "off"));
    }

    // An empty retained publish deletes the stored message but is still delivered.
    let output = mosquitto_pub(
        &device,
        port,
        &["-t", "data/thermo/state", "-n", "-q", "1", "-r"],
    )
    .await;
    assert!(output.status.success());
    assert_eq!(exact.next_message(WAIT).await.unwrap().payload, "");
    assert!(
        broker
            .broker()
            .retained_message("data/thermo/state")
            .is_none()
    );
    let late = broker.observer("observer-late");
    let mut late_sub = MosquittoSub::start(&late, port, &["-t", "data/thermo/state"]).await;
    assert_eq!(
        late_sub.next_message(Duration::from_millis(500)).await,
        None
    );

    for sub in [&mut exact, &mut wildcard, &mut late_sub] {
        sub.kill9().await;
    }
    broker.stop().await;
}

#[tokio::test]
async fn hash_wildcard_does_not_match_the_parent_level() {
    let broker = TestBroker::start().await;
    let port = broker.port();
    let device = broker.device("sensor");
    let observer = broker.observer("observer-hash");
    let mut sub = MosquittoSub::start(&observer, port, &["-t", "data/sensor/#"]).await;
    let output = mosquitto_pub(&device, port, &["-t", "data/sensor", "-m", "parent"]).await;
    assert!(output.status.success());
    let output = mosquitto_pub(&device, port, &["-t", "data/sensor/t", "-m", "child"]).await;
    assert!(output.status.success());
    let message = sub.next_message(WAIT).await.unwrap();
    assert_eq!(
        message.topic, "data/sensor/t",
        "`a/#` must not match `a` (reference 6.1)"
    );
    sub.kill9().await;
    broker.stop().await;
}

#[tokio::test]
async fn will_is_published_when_the_client_is_killed() {
    let broker = TestBroker::start().await;
    let port = broker.port();
    let device = broker.device("pi-1");
    let observer = broker.observer("observer-will");
    let mut watcher =
        MosquittoSub::start(&observer, port, &["-t", "device/+/lwt", "-q", "1"]).await;
    let mut events = broker.lifecycle_events();

    let mut victim = MosquittoSub::start(
        &device,
        port,
        &[
            "-t",
            "data/pi-1/cmd",
            "--will-topic",
            "device/pi-1/lwt",
            "--will-payload",
            "{\"reason\":\"unexpected\"}",
            "--will-qos",
            "1",
        ],
    )
    .await;
    assert!(matches!(
        events.next_presence(WAIT).await,
        Some(LifecycleEvent::Connected(_))
    ));
    victim.kill9().await;

    let will = watcher
        .next_message(WAIT)
        .await
        .expect("will published after kill -9");
    assert_eq!(will.topic, "device/pi-1/lwt");
    assert_eq!(will.payload, "{\"reason\":\"unexpected\"}");
    match events.next_presence(WAIT).await {
        Some(LifecycleEvent::Disconnected(event)) => {
            assert_eq!(event.client_id, "pi-1");
            assert_eq!(
                event.disconnect_reason,
                Some(DisconnectReason::ConnectionLost)
            );
            assert_eq!(event.client_initiated_disconnect, Some(false));
        }
        other => panic!("expected disconnected, got {other:?}"),
    }
    watcher.kill9().await;
    broker.stop().await;
}

#[tokio::test]
async fn no_will_on_a_clean_disconnect() {
    let broker = TestBroker::start().await;
    let port = broker.port();
    let device = broker.device("pi-2");
    let observer = broker.observer("observer-nowill");
    let mut watcher =
        MosquittoSub::start(&observer, port, &["-t", "device/+/lwt", "-q", "1"]).await;
    let mut events = broker.lifecycle_events();

    // mosquitto_pub sends DISCONNECT after publishing.
    let output = mosquitto_pub(
        &device,
        port,
        &[
            "-t",
            "data/pi-2/t",
            "-m",
            "x",
            "-q",
            "1",
            "--will-topic",
            "device/pi-2/lwt",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    assert!(matches!(
        events.next_presence(WAIT).await,
        Some(LifecycleEvent::Connected(_))
    ));
    match events.next_presence(WAIT).await {
        Some(LifecycleEvent::Disconnected(event)) => {
            assert_eq!(
                event.disconnect_reason,
                Some(DisconnectReason::ClientInitiatedDisconnect)
            );
            assert_eq!(event.client_initiated_disconnect, Some(true));
        }
        other => panic!("expected disconnected, got {other:?}"),
    }
    assert_eq!(
        watcher.next_message(Duration::from_millis(700)).await,
        None,
        "no will after DISCONNECT"
    );
    watcher.kill9().await;
    broker.stop().await;
}

#[tokio::test]
async fn keep_alive_expiry_disconnects_a_silent_client_and_publishes_its_will() {
    // Test config: the keep-alive floor is 1 s, so mosquitto's minimum (5 s) is kept and the timeout is 7.5 s.
    let broker = TestBroker::start().await;
    let port = broker.port();
    let device = broker.device("sleepy");
    let observer = broker.observer("observer-ka");
    let mut watcher =
        MosquittoSub::start(&observer, port, &["-t", "device/+/lwt", "-q", "1"]).await;
    let mut events = broker.lifecycle_events();
    let mut sleepy = MosquittoSub::start(
        &device,
        port,
        &[
            "-t",
            "data/sleepy/cmd",
            "-k",
            "5",
            "--will-topic",
            "device/sleepy/lwt",
            "--will-payload",
            "ka",
        ],
    )
    .await;
    assert!(matches!(
        events.next_presence(WAIT).await,
        Some(LifecycleEvent::Connected(_))
    ));
    // The timer started at CONNACK, just before the connected event.
    let connected_at = std::time::Instant::now();
    sleepy.freeze();
    match events.next_presence(Duration::from_secs(12)).await {
        Some(LifecycleEvent::Disconnected(event)) => {
            assert_eq!(
                event.disconnect_reason,
                Some(DisconnectReason::MqttKeepAliveTimeout)
            );
        }
        other => panic!("expected a keep-alive disconnect, got {other:?}"),
    }
    let elapsed = connected_at.elapsed();
    assert!(
        elapsed >= Duration::from_millis(7000),
        "timed out after {elapsed:?}, before 1.5 x keep-alive"
    );
    let will = watcher
        .next_message(WAIT)
        .await
        .expect("will after keep-alive timeout");
    assert_eq!(will.payload, "ka");
    sleepy.kill9().await;
    watcher.kill9().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_revoked_certificate_cannot_connect() {
    let broker = TestBroker::start().await;
    let port = broker.port();
    let device = broker.device("stolen");
    let output = mosquitto_pub(&device, port, &["-t", "data/stolen/t", "-m", "before"]).await;
    assert!(output.status.success(), "{output:?}");
    broker
        .registry
        .set_certificate_status(
            device.certificate_id(),
            iot_emulator::registry::CertificateStatus::Revoked,
        )
        .unwrap();
    let output = mosquitto_pub(&device, port, &["-t", "data/stolen/t", "-m", "after"]).await;
    assert!(
        !output.status.success(),
        "a REVOKED certificate connected: {output:?}"
    );
    broker
        .registry
        .set_certificate_status(
            device.certificate_id(),
            iot_emulator::registry::CertificateStatus::Inactive,
        )
        .unwrap();
    let output = mosquitto_pub(&device, port, &["-t", "data/stolen/t", "-m", "after"]).await;
    assert!(
        !output.status.success(),
        "an INACTIVE certificate connected: {output:?}"
    );
    broker.stop().await;
}
