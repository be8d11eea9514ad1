//! The payload of an IoT rule's error action (reference 5.5).

use serde::{Deserialize, Serialize};

/// One message per rule per incoming message, however many of its actions failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleErrorPayload {
    pub rule_name: String,
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub base64_original_payload: String,
    pub failures: Vec<RuleFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleFailure {
    /// e.g. `LambdaAction`, `S3Action`.
    pub failed_action: String,
    pub failed_resource: String,
    pub error_message: String,
}
