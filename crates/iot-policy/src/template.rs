//! Reading `AWS::IoT::Policy` resources out of a synthesized CloudFormation template, so the emulator enforces
//! exactly the policy `cdk deploy` would create (architecture.md section 1). The template itself (its resources
//! and the intrinsics CDK writes) is read by the `cfn-template` crate; this module is what is policy about it.

use cfn_template::{IntrinsicError, PseudoParameters, ReadError, resolve_intrinsics};
use serde_json::Value;

use crate::document::{PolicyDocument, PolicyError};

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

impl From<ReadError> for TemplateError {
    fn from(error: ReadError) -> TemplateError {
        match error {
            ReadError::InvalidJson(message) => TemplateError::InvalidJson(message),
            ReadError::NoResources => TemplateError::NoResources,
        }
    }
}

/// Every `AWS::IoT::Policy` of the template as `(policy name, document)`: the `PolicyName` property, else the
/// logical id. In the template's order.
pub fn load_policies_from_template(
    template_json: &str,
    account: &str,
    region: &str,
) -> Result<Vec<(String, PolicyDocument)>, TemplateError> {
    let template = cfn_template::parse_template(template_json)?;
    load_policies_from_template_value(&template, &PseudoParameters::new(account, region))
}

/// [`load_policies_from_template`] over an already parsed template.
pub fn load_policies_from_template_value(
    template: &Value,
    pseudo: &PseudoParameters,
) -> Result<Vec<(String, PolicyDocument)>, TemplateError> {
    let mut policies = Vec::new();
    for resource in cfn_template::resources(template)? {
        if resource.resource_type != Some("AWS::IoT::Policy") {
            continue;
        }
        let logical_id = resource.logical_id;
        let intrinsic_error = |source: IntrinsicError| TemplateError::Intrinsic {
            logical_id: logical_id.to_owned(),
            source,
        };
        let name = match resource.property("PolicyName") {
            None => logical_id.to_owned(),
            Some(raw_name) => {
                match resolve_intrinsics(raw_name, pseudo).map_err(intrinsic_error)? {
                    Value::String(name) => name,
                    _ => {
                        return Err(TemplateError::PolicyNameNotAString {
                            logical_id: logical_id.to_owned(),
                        });
                    }
                }
            }
        };
        let raw_document = resource.property("PolicyDocument").ok_or_else(|| {
            TemplateError::MissingPolicyDocument {
                logical_id: logical_id.to_owned(),
            }
        })?;
        let document_value =
            match resolve_intrinsics(raw_document, pseudo).map_err(intrinsic_error)? {
                // The property may also hold the document as a JSON string.
                Value::String(text) => serde_json::from_str(&text).map_err(|error| {
                    TemplateError::PolicyDocumentNotJson {
                        logical_id: logical_id.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
