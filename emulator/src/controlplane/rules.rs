//! The stack's topic rules, read-only: ListTopicRules and GetTopicRule (reference 5.1). The emulator loads
//! rules from the template at start; CreateTopicRule and the other writes are not served.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ControlPlane;
use super::error::ControlPlaneError;
use super::wire::{AwsPath, AwsQuery, epoch_seconds, ok_json, page_size};
use crate::rules::{ActionDefinition, TopicRuleDefinition};

/// `TopicRuleMaxResults`: 1..=10,000.
const MAX_RULES_PER_PAGE: i64 = 10_000;
/// The SQL version AWS applies to a rule created without `awsIotSqlVersion` (reference 5.1).
const DEFAULT_SQL_VERSION: &str = "2015-10-08";

/// The template's rules with what the API reports about them.
#[derive(Debug)]
pub(super) struct LoadedRules {
    /// In name order, the order ListTopicRules pages in.
    rules: Vec<LoadedRule>,
    /// When the emulator loaded them: the rules' `createdAt` (the template carries no creation time).
    loaded_ms: i64,
}

#[derive(Debug)]
struct LoadedRule {
    definition: TopicRuleDefinition,
    /// The SQL's FROM filter; `None` for a rule only Basic Ingest reaches or whose SQL does not parse.
    topic_pattern: Option<String>,
}

impl LoadedRules {
    pub(super) fn new(mut definitions: Vec<TopicRuleDefinition>, loaded_ms: i64) -> LoadedRules {
        definitions.sort_by(|a, b| a.name.cmp(&b.name));
        let rules = definitions
            .into_iter()
            .map(|definition| {
                let topic_pattern =
                    iot_sql::SqlVersion::from_property(definition.sql_version.as_deref())
                        .ok()
                        .and_then(|version| iot_sql::Rule::parse(&definition.sql, version).ok())
                        .and_then(|rule| rule.topic_filter().map(str::to_owned));
                LoadedRule {
                    definition,
                    topic_pattern,
                }
            })
            .collect();
        LoadedRules { rules, loaded_ms }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListTopicRulesQuery {
    topic: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    rule_disabled: Option<bool>,
}

pub(super) async fn list_topic_rules(
    State(plane): State<ControlPlane>,
    AwsQuery(query): AwsQuery<ListTopicRulesQuery>,
) -> Result<Response, ControlPlaneError> {
    let limit = page_size(
        "maxResults",
        query.max_results,
        MAX_RULES_PER_PAGE,
        usize::try_from(MAX_RULES_PER_PAGE).unwrap_or(usize::MAX),
    )?;
    // The token is the name of the last rule of the previous page, so it stays valid whatever the filters.
    let after = query.next_token.filter(|token| !token.is_empty());
    let loaded = &plane.shared.rules;
    let mut matching = loaded
        .rules
        .iter()
        .filter(|rule| {
            after
                .as_deref()
                .is_none_or(|after| rule.definition.name.as_str() > after)
        })
        .filter(|rule| {
            query
                .topic
                .as_deref()
                .is_none_or(|topic| rule.topic_pattern.as_deref() == Some(topic))
        })
        .filter(|rule| {
            query
                .rule_disabled
                .is_none_or(|disabled| rule.definition.disabled == disabled)
        });
    let page: Vec<&LoadedRule> = matching.by_ref().take(limit).collect();
    let more = matching.next().is_some();
    let items: Vec<Value> = page
        .iter()
        .map(|rule| {
            let mut item = json!({
                "ruleArn": plane.arns().rule(&rule.definition.name),
                "ruleName": rule.definition.name,
                "createdAt": epoch_seconds(loaded.loaded_ms),
                "ruleDisabled": rule.definition.disabled,
            });
            if let Some(pattern) = &rule.topic_pattern {
                item["topicPattern"] = json!(pattern);
            }
            item
        })
        .collect();
    let mut body = json!({ "rules": items });
    if more && let Some(last) = page.last() {
        body["nextToken"] = json!(last.definition.name);
    }
    Ok(ok_json(&body))
}

/// `RuleName` in the service model: `^[a-zA-Z0-9_]+$`, 1 to 128 characters.
fn valid_rule_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

pub(super) async fn get_topic_rule(
    State(plane): State<ControlPlane>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ControlPlaneError> {
    if !valid_rule_name(&name) {
        return Err(ControlPlaneError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'ruleName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$"
        )));
    }
    let loaded = &plane.shared.rules;
    let rule = loaded
        .rules
        .iter()
        .find(|rule| rule.definition.name == name)
        .ok_or_else(|| ControlPlaneError::Unauthorized(format!("Rule {name} does not exist")))?;
    let definition = &rule.definition;
    let mut body = json!({
        "ruleName": definition.name,
        "sql": definition.sql,
        "createdAt": epoch_seconds(loaded.loaded_ms),
        "actions": definition.actions.iter().map(|action| action_json(&plane, action)).collect::<Vec<_>>(),
        "ruleDisabled": definition.disabled,
        "awsIotSqlVersion": definition.sql_version.as_deref().unwrap_or(DEFAULT_SQL_VERSION),
    });
    if let Some(error_action) = &definition.error_action {
        body["errorAction"] = action_json(&plane, error_action);
    }
    Ok(ok_json(&json!({
        "ruleArn": plane.arns().rule(&definition.name),
        "rule": body,
    })))
}

/// An `Action` as far as the template loader keeps it: role ARNs are not kept, and an action kind the
/// emulator does not run is reported by its kind alone.
fn action_json(plane: &ControlPlane, action: &ActionDefinition) -> Value {
    match action {
        ActionDefinition::Lambda { function_name } => json!({
            "lambda": { "functionArn": plane.arns().lambda_function(function_name) }
        }),
        ActionDefinition::Republish { topic, qos } => json!({
            "republish": { "topic": topic, "qos": qos }
        }),
        ActionDefinition::CloudwatchLogs {
            log_group_name,
            batch_mode,
        } => json!({
            "cloudwatchLogs": { "logGroupName": log_group_name, "batchMode": batch_mode }
        }),
        ActionDefinition::Unsupported { kind } => {
            // CloudFormation's `DynamoDBv2`, `Sns`, `S3` ... are the API's `dynamoDBv2`, `sns`, `s3`.
            let mut member = kind.clone();
            if let Some(first) = member.get(..1) {
                let lower = first.to_ascii_lowercase();
                member.replace_range(..1, &lower);
            }
            json!({ member: {} })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_follow_the_model() {
        assert!(valid_rule_name("DisconnectWill_2"));
        assert!(!valid_rule_name("no-dashes"));
        assert!(!valid_rule_name(""));
        assert!(!valid_rule_name(&"a".repeat(129)));
    }

    #[test]
    fn topic_patterns_come_from_the_sql() {
        let loaded = LoadedRules::new(
            vec![TopicRuleDefinition {
                name: "Will".into(),
                sql: "SELECT * FROM 'device/+/lwt'".into(),
                sql_version: Some("2016-03-23".into()),
                disabled: false,
                actions: Vec::new(),
                error_action: None,
            }],
            0,
        );
        assert_eq!(
            loaded.rules[0].topic_pattern.as_deref(),
            Some("device/+/lwt")
        );
    }
}
