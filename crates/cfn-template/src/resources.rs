//! The `Resources` of a template, as CDK synthesizes them: `{"LogicalId": {"Type": ..., "Properties": {...}}}`.

use serde_json::{Map, Value};

/// Why a template could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("template is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("template has no \"Resources\" object")]
    NoResources,
}

/// One resource of a template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resource<'a> {
    pub logical_id: &'a str,
    /// `Type`, e.g. `AWS::IoT::Policy`; `None` when missing or not a string.
    pub resource_type: Option<&'a str>,
    /// `Properties`, when present.
    pub properties: Option<&'a Value>,
}

impl<'a> Resource<'a> {
    /// The property `name`, unresolved.
    pub fn property(&self, name: &str) -> Option<&'a Value> {
        self.properties?.get(name)
    }
}

/// Parses a template's JSON text.
pub fn parse_template(template_json: &str) -> Result<Value, ReadError> {
    serde_json::from_str(template_json).map_err(|error| ReadError::InvalidJson(error.to_string()))
}

/// Every resource of `template`, in the order of the parsed map: the template's own order, since the
/// workspace builds serde_json with `preserve_order`.
pub fn resources(template: &Value) -> Result<impl Iterator<Item = Resource<'_>>, ReadError> {
    let resources: &Map<String, Value> = template
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or(ReadError::NoResources)?;
    Ok(resources.iter().map(|(logical_id, resource)| Resource {
        logical_id,
        resource_type: resource.get("Type").and_then(Value::as_str),
        properties: resource.get("Properties"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_resources_with_type_and_properties() {
        let template = json!({"Resources": {
            "Policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "p"}},
            "Bucket": {"Type": "AWS::S3::Bucket"}
        }});
        let listed: Vec<Resource<'_>> = resources(&template).unwrap().collect();
        assert_eq!(listed.len(), 2);
        let policy = listed
            .iter()
            .find(|resource| resource.logical_id == "Policy")
            .unwrap();
        assert_eq!(policy.resource_type, Some("AWS::IoT::Policy"));
        assert_eq!(policy.property("PolicyName"), Some(&json!("p")));
        let bucket = listed
            .iter()
            .find(|resource| resource.logical_id == "Bucket")
            .unwrap();
        assert_eq!(bucket.property("PolicyName"), None);
    }

    #[test]
    fn a_template_without_resources_is_an_error() {
        assert_eq!(resources(&json!({})).err(), Some(ReadError::NoResources));
        assert!(matches!(
            parse_template("{"),
            Err(ReadError::InvalidJson(_))
        ));
    }
}
