//! What `iot-emulator provision` warns about. It keeps AWS's semantics (a thing may have several ACTIVE
//! certificates, a certificate may have no policy), but a newcomer seldom wants either, and both were silent
//! (issue 18).

/// What is known about one `provision` once its certificate exists.
#[derive(Debug, Clone)]
pub struct ProvisionOutcome<'a> {
    pub thing: &'a str,
    pub certificate_id: &'a str,
    /// The policies attached to the new certificate.
    pub policies: &'a [String],
    /// The thing's ACTIVE certificates before this one was attached (they stay attached and ACTIVE).
    pub earlier_active_certificates: &'a [String],
}

/// One sentence per thing worth knowing, for stderr and the `warnings` array of the JSON summary.
pub fn provision_warnings(outcome: &ProvisionOutcome<'_>) -> Vec<String> {
    let mut warnings = Vec::new();
    if outcome.policies.is_empty() {
        // Implicit deny: without an Allow for iot:Connect the broker refuses CONNECT with CONNACK 5 and
        // publishes connect_failed AUTHORIZATION_FAILED (reference 4.1, 4.5; broker::session).
        warnings.push(format!(
            "no policy is attached to certificate {}: the device will be refused at CONNECT (not authorized; \
             a connect_failed lifecycle event with AUTHORIZATION_FAILED) until one is; load one with \
             --template or --policy-file and name it with --policy, or `aws iot attach-policy`",
            outcome.certificate_id
        ));
    }
    let earlier = outcome.earlier_active_certificates;
    if !earlier.is_empty() {
        let plural = if earlier.len() == 1 { "" } else { "s" };
        warnings.push(format!(
            "thing {} already had {} ACTIVE certificate{plural} ({}); {} stay{} ACTIVE and attached next to \
             the new one (AWS allows several); if the new one replaces {}, run `iot-emulator certificate <id> \
             INACTIVE`",
            outcome.thing,
            earlier.len(),
            earlier.join(", "),
            if earlier.len() == 1 { "it" } else { "they" },
            if earlier.len() == 1 { "s" } else { "" },
            if earlier.len() == 1 { "it" } else { "them" },
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome<'a>(policies: &'a [String], earlier: &'a [String]) -> ProvisionOutcome<'a> {
        ProvisionOutcome {
            thing: "ratchet",
            certificate_id: "c3",
            policies,
            earlier_active_certificates: earlier,
        }
    }

    #[test]
    fn a_first_certificate_with_a_policy_needs_no_warning() {
        assert!(provision_warnings(&outcome(&["device".into()], &[])).is_empty());
    }

    #[test]
    fn no_policy_and_earlier_active_certificates_are_each_named() {
        let earlier = ["c1".to_owned(), "c2".to_owned()];
        let warnings = provision_warnings(&outcome(&[], &earlier));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("no policy is attached to certificate c3"));
        assert!(warnings[0].contains("refused at CONNECT"));
        assert!(
            warnings[1]
                .starts_with("thing ratchet already had 2 ACTIVE certificates (c1, c2); they stay"),
            "{}",
            warnings[1]
        );
        let one = provision_warnings(&outcome(&["device".into()], &earlier[..1]));
        assert!(
            one[0].contains("1 ACTIVE certificate (c1); it stays ACTIVE"),
            "{}",
            one[0]
        );
    }
}
