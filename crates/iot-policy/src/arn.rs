//! Resource ARNs and action names the MQTT broker checks (reference 4.2).

use cfn_template::partition_for_region;

/// Action names as AWS IoT spells them (reference 4.2). Shadow actions are HTTP-only: over MQTT a shadow is
/// plain topic access (reference 3.2).
pub mod actions {
    pub const CONNECT: &str = "iot:Connect";
    pub const PUBLISH: &str = "iot:Publish";
    pub const SUBSCRIBE: &str = "iot:Subscribe";
    pub const RECEIVE: &str = "iot:Receive";
    pub const RETAIN_PUBLISH: &str = "iot:RetainPublish";
    pub const GET_THING_SHADOW: &str = "iot:GetThingShadow";
    pub const UPDATE_THING_SHADOW: &str = "iot:UpdateThingShadow";
    pub const DELETE_THING_SHADOW: &str = "iot:DeleteThingShadow";
    pub const LIST_NAMED_SHADOWS_FOR_THING: &str = "iot:ListNamedShadowsForThing";
}

/// The kind of resource an action is checked against (the text after the account id, before the first `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ResourceType {
    /// `client/{clientId}`: `iot:Connect`
    Client,
    /// `topic/{topicName}`: `iot:Publish`, `iot:Receive`, `iot:RetainPublish`
    Topic,
    /// `topicfilter/{topicFilter}`: `iot:Subscribe`, against the literal filter the client sends
    TopicFilter,
    /// `thing/{thingName}`: the HTTP shadow actions
    Thing,
}

impl ResourceType {
    pub fn arn_prefix(self) -> &'static str {
        match self {
            ResourceType::Client => "client/",
            ResourceType::Topic => "topic/",
            ResourceType::TopicFilter => "topicfilter/",
            ResourceType::Thing => "thing/",
        }
    }

    /// The resource type AWS checks `action` against, for the actions reference 4.2 lists.
    pub fn for_action(action: &str) -> Option<ResourceType> {
        let lower = action.to_ascii_lowercase();
        match lower.as_str() {
            "iot:connect" | "iot:deleteconnection" => Some(ResourceType::Client),
            "iot:publish" | "iot:receive" | "iot:retainpublish" | "iot:getretainedmessage" => {
                Some(ResourceType::Topic)
            }
            "iot:subscribe" => Some(ResourceType::TopicFilter),
            "iot:getthingshadow"
            | "iot:updatethingshadow"
            | "iot:deletethingshadow"
            | "iot:listnamedshadowsforthing" => Some(ResourceType::Thing),
            _ => None,
        }
    }

    /// The resource type a resource ARN (or ARN pattern) names, if its type part is literal.
    pub fn of_arn(arn: &str) -> Option<ResourceType> {
        let (kind, _) = resource_part(arn)?.split_once('/')?;
        match kind {
            "client" => Some(ResourceType::Client),
            "topic" => Some(ResourceType::Topic),
            "topicfilter" => Some(ResourceType::TopicFilter),
            "thing" => Some(ResourceType::Thing),
            _ => None,
        }
    }
}

/// Builds the resource ARNs of one account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    partition: String,
    region: String,
    account: String,
}

impl ArnScope {
    /// The partition follows the region (`cn-*` -> `aws-cn`, `us-gov-*` -> `aws-us-gov`, else `aws`).
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> ArnScope {
        let region = region.into();
        ArnScope {
            partition: partition_for_region(&region).to_owned(),
            region,
            account: account.into(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// `arn:aws:iot:{region}:{account}:{type}/{name}`
    pub fn arn(&self, resource_type: ResourceType, name: &str) -> String {
        let mut arn = String::new();
        self.write_arn(&mut arn, resource_type, name);
        arn
    }

    pub fn client(&self, client_id: &str) -> String {
        self.arn(ResourceType::Client, client_id)
    }

    pub fn topic(&self, topic: &str) -> String {
        self.arn(ResourceType::Topic, topic)
    }

    pub fn topic_filter(&self, filter: &str) -> String {
        self.arn(ResourceType::TopicFilter, filter)
    }

    pub fn thing(&self, thing_name: &str) -> String {
        self.arn(ResourceType::Thing, thing_name)
    }

    fn write_arn(&self, out: &mut String, resource_type: ResourceType, name: &str) {
        // Plain pushes rather than `write!`: this runs for every message the broker authorizes.
        for part in [
            "arn:",
            self.partition.as_str(),
            ":iot:",
            self.region.as_str(),
            ":",
            self.account.as_str(),
            ":",
            resource_type.arn_prefix(),
            name,
        ] {
            out.push_str(part);
        }
    }
}

/// A reusable ARN buffer: a broker session keeps one and formats every check's ARN into it, so a PUBLISH check
/// costs no allocation once the buffer has grown.
#[derive(Debug, Clone)]
pub struct ArnBuffer {
    scope: ArnScope,
    buffer: String,
}

impl ArnBuffer {
    pub fn new(scope: ArnScope) -> ArnBuffer {
        ArnBuffer {
            scope,
            buffer: String::with_capacity(128),
        }
    }

    pub fn format(&mut self, resource_type: ResourceType, name: &str) -> &str {
        self.buffer.clear();
        self.scope.write_arn(&mut self.buffer, resource_type, name);
        &self.buffer
    }

    pub fn client(&mut self, client_id: &str) -> &str {
        self.format(ResourceType::Client, client_id)
    }

    pub fn topic(&mut self, topic: &str) -> &str {
        self.format(ResourceType::Topic, topic)
    }

    pub fn topic_filter(&mut self, filter: &str) -> &str {
        self.format(ResourceType::TopicFilter, filter)
    }

    pub fn thing(&mut self, thing_name: &str) -> &str {
        self.format(ResourceType::Thing, thing_name)
    }
}

/// What follows the account in `arn:partition:iot:region:account:type/...` (the resource, e.g.
/// `topic/a/b`), or `None` for text with fewer than six `:`-separated fields.
pub(crate) fn resource_part(arn: &str) -> Option<&str> {
    arn.splitn(6, ':').nth(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_four_arn_forms() {
        let scope = ArnScope::new("eu-west-1", "111122223333");
        assert_eq!(
            scope.client("ratchet"),
            "arn:aws:iot:eu-west-1:111122223333:client/ratchet"
        );
        assert_eq!(
            scope.topic("$aws/things/ratchet/shadow/update"),
            "arn:aws:iot:eu-west-1:111122223333:topic/$aws/things/ratchet/shadow/update"
        );
        assert_eq!(
            scope.topic_filter("data/#"),
            "arn:aws:iot:eu-west-1:111122223333:topicfilter/data/#"
        );
        assert_eq!(
            scope.thing("ratchet"),
            "arn:aws:iot:eu-west-1:111122223333:thing/ratchet"
        );
        assert_eq!(
            ArnScope::new("cn-north-1", "1").client("c"),
            "arn:aws-cn:iot:cn-north-1:1:client/c"
        );
        let mut buffer = ArnBuffer::new(scope.clone());
        assert_eq!(buffer.topic("a/b"), scope.topic("a/b"));
        assert_eq!(buffer.client("x"), scope.client("x"));
    }

    #[test]
    fn resource_types() {
        assert_eq!(
            ResourceType::for_action("iot:Subscribe"),
            Some(ResourceType::TopicFilter)
        );
        assert_eq!(
            ResourceType::for_action("IOT:RECEIVE"),
            Some(ResourceType::Topic)
        );
        assert_eq!(
            ResourceType::for_action("iot:UpdateThingShadow"),
            Some(ResourceType::Thing)
        );
        assert_eq!(ResourceType::for_action("iot:*"), None);
        assert_eq!(
            ResourceType::of_arn("arn:aws:iot:*:*:topicfilter/$aws/things/x/shadow/get"),
            Some(ResourceType::TopicFilter)
        );
        assert_eq!(ResourceType::of_arn("*"), None);
        assert_eq!(ResourceType::of_arn("arn:aws:iot:*:*:*"), None);
    }
}
