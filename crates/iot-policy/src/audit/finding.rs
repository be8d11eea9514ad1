//! The findings model: which audit check a finding belongs to, what it is about, and how it prints.

use std::fmt;

use serde::Serialize;

/// The audit check a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AuditCheck {
    /// Device Defender `IOT_POLICY_OVERLY_PERMISSIVE_CHECK`.
    #[serde(rename = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK")]
    OverlyPermissive,
    /// Device Defender `IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK` (plus our own static checks of the same
    /// spirit: wrong resource type for an action, unknown variables or operators).
    #[serde(rename = "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK")]
    PotentialMisconfiguration,
    /// Our own probes of the contract: a device stays inside its own resources.
    #[serde(rename = "DEVICE_ISOLATION_PROBE")]
    DeviceIsolation,
}

impl AuditCheck {
    pub fn id(self) -> &'static str {
        match self {
            AuditCheck::OverlyPermissive => "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
            AuditCheck::PotentialMisconfiguration => "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
            AuditCheck::DeviceIsolation => "DEVICE_ISOLATION_PROBE",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FindingKind {
    /// An Allow matches every resource of a type (`*`, `client/*`, `topic/*`, ...).
    WildcardResource,
    /// `${iot:ClientId}` grants access while any client id may connect without an attached thing (reference 4.3).
    ClientIdWithoutAttachedThing,
    /// Thing A may use thing B's topics, shadows or thing resource.
    CrossDeviceAccess,
    /// MQTT `+`/`#` in a Deny resource: literal in policies, so the Deny misses what it seems to cover (4.3).
    MqttWildcardInDeny,
    /// A Deny on subscriptions that an allowed wildcard subscription plus Receive walks around (reference 4.3).
    DenyBypassedByWildcardSubscription,
    /// An action listed only with resources of a type it is never checked against (reference 4.2), e.g.
    /// `iot:Subscribe` on `topic/`, or `iot:UpdateThingShadow` on a shadow topic.
    ActionResourceMismatch,
    /// A condition operator we do not model: the statement never applies.
    UnsupportedConditionOperator,
    /// `${...}` that is not a documented policy variable: it stays literal text (reference 4.4).
    UnknownPolicyVariable,
    /// `${...}` in a policy whose Version is not 2012-10-17, so the variables are literal text.
    PolicyVariablesIgnored,
    /// Over 2048 characters without whitespace: CreatePolicy would reject it, so the deploy fails (reference 4.1).
    PolicyTooLarge,
    /// Thing A's certificate may connect with another client id.
    ConnectAsOtherClient,
    /// Thing A may subscribe to `#` or another filter spanning other devices.
    SubscribeToAllTopics,
    /// Thing A may write its cloud-owned `connectivity` named shadow.
    ConnectivityShadowWritable,
}

impl FindingKind {
    pub fn check(self) -> AuditCheck {
        match self {
            FindingKind::WildcardResource
            | FindingKind::ClientIdWithoutAttachedThing
            | FindingKind::CrossDeviceAccess => AuditCheck::OverlyPermissive,
            FindingKind::MqttWildcardInDeny
            | FindingKind::DenyBypassedByWildcardSubscription
            | FindingKind::ActionResourceMismatch
            | FindingKind::UnsupportedConditionOperator
            | FindingKind::UnknownPolicyVariable
            | FindingKind::PolicyVariablesIgnored
            | FindingKind::PolicyTooLarge => AuditCheck::PotentialMisconfiguration,
            FindingKind::ConnectAsOtherClient
            | FindingKind::SubscribeToAllTopics
            | FindingKind::ConnectivityShadowWritable => AuditCheck::DeviceIsolation,
        }
    }
}

/// One audit result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub check: AuditCheck,
    /// The policy name.
    pub policy: String,
    /// Index in the policy's `Statement` array, when one statement is responsible.
    pub statement: Option<usize>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "[{}] {:?} policy {:?}",
            self.check.id(),
            self.kind,
            self.policy
        )?;
        if let Some(statement) = self.statement {
            write!(formatter, " statement {statement}")?;
        }
        write!(formatter, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_display_names_check_policy_and_statement() {
        let finding = Finding {
            kind: FindingKind::WildcardResource,
            check: FindingKind::WildcardResource.check(),
            policy: "p".to_owned(),
            statement: Some(2),
            message: "m".to_owned(),
        };
        assert_eq!(
            finding.to_string(),
            "[IOT_POLICY_OVERLY_PERMISSIVE_CHECK] WildcardResource policy \"p\" statement 2: m"
        );
    }
}
