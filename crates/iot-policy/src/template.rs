//! Reading `AWS::IoT::Policy` resources out of a synthesized CloudFormation template, so the emulator enforces
//! exactly the policy `cdk deploy` would create (architecture.md section 1).
//!
//! CDK writes ARNs with intrinsics (`{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iot:", ...]]}`) or
//! `Fn::Sub`; they are resolved for a given account and region. In `Fn::Sub`, an IoT policy variable must be
//! escaped as `${!iot:ClientId}` (CloudFormation turns `${!X}` into the literal `${X}`); an unescaped
//! `${iot:ClientId}` is an error, as CloudFormation would reject it too.

use serde_json::{Map, Value};

use crate::arn::partition_for_region;
use crate::document::{PolicyDocument, PolicyError};

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
    #[error(
        "unsupported intrinsic function {0} (supported: Ref of pseudo parameters, Fn::Join, Fn::Sub)"
    )]
    UnsupportedFunction(String),
    #[error(
        "Ref to {0:?} cannot be resolved locally (only AWS::AccountId, AWS::Region, AWS::Partition, AWS::URLSuffix, AWS::StackName)"
    )]
    UnresolvableRef(String),
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

/// Resolves `Ref` (pseudo parameters), `Fn::Join` and `Fn::Sub` anywhere inside `value`.
pub fn resolve_intrinsics(
    value: &Value,
    pseudo: &PseudoParameters,
) -> Result<Value, IntrinsicError> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| resolve_intrinsics(item, pseudo))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(object) => {
            if object.len() == 1
                && let Some((key, argument)) = object.iter().next()
                && (key == "Ref" || key.starts_with("Fn::"))
            {
                return resolve_function(key, argument, pseudo);
            }
            object
                .iter()
                .map(|(key, item)| Ok((key.clone(), resolve_intrinsics(item, pseudo)?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object)
        }
        scalar => Ok(scalar.clone()),
    }
}

fn resolve_function(
    name: &str,
    argument: &Value,
    pseudo: &PseudoParameters,
) -> Result<Value, IntrinsicError> {
    match name {
        "Ref" => {
            let target = argument
                .as_str()
                .ok_or_else(|| IntrinsicError::UnresolvableRef(argument.to_string()))?;
            pseudo
                .lookup(target)
                .map(|value| Value::String(value.to_owned()))
                .ok_or_else(|| IntrinsicError::UnresolvableRef(target.to_owned()))
        }
        "Fn::Join" => {
            let [delimiter, values] = argument.as_array().map(Vec::as_slice).unwrap_or_default()
            else {
                return Err(IntrinsicError::MalformedJoin);
            };
            let delimiter = delimiter.as_str().ok_or(IntrinsicError::MalformedJoin)?;
            let values = match resolve_intrinsics(values, pseudo)? {
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
                                let value = resolve_intrinsics(value, pseudo)?;
                                Ok((key.clone(), Value::String(scalar_text(&value, "Fn::Sub")?)))
                            })
                            .collect::<Result<Map<_, _>, IntrinsicError>>()?;
                        (template.as_str(), resolved)
                    }
                    _ => return Err(IntrinsicError::MalformedSub),
                },
                _ => return Err(IntrinsicError::MalformedSub),
            };
            substitute(template, &variables, pseudo).map(Value::String)
        }
        other => Err(IntrinsicError::UnsupportedFunction(other.to_owned())),
    }
}

fn scalar_text(value: &Value, function: &'static str) -> Result<String, IntrinsicError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(IntrinsicError::NotAString {
            function,
            found: other.to_string(),
        }),
    }
}

/// `Fn::Sub`: `${Name}` from the variable map or the pseudo parameters; `${!Text}` is the literal `${Text}`.
fn substitute(
    template: &str,
    variables: &Map<String, Value>,
    pseudo: &PseudoParameters,
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
        } else if let Some(value) = pseudo.lookup(name) {
            output.push_str(value);
        } else {
            return Err(IntrinsicError::UnknownSubVariable(name.to_owned()));
        }
        rest = &after[close + 1..];
    }
    output.push_str(rest);
    Ok(output)
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
            IntrinsicError::UnsupportedFunction("Fn::GetAtt".to_owned())
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
