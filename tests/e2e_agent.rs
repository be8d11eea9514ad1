//! End to end with the real `device-agent` binary (architecture section 4, steps 3 and 4): the agent connects
//! over mutual TLS with a certificate from the emulator's CA, follows `desired.MOTOR` set over HTTP, and when
//! it is killed with SIGKILL its Last Will and the lifecycle event become disconnect records and the
//! connectivity shadow says disconnected.
//!
//! Runs the function binaries and the agent's (see `system_tests::binaries`).

use std::time::Duration;

use serde_json::Value;
use system_tests::stack::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(30);

fn records_by_source(records: &[Value], source: &str) -> usize {
    records
        .iter()
        .filter(|record| record["source"] == source)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_agent_follows_desired_and_its_kill_is_recorded() {
    let stack = Stack::start().await;
    let device = stack.device("ratchet");
    let mut agent = stack.start_agent(&device);

    eventually(
        "the agent's connection in the connectivity shadow",
        WAIT,
        async || {
            let shadow = stack.shadow("ratchet", Some("connectivity")).await?;
            (shadow["state"]["reported"]["connected"] == true).then_some(())
        },
    )
    .await;
    for motor in ["ON", "OFF"] {
        let document = format!(r#"{{"state":{{"desired":{{"MOTOR":"{motor}"}}}}}}"#);
        stack
            .data
            .update_thing_shadow()
            .thing_name("ratchet")
            .payload(aws_sdk_iotdataplane::primitives::Blob::new(document))
            .send()
            .await
            .unwrap();
        eventually(&format!("reported.MOTOR = {motor}"), WAIT, async || {
            let shadow = stack.shadow("ratchet", None).await?;
            (shadow["state"]["reported"]["MOTOR"] == motor).then_some(())
        })
        .await;
    }

    agent.kill9().await; // SIGKILL: no DISCONNECT, so the broker publishes the will.
    let records = eventually("a will record and a lifecycle record", WAIT, async || {
        let records = stack.log_events("/iot/device-disconnects", "ratchet").await;
        (records_by_source(&records, "will") == 1 && records_by_source(&records, "lifecycle") == 1)
            .then_some(records)
    })
    .await;
    let will = records
        .iter()
        .find(|record| record["source"] == "will")
        .unwrap();
    assert_eq!(will["reason"], "LAST_WILL");
    assert!(
        will["agentSession"].as_str().is_some_and(|s| !s.is_empty()),
        "{will}"
    );
    let reported = eventually("connected = false", WAIT, async || {
        let shadow = stack.shadow("ratchet", Some("connectivity")).await?;
        let reported = shadow["state"]["reported"].clone();
        (reported["connected"] == false).then_some(reported)
    })
    .await;
    assert_eq!(reported["disconnectReason"], "CONNECTION_LOST");
    stack.stop().await;
}
