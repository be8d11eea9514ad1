//! What the broker knows about a connection when it asks for a decision: the values policy variables and
//! condition keys resolve to (reference 4.4).

use std::collections::BTreeMap;

/// The request context of one MQTT connection. Built once per CONNECT by the broker and reused for every
/// PUBLISH / SUBSCRIBE / delivery check of that connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionContext {
    /// The MQTT client id (`${iot:ClientId}`).
    pub client_id: String,
    /// The registry thing the authenticated principal is attached to (via `AttachThingPrincipal`) and that this
    /// connection is associated with, if any.
    pub thing: Option<ThingContext>,
    /// The client certificate for X.509 connections.
    pub certificate: Option<CertificateContext>,
    /// `aws:SourceIp`.
    pub source_ip: Option<String>,
    /// `iot:ConnectAttributes`: `PersistentConnect` (cleanSession=0) and/or `LastWill` (reference 2.2).
    pub connect_attributes: Vec<String>,
}

/// A registry thing as the thing policy variables see it (reference 4.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingContext {
    pub name: String,
    pub type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub association: ThingAssociation,
}

/// How the principal is attached to the thing. With a non-exclusive association AWS requires the client id to
/// equal the thing name before thing variables resolve (reference 4.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ThingAssociation {
    #[default]
    NonExclusive,
    Exclusive,
}

/// The client certificate fields that certificate policy variables expose (reference 4.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateContext {
    /// `${iot:CertificateId}`: the 64-hex certificate id.
    pub id: String,
    pub subject: BTreeMap<DnAttribute, Vec<String>>,
    pub issuer: BTreeMap<DnAttribute, Vec<String>>,
    pub subject_alternative_names: BTreeMap<AltNameKind, Vec<String>>,
    /// Decimal string (AWS treats the serial number as a decimal integer).
    pub serial_number: Option<String>,
}

/// Distinguished-name attributes under `iot:Certificate.Subject.*` and `iot:Certificate.Issuer.*` (reference 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnAttribute {
    CommonName,
    Organization,
    OrganizationalUnit,
    Country,
    State,
    SerialNumber,
    Title,
    Surname,
    GivenName,
    Initials,
    Pseudonym,
    GenerationQualifier,
    DistinguishedNameQualifier,
}

impl DnAttribute {
    pub const ALL: [DnAttribute; 13] = [
        DnAttribute::CommonName,
        DnAttribute::Organization,
        DnAttribute::OrganizationalUnit,
        DnAttribute::Country,
        DnAttribute::State,
        DnAttribute::SerialNumber,
        DnAttribute::Title,
        DnAttribute::Surname,
        DnAttribute::GivenName,
        DnAttribute::Initials,
        DnAttribute::Pseudonym,
        DnAttribute::GenerationQualifier,
        DnAttribute::DistinguishedNameQualifier,
    ];

    /// The name used in the policy variable.
    pub fn policy_name(self) -> &'static str {
        match self {
            DnAttribute::CommonName => "CommonName",
            DnAttribute::Organization => "Organization",
            DnAttribute::OrganizationalUnit => "OrganizationalUnit",
            DnAttribute::Country => "Country",
            DnAttribute::State => "State",
            DnAttribute::SerialNumber => "SerialNumber",
            DnAttribute::Title => "Title",
            DnAttribute::Surname => "Surname",
            DnAttribute::GivenName => "GivenName",
            DnAttribute::Initials => "Initials",
            DnAttribute::Pseudonym => "Pseudonym",
            DnAttribute::GenerationQualifier => "GenerationQualifier",
            DnAttribute::DistinguishedNameQualifier => "DistinguishedNameQualifier",
        }
    }
}

/// `iot:Certificate.Subject.AlternativeName.*` kinds (reference 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AltNameKind {
    DnsName,
    IpAddress,
    Rfc822Name,
    UniformResourceIdentifier,
    DirectoryName,
}

impl AltNameKind {
    pub const ALL: [AltNameKind; 5] = [
        AltNameKind::DnsName,
        AltNameKind::IpAddress,
        AltNameKind::Rfc822Name,
        AltNameKind::UniformResourceIdentifier,
        AltNameKind::DirectoryName,
    ];

    /// The name used in the policy variable. Reference 4.4 lists `RFC`; the AWS guide spells it `RFC822Name`,
    /// and [`crate::PolicyVariable::parse`] accepts both.
    pub fn policy_name(self) -> &'static str {
        match self {
            AltNameKind::DnsName => "DNSName",
            AltNameKind::IpAddress => "IPAddress",
            AltNameKind::Rfc822Name => "RFC822Name",
            AltNameKind::UniformResourceIdentifier => "UniformResourceIdentifier",
            AltNameKind::DirectoryName => "DirectoryName",
        }
    }
}

impl ConnectionContext {
    /// A connection with only a client id: no registry thing, no certificate details.
    pub fn new(client_id: impl Into<String>) -> Self {
        ConnectionContext {
            client_id: client_id.into(),
            ..ConnectionContext::default()
        }
    }

    /// The contract's normal case: a device connects with client id = thing name and its certificate is attached
    /// to that thing (architecture.md section 3).
    pub fn attached_thing(thing_name: impl Into<String>) -> Self {
        let thing_name = thing_name.into();
        ConnectionContext {
            client_id: thing_name.clone(),
            thing: Some(ThingContext::named(thing_name)),
            ..ConnectionContext::default()
        }
    }

    pub fn with_thing(mut self, thing: ThingContext) -> Self {
        self.thing = Some(thing);
        self
    }

    pub fn with_certificate(mut self, certificate: CertificateContext) -> Self {
        self.certificate = Some(certificate);
        self
    }

    pub fn with_source_ip(mut self, source_ip: impl Into<String>) -> Self {
        self.source_ip = Some(source_ip.into());
        self
    }

    pub fn with_connect_attribute(mut self, attribute: impl Into<String>) -> Self {
        self.connect_attributes.push(attribute.into());
        self
    }

    /// `iot:Connection.Thing.IsAttached`, and the gate for every thing policy variable: the principal is attached
    /// to a thing, and (for a non-exclusive association) the client id equals its name (reference 4.4).
    pub fn connected_thing(&self) -> Option<&ThingContext> {
        self.thing.as_ref().filter(|thing| match thing.association {
            ThingAssociation::Exclusive => true,
            ThingAssociation::NonExclusive => thing.name == self.client_id,
        })
    }

    pub fn is_attached(&self) -> bool {
        self.connected_thing().is_some()
    }
}

impl ThingContext {
    pub fn named(name: impl Into<String>) -> Self {
        ThingContext {
            name: name.into(),
            ..ThingContext::default()
        }
    }

    pub fn with_type(mut self, type_name: impl Into<String>) -> Self {
        self.type_name = Some(type_name.into());
        self
    }

    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

impl CertificateContext {
    pub fn new(id: impl Into<String>) -> Self {
        CertificateContext {
            id: id.into(),
            ..CertificateContext::default()
        }
    }

    pub fn with_subject(mut self, attribute: DnAttribute, value: impl Into<String>) -> Self {
        self.subject
            .entry(attribute)
            .or_default()
            .push(value.into());
        self
    }

    pub fn with_issuer(mut self, attribute: DnAttribute, value: impl Into<String>) -> Self {
        self.issuer.entry(attribute).or_default().push(value.into());
        self
    }

    pub fn with_subject_alternative_name(
        mut self,
        kind: AltNameKind,
        value: impl Into<String>,
    ) -> Self {
        self.subject_alternative_names
            .entry(kind)
            .or_default()
            .push(value.into());
        self
    }

    pub fn with_serial_number(mut self, serial_number: impl Into<String>) -> Self {
        self.serial_number = Some(serial_number.into());
        self
    }
}
