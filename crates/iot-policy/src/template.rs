//! Reading `AWS::IoT::Policy` resources out of a synthesized CloudFormation template, so the emulator enforces
//! exactly the policy `cdk deploy` would create (architecture.md section 1).
//!
//! CDK writes ARNs with intrinsics (`{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iot:", ...]]}`) or
//! `Fn::Sub`; they are resolved for a given account and region. In `Fn::Sub`, an IoT policy variable must be
//! escaped as `${!iot:ClientId}` (CloudFormation turns `${!X}` into the literal `${X}`); an unescaped
//! `${iot:ClientId}` is an error, as CloudFormation would reject it too.

use serde_json::{Map, Value};

use crate::arn::partition_for_region;
use crate::document::{PolicyDocument, PolicyError, scalar_to_string};

/// The pseudo parameters `Ref` and `Fn::Sub` can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudoParameters {
    pub account_id: String,
    pub region: String,
    pub partition: String,
    pub url_suffix: String,
    pub stack_name: String,
}

impl PseudoParameters {
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> PseudoParameters {
        let region = region.into();
        let partition = partition_for_region(&region);
        PseudoParameters {
            account_id: account_id.into(),
            url_suffix: if partition == "aws-cn" {
                "amazonaws.com.cn".to_owned()
            } else {
                "amazonaws.com".to_owned()
            },
            partition: partition.to_owned(),
            region,
            stack_name: "local".to_owned(),
        }
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        match name {
            "AWS::AccountId" => Some(&self.account_id),
            "AWS::Region" => Some(&self.region),
            "AWS::Partition" => Some(&self.partition),
            "AWS::URLSuffix" => Some(&self.url_suffix),
            "AWS::StackName" => Some(&self.stack_name),
            _ => None,
        }
    }
}

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

/// Why policies could not be loaded from a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("template has no \"Resources\" object")]
    NoResources,
    #[error("resource {logical_id}: missing PolicyDocument")]
    MissingPolicyDocument { logical_id: String },
    #[error("resource {logical_id}: {source}")]
    Intrinsic {
        logical_id: String,
        #[source]
        source: IntrinsicError,
    },
    #[error("resource {logical_id}: PolicyDocument string is not JSON: {message}")]
    PolicyDocumentNotJson { logical_id: String, message: String },
    #[error("resource {logical_id}: PolicyName must be a string")]
    PolicyNameNotAString { logical_id: String },
    #[error("policy {policy_name}: {source}")]
    Policy {
        policy_name: String,
        #[source]
        source: PolicyError,
    },
}

/// Every `AWS::IoT::Policy` of the template as `(policy name, document)`: the `PolicyName` property, else the
/// logical id. Ordered by logical id.
pub fn load_policies_from_template(
    template_json: &str,
    account: &str,
    region: &str,
) -> Result<Vec<(String, PolicyDocument)>, TemplateError> {
    let template: Value = serde_json::from_str(template_json)
        .map_err(|error| TemplateError::InvalidJson(error.to_string()))?;
    load_policies_from_template_value(&template, &PseudoParameters::new(account, region))
}

/// [`load_policies_from_template`] over an already parsed template.
pub fn load_policies_from_template_value(
    template: &Value,
    pseudo: &PseudoParameters,
) -> Result<Vec<(String, PolicyDocument)>, TemplateError> {
    let resources = template
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or(TemplateError::NoResources)?;
    let mut policies = Vec::new();
    for (logical_id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::IoT::Policy") {
            continue;
        }
        let intrinsic_error = |source| TemplateError::Intrinsic {
            logical_id: logical_id.clone(),
            source,
        };
        let properties = resource.get("Properties");
        let name = match properties.and_then(|properties| properties.get("PolicyName")) {
            None => logical_id.clone(),
            Some(raw_name) => {
                match resolve_intrinsics(raw_name, pseudo).map_err(intrinsic_error)? {
                    Value::String(name) => name,
                    _ => {
                        return Err(TemplateError::PolicyNameNotAString {
                            logical_id: logical_id.clone(),
                        });
                    }
                }
            }
        };
        let raw_document = properties
            .and_then(|properties| properties.get("PolicyDocument"))
            .ok_or_else(|| TemplateError::MissingPolicyDocument {
                logical_id: logical_id.clone(),
            })?;
        let document_value =
            match resolve_intrinsics(raw_document, pseudo).map_err(intrinsic_error)? {
                // The property may also hold the document as a JSON string.
                Value::String(text) => serde_json::from_str(&text).map_err(|error| {
                    TemplateError::PolicyDocumentNotJson {
                        logical_id: logical_id.clone(),
                        message: error.to_string(),
                    }
                })?,
                other => other,
            };
        let document = PolicyDocument::from_value(&document_value).map_err(|source| {
            TemplateError::Policy {
                policy_name: name.clone(),
                source,
            }
        })?;
        policies.push((name, document));
    }
    Ok(policies)
}

/// What `Ref` and `Fn::GetAtt` of a template's own resources resolve to. Policy documents never
/// name resources, so [`resolve_intrinsics`] knows none; the emulator reads function and rule ARNs
/// through its own implementation.
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

    #[test]
    fn loads_every_iot_policy_with_its_name() {
        let template = json!({"Resources": {
            "DevicePolicyABC": {"Type": "AWS::IoT::Policy", "Properties": {
                "PolicyName": "device-policy",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect",
                    "Resource": {"Fn::Sub": "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:client/x"}}]}}},
            "Unnamed": {"Type": "AWS::IoT::Policy", "Properties": {
                "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"}},
            "Bucket": {"Type": "AWS::S3::Bucket"}
        }});
        let policies =
            load_policies_from_template(&template.to_string(), "111122223333", "us-west-2")
                .unwrap();
        let names: Vec<&str> = policies.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["device-policy", "Unnamed"]);
        assert_eq!(
            policies[0].1.statements[0].resources.patterns(),
            ["arn:aws:iot:us-west-2:111122223333:client/x"]
        );
    }

    #[test]
    fn template_errors_name_the_resource() {
        assert_eq!(
            load_policies_from_template("{}", "1", "r").unwrap_err(),
            TemplateError::NoResources
        );
        let bad = json!({"Resources": {"P": {"Type": "AWS::IoT::Policy", "Properties": {
            "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": {"Fn::Sub": "${iot:ClientId}"}}]}}}}});
        assert!(matches!(
            load_policies_from_template(&bad.to_string(), "1", "r").unwrap_err(),
            TemplateError::Intrinsic { logical_id, source: IntrinsicError::UnknownSubVariable(_) } if logical_id == "P"
        ));
        let invalid = json!({"Resources": {"P": {"Type": "AWS::IoT::Policy", "Properties": {
            "PolicyDocument": {"Statement": [{"Action": "iot:*", "Resource": "*"}]}}}}});
        assert!(matches!(
            load_policies_from_template(&invalid.to_string(), "1", "r").unwrap_err(),
            TemplateError::Policy { policy_name, .. } if policy_name == "P"
        ));
    }
}
