//! The intrinsic functions CDK writes into properties: `Ref`, `Fn::GetAtt`, `Fn::Join` and `Fn::Sub`.
//!
//! CDK writes ARNs with intrinsics (`{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iot:", ...]]}`) or
//! `Fn::Sub`; they are resolved for given [`PseudoParameters`]. In `Fn::Sub`, an IoT policy variable must be
//! escaped as `${!iot:ClientId}` (CloudFormation turns `${!X}` into the literal `${X}`); an unescaped
//! `${iot:ClientId}` is an error, as CloudFormation would reject it too.

use serde_json::{Map, Value};

use crate::pseudo::PseudoParameters;

/// Why an intrinsic function could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrinsicError {
    #[error("unsupported intrinsic function {0} (supported: Ref, Fn::GetAtt, Fn::Join, Fn::Sub)")]
    UnsupportedFunction(String),
    #[error(
        "Ref to {0:?} cannot be resolved locally (pseudo parameters AWS::AccountId, AWS::Region, AWS::Partition, \
         AWS::URLSuffix, AWS::StackName, and the resources the caller knows)"
    )]
    UnresolvableRef(String),
    #[error("Fn::GetAtt {0:?} cannot be resolved locally")]
    UnresolvableGetAtt(String),
    #[error(
        "malformed Fn::GetAtt: expected [\"LogicalId\", \"Attribute\"] or \"LogicalId.Attribute\""
    )]
    MalformedGetAtt,
    #[error("malformed Fn::Join: expected [delimiter, [values...]]")]
    MalformedJoin,
    #[error("malformed Fn::Sub: expected \"template\" or [\"template\", {{variables}}]")]
    MalformedSub,
    #[error(
        "Fn::Sub variable ${{{0}}} is not defined; an IoT policy variable inside Fn::Sub must be escaped as ${{!{0}}}"
    )]
    UnknownSubVariable(String),
    #[error("{function} must resolve to a string, found {found}")]
    NotAString {
        function: &'static str,
        found: String,
    },
}

/// What `Ref` and `Fn::GetAtt` of a template's own resources resolve to. [`resolve_intrinsics`] knows
/// none (an IoT policy document has no business naming them); the emulator answers for functions, log
/// groups, rules and queues through its own implementation.
pub trait ResourceReferences {
    /// `Ref` of the resource `logical_id`: its physical name (or id, by resource type).
    fn reference(&self, logical_id: &str) -> Option<String>;
    /// `Fn::GetAtt` of `attribute` (e.g. `Arn`) on the resource `logical_id`.
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String>;
}

struct NoResources;

impl ResourceReferences for NoResources {
    fn reference(&self, _: &str) -> Option<String> {
        None
    }

    fn attribute(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// Resolves `Ref` (pseudo parameters), `Fn::Join` and `Fn::Sub` anywhere inside `value`.
pub fn resolve_intrinsics(
    value: &Value,
    pseudo: &PseudoParameters,
) -> Result<Value, IntrinsicError> {
    resolve_intrinsics_with(value, pseudo, &NoResources)
}

/// [`resolve_intrinsics`], with `Ref`, `Fn::GetAtt` and `Fn::Sub` references to the template's
/// resources answered by `resources`.
pub fn resolve_intrinsics_with(
    value: &Value,
    pseudo: &PseudoParameters,
    resources: &dyn ResourceReferences,
) -> Result<Value, IntrinsicError> {
    let resolver = Resolver { pseudo, resources };
    resolver.resolve(value)
}

struct Resolver<'a> {
    pseudo: &'a PseudoParameters,
    resources: &'a dyn ResourceReferences,
}

impl Resolver<'_> {
    fn resolve(&self, value: &Value) -> Result<Value, IntrinsicError> {
        match value {
            Value::Array(items) => items
                .iter()
                .map(|item| self.resolve(item))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(object) => {
                if object.len() == 1
                    && let Some((key, argument)) = object.iter().next()
                    && (key == "Ref" || key.starts_with("Fn::"))
                {
                    return self.function(key, argument);
                }
                object
                    .iter()
                    .map(|(key, item)| Ok((key.clone(), self.resolve(item)?)))
                    .collect::<Result<Map<_, _>, _>>()
                    .map(Value::Object)
            }
            scalar => Ok(scalar.clone()),
        }
    }

    /// `Ref` of a pseudo parameter, else of a resource.
    fn reference(&self, name: &str) -> Option<String> {
        self.pseudo
            .lookup(name)
            .map(str::to_owned)
            .or_else(|| self.resources.reference(name))
    }

    fn function(&self, name: &str, argument: &Value) -> Result<Value, IntrinsicError> {
        match name {
            "Ref" => {
                let target = argument
                    .as_str()
                    .ok_or_else(|| IntrinsicError::UnresolvableRef(argument.to_string()))?;
                self.reference(target)
                    .map(Value::String)
                    .ok_or_else(|| IntrinsicError::UnresolvableRef(target.to_owned()))
            }
            "Fn::GetAtt" => {
                let (id, attribute) = match argument {
                    Value::String(dotted) => dotted
                        .split_once('.')
                        .ok_or(IntrinsicError::MalformedGetAtt)?,
                    Value::Array(parts) => match parts.as_slice() {
                        [Value::String(id), Value::String(attribute)] => {
                            (id.as_str(), attribute.as_str())
                        }
                        _ => return Err(IntrinsicError::MalformedGetAtt),
                    },
                    _ => return Err(IntrinsicError::MalformedGetAtt),
                };
                self.resources
                    .attribute(id, attribute)
                    .map(Value::String)
                    .ok_or_else(|| IntrinsicError::UnresolvableGetAtt(format!("{id}.{attribute}")))
            }
            "Fn::Join" => {
                let [delimiter, values] =
                    argument.as_array().map(Vec::as_slice).unwrap_or_default()
                else {
                    return Err(IntrinsicError::MalformedJoin);
                };
                let delimiter = delimiter.as_str().ok_or(IntrinsicError::MalformedJoin)?;
                let values = match self.resolve(values)? {
                    Value::Array(values) => values,
                    _ => return Err(IntrinsicError::MalformedJoin),
                };
                let parts = values
                    .iter()
                    .map(|value| scalar_text(value, "Fn::Join"))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::String(parts.join(delimiter)))
            }
            "Fn::Sub" => {
                let (template, variables) = match argument {
                    Value::String(template) => (template.as_str(), Map::new()),
                    Value::Array(items) => match items.as_slice() {
                        [Value::String(template), Value::Object(variables)] => {
                            let resolved = variables
                                .iter()
                                .map(|(key, value)| {
                                    let value = self.resolve(value)?;
                                    Ok((
                                        key.clone(),
                                        Value::String(scalar_text(&value, "Fn::Sub")?),
                                    ))
                                })
                                .collect::<Result<Map<_, _>, IntrinsicError>>()?;
                            (template.as_str(), resolved)
                        }
                        _ => return Err(IntrinsicError::MalformedSub),
                    },
                    _ => return Err(IntrinsicError::MalformedSub),
                };
                self.substitute(template, &variables).map(Value::String)
            }
            other => Err(IntrinsicError::UnsupportedFunction(other.to_owned())),
        }
    }

    /// `Fn::Sub`: `${Name}` from the variable map, the pseudo parameters or a resource's `Ref`,
    /// `${Name.Attribute}` from `Fn::GetAtt`; `${!Text}` is the literal `${Text}`.
    fn substitute(
        &self,
        template: &str,
        variables: &Map<String, Value>,
    ) -> Result<String, IntrinsicError> {
        let mut output = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            output.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(close) = after.find('}') else {
                // No closing brace: CloudFormation keeps the text as is.
                output.push_str(&rest[start..]);
                return Ok(output);
            };
            let name = &after[..close];
            if let Some(literal) = name.strip_prefix('!') {
                output.push_str("${");
                output.push_str(literal);
                output.push('}');
            } else if let Some(value) = variables.get(name).and_then(Value::as_str) {
                output.push_str(value);
            } else if let Some(value) = self.reference(name).or_else(|| {
                let (id, attribute) = name.split_once('.')?;
                self.resources.attribute(id, attribute)
            }) {
                output.push_str(&value);
            } else {
                return Err(IntrinsicError::UnknownSubVariable(name.to_owned()));
            }
            rest = &after[close + 1..];
        }
        output.push_str(rest);
        Ok(output)
    }
}

fn scalar_text(value: &Value, function: &'static str) -> Result<String, IntrinsicError> {
    scalar_to_string(value).ok_or_else(|| IntrinsicError::NotAString {
        function,
        found: value.to_string(),
    })
}

/// `Fn::Join` and `Fn::Sub` accept numbers and booleans where they expect text, as CloudFormation does.
fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pseudo() -> PseudoParameters {
        PseudoParameters::new("123456789012", "eu-central-1")
    }

    #[test]
    fn join_with_pseudo_parameter_refs() {
        let value = json!({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iot:", {"Ref": "AWS::Region"},
            ":", {"Ref": "AWS::AccountId"}, ":client/${iot:Connection.Thing.ThingName}"]]});
        assert_eq!(
            resolve_intrinsics(&value, &pseudo()).unwrap(),
            json!("arn:aws:iot:eu-central-1:123456789012:client/${iot:Connection.Thing.ThingName}")
        );
        assert_eq!(
            resolve_intrinsics(&json!({"Fn::Join": ["-", ["a", 1, true]]}), &pseudo()).unwrap(),
            json!("a-1-true")
        );
        assert_eq!(
            resolve_intrinsics(&json!({"Ref": "AWS::URLSuffix"}), &pseudo()).unwrap(),
            json!("amazonaws.com")
        );
    }

    #[test]
    fn sub_with_pseudo_parameters_variables_and_escapes() {
        let value = json!({"Fn::Sub": "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/data/${!iot:Connection.Thing.ThingName}/*"});
        assert_eq!(
            resolve_intrinsics(&value, &pseudo()).unwrap(),
            json!(
                "arn:aws:iot:eu-central-1:123456789012:topic/data/${iot:Connection.Thing.ThingName}/*"
            )
        );
        let with_map = json!({"Fn::Sub": ["${Prefix}/${AWS::Region}", {"Prefix": {"Fn::Join": ["", ["a", "b"]]}}]});
        assert_eq!(
            resolve_intrinsics(&with_map, &pseudo()).unwrap(),
            json!("ab/eu-central-1")
        );
    }

    /// Two resources: a queue named `jobs` and a function with an ARN.
    struct Stack;

    impl ResourceReferences for Stack {
        fn reference(&self, logical_id: &str) -> Option<String> {
            match logical_id {
                "Queue" => Some("jobs".to_owned()),
                "Fn" => Some("recorder".to_owned()),
                _ => None,
            }
        }

        fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String> {
            (logical_id == "Fn" && attribute == "Arn").then(|| "arn:fn".to_owned())
        }
    }

    #[test]
    fn resources_are_answered_by_the_caller() {
        let resolve = |value: Value| resolve_intrinsics_with(&value, &pseudo(), &Stack);
        assert_eq!(resolve(json!({"Ref": "Queue"})).unwrap(), json!("jobs"));
        assert_eq!(
            resolve(json!({"Ref": "AWS::Region"})).unwrap(),
            json!("eu-central-1"),
            "pseudo parameters come first"
        );
        assert_eq!(
            resolve(json!({"Fn::GetAtt": ["Fn", "Arn"]})).unwrap(),
            json!("arn:fn")
        );
        assert_eq!(
            resolve(json!({"Fn::GetAtt": "Fn.Arn"})).unwrap(),
            json!("arn:fn")
        );
        assert_eq!(
            resolve(json!({"Fn::Sub": "${Queue}:${Fn.Arn}:${AWS::AccountId}:${!iot:ClientId}"}))
                .unwrap(),
            json!("jobs:arn:fn:123456789012:${iot:ClientId}")
        );
        assert_eq!(
            resolve(json!({"Fn::GetAtt": ["Fn", "Role"]})).unwrap_err(),
            IntrinsicError::UnresolvableGetAtt("Fn.Role".to_owned())
        );
        assert_eq!(
            resolve(json!({"Fn::GetAtt": "no-dot"})).unwrap_err(),
            IntrinsicError::MalformedGetAtt
        );
        assert_eq!(
            resolve(json!({"Ref": "Missing"})).unwrap_err(),
            IntrinsicError::UnresolvableRef("Missing".to_owned())
        );
        // Without the hook, a resource reference is an error, not a guess.
        assert_eq!(
            resolve_intrinsics(&json!({"Ref": "Queue"}), &pseudo()).unwrap_err(),
            IntrinsicError::UnresolvableRef("Queue".to_owned())
        );
    }

    #[test]
    fn unescaped_policy_variable_in_sub_is_an_error() {
        let value = json!({"Fn::Sub": "topic/${iot:ClientId}"});
        assert_eq!(
            resolve_intrinsics(&value, &pseudo()).unwrap_err(),
            IntrinsicError::UnknownSubVariable("iot:ClientId".to_owned())
        );
    }

    #[test]
    fn unsupported_and_malformed_intrinsics() {
        assert_eq!(
            resolve_intrinsics(&json!({"Fn::GetAtt": ["X", "Arn"]}), &pseudo()).unwrap_err(),
            IntrinsicError::UnresolvableGetAtt("X.Arn".to_owned()),
            "a policy has no resources to point at"
        );
        assert_eq!(
            resolve_intrinsics(&json!({"Fn::ImportValue": "Shared"}), &pseudo()).unwrap_err(),
            IntrinsicError::UnsupportedFunction("Fn::ImportValue".to_owned())
        );
        assert_eq!(
            resolve_intrinsics(&json!({"Ref": "MyBucket"}), &pseudo()).unwrap_err(),
            IntrinsicError::UnresolvableRef("MyBucket".to_owned())
        );
        assert_eq!(
            resolve_intrinsics(&json!({"Fn::Join": ["", "x"]}), &pseudo()).unwrap_err(),
            IntrinsicError::MalformedJoin
        );
        assert_eq!(
            resolve_intrinsics(&json!({"Fn::Sub": 5}), &pseudo()).unwrap_err(),
            IntrinsicError::MalformedSub
        );
    }
}
