//! What the emulator reads from the synthesized CloudFormation template (architecture section 4: "it loads
//! the policies and rules from the template", so what runs locally is what gets deployed): topic rules,
//! Lambda functions with their environment and async-invoke settings, and log groups.
//!
//! Intrinsics go through cfn-template's resolver, the one that reads the device policy (`Ref`, `Fn::Join`,
//! `Fn::Sub`, `Fn::GetAtt`); this module answers for the template's own resources the way CloudFormation
//! would: `Ref` of a function is its `FunctionName`, of a log group its `LogGroupName`;
//! `Fn::GetAtt [<function>, Arn]` is the function ARN. A property that does not resolve to a string is
//! reported as unresolved.

use std::collections::BTreeMap;

use cfn_template::{PseudoParameters, ResourceReferences, resolve_intrinsics_with};
use serde_json::Value;

/// Errors reading a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the template has no Resources object")]
    NoResources,
    #[error("resource {resource}: property {property} is missing or cannot be resolved")]
    Unresolved { resource: String, property: String },
}

/// The parts of a stack the emulator runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StackTemplate {
    pub rules: Vec<TopicRuleDefinition>,
    pub functions: Vec<FunctionDefinition>,
    /// Log groups with their retention in days, created at start so the functions find them.
    pub log_groups: Vec<(String, Option<u32>)>,
}

/// The rule definitions belong to the rules engine, which runs them; the template only reads them.
pub use crate::rules::{ActionDefinition, TopicRuleDefinition};

/// One `AWS::Lambda::Function` with its `AWS::Lambda::EventInvokeConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDefinition {
    pub name: String,
    pub environment: BTreeMap<String, String>,
    pub timeout_secs: u64,
    pub memory_mb: u32,
    /// Async invoke retries after a function error (Lambda's default: 2).
    pub maximum_retry_attempts: u32,
    /// The on-failure destination ARN (an SQS queue in our stack), for the failure record.
    pub on_failure_destination: Option<String>,
    /// Async events older than this are not invoked again but sent to the destination (`EventAgeExceeded`);
    /// `MaximumEventAgeInSeconds` of the EventInvokeConfig, Lambda's default 6 hours.
    pub maximum_event_age_secs: u64,
    /// `ReservedConcurrentExecutions`: the instances the function may run at once.
    pub reserved_concurrency: Option<u32>,
}

/// Lambda's defaults when the template does not say (Timeout 3 s, 128 MB, 2 async retries).
const DEFAULT_TIMEOUT_SECS: u64 = 3;
const DEFAULT_MEMORY_MB: u32 = 128;
const DEFAULT_MAXIMUM_RETRY_ATTEMPTS: u32 = 2;
const DEFAULT_MAXIMUM_EVENT_AGE_SECS: u64 = 6 * 60 * 60;

/// The function name in a Lambda ARN `arn:aws:lambda:r:a:function:name[:qualifier]`, or the text itself
/// when it is a bare name.
pub fn function_name_from_arn(arn: &str) -> &str {
    match arn.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => arn,
    }
}

struct Resolver<'a> {
    resources: &'a serde_json::Map<String, Value>,
    pseudo: PseudoParameters,
}

impl<'a> Resolver<'a> {
    fn resource_type(&self, id: &str) -> Option<&'a str> {
        self.resources.get(id)?.get("Type")?.as_str()
    }

    fn property(&self, id: &str, name: &str) -> Option<&'a Value> {
        self.resources.get(id)?.get("Properties")?.get(name)
    }

    /// The property as a string, intrinsics resolved; `None` if it is not one.
    fn resolve(&self, value: &Value) -> Option<String> {
        match resolve_intrinsics_with(value, &self.pseudo, self) {
            Ok(Value::String(text)) => Some(text),
            _ => None,
        }
    }
}

impl ResourceReferences for Resolver<'_> {
    /// The physical name CloudFormation gives `Ref` of the resource `id`.
    fn reference(&self, id: &str) -> Option<String> {
        let name_property = match self.resource_type(id)? {
            "AWS::Lambda::Function" => "FunctionName",
            "AWS::Logs::LogGroup" => "LogGroupName",
            "AWS::IoT::TopicRule" => "RuleName",
            "AWS::SQS::Queue" => "QueueName",
            _ => return Some(id.to_owned()),
        };
        match self.property(id, name_property) {
            Some(Value::String(name)) => Some(name.clone()),
            // CloudFormation generates a name; ours are always named, so the logical id stands in.
            _ => Some(id.to_owned()),
        }
    }

    fn attribute(&self, id: &str, attribute: &str) -> Option<String> {
        let name = self.reference(id)?;
        let PseudoParameters {
            partition,
            region,
            account_id,
            ..
        } = &self.pseudo;
        match (self.resource_type(id)?, attribute) {
            ("AWS::Lambda::Function", "Arn") => Some(format!(
                "arn:{partition}:lambda:{region}:{account_id}:function:{name}"
            )),
            ("AWS::SQS::Queue", "Arn") => {
                Some(format!("arn:{partition}:sqs:{region}:{account_id}:{name}"))
            }
            (_, "Arn") => Some(format!("arn:{partition}:emulator:::{name}")),
            _ => None,
        }
    }
}

impl StackTemplate {
    /// Reads a synthesized template. `region`/`account` fill `AWS::Region`/`AWS::AccountId` and ARNs.
    pub fn parse(text: &str, region: &str, account: &str) -> Result<StackTemplate, TemplateError> {
        let template: Value = serde_json::from_str(text)?;
        let resources = template
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or(TemplateError::NoResources)?;
        let resolver = Resolver {
            resources,
            pseudo: PseudoParameters::new(account, region),
        };
        let mut stack = StackTemplate::default();
        let mut invoke_configs: BTreeMap<String, (u32, Option<String>, u64)> = BTreeMap::new();
        for (id, resource) in resources {
            let properties = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::IoT::TopicRule") => {
                    stack.rules.push(parse_rule(&resolver, id, &properties)?);
                }
                Some("AWS::Lambda::Function") => {
                    stack
                        .functions
                        .push(parse_function(&resolver, id, &properties));
                }
                Some("AWS::Logs::LogGroup") => {
                    let name = resolver.reference(id).unwrap_or_else(|| id.clone());
                    let retention = properties
                        .get("RetentionInDays")
                        .and_then(Value::as_u64)
                        .and_then(|days| u32::try_from(days).ok());
                    stack.log_groups.push((name, retention));
                }
                Some("AWS::Lambda::EventInvokeConfig") => {
                    let Some(function) = properties
                        .get("FunctionName")
                        .and_then(|value| resolver.resolve(value))
                    else {
                        continue;
                    };
                    let retries = properties
                        .get("MaximumRetryAttempts")
                        .and_then(Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(DEFAULT_MAXIMUM_RETRY_ATTEMPTS);
                    let destination = properties
                        .pointer("/DestinationConfig/OnFailure/Destination")
                        .and_then(|value| resolver.resolve(value));
                    let maximum_age = properties
                        .get("MaximumEventAgeInSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(DEFAULT_MAXIMUM_EVENT_AGE_SECS);
                    invoke_configs.insert(
                        function_name_from_arn(&function).to_owned(),
                        (retries, destination, maximum_age),
                    );
                }
                _ => {}
            }
        }
        for function in &mut stack.functions {
            if let Some((retries, destination, maximum_age)) = invoke_configs.remove(&function.name)
            {
                function.maximum_retry_attempts = retries;
                function.on_failure_destination = destination;
                function.maximum_event_age_secs = maximum_age;
            }
        }
        Ok(stack)
    }

    pub fn function(&self, name: &str) -> Option<&FunctionDefinition> {
        self.functions.iter().find(|function| function.name == name)
    }
}

fn parse_function(resolver: &Resolver<'_>, id: &str, properties: &Value) -> FunctionDefinition {
    let name = resolver.reference(id).unwrap_or_else(|| id.to_owned());
    let environment = properties
        .pointer("/Environment/Variables")
        .and_then(Value::as_object)
        .map(|variables| {
            variables
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), resolver.resolve(value)?)))
                .collect()
        })
        .unwrap_or_default();
    FunctionDefinition {
        name,
        environment,
        timeout_secs: properties
            .get("Timeout")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_SECS),
        memory_mb: properties
            .get("MemorySize")
            .and_then(Value::as_u64)
            .and_then(|mb| u32::try_from(mb).ok())
            .unwrap_or(DEFAULT_MEMORY_MB),
        maximum_retry_attempts: DEFAULT_MAXIMUM_RETRY_ATTEMPTS,
        on_failure_destination: None,
        maximum_event_age_secs: DEFAULT_MAXIMUM_EVENT_AGE_SECS,
        reserved_concurrency: properties
            .get("ReservedConcurrentExecutions")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
    }
}

fn parse_rule(
    resolver: &Resolver<'_>,
    id: &str,
    properties: &Value,
) -> Result<TopicRuleDefinition, TemplateError> {
    let unresolved = |property: &str| TemplateError::Unresolved {
        resource: id.to_owned(),
        property: property.to_owned(),
    };
    let payload = properties
        .get("TopicRulePayload")
        .ok_or_else(|| unresolved("TopicRulePayload"))?;
    let name = properties
        .get("RuleName")
        .and_then(|value| resolver.resolve(value))
        .unwrap_or_else(|| id.to_owned());
    let sql = payload
        .get("Sql")
        .and_then(|value| resolver.resolve(value))
        .ok_or_else(|| unresolved("TopicRulePayload.Sql"))?;
    let actions = payload
        .get("Actions")
        .and_then(Value::as_array)
        .map(|actions| {
            actions
                .iter()
                .map(|action| parse_action(resolver, action))
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or(Some(Vec::new()))
        .ok_or_else(|| unresolved("TopicRulePayload.Actions"))?;
    let error_action = match payload.get("ErrorAction") {
        Some(action) => Some(
            parse_action(resolver, action)
                .ok_or_else(|| unresolved("TopicRulePayload.ErrorAction"))?,
        ),
        None => None,
    };
    Ok(TopicRuleDefinition {
        name,
        sql,
        sql_version: payload
            .get("AwsIotSqlVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        disabled: payload
            .get("RuleDisabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        actions,
        error_action,
    })
}

/// `None` when a property the action needs cannot be resolved.
fn parse_action(resolver: &Resolver<'_>, action: &Value) -> Option<ActionDefinition> {
    let (kind, parameters) = action.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "Lambda" => ActionDefinition::Lambda {
            function_name: function_name_from_arn(
                &resolver.resolve(parameters.get("FunctionArn")?)?,
            )
            .to_owned(),
        },
        "Republish" => ActionDefinition::Republish {
            topic: resolver.resolve(parameters.get("Topic")?)?,
            qos: parameters
                .get("Qos")
                .and_then(Value::as_u64)
                .and_then(|qos| u8::try_from(qos).ok())
                .unwrap_or(0),
        },
        "CloudwatchLogs" => ActionDefinition::CloudwatchLogs {
            log_group_name: resolver.resolve(parameters.get("LogGroupName")?)?,
            batch_mode: parameters
                .get("BatchMode")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        other => ActionDefinition::Unsupported {
            kind: other.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{"Resources": {
      "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "recorder", "Timeout": 10,
             "ReservedConcurrentExecutions": 4,
             "Environment": {"Variables": {"GROUP": {"Ref": "Group"}}}}},
      "FnConfig": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {"FunctionName": {"Ref": "Fn"},
             "MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 120,
             "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Queue", "Arn"]}}}}},
      "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
      "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/iot/rule-errors", "RetentionInDays": 30}},
      "Rule": {"Type": "AWS::IoT::TopicRule", "Properties": {"RuleName": "Will", "TopicRulePayload": {
             "Sql": "SELECT * FROM 'a/+'", "AwsIotSqlVersion": "2016-03-23",
             "Actions": [{"Lambda": {"FunctionArn": {"Fn::GetAtt": ["Fn", "Arn"]}}},
                         {"Republish": {"Topic": "$$aws/things/${topic(2)}/shadow/update", "Qos": 1}},
                         {"Kinesis": {"StreamName": "s"}}],
             "ErrorAction": {"CloudwatchLogs": {"LogGroupName": {"Ref": "Group"}, "RoleArn": "r"}}}}}
    }}"#;

    #[test]
    fn intrinsics_resolve_to_physical_names() {
        let stack = StackTemplate::parse(TEMPLATE, "eu-west-1", "111122223333").unwrap();
        let rule = &stack.rules[0];
        assert_eq!(rule.name, "Will");
        assert_eq!(rule.sql_version.as_deref(), Some("2016-03-23"));
        assert_eq!(
            rule.actions,
            vec![
                ActionDefinition::Lambda {
                    function_name: "recorder".into()
                },
                ActionDefinition::Republish {
                    topic: "$$aws/things/${topic(2)}/shadow/update".into(),
                    qos: 1
                },
                ActionDefinition::Unsupported {
                    kind: "Kinesis".into()
                },
            ]
        );
        assert_eq!(
            rule.error_action,
            Some(ActionDefinition::CloudwatchLogs {
                log_group_name: "/iot/rule-errors".into(),
                batch_mode: false
            })
        );
        let function = stack.function("recorder").unwrap();
        assert_eq!(function.timeout_secs, 10);
        assert_eq!(function.maximum_retry_attempts, 1);
        assert_eq!(function.maximum_event_age_secs, 120);
        assert_eq!(function.reserved_concurrency, Some(4));
        assert_eq!(
            function.on_failure_destination.as_deref(),
            Some("arn:aws:sqs:eu-west-1:111122223333:Queue")
        );
        assert_eq!(function.environment["GROUP"], "/iot/rule-errors");
        assert_eq!(
            stack.log_groups,
            vec![("/iot/rule-errors".into(), Some(30))]
        );
    }

    #[test]
    fn sub_and_join_reach_resources_through_the_shared_resolver() {
        let template = r#"{"Resources": {
          "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "recorder", "Timeout": 3,
                 "Environment": {"Variables": {
                   "ARN": {"Fn::Sub": "${Fn.Arn}"},
                   "WHERE": {"Fn::Sub": ["${Group}@${AWS::Region}/${!literal}", {}]},
                   "PARTITION": {"Fn::Join": [":", [{"Ref": "AWS::Partition"}, {"Fn::GetAtt": "Fn.Arn"}]]}}}}},
          "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/iot/errors"}}
        }}"#;
        let stack = StackTemplate::parse(template, "cn-north-1", "111122223333").unwrap();
        let environment = &stack.function("recorder").unwrap().environment;
        assert_eq!(
            environment["ARN"],
            "arn:aws-cn:lambda:cn-north-1:111122223333:function:recorder"
        );
        assert_eq!(environment["WHERE"], "/iot/errors@cn-north-1/${literal}");
        assert_eq!(
            environment["PARTITION"],
            "aws-cn:arn:aws-cn:lambda:cn-north-1:111122223333:function:recorder"
        );
    }

    #[test]
    fn function_names_come_from_arns_without_qualifiers() {
        assert_eq!(
            function_name_from_arn("arn:aws:lambda:us-east-1:1:function:f:live"),
            "f"
        );
        assert_eq!(function_name_from_arn("f"), "f");
    }
}
