//! The pseudo parameters (`AWS::AccountId`, `AWS::Region`, ...) a template is resolved for.

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
    /// The partition and URL suffix follow the region; the stack is called `local`.
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

    pub(crate) fn lookup(&self, name: &str) -> Option<&str> {
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

/// What `AWS::Partition` is in `region`: `cn-*` -> `aws-cn`, `us-gov-*` -> `aws-us-gov`, else `aws`.
pub fn partition_for_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_and_url_suffix_follow_the_region() {
        let china = PseudoParameters::new("1", "cn-northwest-1");
        assert_eq!(
            (china.partition.as_str(), china.url_suffix.as_str()),
            ("aws-cn", "amazonaws.com.cn")
        );
        assert_eq!(partition_for_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_for_region("ap-southeast-5"), "aws");
    }
}
