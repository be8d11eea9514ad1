//! Wire compatibility of the data-plane API with the real `aws-sdk-iotdataplane` client: every operation
//! and its errors, against the router served on 127.0.0.1 (reference 3.10).

use std::sync::Arc;

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::config::retry::RetryConfig;
use aws_sdk_iotdataplane::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_iotdataplane::error::ProvideErrorMetadata;
use aws_sdk_iotdataplane::primitives::Blob;
use aws_sdk_iotdataplane::types::PayloadFormatIndicator;
use base64::Engine;
use iot_emulator::broker::Broker;
use iot_emulator::dataplane::DataPlane;
use iot_emulator::shadow::{
    Publisher, QoS, RecordingPublisher, SHADOW_RESPONSE_QOS, ShadowService, ShadowStore,
};
use rumqttc::mqttbytes::QoS as MqttQos;
use serde_json::{Value, json};
use system_tests::broker_support::{RawClient, Received, TestBroker, WAIT};
use system_tests::http_support::ServedRouter;

struct Emulator {
    client: Client,
    publisher: Arc<RecordingPublisher>,
    served: ServedRouter,
}

impl Emulator {
    async fn start() -> Self {
        Self::start_over(None).await
    }

    /// The data plane over a real broker's sessions (the connection and retained-message operations).
    async fn start_over(broker: Option<Broker>) -> Self {
        let publisher = Arc::new(RecordingPublisher::new());
        let shadows = Arc::new(ShadowService::new(
            ShadowStore::in_memory(),
            publisher.clone() as Arc<dyn Publisher>,
        ));
        let mut plane = DataPlane::new(shadows, publisher.clone());
        if let Some(broker) = broker {
            plane = plane.with_broker(broker);
        }
        let router = plane.router();
        let served = ServedRouter::start(router).await;
        let config = aws_sdk_iotdataplane::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(lambda_init::https_client())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(served.endpoint())
            .retry_config(RetryConfig::disabled())
            .build();
        Self {
            client: Client::from_conf(config),
            publisher,
            served,
        }
    }

    async fn stop(self) {
        self.served.stop().await;
    }
}

fn json_of(blob: Option<&Blob>) -> Value {
    serde_json::from_slice(blob.unwrap().as_ref()).unwrap()
}

#[tokio::test]
async fn shadow_lifecycle_classic_and_named() {
    let emulator = Emulator::start().await;
    let client = &emulator.client;

    let updated = client
        .update_thing_shadow()
        .thing_name("pi-1")
        .payload(Blob::new(
            json!({"state": {"desired": {"led": "on"}}, "clientToken": "sdk"}).to_string(),
        ))
        .send()
        .await
        .unwrap();
    let accepted = json_of(updated.payload());
    assert_eq!(accepted["state"], json!({"desired": {"led": "on"}}));
    assert_eq!(accepted["version"], 1);
    assert_eq!(accepted["clientToken"], "sdk");

    // The HTTP update published the MQTT messages (reference 3.2).
    let published = emulator.publisher.take();
    let topics: Vec<_> = published.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "$aws/things/pi-1/shadow/update/accepted",
            "$aws/things/pi-1/shadow/update/documents",
            "$aws/things/pi-1/shadow/update/delta",
        ]
    );
    assert!(published.iter().all(|m| m.qos == SHADOW_RESPONSE_QOS));

    let got = client
        .get_thing_shadow()
        .thing_name("pi-1")
        .send()
        .await
        .unwrap();
    let document = json_of(got.payload());
    assert_eq!(document["state"]["delta"], json!({"led": "on"}));
    assert_eq!(document["version"], 1);

    client
        .update_thing_shadow()
        .thing_name("pi-1")
        .shadow_name("config")
        .payload(Blob::new(r#"{"state":{"reported":{"interval":30}}}"#))
        .send()
        .await
        .unwrap();
    client
        .update_thing_shadow()
        .thing_name("pi-1")
        .shadow_name("$meta:a_b-c")
        .payload(Blob::new(r#"{"state":{"reported":{"x":1}}}"#))
        .send()
        .await
        .unwrap();
    let named = client
        .get_thing_shadow()
        .thing_name("pi-1")
        .shadow_name("config")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(named.payload())["state"]["reported"],
        json!({"interval": 30})
    );

    let list = client
        .list_named_shadows_for_thing()
        .thing_name("pi-1")
        .send()
        .await
        .unwrap();
    assert_eq!(list.results(), ["$meta:a_b-c", "config"]);
    assert!(list.timestamp() > 0);
    assert_eq!(list.next_token(), None);
    let first_page = client
        .list_named_shadows_for_thing()
        .thing_name("pi-1")
        .page_size(1)
        .send()
        .await
        .unwrap();
    assert_eq!(first_page.results(), ["$meta:a_b-c"]);
    let second_page = client
        .list_named_shadows_for_thing()
        .thing_name("pi-1")
        .page_size(1)
        .next_token(first_page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second_page.results(), ["config"]);
    assert_eq!(second_page.next_token(), None);

    emulator.publisher.take();
    let deleted = client
        .delete_thing_shadow()
        .thing_name("pi-1")
        .shadow_name("config")
        .send()
        .await
        .unwrap();
    let deleted = json_of(Some(deleted.payload()));
    assert_eq!(deleted["version"], 1);
    assert_eq!(
        emulator.publisher.take()[0].topic,
        "$aws/things/pi-1/shadow/name/config/delete/accepted"
    );

    let error = client
        .get_thing_shadow()
        .thing_name("pi-1")
        .shadow_name("config")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_resource_not_found_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some("No shadow exists with name: 'pi-1~config'")
    );
    emulator.stop().await;
}

#[tokio::test]
async fn shadow_errors_have_the_sdk_exception_types() {
    let emulator = Emulator::start().await;
    let client = &emulator.client;

    let missing = client
        .get_thing_shadow()
        .thing_name("nobody")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    assert_eq!(
        missing.message(),
        Some("No shadow exists with name: 'nobody'")
    );

    let delete_missing = client
        .delete_thing_shadow()
        .thing_name("nobody")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(delete_missing.is_resource_not_found_exception());

    let invalid = client
        .update_thing_shadow()
        .thing_name("pi-1")
        .payload(Blob::new(r#"{"state":{"desired":{"a":1}},"#))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(invalid.is_invalid_request_exception(), "{invalid:?}");
    assert_eq!(invalid.message(), Some("Invalid JSON"));

    client
        .update_thing_shadow()
        .thing_name("pi-1")
        .payload(Blob::new(r#"{"state":{"reported":{"a":1}}}"#))
        .send()
        .await
        .unwrap();
    let conflict = client
        .update_thing_shadow()
        .thing_name("pi-1")
        .payload(Blob::new(r#"{"state":{"reported":{"a":2}},"version":5}"#))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(conflict.is_conflict_exception(), "{conflict:?}");
    assert_eq!(conflict.message(), Some("Version conflict"));

    // The merged state is over 8 KB (reference 3.9).
    let big = json!({"state": {"reported": {"blob": "x".repeat(9000)}}}).to_string();
    let too_large = client
        .update_thing_shadow()
        .thing_name("pi-1")
        .payload(Blob::new(big))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        too_large.is_request_entity_too_large_exception(),
        "{too_large:?}"
    );

    // A body over the 128 KB transport limit is refused the same way.
    let huge = vec![b' '; 200 * 1024];
    let too_large = client
        .update_thing_shadow()
        .thing_name("pi-1")
        .payload(Blob::new(huge))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        too_large.is_request_entity_too_large_exception(),
        "{too_large:?}"
    );

    let bad_name = client
        .get_thing_shadow()
        .thing_name("pi-1")
        .shadow_name("no spaces allowed")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(bad_name.is_invalid_request_exception(), "{bad_name:?}");

    let bad_page = client
        .list_named_shadows_for_thing()
        .thing_name("pi-1")
        .page_size(0)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(bad_page.is_invalid_request_exception(), "{bad_page:?}");

    // Only the failing requests' answers are missing from the MQTT side: one successful update.
    assert_eq!(emulator.publisher.take().len(), 2);
    emulator.stop().await;
}

#[tokio::test]
async fn publish_forwards_topic_payload_and_options() {
    let emulator = Emulator::start().await;
    let client = &emulator.client;

    for topic in [
        "devices/pi-1/cmd",
        "/last/will/topic",
        "$aws/things/pi-1/shadow/update",
        "a b/ü/%25",
    ] {
        client
            .publish()
            .topic(topic)
            .qos(1)
            .payload(Blob::new(format!("to {topic}")))
            .send()
            .await
            .unwrap();
    }
    let published = emulator.publisher.take();
    let topics: Vec<_> = published.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "devices/pi-1/cmd",
            "/last/will/topic",
            "$aws/things/pi-1/shadow/update",
            "a b/ü/%25"
        ]
    );
    assert_eq!(published[0].payload, b"to devices/pi-1/cmd");
    assert!(
        published
            .iter()
            .all(|m| m.qos == QoS::AtLeastOnce && !m.retain)
    );

    let correlation = base64::engine::general_purpose::STANDARD.encode(b"\x00\x01req");
    client
        .publish()
        .topic("devices/pi-1/state")
        .retain(true)
        .content_type("application/json")
        .response_topic("devices/pi-1/reply")
        .message_expiry(60)
        .correlation_data(correlation)
        .user_properties(r#"[{"deviceName":"alpha"},{"deviceCnt":"45"}]"#)
        .payload_format_indicator(PayloadFormatIndicator::Utf8Data)
        .payload(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    let message = emulator.publisher.take().remove(0);
    assert_eq!(message.qos, QoS::AtMostOnce, "qos defaults to 0");
    assert!(message.retain);
    let properties = message.properties;
    assert_eq!(properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        properties.response_topic.as_deref(),
        Some("devices/pi-1/reply")
    );
    assert_eq!(properties.message_expiry_secs, Some(60));
    assert_eq!(
        properties.correlation_data.as_deref(),
        Some(&b"\x00\x01req"[..])
    );
    assert_eq!(
        properties.user_properties,
        [
            ("deviceName".to_string(), "alpha".to_string()),
            ("deviceCnt".to_string(), "45".to_string())
        ]
    );
    assert_eq!(properties.payload_is_utf8, Some(true));

    // An empty retained payload is forwarded (it clears the retained message, reference 3.10).
    client
        .publish()
        .topic("devices/pi-1/state")
        .retain(true)
        .send()
        .await
        .unwrap();
    let cleared = emulator.publisher.take().remove(0);
    assert!(cleared.retain && cleared.payload.is_empty());

    for (topic, qos) in [("devices/+/cmd", 0), ("devices/#", 0), ("a/b", 2)] {
        let error = client
            .publish()
            .topic(topic)
            .qos(qos)
            .payload(Blob::new("x"))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(
            error.is_invalid_request_exception(),
            "{topic} {qos}: {error:?}"
        );
    }
    let too_deep = client
        .publish()
        .topic("a/b/c/d/e/f/g/h/i")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(too_deep.is_invalid_request_exception(), "{too_deep:?}");

    let too_large = client
        .publish()
        .topic("devices/pi-1/big")
        .payload(Blob::new(vec![b'x'; 128 * 1024 + 1]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(too_large.code(), Some("RequestEntityTooLargeException"));

    // Topics only AWS publishes on (reference 1.1, 3.2, 6.2): 403, and nothing reaches the broker.
    for topic in [
        "$aws/events/presence/connected/ghost",
        "$aws/things/pi-1/shadow/update/accepted",
        "$aws/things/pi-1/shadow/name/config/update/delta",
    ] {
        let forbidden = client
            .publish()
            .topic(topic)
            .payload(Blob::new(r#"{"clientId":"ghost"}"#))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(forbidden.code(), Some("ForbiddenException"), "{topic}");
    }
    assert!(emulator.publisher.take().is_empty());
    emulator.stop().await;
}

#[tokio::test]
async fn wrong_verb_is_method_not_allowed() {
    let emulator = Emulator::start().await;
    // The SDK never sends PUT here, so speak HTTP directly.
    let response = raw_request(&emulator, "PUT /things/pi-1/shadow HTTP/1.1").await;
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-amzn-errortype: methodnotallowedexception"),
        "{response}"
    );
    emulator.stop().await;
}

async fn raw_request(emulator: &Emulator, request_line: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = emulator.served.address.to_string();
    let mut stream = tokio::net::TcpStream::connect(&endpoint).await.unwrap();
    stream
        .write_all(
            format!("{request_line}\r\nHost: {endpoint}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn retained_messages_are_read_from_the_broker() {
    let broker = TestBroker::start().await;
    let emulator = Emulator::start_over(Some(broker.broker().clone())).await;
    let client = &emulator.client;
    let device = broker.device("lamp");
    let mut lamp = RawClient::connect(broker.port(), &device).await;
    for (topic, payload) in [("data/lamp/state", "on"), ("data/lamp/a", "12345")] {
        assert!(matches!(
            lamp.publish(topic, payload.as_bytes(), MqttQos::AtLeastOnce, true)
                .await,
            Received::Packet(_)
        ));
    }
    let before = iot_emulator::broker::now_millis();

    let got = client
        .get_retained_message()
        .topic("data/lamp/state")
        .send()
        .await
        .unwrap();
    assert_eq!(got.topic(), Some("data/lamp/state"));
    assert_eq!(got.payload().unwrap().as_ref(), b"on");
    assert_eq!(got.qos(), 1);
    assert!(got.last_modified_time() > 0 && got.last_modified_time() <= before);
    assert!(got.user_properties().is_none());

    let first = client
        .list_retained_messages()
        .max_results(1)
        .send()
        .await
        .unwrap();
    let summary = &first.retained_topics()[0];
    assert_eq!(
        (summary.topic(), summary.payload_size(), summary.qos()),
        (Some("data/lamp/a"), 5, 1)
    );
    let second = client
        .list_retained_messages()
        .next_token(first.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second.retained_topics()[0].topic(), Some("data/lamp/state"));
    assert_eq!(second.next_token(), None);

    let missing = client
        .get_retained_message()
        .topic("data/lamp/none")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    let bad_page = client
        .list_retained_messages()
        .max_results(201)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(bad_page.is_invalid_request_exception(), "{bad_page:?}");

    lamp.disconnect().await;
    emulator.stop().await;
    broker.stop().await;
}

#[tokio::test]
async fn connections_are_read_and_deleted_through_the_brokers_sessions() {
    let broker = TestBroker::start().await;
    let emulator = Emulator::start_over(Some(broker.broker().clone())).await;
    let client = &emulator.client;
    let device = broker.device("lamp");
    let mut lamp = RawClient::connect_options(broker.port(), &device, |connect| {
        connect.clean_session = false;
        connect.keep_alive = 45;
    })
    .await;
    lamp.subscribe_ok("data/lamp/cmd", MqttQos::AtLeastOnce)
        .await;
    lamp.subscribe_ok("device/lamp/+", MqttQos::AtMostOnce)
        .await;

    let connection = client
        .get_connection()
        .client_id("lamp")
        .send()
        .await
        .unwrap();
    assert!(connection.connected());
    assert!(!connection.clean_session());
    assert_eq!(connection.client_id(), Some("lamp"));
    assert_eq!(connection.thing_name(), Some("lamp"));
    assert_eq!(connection.keep_alive_duration(), 45);
    assert_eq!(connection.session_expiry(), 3600);
    assert!(connection.connected_since() > 0);
    assert_eq!(
        connection.source_ip(),
        None,
        "socket information only on request"
    );
    let with_socket = client
        .get_connection()
        .client_id("lamp")
        .include_socket_information(true)
        .send()
        .await
        .unwrap();
    assert_eq!(with_socket.source_ip(), Some("127.0.0.1"));
    assert_eq!(with_socket.target_port(), i32::from(broker.port()));
    assert!(with_socket.source_port() > 0);

    let page = client
        .list_subscriptions()
        .client_id("lamp")
        .max_results(1)
        .send()
        .await
        .unwrap();
    let filters =
        |output: &aws_sdk_iotdataplane::operation::list_subscriptions::ListSubscriptionsOutput| {
            output
                .subscriptions()
                .iter()
                .map(|summary| (summary.topic_filter().to_owned(), summary.qos()))
                .collect::<Vec<_>>()
        };
    assert_eq!(filters(&page), [("data/lamp/cmd".to_owned(), 1)]);
    let rest = client
        .list_subscriptions()
        .client_id("lamp")
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(filters(&rest), [("device/lamp/+".to_owned(), 0)]);
    assert_eq!(rest.next_token(), None);

    // DeleteConnection keeps the persistent session unless cleanSession=true (reference 3.10, 6.4).
    client
        .delete_connection()
        .client_id("lamp")
        .prevent_will_message(true)
        .send()
        .await
        .unwrap();
    lamp.expect_closed(WAIT).await;
    let after = wait_until_disconnected(client, "lamp").await;
    assert_eq!(after.disconnect_reason(), Some("API_INITIATED_DISCONNECT"));
    assert!(after.disconnected_since() > 0);
    assert!(!after.clean_session());
    let kept = client
        .list_subscriptions()
        .client_id("lamp")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.subscriptions().len(), 2, "offline persistent session");
    client
        .delete_connection()
        .client_id("lamp")
        .clean_session(true)
        .send()
        .await
        .unwrap();
    for error in [
        client
            .list_subscriptions()
            .client_id("lamp")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
            .code()
            .map(str::to_owned),
        client
            .delete_connection()
            .client_id("lamp")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
            .code()
            .map(str::to_owned),
        client
            .get_connection()
            .client_id("never-seen")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
            .code()
            .map(str::to_owned),
    ] {
        assert_eq!(error.as_deref(), Some("ResourceNotFoundException"));
    }
    let invalid = client
        .get_connection()
        .client_id("$reserved")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(invalid.is_invalid_request_exception(), "{invalid:?}");

    emulator.stop().await;
    broker.stop().await;
}

async fn wait_until_disconnected(
    client: &Client,
    client_id: &str,
) -> aws_sdk_iotdataplane::operation::get_connection::GetConnectionOutput {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let output = client
            .get_connection()
            .client_id(client_id)
            .send()
            .await
            .unwrap();
        if !output.connected() {
            return output;
        }
        assert!(tokio::time::Instant::now() < deadline, "still connected");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn direct_messages_reach_one_client_and_wait_for_its_puback() {
    let broker = TestBroker::start().await;
    let emulator = Emulator::start_over(Some(broker.broker().clone())).await;
    let client = emulator.client.clone();
    let device = broker.device("lamp");
    let mut lamp = RawClient::connect(broker.port(), &device).await;

    // No subscription needed; with confirmation the call returns after the client's PUBACK.
    let sender = client.clone();
    let sent = tokio::spawn(async move {
        sender
            .send_direct_message()
            .client_id("lamp")
            .topic("device/lamp/direct")
            .confirmation(true)
            .payload(Blob::new("hello"))
            .send()
            .await
    });
    let delivered = lamp.next_publish(WAIT).await.unwrap();
    assert_eq!(&delivered.topic[..], b"device/lamp/direct");
    assert_eq!(&delivered.payload[..], b"hello");
    assert_eq!(delivered.qos, MqttQos::AtLeastOnce);
    let output = sent.await.unwrap().unwrap();
    assert_eq!(output.message(), Some("OK"));

    // Without confirmation: QoS 0.
    client
        .send_direct_message()
        .client_id("lamp")
        .topic("device/lamp/direct")
        .payload(Blob::new("fire and forget"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lamp.next_publish(WAIT).await.unwrap().qos,
        MqttQos::AtMostOnce
    );

    // No PUBACK within the timeout: 504.
    let unacknowledged = client
        .send_direct_message()
        .client_id("lamp")
        .topic("device/lamp/direct")
        .confirmation(true)
        .timeout(1)
        .payload(Blob::new("ignored"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        unacknowledged.is_gateway_timeout_exception(),
        "{unacknowledged:?}"
    );

    // The receiver's iot:Receive still applies.
    let denied = client
        .send_direct_message()
        .client_id("lamp")
        .topic("data/other/x")
        .payload(Blob::new("x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(denied.is_forbidden_exception(), "{denied:?}");
    for (client_id, topic, expect_not_found) in [
        ("nobody", "device/nobody/x", true),
        ("lamp", "$aws/events/presence/connected/lamp", false),
        ("lamp", "device/lamp/#", false),
    ] {
        let error = client
            .send_direct_message()
            .client_id(client_id)
            .topic(topic)
            .payload(Blob::new("x"))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(
            error.is_resource_not_found_exception(),
            expect_not_found,
            "{client_id} {topic}: {error:?}"
        );
    }
    let bad_timeout = client
        .send_direct_message()
        .client_id("lamp")
        .topic("device/lamp/direct")
        .confirmation(true)
        .timeout(16)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        bad_timeout.is_invalid_request_exception(),
        "{bad_timeout:?}"
    );
    lamp.disconnect().await;
    emulator.stop().await;
    broker.stop().await;
}

/// Retained messages and persistent sessions survive a restart on the same state directory (reference 6.3,
/// 6.4): the retained message is served to an MQTT SUBSCRIBE and to GetRetainedMessage, the offline session
/// keeps its subscription and its queued QoS 1 message.
#[tokio::test]
async fn retained_messages_and_persistent_sessions_survive_a_restart() {
    use iot_emulator::broker::{Origin, Qos};

    let journal_dir = tempfile::tempdir().unwrap();
    let config = iot_emulator::broker::BrokerConfig {
        state_dir: Some(journal_dir.path().to_owned()),
        ..system_tests::broker_support::test_config()
    };
    let first = TestBroker::start_with(config.clone()).await;
    let device = first.device("lamp");
    let mut lamp = RawClient::connect_options(first.port(), &device, |connect| {
        connect.clean_session = false;
    })
    .await;
    lamp.subscribe_ok("data/lamp/cmd", MqttQos::AtLeastOnce)
        .await;
    assert!(matches!(
        lamp.publish("data/lamp/state", b"on", MqttQos::AtLeastOnce, true)
            .await,
        Received::Packet(_)
    ));
    lamp.disconnect().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while first.broker().is_connected("lamp") {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    first
        .broker()
        .publish_internal(
            "data/lamp/cmd",
            "while you were away",
            Qos::AtLeastOnce,
            false,
            Origin::Service {
                name: "test".into(),
            },
        )
        .unwrap();

    // Restart: same registry, CA and broker state directory, a new process-worth of broker.
    let TestBroker {
        running,
        registry,
        ca,
        state,
    } = first;
    running.shutdown().await;
    let running = iot_emulator::broker::Broker::start(config, registry.clone(), &ca)
        .await
        .unwrap();
    let second = TestBroker {
        running,
        registry,
        ca,
        state,
    };
    let emulator = Emulator::start_over(Some(second.broker().clone())).await;

    let retained = emulator
        .client
        .get_retained_message()
        .topic("data/lamp/state")
        .send()
        .await
        .unwrap();
    assert_eq!(retained.payload().unwrap().as_ref(), b"on");
    let subscriptions = emulator
        .client
        .list_subscriptions()
        .client_id("lamp")
        .send()
        .await
        .unwrap();
    assert_eq!(
        subscriptions.subscriptions()[0].topic_filter(),
        "data/lamp/cmd",
        "the offline session was restored"
    );
    let offline = emulator
        .client
        .get_connection()
        .client_id("lamp")
        .send()
        .await
        .unwrap();
    assert!(!offline.connected() && !offline.clean_session());
    assert_eq!(offline.session_expiry(), 3600);

    let mut connect = rumqttc::mqttbytes::v4::Connect::new("lamp");
    connect.clean_session = false;
    connect.keep_alive = 60;
    let (client, connack) = RawClient::connect_with(second.port(), &device, connect).await;
    match connack {
        Received::Packet(rumqttc::mqttbytes::v4::Packet::ConnAck(ack)) => {
            assert!(ack.session_present, "the persistent session is resumed")
        }
        other => panic!("{other:?}"),
    }
    let mut lamp = client.unwrap();
    let queued = lamp.next_publish(WAIT).await.unwrap();
    assert_eq!(&queued.topic[..], b"data/lamp/cmd");
    assert_eq!(&queued.payload[..], b"while you were away");
    lamp.subscribe_ok("data/lamp/state", MqttQos::AtLeastOnce)
        .await;
    let retained = lamp.next_publish(WAIT).await.unwrap();
    assert!(retained.retain, "sent as a retained message on SUBSCRIBE");
    assert_eq!(&retained.payload[..], b"on");

    lamp.disconnect().await;
    emulator.stop().await;
    second.stop().await;
}
