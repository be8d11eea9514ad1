//! AWS's input constraints (the `iot` service model's patterns and lengths), checked in the registry so the
//! control plane, the CLI and the template loader all refuse the same inputs AWS refuses.

use std::collections::BTreeMap;

use iot_policy::PolicyDocument;

use super::RegistryError;

/// AWS's limit on a policy document: 2,048 characters, not counting whitespace (reference: IoT Core quotas).
pub const MAX_POLICY_DOCUMENT_CHARS: usize = 2048;
/// `ThingName`, `ThingTypeName`, `PolicyName`, `AttributeName`: at most 128 characters.
const MAX_NAME_CHARS: usize = 128;
/// `AttributeValue`: at most 800 characters.
const MAX_ATTRIBUTE_VALUE_CHARS: usize = 800;
/// AWS's quota of attributes per thing.
pub const MAX_ATTRIBUTES: usize = 50;
/// `PolicyDocument` in the service model: at most 404,600 characters in all (whitespace included), which bounds
/// what the 2,048-character rule lets through as whitespace.
pub const MAX_POLICY_DOCUMENT_TOTAL_CHARS: usize = 404_600;
/// `CertificateSigningRequest`: at most 4,096 characters.
pub const MAX_CSR_CHARS: usize = 4096;
/// `CertificatePem`: at most 65,536 characters.
pub const MAX_CERTIFICATE_PEM_CHARS: usize = 65536;

fn invalid(message: String) -> RegistryError {
    RegistryError::InvalidRequest(message)
}

fn check(
    what: &str,
    value: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(char) -> bool,
    pattern: &str,
) -> Result<(), RegistryError> {
    let length = value.chars().count();
    if length < min || length > max {
        return Err(invalid(format!(
            "1 validation error detected: Value '{value}' at '{what}' failed to satisfy constraint: Member must have length between {min} and {max}"
        )));
    }
    if !value.chars().all(allowed) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{value}' at '{what}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        )));
    }
    Ok(())
}

/// `[a-zA-Z0-9:_-]+`, 1..=128.
pub fn thing_name(name: &str) -> Result<(), RegistryError> {
    check(
        "thingName",
        name,
        1,
        MAX_NAME_CHARS,
        |c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'),
        "[a-zA-Z0-9:_-]+",
    )
}

/// Same pattern as thing names.
pub fn thing_type_name(name: &str) -> Result<(), RegistryError> {
    check(
        "thingTypeName",
        name,
        1,
        MAX_NAME_CHARS,
        |c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'),
        "[a-zA-Z0-9:_-]+",
    )
}

/// `[\w+=,.@-]+`, 1..=128 (`\w` is ASCII word characters in AWS's Java patterns).
pub fn policy_name(name: &str) -> Result<(), RegistryError> {
    check(
        "policyName",
        name,
        1,
        MAX_NAME_CHARS,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-'),
        "[\\w+=,.@-]+",
    )
}

/// `[0-9]+`; returns the number.
pub fn policy_version_id(policy: &str, version_id: &str) -> Result<u32, RegistryError> {
    if version_id.is_empty() || !version_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{version_id}' at 'policyVersionId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]+"
        )));
    }
    // A number too large to be a version is a version that does not exist.
    version_id
        .parse()
        .map_err(|_| RegistryError::NoSuchPolicyVersion {
            policy: policy.to_owned(),
            version_id: version_id.to_owned(),
        })
}

/// 64 hex characters (AWS also accepts a `0x` prefix in the pattern but then the length is wrong, so never).
/// Returns the id in lowercase, as AWS stores it.
pub fn certificate_id(id: &str) -> Result<String, RegistryError> {
    check(
        "certificateId",
        id,
        64,
        64,
        |c| c.is_ascii_hexdigit(),
        "(0x)?[a-fA-F0-9]+",
    )?;
    Ok(id.to_ascii_lowercase())
}

/// `AttributeName` `[a-zA-Z0-9_.,@/:#-]+` (1..=128) and `AttributeValue` `[a-zA-Z0-9_.,@/:#=\[\]-]*` (..=800).
pub fn attributes(attributes: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "A thing can have at most {MAX_ATTRIBUTES} attributes, got {}",
            attributes.len()
        )));
    }
    for (name, value) in attributes {
        check(
            "attributePayload.attributes.key",
            name,
            1,
            MAX_NAME_CHARS,
            |c| c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c),
            "[a-zA-Z0-9_.,@/:#-]+",
        )?;
        check(
            "attributePayload.attributes.value",
            value,
            0,
            MAX_ATTRIBUTE_VALUE_CHARS,
            |c| c.is_ascii_alphanumeric() || "_.,@/:#=[]-".contains(c),
            "[a-zA-Z0-9_.,@/:#=\\[\\]-]*",
        )?;
    }
    Ok(())
}

/// A policy document as AWS accepts it: JSON that iot-policy parses, at most 2,048 characters without
/// whitespace. Returns the parsed document (compiled by the caller when it becomes a default version).
pub fn policy_document(name: &str, document: &str) -> Result<PolicyDocument, RegistryError> {
    let malformed = |reason: String| RegistryError::MalformedPolicy {
        name: name.to_owned(),
        reason,
    };
    if document.len() > MAX_POLICY_DOCUMENT_TOTAL_CHARS {
        return Err(malformed(format!(
            "the document is longer than {MAX_POLICY_DOCUMENT_TOTAL_CHARS} characters"
        )));
    }
    let significant = document.chars().filter(|c| !c.is_whitespace()).count();
    if significant > MAX_POLICY_DOCUMENT_CHARS {
        return Err(malformed(format!(
            "the document has {significant} characters without whitespace; the limit is {MAX_POLICY_DOCUMENT_CHARS}"
        )));
    }
    PolicyDocument::from_json_str(document).map_err(|error| malformed(error.to_string()))
}
