//! `MqttWildcardInDeny`: `+`/`#` in a Deny resource are literal in policies, so the Deny misses what it seems
//! to cover (reference 4.3).

use super::FindingKind;
use super::runner::PolicyAuditor;
use crate::evaluate::CompiledStatement;

impl PolicyAuditor<'_> {
    pub(super) fn check_mqtt_wildcard_in_deny(
        &mut self,
        index: usize,
        statement: &CompiledStatement,
    ) {
        for pattern in statement.resources() {
            let text = without_variables(pattern.raw());
            let resource_part = crate::arn::resource_part(&text).unwrap_or(&text);
            let wildcards: Vec<&str> = ["+", "#"]
                .into_iter()
                .filter(|wildcard| resource_part.contains(wildcard))
                .collect();
            if !wildcards.is_empty() {
                self.push(
                    FindingKind::MqttWildcardInDeny,
                    Some(index),
                    format!(
                        "Deny resource {} contains MQTT wildcard {}; in policies + and # are literal characters \
                         (reference 4.3), so this only denies that exact string, not the topics it seems to \
                         cover; use * (and ? for one character)",
                        pattern.raw(),
                        wildcards.join(" and ")
                    ),
                );
            }
        }
    }
}

/// The text with `${...}` sections removed (a variable's name never holds an MQTT wildcard the author meant).
fn without_variables(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        output.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(close) => rest = &rest[start + close + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    output.push_str(rest);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_stripped_before_looking_for_mqtt_wildcards() {
        assert_eq!(without_variables("topic/${iot:ClientId}/#"), "topic//#");
        assert_eq!(without_variables("a${b"), "a${b");
    }
}
