//! The rules engine (reference section 5): each enabled `AWS::IoT::TopicRule` of the template subscribes
//! through the broker's in-process API (so it sees `$aws/events/...`, shadow topics and wills, reference
//! 5.8, and its Basic Ingest topic `$aws/rules/<name>/...`, reference 5.9), evaluates every message with
//! `iot-sql`, and runs its actions:
//!
//! - **Lambda**: async invoke through [`LambdaService`] with exactly the SELECT output (reference 5.4).
//!   It fails only when the function cannot be invoked (unknown function) or the output is not JSON;
//!   function errors are the Lambda service's business (async retries, on-failure destination).
//! - **Republish**: the topic is a substitution template (`$$` = `$`, reference 5.7, 5.10).
//! - **CloudWatch Logs**: the SELECT output is one log event (`batchMode` false, reference 5.6). The log
//!   group must exist (the action's role may create streams, not groups); the stream is named after the
//!   rule (AWS does not document its naming).
//!
//! When actions fail (or AWS refuses to evaluate the message), the error action runs once per rule per
//! message with every failure in `failures[]` (reference 5.5).

use std::sync::Arc;

use base64::Engine as _;
use iot_events::{RuleErrorPayload, RuleFailure};
use iot_sql::{EvalContext, Output, Rule, SqlVersion, Template};

use crate::broker::{Broker, BrokerError, ConsumerTask, Message, Origin, Qos};
use crate::lambda::LambdaService;
use crate::logs::{InputLogEvent, LogsError, LogsStore};

mod definition;

pub use definition::{ActionDefinition, TopicRuleDefinition};

/// The service name republished messages carry (`Origin::Service`).
pub const RULES_SERVICE_NAME: &str = "rules";

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rule {rule}: {source}")]
    Sql {
        rule: String,
        #[source]
        source: iot_sql::ParseError,
    },
    #[error("rule {rule}: {source}")]
    SqlVersion {
        rule: String,
        #[source]
        source: iot_sql::UnknownSqlVersion,
    },
    #[error("rule {rule}: republish topic {topic:?}: {source}")]
    Template {
        rule: String,
        topic: String,
        #[source]
        source: iot_sql::ParseError,
    },
    #[error("rule {rule}: cannot subscribe to {filter:?}: {source}")]
    Subscribe {
        rule: String,
        filter: String,
        #[source]
        source: BrokerError,
    },
}

/// `newuuid()` and `rand()` for live traffic.
struct RandomContext;

impl EvalContext for RandomContext {
    fn new_uuid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn random(&mut self) -> f64 {
        rand::random::<f64>()
    }
}

enum Action {
    Lambda {
        function_name: String,
    },
    Republish {
        topic: Template,
        qos: Qos,
    },
    CloudwatchLogs {
        log_group_name: String,
        batch_mode: bool,
    },
    Unsupported {
        kind: String,
    },
}

impl Action {
    fn compile(
        rule: &str,
        version: SqlVersion,
        definition: &ActionDefinition,
    ) -> Result<Action, RulesError> {
        Ok(match definition {
            ActionDefinition::Lambda { function_name } => Action::Lambda {
                function_name: function_name.clone(),
            },
            ActionDefinition::Republish { topic, qos } => Action::Republish {
                topic: Template::parse(topic, version).map_err(|source| RulesError::Template {
                    rule: rule.to_owned(),
                    topic: topic.clone(),
                    source,
                })?,
                qos: if *qos == 0 {
                    Qos::AtMostOnce
                } else {
                    Qos::AtLeastOnce
                },
            },
            ActionDefinition::CloudwatchLogs {
                log_group_name,
                batch_mode,
            } => Action::CloudwatchLogs {
                log_group_name: log_group_name.clone(),
                batch_mode: *batch_mode,
            },
            ActionDefinition::Unsupported { kind } => Action::Unsupported { kind: kind.clone() },
        })
    }

    /// `failedAction` as AWS names it (reference 5.5: e.g. `S3Action`).
    fn action_name(&self) -> String {
        match self {
            Action::Lambda { .. } => "LambdaAction".into(),
            Action::Republish { .. } => "RepublishAction".into(),
            Action::CloudwatchLogs { .. } => "CloudwatchLogsAction".into(),
            Action::Unsupported { kind } => format!("{kind}Action"),
        }
    }

    fn resource(&self) -> String {
        match self {
            Action::Lambda { function_name } => function_name.clone(),
            Action::Republish { topic, .. } => topic.text().to_owned(),
            Action::CloudwatchLogs { log_group_name, .. } => log_group_name.clone(),
            Action::Unsupported { kind } => kind.clone(),
        }
    }
}

/// What the actions need from the rest of the emulator.
#[derive(Clone)]
struct Services {
    broker: Broker,
    lambda: Arc<LambdaService>,
    logs: LogsStore,
    account: String,
}

struct LoadedRule {
    name: String,
    rule: Rule,
    actions: Vec<Action>,
    error_action: Option<Action>,
    services: Services,
}

/// The running rules engine; dropping it ends the rules' subscriptions at once, [`RulesEngine::drain`] lets
/// them finish their queues first.
pub struct RulesEngine {
    rule_names: Vec<String>,
    consumers: Vec<ConsumerTask>,
}

impl std::fmt::Debug for RulesEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesEngine")
            .field("rules", &self.rule_names)
            .finish_non_exhaustive()
    }
}

impl RulesEngine {
    /// Compiles every enabled rule and subscribes it; a rule that does not parse stops the start, as
    /// `CreateTopicRule` would refuse it.
    pub fn start(
        definitions: &[TopicRuleDefinition],
        broker: &Broker,
        lambda: Arc<LambdaService>,
        logs: LogsStore,
    ) -> Result<RulesEngine, RulesError> {
        let services = Services {
            broker: broker.clone(),
            lambda,
            logs,
            account: broker.config().account.clone(),
        };
        let mut engine = RulesEngine {
            rule_names: Vec::new(),
            consumers: Vec::new(),
        };
        for definition in definitions.iter().filter(|rule| !rule.disabled) {
            let loaded = Arc::new(load_rule(definition, services.clone())?);
            let mut filters = vec![format!("$aws/rules/{}/#", definition.name)];
            filters.extend(loaded.rule.topic_filter().map(str::to_owned));
            for filter in filters {
                let messages =
                    broker
                        .subscribe_internal(&filter)
                        .map_err(|source| RulesError::Subscribe {
                            rule: definition.name.clone(),
                            filter: filter.clone(),
                            source,
                        })?;
                let rule = Arc::clone(&loaded);
                engine.consumers.push(ConsumerTask::spawn(
                    format!("rule {} ({filter})", definition.name),
                    messages,
                    move |message| rule.process(&message),
                ));
            }
            tracing::info!(rule = %definition.name, sql = %definition.sql, "rule loaded");
            engine.rule_names.push(definition.name.clone());
        }
        Ok(engine)
    }

    pub fn rule_names(&self) -> &[String] {
        &self.rule_names
    }

    /// The rules' queue readers, for a shutdown that lets them finish ([`crate::broker::drain_consumers`]) once the
    /// broker has stopped.
    pub fn into_consumers(mut self) -> Vec<ConsumerTask> {
        std::mem::take(&mut self.consumers)
    }
}

impl Drop for RulesEngine {
    fn drop(&mut self) {
        for consumer in &self.consumers {
            consumer.abort();
        }
    }
}

fn load_rule(
    definition: &TopicRuleDefinition,
    services: Services,
) -> Result<LoadedRule, RulesError> {
    let version =
        SqlVersion::from_property(definition.sql_version.as_deref()).map_err(|source| {
            RulesError::SqlVersion {
                rule: definition.name.clone(),
                source,
            }
        })?;
    let rule = Rule::parse(&definition.sql, version).map_err(|source| RulesError::Sql {
        rule: definition.name.clone(),
        source,
    })?;
    let actions = definition
        .actions
        .iter()
        .map(|action| Action::compile(&definition.name, version, action))
        .collect::<Result<Vec<_>, _>>()?;
    let error_action = definition
        .error_action
        .as_ref()
        .map(|action| Action::compile(&definition.name, version, action))
        .transpose()?;
    Ok(LoadedRule {
        name: definition.name.clone(),
        rule,
        actions,
        error_action,
        services,
    })
}

impl LoadedRule {
    fn process(&self, message: &Message) {
        // Only device publishes carry an MQTT trace id; the others get one only if an error record needs it.
        let trace_id = matches!(message.origin, Origin::Device { .. })
            .then(|| uuid::Uuid::new_v4().to_string());
        let sql_message = iot_sql::Message {
            topic: &message.topic,
            payload: &message.payload,
            client_id: message.client_id(),
            principal: message.principal(),
            trace_id: trace_id.as_deref(),
            account_id: Some(&self.services.account),
            // When the broker accepted the message (broker::Message), not when this rule got to it.
            timestamp_ms: message.timestamp_ms,
        };
        let mut context = RandomContext;
        let failures: Vec<RuleFailure> = match self.rule.evaluate(&sql_message, &mut context) {
            Ok(None) => return,
            Ok(Some(output)) => self
                .actions
                .iter()
                .filter_map(|action| {
                    self.run(action, &output, &sql_message)
                        .err()
                        .map(|error_message| RuleFailure {
                            failed_action: action.action_name(),
                            failed_resource: action.resource(),
                            error_message,
                        })
                })
                .collect(),
            Err(error) => self
                .actions
                .iter()
                .map(|action| RuleFailure {
                    failed_action: action.action_name(),
                    failed_resource: action.resource(),
                    error_message: error.to_string(),
                })
                .collect(),
        };
        if failures.is_empty() {
            return;
        }
        tracing::warn!(rule = %self.name, topic = %message.topic, ?failures, "rule actions failed");
        let Some(error_action) = &self.error_action else {
            return;
        };
        let payload = RuleErrorPayload {
            rule_name: self.name.clone(),
            topic: message.topic.clone(),
            // The device message's trace id when there is one, so SQL and the error record agree.
            cloudwatch_trace_id: Some(
                trace_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ),
            client_id: Some(message.client_id().unwrap_or("n/a").to_owned()),
            base64_original_payload: base64::engine::general_purpose::STANDARD
                .encode(&message.payload),
            failures,
        };
        let output = match serde_json::to_value(&payload) {
            Ok(json) => Output::Json(json),
            Err(error) => {
                tracing::error!(rule = %self.name, %error, "cannot serialize the error payload");
                return;
            }
        };
        if let Err(error) = self.run(error_action, &output, &sql_message) {
            tracing::error!(rule = %self.name, %error, "the error action failed too");
        }
    }

    /// Runs one action; `Err` is the `errorMessage` of the failure.
    fn run(
        &self,
        action: &Action,
        output: &Output,
        message: &iot_sql::Message<'_>,
    ) -> Result<(), String> {
        match action {
            Action::Lambda { function_name } => {
                let Output::Json(event) = output else {
                    return Err(
                        "The Lambda action accepts JSON only; use encode(*, 'base64') for binary payloads"
                            .into(),
                    );
                };
                self.services
                    .lambda
                    .invoke_async(function_name, event.to_string().into_bytes())
                    .map_err(|error| error.to_string())
            }
            // A republish that finds an in-process queue full fails into the error action (publish_internal is
            // bounded): waiting here could wait on this rule's own queue.
            Action::Republish { topic, qos } => {
                let topic = topic
                    .render(message, &mut RandomContext)
                    .map_err(|error| error.to_string())?;
                self.services
                    .broker
                    .publish_internal(
                        &topic,
                        output.to_bytes(),
                        *qos,
                        false,
                        Origin::Service {
                            name: RULES_SERVICE_NAME.into(),
                        },
                    )
                    .map_err(|error| format!("Failed to republish to topic {topic}: {error}"))
            }
            Action::CloudwatchLogs {
                log_group_name,
                batch_mode,
            } => {
                if *batch_mode {
                    return Err("batchMode is not supported by the emulator".into());
                }
                self.put_log_event(log_group_name, output).map_err(|error| {
                    format!("Failed to put log events to {log_group_name}: {error}")
                })
            }
            Action::Unsupported { kind } => Err(format!(
                "The {kind} action is not supported by the emulator"
            )),
        }
    }

    fn put_log_event(&self, group: &str, output: &Output) -> Result<(), LogsError> {
        let logs = &self.services.logs;
        match logs.create_log_stream(group, &self.name) {
            Ok(()) | Err(LogsError::LogStreamAlreadyExists) => {}
            Err(error) => return Err(error),
        }
        let message = String::from_utf8_lossy(&output.to_bytes()).into_owned();
        logs.put_log_events(
            group,
            &self.name,
            &[InputLogEvent {
                timestamp: crate::clock::now_millis(),
                message,
            }],
        )
        .map(|_| ())
    }
}
