//! The ARNs the control plane answers with and the principal/target ARNs it accepts. The registry speaks
//! names and certificate ids; ARNs exist only on the wire.

use super::error::ControlPlaneError;

/// ARNs of one partition, region and account (the broker's, so policies and API answers agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    partition: &'static str,
    region: String,
    account: String,
}

impl Arns {
    pub fn new(region: &str, account: &str) -> Arns {
        Arns {
            partition: cfn_template::partition_for_region(region),
            region: region.to_owned(),
            account: account.to_owned(),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    fn iot(&self, resource: &str, name: &str) -> String {
        format!(
            "arn:{}:iot:{}:{}:{resource}/{name}",
            self.partition, self.region, self.account
        )
    }

    pub fn thing(&self, name: &str) -> String {
        self.iot("thing", name)
    }

    pub fn certificate(&self, id: &str) -> String {
        self.iot("cert", id)
    }

    pub fn policy(&self, name: &str) -> String {
        self.iot("policy", name)
    }

    pub fn rule(&self, name: &str) -> String {
        self.iot("rule", name)
    }

    /// The template loader keeps a Lambda action's function name only (alias and version dropped).
    pub fn lambda_function(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            self.partition, self.region, self.account
        )
    }

    /// The certificate id of a certificate ARN of this account and region, as `AttachPolicy`'s `target`,
    /// `AttachThingPrincipal`'s `x-amzn-principal` and the other principal members carry it. Thing-group
    /// ARNs and Cognito identities are refused: the emulator has neither.
    pub fn certificate_id(&self, member: &str, arn: &str) -> Result<String, ControlPlaneError> {
        let invalid = |why: &str| {
            ControlPlaneError::invalid(format!(
                "{member} {arn} is not a certificate ARN of this emulator ({why}; expected {})",
                self.certificate("<64 hex digits>")
            ))
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
            return Err(invalid("not an ARN"));
        };
        if *prefix != "arn" || *service != "iot" {
            return Err(invalid("not an AWS IoT ARN"));
        }
        if *partition != self.partition || *region != self.region || *account != self.account {
            return Err(invalid(&format!(
                "the emulator serves {} {} {}",
                self.partition, self.region, self.account
            )));
        }
        let Some(id) = resource.strip_prefix("cert/") else {
            return Err(invalid(
                "only certificates can be principals or policy targets here",
            ));
        };
        certificate_id(id)
    }
}

/// A certificate id as the `CertificateId` shape allows it: 64 hex digits (lowercased, as AWS issues them).
pub fn certificate_id(id: &str) -> Result<String, ControlPlaneError> {
    if id.len() == 64 && id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(ControlPlaneError::invalid(format!(
            "1 validation error detected: Value '{id}' at 'certificateId' failed to satisfy constraint: \
             Member must have length 64 and match the pattern [a-fA-F0-9]+"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "aab1068f7f43ac3e3cae4b3a8aa3f308d2a750e6350507962e32c1eb465d9775";

    #[test]
    fn certificate_arns_round_trip_and_foreign_ones_are_refused() {
        let arns = Arns::new("us-east-1", "123456789012");
        let arn = arns.certificate(ID);
        assert_eq!(arn, format!("arn:aws:iot:us-east-1:123456789012:cert/{ID}"));
        assert_eq!(arns.certificate_id("target", &arn).unwrap(), ID);
        for foreign in [
            format!("arn:aws:iot:eu-west-1:123456789012:cert/{ID}"),
            format!("arn:aws:iot:us-east-1:000000000000:cert/{ID}"),
            format!("arn:aws:iot:us-east-1:123456789012:thinggroup/{ID}"),
            "arn:aws:iot:us-east-1:123456789012:cert/xyz".to_owned(),
            ID.to_owned(),
            "us-east-1:cognito-id".to_owned(),
        ] {
            let error = arns.certificate_id("target", &foreign).unwrap_err();
            assert_eq!(error.wire().1, "InvalidRequestException", "{foreign}");
        }
    }

    #[test]
    fn partitions_follow_the_region() {
        assert!(
            Arns::new("cn-north-1", "1")
                .thing("t")
                .starts_with("arn:aws-cn:iot:")
        );
        assert_eq!(
            Arns::new("us-east-1", "1").lambda_function("f"),
            "arn:aws:lambda:us-east-1:1:function:f"
        );
    }
}
