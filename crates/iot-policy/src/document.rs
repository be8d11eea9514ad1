//! The AWS IoT policy document as written: `Version`, `Statement` (array or a single object), and per statement
//! `Effect`, `Action`, `Resource` / `NotResource`, `Condition` (reference 4.1).
//!
//! Parsing is hand-written over `serde_json::Value` rather than derived so that a malformed document says *which*
//! statement and *which* element is wrong; a device policy that silently loses a statement is a security bug.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The only policy language version that turns `${...}` into policy variables (IAM rule, which AWS IoT follows:
/// every AWS IoT policy variable example uses it). Older or missing versions keep `${...}` as literal text.
pub const POLICY_VERSION_WITH_VARIABLES: &str = "2012-10-17";

/// CreatePolicy / CreatePolicyVersion reject documents longer than this, whitespace excluded (reference 4.1).
pub const MAX_POLICY_DOCUMENT_CHARS: usize = 2048;

/// A parsed policy document. It keeps the policy's own strings; [`crate::CompiledPolicy`] turns them into matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub version: Option<String>,
    pub statements: Vec<Statement>,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: ResourceSpec,
    pub conditions: Vec<ConditionEntry>,
}

/// `Allow` grants; `Deny` beats every `Allow` (reference 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Resource` lists what the statement applies to; `NotResource` lists what it does *not* apply to
/// (reference 4.3 uses an Allow with `NotResource` as the fix for the Deny-bypass pitfall).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSpec {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

impl ResourceSpec {
    /// The resource strings, whichever element they came from.
    pub fn patterns(&self) -> &[String] {
        match self {
            ResourceSpec::Resource(patterns) | ResourceSpec::NotResource(patterns) => patterns,
        }
    }

    pub fn is_not_resource(&self) -> bool {
        matches!(self, ResourceSpec::NotResource(_))
    }
}

/// One `"Operator": { "Key": value-or-values }` entry of a `Condition` block. The block is the AND of its entries;
/// the values of one entry are alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionEntry {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// Why a policy document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy document is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("policy document must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("policy document has no \"Statement\" element")]
    MissingStatement,
    #[error("\"Statement\" must be an object or an array of objects, found {found}")]
    StatementNotAnObject { found: &'static str },
    #[error("\"Version\" must be a string, found {found}")]
    VersionNotAString { found: &'static str },
    #[error("unknown top-level element {0:?} (allowed: Version, Id, Statement)")]
    UnknownTopLevelElement(String),
    #[error("statement {index}: {problem}")]
    Statement {
        index: usize,
        problem: StatementProblem,
    },
}

/// What is wrong inside one statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementProblem {
    #[error("statement must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("missing \"Effect\"")]
    MissingEffect,
    #[error("\"Effect\" must be \"Allow\" or \"Deny\", found {0:?}")]
    InvalidEffect(String),
    #[error("missing \"Action\"")]
    MissingAction,
    #[error("missing \"Resource\" or \"NotResource\"")]
    MissingResource,
    #[error("has both \"Resource\" and \"NotResource\"")]
    BothResourceAndNotResource,
    #[error("\"{element}\" must be a string or an array of strings")]
    NotStringOrArray { element: &'static str },
    #[error("\"{element}\" must not be empty")]
    EmptyList { element: &'static str },
    #[error(
        "unknown element {0:?} (allowed: Sid, Effect, Action, Resource, NotResource, Condition)"
    )]
    UnknownElement(String),
    #[error("\"Sid\" must be a string")]
    SidNotAString,
    #[error("\"Condition\" must be an object of operator -> {{key -> value(s)}}")]
    MalformedCondition,
    #[error("condition {operator}/{key}: values must be strings, booleans or numbers")]
    MalformedConditionValue { operator: String, key: String },
}

impl PolicyDocument {
    /// Parses a policy document from its JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|error| PolicyError::InvalidJson(error.to_string()))?;
        Self::from_value(&value)
    }

    /// Parses a policy document that is already JSON (e.g. a `PolicyDocument` property of a template).
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let object = value.as_object().ok_or(PolicyError::NotAnObject {
            found: json_kind(value),
        })?;
        for key in object.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::UnknownTopLevelElement(key.clone()));
            }
        }
        let version = match object.get("Version") {
            None => None,
            Some(Value::String(version)) => Some(version.clone()),
            Some(other) => {
                return Err(PolicyError::VersionNotAString {
                    found: json_kind(other),
                });
            }
        };
        let statement_values: Vec<&Value> = match object.get("Statement") {
            None => return Err(PolicyError::MissingStatement),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single @ Value::Object(_)) => vec![single],
            Some(other) => {
                return Err(PolicyError::StatementNotAnObject {
                    found: json_kind(other),
                });
            }
        };
        let statements = statement_values
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                parse_statement(value).map_err(|problem| PolicyError::Statement { index, problem })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicyDocument {
            version,
            statements,
        })
    }

    /// The document in AWS's JSON shape (what CreatePolicy receives and GetPolicy returns).
    pub fn to_json(&self) -> Value {
        let list = |items: &[String]| match items {
            [single] => Value::String(single.clone()),
            many => Value::Array(many.iter().cloned().map(Value::String).collect()),
        };
        let statements = self
            .statements
            .iter()
            .map(|statement| {
                let mut object = Map::new();
                if let Some(sid) = &statement.sid {
                    object.insert("Sid".to_owned(), json!(sid));
                }
                let effect = match statement.effect {
                    Effect::Allow => "Allow",
                    Effect::Deny => "Deny",
                };
                object.insert("Effect".to_owned(), json!(effect));
                object.insert("Action".to_owned(), list(&statement.actions));
                let (element, resources) = match &statement.resources {
                    ResourceSpec::Resource(resources) => ("Resource", resources),
                    ResourceSpec::NotResource(resources) => ("NotResource", resources),
                };
                object.insert(element.to_owned(), list(resources));
                if !statement.conditions.is_empty() {
                    let mut operators = Map::new();
                    for entry in &statement.conditions {
                        let keys = operators
                            .entry(entry.operator.clone())
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(keys) = keys {
                            keys.insert(entry.key.clone(), list(&entry.values));
                        }
                    }
                    object.insert("Condition".to_owned(), Value::Object(operators));
                }
                Value::Object(object)
            })
            .collect();
        let mut document = Map::new();
        if let Some(version) = &self.version {
            document.insert("Version".to_owned(), json!(version));
        }
        document.insert("Statement".to_owned(), Value::Array(statements));
        Value::Object(document)
    }

    /// The size AWS limits: characters of the JSON document, whitespace excluded (reference 4.1).
    pub fn size_without_whitespace(&self) -> usize {
        self.to_json()
            .to_string()
            .chars()
            .filter(|character| !character.is_whitespace())
            .count()
    }

    /// Whether `${...}` in this document are policy variables (only with Version 2012-10-17).
    pub fn variables_enabled(&self) -> bool {
        self.version.as_deref() == Some(POLICY_VERSION_WITH_VARIABLES)
    }
}

fn parse_statement(value: &Value) -> Result<Statement, StatementProblem> {
    let object = value.as_object().ok_or(StatementProblem::NotAnObject {
        found: json_kind(value),
    })?;
    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "Sid" | "Effect" | "Action" | "Resource" | "NotResource" | "Condition"
        ) {
            return Err(StatementProblem::UnknownElement(key.clone()));
        }
    }
    let sid = match object.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(_) => return Err(StatementProblem::SidNotAString),
    };
    let effect = match object.get("Effect") {
        None => return Err(StatementProblem::MissingEffect),
        Some(Value::String(effect)) if effect == "Allow" => Effect::Allow,
        Some(Value::String(effect)) if effect == "Deny" => Effect::Deny,
        Some(other) => return Err(StatementProblem::InvalidEffect(display_value(other))),
    };
    let actions = match object.get("Action") {
        None => return Err(StatementProblem::MissingAction),
        Some(value) => string_list(value, "Action")?,
    };
    let resources = match (object.get("Resource"), object.get("NotResource")) {
        (Some(_), Some(_)) => return Err(StatementProblem::BothResourceAndNotResource),
        (Some(value), None) => ResourceSpec::Resource(string_list(value, "Resource")?),
        (None, Some(value)) => ResourceSpec::NotResource(string_list(value, "NotResource")?),
        (None, None) => return Err(StatementProblem::MissingResource),
    };
    let conditions = match object.get("Condition") {
        None => Vec::new(),
        Some(value) => parse_condition(value)?,
    };
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        conditions,
    })
}

fn parse_condition(value: &Value) -> Result<Vec<ConditionEntry>, StatementProblem> {
    let operators = value
        .as_object()
        .ok_or(StatementProblem::MalformedCondition)?;
    let mut entries = Vec::new();
    for (operator, keys) in operators {
        let keys = keys
            .as_object()
            .ok_or(StatementProblem::MalformedCondition)?;
        for (key, raw_values) in keys {
            let malformed = || StatementProblem::MalformedConditionValue {
                operator: operator.clone(),
                key: key.clone(),
            };
            let values = match raw_values {
                Value::Array(items) => items
                    .iter()
                    .map(|item| scalar_to_string(item).ok_or_else(malformed))
                    .collect::<Result<Vec<_>, _>>()?,
                single => vec![scalar_to_string(single).ok_or_else(malformed)?],
            };
            entries.push(ConditionEntry {
                operator: operator.clone(),
                key: key.clone(),
                values,
            });
        }
    }
    Ok(entries)
}

/// `Bool` conditions are often written with JSON booleans (`true`) instead of strings; IAM accepts both.
pub(crate) fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn string_list(value: &Value, element: &'static str) -> Result<Vec<String>, StatementProblem> {
    let list = match value {
        Value::String(single) => vec![single.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(StatementProblem::NotStringOrArray { element })
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(StatementProblem::NotStringOrArray { element }),
    };
    if list.is_empty() {
        return Err(StatementProblem::EmptyList { element });
    }
    Ok(list)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_statement_object_and_string_elements_are_accepted() {
        let document = PolicyDocument::from_json_str(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(document.statements.len(), 1);
        assert_eq!(document.statements[0].actions, vec!["iot:Connect"]);
        assert_eq!(
            document.statements[0].resources,
            ResourceSpec::Resource(vec!["*".to_owned()])
        );
        assert!(document.variables_enabled());
    }

    #[test]
    fn arrays_not_resource_and_conditions_are_parsed() {
        let document = PolicyDocument::from_json_str(
            r#"{"Statement":[{"Sid":"s","Effect":"Deny","Action":["iot:Publish","iot:Receive"],
                "NotResource":["arn:aws:iot:*:*:topic/a"],
                "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":true},
                             "StringEquals":{"iot:ClientId":["a","b"]}}}]}"#,
        )
        .unwrap();
        let statement = &document.statements[0];
        assert_eq!(statement.effect, Effect::Deny);
        assert_eq!(statement.sid.as_deref(), Some("s"));
        assert!(statement.resources.is_not_resource());
        assert_eq!(statement.conditions.len(), 2);
        let bool_entry = statement
            .conditions
            .iter()
            .find(|entry| entry.operator == "Bool")
            .unwrap();
        assert_eq!(bool_entry.values, vec!["true"]);
        assert!(!document.variables_enabled());
    }

    #[test]
    fn to_json_round_trips_in_aws_shape() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"a","Effect":"Allow","Action":"iot:Connect","Resource":["r1","r2"],
             "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
            {"Effect":"Deny","Action":["iot:Publish","iot:Receive"],"NotResource":"r3"}]}"#;
        let document = PolicyDocument::from_json_str(text).unwrap();
        let value = document.to_json();
        assert_eq!(value["Statement"][0]["Resource"], json!(["r1", "r2"]));
        assert_eq!(value["Statement"][1]["NotResource"], json!("r3"));
        assert_eq!(PolicyDocument::from_value(&value).unwrap(), document);
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(document.size_without_whitespace(), compact.chars().count());
    }

    #[test]
    fn malformed_documents_name_the_problem() {
        let cases: &[(&str, PolicyError)] = &[
            ("[1]", PolicyError::NotAnObject { found: "an array" }),
            (
                "{\"Version\":\"2012-10-17\"}",
                PolicyError::MissingStatement,
            ),
            (
                "{\"Statement\":{\"Action\":\"iot:*\",\"Resource\":\"*\"}}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::MissingEffect,
                },
            ),
            (
                "{\"Statement\":[{\"Effect\":\"allow\",\"Action\":\"iot:*\",\"Resource\":\"*\"}]}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::InvalidEffect("allow".to_owned()),
                },
            ),
            (
                "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\"}]}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::MissingResource,
                },
            ),
            (
                "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"*\",\"NotResource\":\"x\"}]}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::BothResourceAndNotResource,
                },
            ),
            (
                "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}]}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::EmptyList { element: "Action" },
                },
            ),
            (
                "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[1],\"Resource\":\"*\"}]}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::NotStringOrArray { element: "Action" },
                },
            ),
            (
                "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"a\",\"Resource\":\"*\",\"Principal\":\"*\"}]}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::UnknownElement("Principal".to_owned()),
                },
            ),
            (
                "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"a\",\"Resource\":\"*\",\"Condition\":{\"Bool\":{\"k\":{}}}}]}",
                PolicyError::Statement {
                    index: 0,
                    problem: StatementProblem::MalformedConditionValue {
                        operator: "Bool".to_owned(),
                        key: "k".to_owned(),
                    },
                },
            ),
            (
                "{\"Statement\":[],\"Extra\":1}",
                PolicyError::UnknownTopLevelElement("Extra".to_owned()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                &PolicyDocument::from_json_str(text).unwrap_err(),
                expected,
                "{text}"
            );
        }
        assert!(matches!(
            PolicyDocument::from_json_str("{").unwrap_err(),
            PolicyError::InvalidJson(_)
        ));
    }
}
