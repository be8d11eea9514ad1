//! Condition operators (IAM semantics, which AWS IoT policies use; reference 4.1, 4.4, 2.2).
//!
//! Supported: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`,
//! `StringLike`, `StringNotLike`, `Bool`, `Null`, `IpAddress`, `NotIpAddress`; the `ForAllValues:` /
//! `ForAnyValue:` set qualifiers (needed for `iot:ConnectAttributes`, reference 2.2) and the `...IfExists` suffix.
//!
//! Any other operator (`NumericLessThan`, `DateGreaterThan`, a typo, ...) makes the statement **not apply**, for
//! Allow and Deny alike, and the audit reports it. AWS itself would reject such a policy at CreatePolicy time or
//! evaluate an operator we do not model; not applying is the predictable choice for an emulator, and the audit
//! makes sure nobody relies on it.
//!
//! Missing keys follow IAM: a positive operator is false, a negated one (`StringNotEquals`, ...) true, `IfExists`
//! true, `ForAllValues` true, `ForAnyValue` false.

use std::net::IpAddr;

use crate::context::ConnectionContext;
use crate::document::ConditionEntry;
use crate::pattern::{CompileNotes, Pattern, Wildcards};
use crate::variables::PolicyVariable;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    Bool,
    Null,
    IpAddress,
    NotIpAddress,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Operator::StringNotEqualsIgnoreCase,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "Bool" => Operator::Bool,
            "Null" => Operator::Null,
            "IpAddress" => Operator::IpAddress,
            "NotIpAddress" => Operator::NotIpAddress,
            _ => return None,
        })
    }

    fn is_negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::NotIpAddress
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    None,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ConditionValues {
    Patterns(Vec<Pattern>),
    Networks(Vec<Option<IpNetwork>>),
    Flags(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpNetwork {
    address: IpAddr,
    prefix_length: u8,
}

/// One condition entry ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledCondition {
    operator: Operator,
    qualifier: SetQualifier,
    if_exists: bool,
    /// `None` for a key that is not documented: it never has a value.
    key: Option<PolicyVariable>,
    values: ConditionValues,
}

/// The result of compiling a condition entry.
pub(crate) enum CompiledEntry {
    Condition(CompiledCondition),
    /// The operator is not supported; the statement must not apply.
    UnsupportedOperator(String),
}

pub(crate) fn compile_condition(
    entry: &ConditionEntry,
    variables_enabled: bool,
    notes: &mut CompileNotes,
) -> CompiledEntry {
    let (qualifier, operator_name) =
        if let Some(rest) = entry.operator.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, rest)
        } else if let Some(rest) = entry.operator.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, rest)
        } else {
            (SetQualifier::None, entry.operator.as_str())
        };
    let (operator_name, if_exists) = match operator_name.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator_name, false),
    };
    let Some(operator) = Operator::parse(operator_name) else {
        return CompiledEntry::UnsupportedOperator(entry.operator.clone());
    };
    if if_exists && operator == Operator::Null {
        return CompiledEntry::UnsupportedOperator(entry.operator.clone());
    }
    let values = match operator {
        Operator::Bool | Operator::Null => ConditionValues::Flags(entry.values.clone()),
        Operator::IpAddress | Operator::NotIpAddress => ConditionValues::Networks(
            entry
                .values
                .iter()
                .map(|value| parse_network(value))
                .collect(),
        ),
        Operator::StringLike | Operator::StringNotLike => ConditionValues::Patterns(
            entry
                .values
                .iter()
                .map(|value| {
                    Pattern::compile(value, variables_enabled, Wildcards::Glob, false, notes)
                })
                .collect(),
        ),
        Operator::StringEquals
        | Operator::StringNotEquals
        | Operator::StringEqualsIgnoreCase
        | Operator::StringNotEqualsIgnoreCase => {
            let ignore_case = matches!(
                operator,
                Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase
            );
            ConditionValues::Patterns(
                entry
                    .values
                    .iter()
                    .map(|value| {
                        Pattern::compile(
                            value,
                            variables_enabled,
                            Wildcards::Literal,
                            ignore_case,
                            notes,
                        )
                    })
                    .collect(),
            )
        }
    };
    CompiledEntry::Condition(CompiledCondition {
        operator,
        qualifier,
        if_exists,
        key: PolicyVariable::parse(&entry.key),
        values,
    })
}

impl CompiledCondition {
    /// Whether this is `Bool: {iot:Connection.Thing.IsAttached: true}`, the guard reference 4.4 recommends.
    pub(crate) fn requires_attached_thing(&self) -> bool {
        self.operator == Operator::Bool
            && self.key == Some(PolicyVariable::ThingIsAttached)
            && matches!(&self.values, ConditionValues::Flags(flags)
                if !flags.is_empty() && flags.iter().all(|flag| flag.eq_ignore_ascii_case("true")))
    }

    pub(crate) fn is_satisfied(&self, context: &ConnectionContext) -> bool {
        let key_values = match &self.key {
            Some(variable) => variable.resolve(context),
            None => crate::variables::ResolvedValues::Absent,
        };
        if self.operator == Operator::Null {
            let ConditionValues::Flags(flags) = &self.values else {
                return false;
            };
            let absent = key_values.is_absent();
            return flags.iter().any(|flag| {
                (flag.eq_ignore_ascii_case("true") && absent)
                    || (flag.eq_ignore_ascii_case("false") && !absent)
            });
        }
        if key_values.is_absent() {
            return match self.qualifier {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => false,
                SetQualifier::None => self.if_exists || self.operator.is_negated(),
            };
        }
        let single_value_passes = |value: &str| self.value_passes(value, context);
        match self.qualifier {
            SetQualifier::ForAllValues => key_values.all(single_value_passes),
            SetQualifier::ForAnyValue | SetQualifier::None => {
                if self.operator.is_negated() && self.qualifier == SetQualifier::None {
                    // A negated operator on a multi-valued key: no value may match.
                    key_values.all(single_value_passes)
                } else {
                    key_values.any(single_value_passes)
                }
            }
        }
    }

    /// Whether one key value satisfies the operator against the policy's values.
    fn value_passes(&self, value: &str, context: &ConnectionContext) -> bool {
        let matched = match &self.values {
            ConditionValues::Patterns(patterns) => patterns
                .iter()
                .any(|pattern| pattern.matches(value, context)),
            ConditionValues::Flags(flags) => {
                flags.iter().any(|flag| flag.eq_ignore_ascii_case(value))
            }
            ConditionValues::Networks(networks) => match value.parse::<IpAddr>() {
                Ok(address) => networks
                    .iter()
                    .flatten()
                    .any(|network| network.contains(address)),
                Err(_) => false,
            },
        };
        matched != self.operator.is_negated()
    }
}

fn parse_network(text: &str) -> Option<IpNetwork> {
    let (address, prefix_length) = match text.split_once('/') {
        Some((address, prefix)) => (address.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?),
        None => {
            let address = text.parse::<IpAddr>().ok()?;
            let full = if address.is_ipv4() { 32 } else { 128 };
            (address, full)
        }
    };
    let maximum = if address.is_ipv4() { 32 } else { 128 };
    (prefix_length <= maximum).then_some(IpNetwork {
        address,
        prefix_length,
    })
}

impl IpNetwork {
    fn contains(&self, candidate: IpAddr) -> bool {
        let (network, candidate, width) = match (self.address, candidate) {
            (IpAddr::V4(network), IpAddr::V4(candidate)) => (
                u128::from(network.to_bits()),
                u128::from(candidate.to_bits()),
                32u32,
            ),
            (IpAddr::V6(network), IpAddr::V6(candidate)) => {
                (network.to_bits(), candidate.to_bits(), 128)
            }
            _ => return false,
        };
        let prefix = u32::from(self.prefix_length);
        if prefix == 0 {
            return true;
        }
        let shift = width - prefix;
        (network >> shift) == (candidate >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ThingContext;

    fn condition(operator: &str, key: &str, values: &[&str]) -> CompiledCondition {
        let entry = ConditionEntry {
            operator: operator.to_owned(),
            key: key.to_owned(),
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        };
        match compile_condition(&entry, true, &mut CompileNotes::default()) {
            CompiledEntry::Condition(condition) => condition,
            CompiledEntry::UnsupportedOperator(name) => panic!("unsupported {name}"),
        }
    }

    #[test]
    fn bool_is_attached() {
        let guard = condition("Bool", "iot:Connection.Thing.IsAttached", &["true"]);
        assert!(guard.requires_attached_thing());
        assert!(guard.is_satisfied(&ConnectionContext::attached_thing("a")));
        assert!(!guard.is_satisfied(&ConnectionContext::new("a")));
        let mismatched = ConnectionContext::new("b").with_thing(ThingContext::named("a"));
        assert!(!guard.is_satisfied(&mismatched));
    }

    #[test]
    fn string_operators_and_variables_in_values() {
        let context = ConnectionContext::attached_thing("Lamp-1");
        assert!(
            condition(
                "StringEquals",
                "iot:ClientId",
                &["${iot:Connection.Thing.ThingName}"]
            )
            .is_satisfied(&context)
        );
        assert!(condition("StringEquals", "iot:ClientId", &["x", "Lamp-1"]).is_satisfied(&context));
        assert!(!condition("StringEquals", "iot:ClientId", &["lamp-1"]).is_satisfied(&context));
        assert!(
            condition("StringEqualsIgnoreCase", "iot:ClientId", &["lamp-1"]).is_satisfied(&context)
        );
        assert!(!condition("StringEquals", "iot:ClientId", &["Lamp-*"]).is_satisfied(&context));
        assert!(condition("StringLike", "iot:ClientId", &["Lamp-*"]).is_satisfied(&context));
        assert!(condition("StringNotLike", "iot:ClientId", &["Fan-*"]).is_satisfied(&context));
        assert!(!condition("StringNotEquals", "iot:ClientId", &["Lamp-1"]).is_satisfied(&context));
        assert!(
            !condition("StringNotEqualsIgnoreCase", "iot:ClientId", &["LAMP-1"])
                .is_satisfied(&context)
        );
    }

    #[test]
    fn missing_keys_follow_iam() {
        let context = ConnectionContext::new("c");
        let key = "iot:Connection.Thing.ThingTypeName";
        assert!(!condition("StringEquals", key, &["bulb"]).is_satisfied(&context));
        assert!(condition("StringNotEquals", key, &["bulb"]).is_satisfied(&context));
        assert!(condition("StringEqualsIfExists", key, &["bulb"]).is_satisfied(&context));
        assert!(condition("Null", key, &["true"]).is_satisfied(&context));
        assert!(!condition("Null", key, &["false"]).is_satisfied(&context));
        assert!(!condition("StringEquals", "iot:NotAKey", &["x"]).is_satisfied(&context));
    }

    #[test]
    fn connect_attributes_set_operators() {
        let only_persistent = condition(
            "ForAllValues:StringEquals",
            "iot:ConnectAttributes",
            &["PersistentConnect"],
        );
        let plain = ConnectionContext::new("c");
        let with_will = ConnectionContext::new("c").with_connect_attribute("LastWill");
        let persistent = ConnectionContext::new("c").with_connect_attribute("PersistentConnect");
        assert!(only_persistent.is_satisfied(&plain));
        assert!(only_persistent.is_satisfied(&persistent));
        assert!(!only_persistent.is_satisfied(&with_will));
        let any_will = condition(
            "ForAnyValue:StringEquals",
            "iot:ConnectAttributes",
            &["LastWill"],
        );
        assert!(any_will.is_satisfied(&with_will));
        assert!(!any_will.is_satisfied(&plain));
    }

    #[test]
    fn ip_address_ranges() {
        let office = condition(
            "IpAddress",
            "aws:SourceIp",
            &["192.0.2.0/24", "2001:db8::/32"],
        );
        assert!(office.is_satisfied(&ConnectionContext::new("c").with_source_ip("192.0.2.77")));
        assert!(!office.is_satisfied(&ConnectionContext::new("c").with_source_ip("198.51.100.1")));
        assert!(office.is_satisfied(&ConnectionContext::new("c").with_source_ip("2001:db8::1")));
        assert!(!office.is_satisfied(&ConnectionContext::new("c")));
        let not_office = condition("NotIpAddress", "aws:SourceIp", &["192.0.2.0/24"]);
        assert!(
            not_office.is_satisfied(&ConnectionContext::new("c").with_source_ip("198.51.100.1"))
        );
        assert!(!not_office.is_satisfied(&ConnectionContext::new("c").with_source_ip("192.0.2.1")));
    }

    #[test]
    fn unknown_operators_are_reported() {
        for operator in ["NumericLessThan", "StringEqualz", "NullIfExists"] {
            let entry = ConditionEntry {
                operator: operator.to_owned(),
                key: "iot:ClientId".to_owned(),
                values: vec!["1".to_owned()],
            };
            assert!(matches!(
                compile_condition(&entry, true, &mut CompileNotes::default()),
                CompiledEntry::UnsupportedOperator(name) if name == operator
            ));
        }
    }
}
