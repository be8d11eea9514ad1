//! Policy variables and condition keys: the names reference 4.4 documents, and what each resolves to for a
//! [`ConnectionContext`].
//!
//! Only the variables the reference documents are recognised. Anything else (a typo such as
//! `${iot:Connection.Thing.Name}`) stays literal text, which never matches a real resource; the audit reports it.

use std::fmt;

use crate::context::{AltNameKind, ConnectionContext, DnAttribute};

/// A recognised policy variable / condition key (reference 4.4, 2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyVariable {
    /// `iot:ClientId`
    ClientId,
    /// `iot:Connection.Thing.ThingName`
    ThingName,
    /// `iot:Connection.Thing.ThingTypeName`
    ThingTypeName,
    /// `iot:Connection.Thing.Attributes[name]`
    ThingAttribute(String),
    /// `iot:Connection.Thing.IsAttached`
    ThingIsAttached,
    /// `iot:CertificateId`
    CertificateId,
    /// `iot:Certificate.Subject.<attribute>`
    CertificateSubject(DnAttribute),
    /// `iot:Certificate.Issuer.<attribute>`
    CertificateIssuer(DnAttribute),
    /// `iot:Certificate.Subject.AlternativeName.<kind>`
    CertificateSubjectAlternativeName(AltNameKind),
    /// `iot:Certificate.SerialNumber`
    CertificateSerialNumber,
    /// `iot:Certificate.AvailableKeys`: the names of the certificate variables that have values.
    CertificateAvailableKeys,
    /// `aws:SourceIp`
    SourceIp,
    /// `iot:ConnectAttributes` (multi-valued: `PersistentConnect`, `LastWill`)
    ConnectAttributes,
}

/// The values a variable resolves to, borrowed from the context where possible so evaluation stays
/// allocation-free on the hot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedValues<'a> {
    Absent,
    One(&'a str),
    Many(&'a [String]),
    Computed(Vec<String>),
}

impl ResolvedValues<'_> {
    pub fn is_absent(&self) -> bool {
        match self {
            ResolvedValues::Absent => true,
            ResolvedValues::One(_) => false,
            ResolvedValues::Many(values) => values.is_empty(),
            ResolvedValues::Computed(values) => values.is_empty(),
        }
    }

    /// Calls `check` on each value until it returns true.
    pub fn any(&self, mut check: impl FnMut(&str) -> bool) -> bool {
        match self {
            ResolvedValues::Absent => false,
            ResolvedValues::One(value) => check(value),
            ResolvedValues::Many(values) => values.iter().any(|value| check(value)),
            ResolvedValues::Computed(values) => values.iter().any(|value| check(value)),
        }
    }

    /// True when every value passes `check` (vacuously true with no values, as IAM's `ForAllValues`).
    pub fn all(&self, mut check: impl FnMut(&str) -> bool) -> bool {
        match self {
            ResolvedValues::Absent => true,
            ResolvedValues::One(value) => check(value),
            ResolvedValues::Many(values) => values.iter().all(|value| check(value)),
            ResolvedValues::Computed(values) => values.iter().all(|value| check(value)),
        }
    }
}

/// AWS does not substitute a certificate variable whose value holds one of these, leaving the `${...}` text in
/// place (AWS guide "X.509 certificate policy variable limitations"; reference 4.4 lists the variables).
const CERTIFICATE_VALUE_FORBIDDEN_CHARACTERS: [char; 5] = ['*', '$', '+', '?', '#'];
/// ... nor one longer than this.
const CERTIFICATE_VALUE_MAX_CHARS: usize = 1024;

impl PolicyVariable {
    /// Recognises a variable name as written inside `${...}` or as a condition key. The `iot:` / `aws:` names
    /// are matched ignoring ASCII case (IAM treats key names case-insensitively); attribute names keep their case.
    pub fn parse(name: &str) -> Option<PolicyVariable> {
        let lower = name.to_ascii_lowercase();
        let fixed = match lower.as_str() {
            "iot:clientid" => Some(PolicyVariable::ClientId),
            "iot:connection.thing.thingname" => Some(PolicyVariable::ThingName),
            "iot:connection.thing.thingtypename" => Some(PolicyVariable::ThingTypeName),
            "iot:connection.thing.isattached" => Some(PolicyVariable::ThingIsAttached),
            "iot:certificateid" => Some(PolicyVariable::CertificateId),
            "iot:certificate.serialnumber" => Some(PolicyVariable::CertificateSerialNumber),
            "iot:certificate.availablekeys" => Some(PolicyVariable::CertificateAvailableKeys),
            "aws:sourceip" => Some(PolicyVariable::SourceIp),
            "iot:connectattributes" => Some(PolicyVariable::ConnectAttributes),
            _ => None,
        };
        if fixed.is_some() {
            return fixed;
        }
        const ATTRIBUTES_PREFIX: &str = "iot:connection.thing.attributes[";
        if lower.starts_with(ATTRIBUTES_PREFIX) && name.ends_with(']') {
            let attribute = &name[ATTRIBUTES_PREFIX.len()..name.len() - 1];
            if !attribute.is_empty() {
                return Some(PolicyVariable::ThingAttribute(attribute.to_owned()));
            }
            return None;
        }
        if let Some(rest) = lower.strip_prefix("iot:certificate.subject.alternativename.") {
            return AltNameKind::ALL
                .into_iter()
                .find(|kind| {
                    kind.policy_name().eq_ignore_ascii_case(rest)
                        || (*kind == AltNameKind::Rfc822Name && rest == "rfc")
                })
                .map(PolicyVariable::CertificateSubjectAlternativeName);
        }
        if let Some(rest) = lower.strip_prefix("iot:certificate.subject.") {
            return find_dn_attribute(rest).map(PolicyVariable::CertificateSubject);
        }
        if let Some(rest) = lower.strip_prefix("iot:certificate.issuer.") {
            return find_dn_attribute(rest).map(PolicyVariable::CertificateIssuer);
        }
        None
    }

    fn is_certificate_variable(&self) -> bool {
        matches!(
            self,
            PolicyVariable::CertificateId
                | PolicyVariable::CertificateSubject(_)
                | PolicyVariable::CertificateIssuer(_)
                | PolicyVariable::CertificateSubjectAlternativeName(_)
                | PolicyVariable::CertificateSerialNumber
                | PolicyVariable::CertificateAvailableKeys
        )
    }

    /// All values of this variable for the connection (condition keys may be multi-valued).
    pub fn resolve<'a>(&self, context: &'a ConnectionContext) -> ResolvedValues<'a> {
        let one =
            |value: Option<&'a str>| value.map_or(ResolvedValues::Absent, ResolvedValues::One);
        let many = |values: Option<&'a Vec<String>>| {
            values.map_or(ResolvedValues::Absent, |values| {
                ResolvedValues::Many(values.as_slice())
            })
        };
        let thing = context.connected_thing();
        let certificate = context.certificate.as_ref();
        match self {
            PolicyVariable::ClientId => ResolvedValues::One(&context.client_id),
            PolicyVariable::ThingName => one(thing.map(|thing| thing.name.as_str())),
            PolicyVariable::ThingTypeName => {
                one(thing.and_then(|thing| thing.type_name.as_deref()))
            }
            PolicyVariable::ThingAttribute(name) => {
                one(thing.and_then(|thing| thing.attributes.get(name).map(String::as_str)))
            }
            PolicyVariable::ThingIsAttached => {
                ResolvedValues::One(if thing.is_some() { "true" } else { "false" })
            }
            PolicyVariable::CertificateId => {
                one(certificate.map(|certificate| certificate.id.as_str()))
            }
            PolicyVariable::CertificateSubject(attribute) => {
                many(certificate.and_then(|certificate| certificate.subject.get(attribute)))
            }
            PolicyVariable::CertificateIssuer(attribute) => {
                many(certificate.and_then(|certificate| certificate.issuer.get(attribute)))
            }
            PolicyVariable::CertificateSubjectAlternativeName(kind) => many(
                certificate.and_then(|certificate| certificate.subject_alternative_names.get(kind)),
            ),
            PolicyVariable::CertificateSerialNumber => {
                one(certificate.and_then(|certificate| certificate.serial_number.as_deref()))
            }
            PolicyVariable::CertificateAvailableKeys => match certificate {
                None => ResolvedValues::Absent,
                Some(certificate) => {
                    let mut keys = Vec::new();
                    if !certificate.id.is_empty() {
                        keys.push("iot:CertificateId".to_owned());
                    }
                    for attribute in certificate.subject.keys() {
                        keys.push(format!(
                            "iot:Certificate.Subject.{}",
                            attribute.policy_name()
                        ));
                    }
                    for attribute in certificate.issuer.keys() {
                        keys.push(format!(
                            "iot:Certificate.Issuer.{}",
                            attribute.policy_name()
                        ));
                    }
                    for kind in certificate.subject_alternative_names.keys() {
                        keys.push(format!(
                            "iot:Certificate.Subject.AlternativeName.{}",
                            kind.policy_name()
                        ));
                    }
                    if certificate.serial_number.is_some() {
                        keys.push("iot:Certificate.SerialNumber".to_owned());
                    }
                    ResolvedValues::Computed(keys)
                }
            },
            PolicyVariable::SourceIp => one(context.source_ip.as_deref()),
            PolicyVariable::ConnectAttributes => ResolvedValues::Many(&context.connect_attributes),
        }
    }

    /// The single value substituted into a `Resource` string, or `None` when AWS would leave the `${...}` text
    /// in place: the value is missing (e.g. thing variables when client id != thing name, reference 4.4), the
    /// variable is multi-valued, or a certificate value holds wildcard characters or is over 1024 characters.
    pub fn resolve_for_resource<'a>(&self, context: &'a ConnectionContext) -> Option<&'a str> {
        let value = match self.resolve(context) {
            ResolvedValues::One(value) => value,
            ResolvedValues::Many([value]) => value.as_str(),
            _ => return None,
        };
        if self.is_certificate_variable()
            && (value.contains(CERTIFICATE_VALUE_FORBIDDEN_CHARACTERS)
                || value.chars().count() > CERTIFICATE_VALUE_MAX_CHARS)
        {
            return None;
        }
        Some(value)
    }
}

fn find_dn_attribute(lower_name: &str) -> Option<DnAttribute> {
    DnAttribute::ALL
        .into_iter()
        .find(|attribute| attribute.policy_name().eq_ignore_ascii_case(lower_name))
}

impl fmt::Display for PolicyVariable {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyVariable::ClientId => formatter.write_str("iot:ClientId"),
            PolicyVariable::ThingName => formatter.write_str("iot:Connection.Thing.ThingName"),
            PolicyVariable::ThingTypeName => {
                formatter.write_str("iot:Connection.Thing.ThingTypeName")
            }
            PolicyVariable::ThingAttribute(name) => {
                write!(formatter, "iot:Connection.Thing.Attributes[{name}]")
            }
            PolicyVariable::ThingIsAttached => {
                formatter.write_str("iot:Connection.Thing.IsAttached")
            }
            PolicyVariable::CertificateId => formatter.write_str("iot:CertificateId"),
            PolicyVariable::CertificateSubject(attribute) => {
                write!(
                    formatter,
                    "iot:Certificate.Subject.{}",
                    attribute.policy_name()
                )
            }
            PolicyVariable::CertificateIssuer(attribute) => {
                write!(
                    formatter,
                    "iot:Certificate.Issuer.{}",
                    attribute.policy_name()
                )
            }
            PolicyVariable::CertificateSubjectAlternativeName(kind) => write!(
                formatter,
                "iot:Certificate.Subject.AlternativeName.{}",
                kind.policy_name()
            ),
            PolicyVariable::CertificateSerialNumber => {
                formatter.write_str("iot:Certificate.SerialNumber")
            }
            PolicyVariable::CertificateAvailableKeys => {
                formatter.write_str("iot:Certificate.AvailableKeys")
            }
            PolicyVariable::SourceIp => formatter.write_str("aws:SourceIp"),
            PolicyVariable::ConnectAttributes => formatter.write_str("iot:ConnectAttributes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{CertificateContext, ThingContext};

    #[test]
    fn documented_names_parse_and_round_trip() {
        let names = [
            "iot:ClientId",
            "iot:Connection.Thing.ThingName",
            "iot:Connection.Thing.ThingTypeName",
            "iot:Connection.Thing.Attributes[floor]",
            "iot:Connection.Thing.IsAttached",
            "iot:CertificateId",
            "iot:Certificate.Subject.CommonName",
            "iot:Certificate.Issuer.Organization",
            "iot:Certificate.Subject.AlternativeName.DNSName",
            "iot:Certificate.SerialNumber",
            "iot:Certificate.AvailableKeys",
            "aws:SourceIp",
            "iot:ConnectAttributes",
        ];
        for name in names {
            let variable = PolicyVariable::parse(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(variable.to_string(), name);
        }
        assert_eq!(
            PolicyVariable::parse("iot:Certificate.Subject.AlternativeName.RFC"),
            Some(PolicyVariable::CertificateSubjectAlternativeName(
                AltNameKind::Rfc822Name
            ))
        );
    }

    #[test]
    fn undocumented_names_are_not_variables() {
        for name in [
            "iot:Connection.Thing.Name",
            "iot:DomainName",
            "iot:Certificate.Id",
            "iot:Connection.Thing.Attributes[]",
            "iot:Certificate.Subject.Nickname",
        ] {
            assert_eq!(PolicyVariable::parse(name), None, "{name}");
        }
    }

    #[test]
    fn thing_variables_need_client_id_equal_to_thing_name() {
        let attached = ConnectionContext::attached_thing("lamp")
            .with_thing(ThingContext::named("lamp").with_type("bulb"));
        assert_eq!(
            PolicyVariable::ThingName.resolve_for_resource(&attached),
            Some("lamp")
        );
        assert_eq!(
            PolicyVariable::ThingTypeName.resolve_for_resource(&attached),
            Some("bulb")
        );
        let other_client = ConnectionContext::new("other").with_thing(ThingContext::named("lamp"));
        assert_eq!(
            PolicyVariable::ThingName.resolve_for_resource(&other_client),
            None
        );
        assert_eq!(
            PolicyVariable::ThingIsAttached.resolve(&other_client),
            ResolvedValues::One("false")
        );
        let exclusive = ConnectionContext::new("other").with_thing(ThingContext {
            association: crate::ThingAssociation::Exclusive,
            ..ThingContext::named("lamp")
        });
        assert_eq!(
            PolicyVariable::ThingName.resolve_for_resource(&exclusive),
            Some("lamp")
        );
    }

    #[test]
    fn certificate_values_with_wildcards_are_not_substituted() {
        let context = ConnectionContext::new("c").with_certificate(
            CertificateContext::new("abc")
                .with_subject(DnAttribute::CommonName, "dev+1")
                .with_subject(DnAttribute::Organization, "Acme"),
        );
        assert_eq!(
            PolicyVariable::CertificateSubject(DnAttribute::CommonName)
                .resolve_for_resource(&context),
            None
        );
        assert_eq!(
            PolicyVariable::CertificateSubject(DnAttribute::Organization)
                .resolve_for_resource(&context),
            Some("Acme")
        );
        assert_eq!(
            PolicyVariable::CertificateId.resolve_for_resource(&context),
            Some("abc")
        );
        let keys = PolicyVariable::CertificateAvailableKeys.resolve(&context);
        assert!(keys.any(|key| key == "iot:Certificate.Subject.CommonName"));
        assert!(!keys.any(|key| key == "iot:Certificate.SerialNumber"));
    }
}
