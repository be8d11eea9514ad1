//! What an audit is run for: the account, the region and the two probe devices.

use std::collections::BTreeMap;

use crate::context::{CertificateContext, ConnectionContext, DnAttribute, ThingContext};

/// The account, region and probe devices of an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    pub account: String,
    pub region: String,
    /// The device the policy is evaluated for.
    pub thing_a: String,
    /// Another device whose resources thing A must not reach.
    pub thing_b: String,
    /// `${iot:Connection.Thing.ThingTypeName}` of both probe things.
    pub thing_type: Option<String>,
    /// `${iot:Connection.Thing.Attributes[...]}` of both probe things.
    pub thing_attributes: BTreeMap<String, String>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            account: "123456789012".to_owned(),
            region: "us-east-1".to_owned(),
            thing_a: "audit-thing-a".to_owned(),
            thing_b: "audit-thing-b".to_owned(),
            thing_type: None,
            thing_attributes: BTreeMap::new(),
        }
    }
}

impl AuditOptions {
    /// The connection of a well-behaved device: client id = thing name, certificate attached, a Last Will set
    /// (the agent always registers one, architecture.md section 3).
    pub(super) fn device_context(&self, thing_name: &str) -> ConnectionContext {
        let mut thing = ThingContext::named(thing_name);
        thing.type_name = self.thing_type.clone();
        thing.attributes = self.thing_attributes.clone();
        ConnectionContext::new(thing_name)
            .with_thing(thing)
            .with_certificate(
                CertificateContext::new(format!("{:0>64}", thing_name.len()))
                    .with_subject(DnAttribute::CommonName, thing_name),
            )
            .with_source_ip("192.0.2.10")
            .with_connect_attribute("LastWill")
    }
}
