//! The contract's device policy (architecture.md section 3), as plain JSON and as the CloudFormation CDK emits,
//! against every MQTT action the device agent needs and the ones it must never get.

use iot_policy::{
    ArnScope, CompiledPolicy, ConnectionContext, Decision, PolicyDocument, PolicySet, ThingContext,
    actions, load_policies_from_template,
};

const THING_A: &str = "ratchet";
const THING_B: &str = "sprocket";

fn plain_policy() -> (PolicySet, ArnScope) {
    let text = include_str!("fixtures/device-policy.json");
    let document = PolicyDocument::from_json_str(text).unwrap();
    (
        PolicySet::new(vec![CompiledPolicy::compile("device", &document)]),
        ArnScope::new("us-east-1", "123456789012"),
    )
}

fn template_policy() -> (PolicySet, ArnScope) {
    let text = include_str!("fixtures/device-policy.template.json");
    let policies = load_policies_from_template(text, "111122223333", "eu-west-1").unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].0, "iot-presence-device");
    let set = PolicySet::from_documents(
        policies
            .iter()
            .map(|(name, document)| (name.as_str(), document)),
    );
    (set, ArnScope::new("eu-west-1", "111122223333"))
}

/// `(action, resource ARN)` pairs for everything the agent of `thing` does.
fn agent_needs(arns: &ArnScope, thing: &str) -> Vec<(&'static str, String)> {
    let shadow = format!("$aws/things/{thing}/shadow");
    let mut needs = vec![
        (actions::CONNECT, arns.client(thing)),
        (
            actions::PUBLISH,
            arns.topic(&format!("data/{thing}/temperature")),
        ),
        (
            actions::PUBLISH,
            arns.topic(&format!("data/{thing}/vibration")),
        ),
        // The will topic is checked at CONNECT (reference 2.2).
        (actions::PUBLISH, arns.topic(&format!("device/{thing}/lwt"))),
        (actions::PUBLISH, arns.topic(&format!("{shadow}/get"))),
        (actions::PUBLISH, arns.topic(&format!("{shadow}/update"))),
    ];
    for response in [
        "get/accepted",
        "get/rejected",
        "update/accepted",
        "update/rejected",
        "update/delta",
    ] {
        let topic = format!("{shadow}/{response}");
        needs.push((actions::SUBSCRIBE, arns.topic_filter(&topic)));
        needs.push((actions::RECEIVE, arns.topic(&topic)));
    }
    needs
}

fn assert_decision(
    set: &PolicySet,
    action: &str,
    resource: &str,
    context: &ConnectionContext,
    expected: Decision,
) {
    let evaluation = set.evaluate(action, resource, context);
    assert_eq!(
        evaluation.decision, expected,
        "{action} {resource} as client {:?}",
        context.client_id
    );
    // The allocation-free path must agree with the explaining one.
    assert_eq!(
        set.decide(action, resource, context),
        expected,
        "decide: {action} {resource}"
    );
}

fn check_matrix(set: &PolicySet, arns: &ArnScope) {
    let device_a = ConnectionContext::attached_thing(THING_A);

    for (action, resource) in agent_needs(arns, THING_A) {
        assert_decision(set, action, &resource, &device_a, Decision::Allow);
    }

    // Everything thing B's agent needs stays out of thing A's reach (Connect included: A's connection asks for
    // client/B only if it connects as B, checked below).
    for (action, resource) in agent_needs(arns, THING_B) {
        assert_decision(set, action, &resource, &device_a, Decision::ImplicitDeny);
    }

    let shadow_a = format!("$aws/things/{THING_A}/shadow");
    let denied_for_a = [
        (actions::SUBSCRIBE, arns.topic_filter("#")),
        (actions::SUBSCRIBE, arns.topic_filter("+/#")),
        (
            actions::SUBSCRIBE,
            arns.topic_filter(&format!("{shadow_a}/#")),
        ),
        (
            actions::SUBSCRIBE,
            arns.topic_filter("$aws/things/+/shadow/update/delta"),
        ),
        (
            actions::SUBSCRIBE,
            arns.topic_filter(&format!("data/{THING_A}/#")),
        ),
        (
            actions::RECEIVE,
            arns.topic(&format!("data/{THING_B}/temperature")),
        ),
        // The connectivity named shadow is cloud-owned.
        (
            actions::PUBLISH,
            arns.topic(&format!("{shadow_a}/name/connectivity/update")),
        ),
        (
            actions::PUBLISH,
            arns.topic(&format!("{shadow_a}/name/connectivity/delete")),
        ),
        (actions::PUBLISH, arns.topic(&format!("{shadow_a}/delete"))),
        (
            actions::SUBSCRIBE,
            arns.topic_filter(&format!("{shadow_a}/name/connectivity/update/delta")),
        ),
        // HTTP shadow actions and retained publishes are not part of the contract.
        (actions::UPDATE_THING_SHADOW, arns.thing(THING_A)),
        (actions::GET_THING_SHADOW, arns.thing(THING_A)),
        (
            actions::RETAIN_PUBLISH,
            arns.topic(&format!("data/{THING_A}/temperature")),
        ),
        // Lifecycle topics are AWS's to publish.
        (
            actions::PUBLISH,
            arns.topic(&format!("$aws/events/presence/disconnected/{THING_A}")),
        ),
    ];
    for (action, resource) in denied_for_a {
        assert_decision(set, action, &resource, &device_a, Decision::ImplicitDeny);
    }

    // Thing A's certificate connecting with another client id: the thing variables don't resolve and
    // IsAttached is false (reference 4.4), so neither client/B nor anything else is allowed.
    let mut as_b = ConnectionContext::new(THING_B).with_thing(ThingContext::named(THING_A));
    assert!(!as_b.is_attached());
    for (action, resource) in agent_needs(arns, THING_B) {
        assert_decision(set, action, &resource, &as_b, Decision::ImplicitDeny);
    }
    as_b.client_id = "someone-else".to_owned();
    assert_decision(
        set,
        actions::CONNECT,
        &arns.client("someone-else"),
        &as_b,
        Decision::ImplicitDeny,
    );

    // A certificate that is not attached to any thing gets nothing, even with the right client id.
    let unattached = ConnectionContext::new(THING_A);
    for (action, resource) in agent_needs(arns, THING_A) {
        assert_decision(set, action, &resource, &unattached, Decision::ImplicitDeny);
    }

    // Thing B, connected as itself, gets its own resources (the policy is shared by every device).
    let device_b = ConnectionContext::attached_thing(THING_B);
    for (action, resource) in agent_needs(arns, THING_B) {
        assert_decision(set, action, &resource, &device_b, Decision::Allow);
    }
}

#[test]
fn plain_json_device_policy_matrix() {
    let (set, arns) = plain_policy();
    check_matrix(&set, &arns);
}

#[test]
fn cloudformation_device_policy_matrix() {
    let (set, arns) = template_policy();
    check_matrix(&set, &arns);
}

#[test]
fn both_fixtures_hold_the_same_policy() {
    let plain = PolicyDocument::from_json_str(include_str!("fixtures/device-policy.json")).unwrap();
    let policies = load_policies_from_template(
        include_str!("fixtures/device-policy.template.json"),
        "123456789012",
        "us-east-1",
    )
    .unwrap();
    assert_eq!(policies[0].1, plain);
}

#[test]
fn wrong_region_or_account_arns_do_not_match() {
    let (set, _) = plain_policy();
    let elsewhere = ArnScope::new("eu-west-1", "123456789012");
    let device_a = ConnectionContext::attached_thing(THING_A);
    assert_decision(
        &set,
        actions::CONNECT,
        &elsewhere.client(THING_A),
        &device_a,
        Decision::ImplicitDeny,
    );
}

#[test]
fn an_added_deny_wins_over_the_device_policy() {
    let (mut set, arns) = plain_policy();
    let quarantine = PolicyDocument::from_json_str(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish",
            "Resource":"arn:aws:iot:us-east-1:123456789012:topic/data/*"}]}"#,
    )
    .unwrap();
    set.push(CompiledPolicy::compile("quarantine", &quarantine));
    let device_a = ConnectionContext::attached_thing(THING_A);
    let evaluation = set.evaluate(
        actions::PUBLISH,
        &arns.topic(&format!("data/{THING_A}/temperature")),
        &device_a,
    );
    assert_eq!(evaluation.decision, Decision::ExplicitDeny);
    assert_eq!(evaluation.reasons.len(), 1);
    assert_eq!(
        set.policies()[evaluation.reasons[0].policy_index].name(),
        "quarantine"
    );
    assert_decision(
        &set,
        actions::PUBLISH,
        &arns.topic(&format!("$aws/things/{THING_A}/shadow/update")),
        &device_a,
        Decision::Allow,
    );
}
