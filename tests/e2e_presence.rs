//! End to end (architecture sections 3 and 4): a device over MQTT/mTLS → the broker → the template's rules →
//! the real `disconnect-recorder` and `shadow-reconciler` binaries behind the Lambda Runtime API → records in
//! the emulator's CloudWatch Logs and shadows, read back with the AWS SDKs.
//!
//! Runs the function binaries (see `system_tests::binaries`).

use std::time::Duration;

use base64::Engine as _;
use iot_emulator::broker::LifecycleFaults;
use iot_events::RuleErrorPayload;
use rumqttc::mqttbytes::QoS;
use serde_json::{Value, json};
use system_tests::broker_support::{RawClient, will};
use system_tests::stack::{self, Stack, eventually};

const RECORDS: &str = "/iot/device-disconnects";
const WAIT: Duration = Duration::from_secs(20);

fn will_payload(thing: &str, session: &str) -> String {
    json!({"thing": thing, "agentSession": session, "connectedAt": 1_700_000_000_000_i64,
           "agentVersion": "e2e", "reason": "unexpected"})
    .to_string()
}

fn by_source<'a>(records: &'a [Value], source: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|record| record["source"] == source)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_reaches_disconnect_recorder_and_is_readable_with_get_log_events() {
    let stack = Stack::start().await;
    let device = stack.device("ratchet");
    let client = RawClient::connect_options(stack.port(), &device, |connect| {
        connect.last_will = Some(will(
            "device/ratchet/lwt",
            &will_payload("ratchet", "s-1"),
            false,
        ));
    })
    .await;
    client.drop_connection();

    let records = eventually("a will record and a lifecycle record", WAIT, async || {
        let records = stack.log_events(RECORDS, "ratchet").await;
        let done =
            !by_source(&records, "will").is_empty() && !by_source(&records, "lifecycle").is_empty();
        done.then_some(records)
    })
    .await;
    let will_record = by_source(&records, "will")[0];
    assert_eq!(will_record["schema"], "iot.disconnect.v1");
    assert_eq!(will_record["thing"], "ratchet");
    assert_eq!(will_record["clientId"], "ratchet", "clientid() of the rule");
    assert_eq!(will_record["reason"], "LAST_WILL");
    assert_eq!(will_record["agentSession"], "s-1");
    assert_eq!(will_record["expected"], false);
    let lifecycle = by_source(&records, "lifecycle")[0];
    assert_eq!(lifecycle["reason"], "CONNECTION_LOST");
    assert_eq!(lifecycle["clientInitiated"], false);
    assert_eq!(lifecycle["principal"], device.certificate_id());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_disconnect_records_client_initiated_and_no_will() {
    let stack = Stack::start().await;
    let device = stack.device("ratchet");
    let client = RawClient::connect_options(stack.port(), &device, |connect| {
        connect.last_will = Some(will(
            "device/ratchet/lwt",
            &will_payload("ratchet", "s-2"),
            false,
        ));
    })
    .await;
    client.disconnect().await;

    let records = eventually("the lifecycle record", WAIT, async || {
        let records = stack.log_events(RECORDS, "ratchet").await;
        (!by_source(&records, "lifecycle").is_empty()).then_some(records)
    })
    .await;
    let lifecycle = by_source(&records, "lifecycle")[0];
    assert_eq!(lifecycle["reason"], "CLIENT_INITIATED_DISCONNECT");
    assert_eq!(lifecycle["clientInitiated"], true);
    assert_eq!(lifecycle["expected"], true);
    // The will would have gone through the same rule and function within this time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records = stack.log_events(RECORDS, "ratchet").await;
    assert!(by_source(&records, "will").is_empty(), "{records:?}");
    assert_eq!(records.len(), 1, "{records:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectivity_shadow_is_right_despite_duplicated_and_reordered_events() {
    let stack = Stack::start().await;
    stack
        .emulator
        .broker()
        .set_lifecycle_faults(LifecycleFaults {
            duplicate_probability: 0.5,
            reorder_probability: 0.5,
            max_hold: Duration::from_millis(300),
            seed: Some(11),
        });
    let mut events = stack
        .emulator
        .broker()
        .subscribe_internal("$aws/events/presence/+/ratchet")
        .unwrap();
    let device = stack.device("ratchet");
    for _ in 0..3 {
        let client = RawClient::connect(stack.port(), &device).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = RawClient::connect(stack.port(), &device).await;

    // The true last event is the connect with the highest versionNumber.
    let mut highest = 0;
    let mut duplicates = 0;
    let mut delivered = 0;
    let mut seen = std::collections::HashSet::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await
    {
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        highest = highest.max(event["versionNumber"].as_u64().unwrap());
        delivered += 1;
        if !seen.insert(message.payload.clone()) {
            duplicates += 1;
        }
    }
    assert!(duplicates > 0, "the fault injection duplicated nothing");

    let reported = eventually(
        "connected=true at the last versionNumber",
        WAIT,
        async || {
            let shadow = stack.shadow("ratchet", Some("connectivity")).await?;
            let reported = shadow["state"]["reported"].clone();
            (reported["connected"] == true && reported["versionNumber"] == highest)
                .then_some(reported)
        },
    )
    .await;
    assert_eq!(reported["clientId"], "ratchet");

    last.drop_connection();
    let reported = eventually("connected=false after the drop", WAIT, async || {
        let shadow = stack.shadow("ratchet", Some("connectivity")).await?;
        let reported = shadow["state"]["reported"].clone();
        (reported["connected"] == false).then_some(reported)
    })
    .await;
    assert_eq!(reported["disconnectReason"], "CONNECTION_LOST");
    assert_eq!(reported["versionNumber"], highest);
    // Instances stay warm and serve event after event: Lambda scales out for overlapping events, so a burst
    // may start a few, but never one per event.
    for function in ["shadow-reconciler", "disconnect-recorder"] {
        let started = stack.emulator.lambda().cold_starts(function).unwrap();
        assert!(
            (1..delivered / 2).contains(&started),
            "{function}: {started} instances for {delivered} events"
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_works_over_mqtt_and_http_and_satisfied_desired_is_cleared() {
    let stack = Stack::start().await;
    let device = stack.device("ratchet");
    let mut client = RawClient::connect(stack.port(), &device).await;
    client
        .subscribe_ok("$aws/things/ratchet/shadow/update/delta", QoS::AtLeastOnce)
        .await;
    client
        .subscribe_ok(
            "$aws/things/ratchet/shadow/update/accepted",
            QoS::AtLeastOnce,
        )
        .await;

    // An app sets desired over HTTP; the device gets the delta over MQTT.
    stack
        .data
        .update_thing_shadow()
        .thing_name("ratchet")
        .payload(aws_sdk_iotdataplane::primitives::Blob::new(
            br#"{"state":{"desired":{"MOTOR":"ON"}}}"#.to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let delta = loop {
        let publish = client.next_publish(Duration::from_secs(5)).await.unwrap();
        if publish.topic.ends_with(b"/delta") {
            break publish;
        }
    };
    let delta: Value = serde_json::from_slice(&delta.payload).unwrap();
    assert_eq!(delta["state"], json!({"MOTOR": "ON"}));

    // The device reports over MQTT; the ShadowDocuments rule has shadow-reconciler clear desired.MOTOR.
    client
        .publish(
            "$aws/things/ratchet/shadow/update",
            br#"{"state":{"reported":{"MOTOR":"ON"}}}"#,
            QoS::AtLeastOnce,
            false,
        )
        .await;
    let shadow = eventually("desired.MOTOR cleared", WAIT, async || {
        let shadow = stack.shadow("ratchet", None).await?;
        (shadow["state"]["reported"]["MOTOR"] == "ON"
            && shadow["state"]["desired"].get("MOTOR").is_none())
        .then_some(shadow)
    })
    .await;
    assert!(shadow["state"].get("delta").is_none(), "{shadow}");
    client.disconnect().await;
    stack.stop().await;
}

/// A template with one more log group and two more rules on the device's telemetry topic.
fn template_with_extra_rules() -> Value {
    let mut template = stack::template_json();
    let resources = template["Resources"].as_object_mut().unwrap();
    resources.insert(
        "MirrorLogGroup".into(),
        json!({"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/test/mirror"}}),
    );
    let error_action = json!({"CloudwatchLogs": {"LogGroupName": {"Ref": "RulesErrorLogGroup3A4EFA15"}, "RoleArn": "r"}});
    resources.insert(
        "OrphanRule".into(),
        json!({"Type": "AWS::IoT::TopicRule", "Properties": {"RuleName": "Orphan", "TopicRulePayload": {
            "Sql": "SELECT * FROM 'data/+/temperature'", "AwsIotSqlVersion": "2016-03-23",
            "Actions": [{"Lambda": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:no-such-function"}}],
            "ErrorAction": error_action.clone()}}}),
    );
    resources.insert(
        "MirrorRule".into(),
        json!({"Type": "AWS::IoT::TopicRule", "Properties": {"RuleName": "Mirror", "TopicRulePayload": {
            "Sql": "SELECT temp, clientid() AS who FROM 'data/+/temperature'", "AwsIotSqlVersion": "2016-03-23",
            "Actions": [{"Republish": {"Topic": "mirror/${topic(2)}/${temp}", "Qos": 1}},
                        {"CloudwatchLogs": {"LogGroupName": {"Ref": "MirrorLogGroup"}, "RoleArn": "r"}}],
            "ErrorAction": error_action.clone()}}}),
    );
    resources.insert(
        "RelayRule".into(),
        json!({"Type": "AWS::IoT::TopicRule", "Properties": {"RuleName": "Relay", "TopicRulePayload": {
            "Sql": "SELECT state FROM 'relay/+'", "AwsIotSqlVersion": "2016-03-23",
            "Actions": [{"Republish": {"Topic": "$$aws/things/${topic(2)}/shadow/update", "Qos": 1}}],
            "ErrorAction": error_action}}}),
    );
    template
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_publish_and_a_republish_to_a_shadow_topic_update_the_shadow() {
    let stack = Stack::start_with(template_with_extra_rules(), Duration::from_millis(200)).await;
    stack
        .data
        .publish()
        .topic("relay/widget")
        .qos(1)
        .payload(aws_sdk_iotdataplane::primitives::Blob::new(
            br#"{"state":{"reported":{"relayed":true}},"ignored":1}"#.to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let shadow = eventually("the relayed shadow update", WAIT, async || {
        stack.shadow("widget", None).await
    })
    .await;
    assert_eq!(shadow["state"], json!({"reported": {"relayed": true}}));
    assert_eq!(shadow["version"], 1);
    assert!(
        stack
            .log_events("/iot/rule-errors", "Relay")
            .await
            .is_empty()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_cannot_invoke_its_function_fires_the_error_action() {
    let stack = Stack::start_with(template_with_extra_rules(), Duration::from_millis(200)).await;
    let mut mirrored = stack
        .emulator
        .broker()
        .subscribe_internal("mirror/#")
        .unwrap();
    let device = stack.device("ratchet");
    let mut client = RawClient::connect(stack.port(), &device).await;
    let payload = br#"{"thing":"ratchet","ts":1,"temp":41.5,"unit":"C"}"#;
    client
        .publish("data/ratchet/temperature", payload, QoS::AtLeastOnce, false)
        .await;

    let errors = eventually("the Orphan rule's error record", WAIT, async || {
        let events = stack.log_events("/iot/rule-errors", "Orphan").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    let error: RuleErrorPayload = serde_json::from_value(errors[0].clone()).unwrap();
    assert_eq!(error.rule_name, "Orphan");
    assert_eq!(error.topic, "data/ratchet/temperature");
    assert_eq!(error.client_id.as_deref(), Some("ratchet"));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&error.base64_original_payload)
            .unwrap(),
        payload
    );
    assert_eq!(error.failures.len(), 1);
    assert_eq!(error.failures[0].failed_action, "LambdaAction");
    assert_eq!(error.failures[0].failed_resource, "no-such-function");
    assert!(
        error.failures[0]
            .error_message
            .contains("Function not found"),
        "{:?}",
        error.failures[0]
    );

    // The other rule's republish (substitution template) and CloudWatch Logs actions ran, and did not fail.
    let message = tokio::time::timeout(WAIT, mirrored.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.topic, "mirror/ratchet/41.5");
    let mirrored: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(mirrored, json!({"temp": 41.5, "who": "ratchet"}));
    let logged = eventually("the Mirror log event", WAIT, async || {
        let events = stack.log_events("/test/mirror", "Mirror").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(logged, vec![json!({"temp": 41.5, "who": "ratchet"})]);
    assert!(
        stack
            .log_events("/iot/rule-errors", "Mirror")
            .await
            .is_empty()
    );
    client.disconnect().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_function_is_retried_then_recorded_as_a_failure() {
    let mut template = stack::template_json();
    template["Resources"]["FunctionsDisconnectRecorderFunction90F19B83"]["Properties"]["Environment"]
        ["Variables"]["DISCONNECT_LOG_GROUP"] = json!("/no/such/group");
    let stack = Stack::start_with(template, Duration::from_millis(100)).await;
    let device = stack.device("ratchet");
    let mut client = RawClient::connect(stack.port(), &device).await;
    client
        .publish(
            "device/ratchet/lwt",
            will_payload("ratchet", "s-3").as_bytes(),
            QoS::AtLeastOnce,
            false,
        )
        .await;

    let failures = eventually(
        "the failure record of disconnect-recorder",
        WAIT,
        async || {
            let events = stack
                .log_events(
                    iot_emulator::lambda::FAILURE_LOG_GROUP,
                    "disconnect-recorder",
                )
                .await;
            (!events.is_empty()).then_some(events)
        },
    )
    .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let record = &failures[0];
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(
        record["requestContext"]["approximateInvokeCount"], 3,
        "1 attempt + MaximumRetryAttempts 2"
    );
    assert_eq!(record["requestPayload"]["agentSession"], "s-3");
    assert_eq!(record["requestPayload"]["thing"], "ratchet");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert!(
        record["responsePayload"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("/no/such/group"),
        "the function's own error: {record}"
    );
    assert!(
        record["destination"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sqs:"),
        "{record}"
    );
    // A function error does not cost the warm instance: the retries ran in a warm process, not a new one
    // each (an overlapping lifecycle event may have started a second instance).
    let started = stack
        .emulator
        .lambda()
        .cold_starts("disconnect-recorder")
        .unwrap();
    assert!(
        (1..3).contains(&started),
        "{started} instances for 3 attempts"
    );
    // Lambda errors are not the IoT error action's business (reference 5.4).
    assert!(
        stack
            .log_events("/iot/rule-errors", "DisconnectWill")
            .await
            .is_empty()
    );
    client.disconnect().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_will_goes_to_the_rule_error_action() {
    let stack = Stack::start().await;
    let device = stack.device("ratchet");
    let client = RawClient::connect_options(stack.port(), &device, |connect| {
        connect.last_will = Some(will("device/ratchet/lwt", "gone", false));
    })
    .await;
    client.drop_connection();

    // `SELECT *, topic(2) AS thing, ...` cannot run on a binary payload (reference 5.4): the Lambda
    // action fails and the error action keeps the original in base64 (docs/functions.md).
    let errors = eventually("the DisconnectWill error record", WAIT, async || {
        let events = stack.log_events("/iot/rule-errors", "DisconnectWill").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    let error: RuleErrorPayload = serde_json::from_value(errors[0].clone()).unwrap();
    assert_eq!(error.topic, "device/ratchet/lwt");
    assert_eq!(error.base64_original_payload, "Z29uZQ==");
    assert_eq!(error.failures[0].failed_action, "LambdaAction");
    assert_eq!(error.failures[0].failed_resource, "disconnect-recorder");
    // The lifecycle record still arrives; no will record does.
    let records = eventually("the lifecycle record", WAIT, async || {
        let records = stack.log_events(RECORDS, "ratchet").await;
        (!by_source(&records, "lifecycle").is_empty()).then_some(records)
    })
    .await;
    assert!(by_source(&records, "will").is_empty(), "{records:?}");
    stack.stop().await;
}

/// A forged lifecycle event through HTTP Publish (issue 12): AWS alone publishes on `$aws/events/...`
/// (reference 1.1, 6.2), so the data plane answers 403 and neither the presence rule nor the reconciler runs:
/// a thing that never connected is not shown as connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_connected_event_over_http_is_forbidden_and_reaches_no_rule() {
    let stack = Stack::start().await;
    let forged = json!({"clientId": "ghost", "timestamp": 1_700_000_000_000_i64, "eventType": "connected",
                        "sessionIdentifier": "s", "principalIdentifier": "p", "versionNumber": 0});
    let error = stack
        .data
        .publish()
        .topic("$aws/events/presence/connected/ghost")
        .qos(1)
        .payload(aws_sdk_iotdataplane::primitives::Blob::new(
            forged.to_string().into_bytes(),
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    // Publish's model lists no ForbiddenException, so the SDK reports it by code (an unhandled error).
    assert_eq!(
        aws_sdk_iotdataplane::error::ProvideErrorMetadata::code(&error),
        Some("ForbiddenException"),
        "{error:?}"
    );
    // The reconciler would have written the shadow well within this time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(stack.shadow("ghost", Some("connectivity")).await.is_none());
    assert_eq!(
        stack.emulator.lambda().cold_starts("shadow-reconciler"),
        Some(0),
        "the reconciler was never invoked"
    );
    stack.stop().await;
}
