//! A topic rule as the rules engine takes it: what `CreateTopicRule` (or an `AWS::IoT::TopicRule` in a
//! template, read by `app::template`) defines. The engine compiles these into running rules.

/// One `AWS::IoT::TopicRule` (reference 5.1).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRuleDefinition {
    pub name: String,
    pub sql: String,
    /// `AwsIotSqlVersion` as written; `None` means AWS's default 2015-10-08 (reference 5.1).
    pub sql_version: Option<String>,
    pub disabled: bool,
    pub actions: Vec<ActionDefinition>,
    pub error_action: Option<ActionDefinition>,
}

/// The rule actions the emulator runs; any other kind is kept as `Unsupported` and fails when it runs,
/// which triggers the error action as an unreachable AWS resource would.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionDefinition {
    /// Async invoke (reference 5.4); the function name is taken from the ARN (alias/version suffix dropped).
    Lambda {
        function_name: String,
    },
    /// Republish (reference 5.7): `topic` is a substitution template where `$$` is a literal `$`.
    Republish {
        topic: String,
        qos: u8,
    },
    /// CloudWatch Logs (reference 5.6); `batch_mode` is not supported and fails the action.
    CloudwatchLogs {
        log_group_name: String,
        batch_mode: bool,
    },
    Unsupported {
        kind: String,
    },
}
