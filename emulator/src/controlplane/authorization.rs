//! TestAuthorization (`POST /test-authorization?clientId=`): the principal's policies (the default version of
//! each attached policy, minus `policyNamesToSkip`, plus `policyNamesToAdd`) evaluated by `iot-policy`, the
//! evaluator the broker uses, in the connection context the broker would build for that certificate and
//! client id: the certificate's policy variables and, when a thing is attached and the client id names it
//! (or the attachment is exclusive), `iot:Connection.Thing.*` (reference 4.4).
//!
//! AWS's answer per `authInfo`: `authDecision` (ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY) and the policies that
//! allowed, explicitly denied or did neither. What AWS does not tell is added as `emulatorExplanation`, a
//! member botocore and the SDKs ignore: which statements decided, for each resource, with their text.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;
use iot_policy::{
    CompiledPolicy, ConnectionContext, Decision, Evaluation, PolicyDocument, actions,
    evaluate_policies,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ControlPlane;
use super::arns::certificate_id;
use super::error::ControlPlaneError;
use super::policies::policy_summary;
use super::wire::{AwsJson, AwsQuery, ok_json};
use crate::identity;
use crate::registry::Page;

/// `AuthInfos`: 1 to 10 per request.
const MAX_AUTH_INFOS: usize = 10;
/// `Resource`: at most 2,048 characters.
const MAX_RESOURCE_CHARS: usize = 2048;
/// AWS attaches at most 10 policies to a certificate; reading more pages than this would be a registry bug,
/// so the listing stops here rather than loop.
const MAX_ATTACHED_POLICY_PAGES: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TestAuthorizationQuery {
    client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TestAuthorizationRequest {
    principal: Option<String>,
    cognito_identity_pool_id: Option<String>,
    auth_infos: Option<Vec<AuthInfo>>,
    #[serde(default)]
    policy_names_to_add: Vec<String>,
    #[serde(default)]
    policy_names_to_skip: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    action_type: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

/// One policy as evaluated: its default version compiled, and its document for quoting statements.
struct EvaluatedPolicy {
    name: String,
    version_id: String,
    document: Value,
    compiled: CompiledPolicy,
}

fn action_name(action_type: Option<&str>) -> Result<&'static str, ControlPlaneError> {
    match action_type {
        Some("PUBLISH") => Ok(actions::PUBLISH),
        Some("SUBSCRIBE") => Ok(actions::SUBSCRIBE),
        Some("RECEIVE") => Ok(actions::RECEIVE),
        Some("CONNECT") => Ok(actions::CONNECT),
        None => Err(ControlPlaneError::invalid(
            "Missing required member actionType in authInfos",
        )),
        Some(other) => Err(ControlPlaneError::invalid(format!(
            "1 validation error detected: Value '{other}' at 'authInfos.member.actionType' failed to \
             satisfy constraint: Member must satisfy enum value set: [PUBLISH, SUBSCRIBE, RECEIVE, CONNECT]"
        ))),
    }
}

/// The principal member: a certificate ARN, or (an emulator convenience) a bare certificate id.
fn principal_certificate(
    plane: &ControlPlane,
    principal: &str,
) -> Result<String, ControlPlaneError> {
    if principal.starts_with("arn:") {
        plane.arns().certificate_id("principal", principal)
    } else {
        certificate_id(principal)
    }
}

/// The attached policy names, then `skip` removed and `add` appended (each name once).
fn policy_names(
    plane: &ControlPlane,
    certificate: &str,
    add: &[String],
    skip: &[String],
) -> Result<Vec<String>, ControlPlaneError> {
    let mut names = Vec::new();
    let mut page = Page {
        marker: None,
        page_size: usize::try_from(super::MAX_PAGE_SIZE).unwrap_or(250),
    };
    for _ in 0..MAX_ATTACHED_POLICY_PAGES {
        let listed = plane
            .registry()
            .list_attached_policies(certificate, &page)?;
        names.extend(listed.items);
        match listed.next_marker {
            Some(marker) => page.marker = Some(marker),
            None => break,
        }
    }
    names.retain(|name| !skip.contains(name));
    for name in add {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

fn load_policy(plane: &ControlPlane, name: &str) -> Result<EvaluatedPolicy, ControlPlaneError> {
    let policy = plane.registry().get_policy(name)?;
    let unreadable = |error: &dyn std::fmt::Display| {
        ControlPlaneError::Internal(format!("stored policy {name} does not parse: {error}"))
    };
    let document: Value =
        serde_json::from_str(&policy.document).map_err(|error| unreadable(&error))?;
    let parsed = PolicyDocument::from_value(&document).map_err(|error| unreadable(&error))?;
    Ok(EvaluatedPolicy {
        compiled: CompiledPolicy::compile(name, &parsed),
        name: policy.name,
        version_id: policy.default_version_id,
        document,
    })
}

pub(super) async fn test_authorization(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<TestAuthorizationQuery>,
    AwsJson(request): AwsJson<TestAuthorizationRequest>,
) -> Result<Response, ControlPlaneError> {
    if request.cognito_identity_pool_id.is_some() {
        return Err(ControlPlaneError::invalid(
            "Cognito identities are not emulated: test a certificate principal",
        ));
    }
    let auth_infos = request
        .auth_infos
        .ok_or_else(|| ControlPlaneError::invalid("Missing required member authInfos"))?;
    if auth_infos.is_empty() || auth_infos.len() > MAX_AUTH_INFOS {
        return Err(ControlPlaneError::invalid(format!(
            "1 validation error detected: Value at 'authInfos' failed to satisfy constraint: Member \
             must have length between 1 and {MAX_AUTH_INFOS}"
        )));
    }
    // Each authInfo with its action, every one checked before anything is evaluated.
    let requests = auth_infos
        .iter()
        .map(|info| {
            if info
                .resources
                .iter()
                .any(|resource| resource.chars().count() > MAX_RESOURCE_CHARS)
            {
                return Err(ControlPlaneError::invalid(format!(
                    "A resource in authInfos is longer than {MAX_RESOURCE_CHARS} characters"
                )));
            }
            Ok((info, action_name(info.action_type.as_deref())?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let principal = request
        .principal
        .filter(|principal| !principal.is_empty())
        .ok_or_else(|| ControlPlaneError::invalid("Missing required member principal"))?;
    let certificate_id = principal_certificate(&plane, &principal)?;
    let certificate = plane.registry().describe_certificate(&certificate_id)?;

    let client_id = query.client_id.unwrap_or_default();
    let der = identity::pem_to_der(&certificate.pem).map_err(|error| {
        ControlPlaneError::Internal(format!("stored certificate {certificate_id}: {error}"))
    })?;
    let mut context = ConnectionContext::new(client_id.clone())
        .with_certificate(identity::certificate_context(&der));
    context.thing = plane
        .registry()
        .principal(&certificate_id)
        .and_then(|principal| principal.thing_for_client(&client_id));

    let names = policy_names(
        &plane,
        &certificate_id,
        &request.policy_names_to_add,
        &request.policy_names_to_skip,
    )?;
    let policies = names
        .iter()
        .map(|name| load_policy(&plane, name))
        .collect::<Result<Vec<_>, _>>()?;
    let compiled: Vec<CompiledPolicy> = policies
        .iter()
        .map(|policy| policy.compiled.clone())
        .collect();

    let results: Vec<Value> = requests
        .into_iter()
        .map(|(info, action)| auth_result(&plane, info, action, &policies, &compiled, &context))
        .collect();
    let mut body = json!({ "authResults": results });
    // Context for every result: who was evaluated, as the broker would see the connection.
    body["emulatorExplanation"] = json!({
        "certificateId": certificate_id,
        "certificateStatus": certificate.status,
        "clientId": client_id,
        "thing": context.thing.as_ref().map(|thing| json!({
            "thingName": thing.name,
            "association": format!("{:?}", thing.association),
        })),
        "policiesEvaluated": policies.iter().map(|policy| json!({
            "policyName": policy.name,
            "policyVersionId": policy.version_id,
        })).collect::<Vec<_>>(),
    });
    Ok(ok_json(&body))
}

/// The decision for one authInfo: every resource must be allowed; one explicit deny denies the whole.
fn auth_result(
    plane: &ControlPlane,
    info: &AuthInfo,
    action: &str,
    policies: &[EvaluatedPolicy],
    compiled: &[CompiledPolicy],
    context: &ConnectionContext,
) -> Value {
    let mut allowing = BTreeSet::new();
    let mut denying = BTreeSet::new();
    let mut any_explicit = false;
    let mut all_allowed = !info.resources.is_empty();
    let mut explained = Vec::new();
    for resource in &info.resources {
        // Each policy alone says whether it allows, explicitly denies or says nothing (AWS's three lists).
        for (index, policy) in compiled.iter().enumerate() {
            match policy.decide(action, resource, context) {
                Decision::Allow => {
                    allowing.insert(index);
                }
                Decision::ExplicitDeny => {
                    denying.insert(index);
                }
                Decision::ImplicitDeny => {}
            }
        }
        // Together they decide, and the decisive statements are the explanation.
        let evaluation = evaluate_policies(compiled, action, resource, context);
        any_explicit |= evaluation.decision == Decision::ExplicitDeny;
        all_allowed &= evaluation.decision == Decision::Allow;
        explained.push(explain(action, resource, &evaluation, policies));
    }
    let decision = if any_explicit {
        "EXPLICIT_DENY"
    } else if all_allowed {
        "ALLOWED"
    } else {
        "IMPLICIT_DENY"
    };
    let summaries = |indices: &mut dyn Iterator<Item = usize>| {
        indices
            .map(|index| policy_summary(plane, &policies[index].name))
            .collect::<Vec<_>>()
    };
    let allowed = summaries(
        &mut allowing
            .iter()
            .copied()
            .filter(|index| !denying.contains(index)),
    );
    let explicit = summaries(&mut denying.iter().copied());
    let implicit = if decision == "IMPLICIT_DENY" {
        summaries(
            &mut (0..policies.len())
                .filter(|index| !allowing.contains(index) && !denying.contains(index)),
        )
    } else {
        Vec::new()
    };
    json!({
        "authInfo": info,
        "allowed": { "policies": allowed },
        "denied": {
            "implicitDeny": { "policies": implicit },
            "explicitDeny": { "policies": explicit },
        },
        "authDecision": decision,
        "missingContextValues": [],
        "emulatorExplanation": {
            "action": action,
            "resources": explained,
            "notes": notes(policies),
        },
    })
}

/// The decisive statements for one resource, quoted from their documents.
fn explain(
    action: &str,
    resource: &str,
    evaluation: &Evaluation,
    policies: &[EvaluatedPolicy],
) -> Value {
    let statements: Vec<Value> = evaluation
        .reasons
        .iter()
        .filter_map(|reason| {
            let policy = policies.get(reason.policy_index)?;
            Some(json!({
                "policyName": policy.name,
                "policyVersionId": policy.version_id,
                "statementIndex": reason.statement_index,
                "effect": format!("{:?}", reason.effect),
                "statement": statement_text(&policy.document, reason.statement_index),
            }))
        })
        .collect();
    let (decision, why) = match evaluation.decision {
        Decision::Allow => (
            "ALLOWED",
            format!("allowed by {} statement(s)", statements.len()),
        ),
        Decision::ExplicitDeny => (
            "EXPLICIT_DENY",
            format!(
                "denied by {} Deny statement(s); a Deny beats every Allow",
                statements.len()
            ),
        ),
        Decision::ImplicitDeny => (
            "IMPLICIT_DENY",
            format!("no statement allows {action} on this resource"),
        ),
    };
    json!({
        "resource": resource,
        "decision": decision,
        "why": why,
        "decidingStatements": statements,
    })
}

/// `Statement` is an array or a single object.
fn statement_text(document: &Value, index: usize) -> Value {
    match document.get("Statement") {
        Some(Value::Array(statements)) => statements.get(index).cloned().unwrap_or(Value::Null),
        Some(statement @ Value::Object(_)) if index == 0 => statement.clone(),
        _ => Value::Null,
    }
}

/// Statements the emulator reads differently from AWS, which can explain a surprising decision.
fn notes(policies: &[EvaluatedPolicy]) -> Vec<String> {
    let mut notes = Vec::new();
    for policy in policies {
        for (index, statement) in policy.compiled.statements().iter().enumerate() {
            for operator in statement.unsupported_operators() {
                notes.push(format!(
                    "{} statement {index}: condition operator {operator} is not evaluated by the emulator, \
                     so the statement never applies",
                    policy.name
                ));
            }
            for variable in statement.unknown_variables() {
                notes.push(format!(
                    "{} statement {index}: {variable} is not a policy variable and is matched literally",
                    policy.name
                ));
            }
        }
    }
    notes
}
