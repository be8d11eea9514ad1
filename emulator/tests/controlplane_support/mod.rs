//! The control plane as `up` builds it, over a registry the test keeps: the stack template's rules, the
//! broker's region and account, a fresh CA. Shared by the boto3 and AWS CLI tests.

use std::sync::Arc;

use iot_emulator::app::template::StackTemplate;
use iot_emulator::controlplane::{ControlPlane, ControlPlaneSettings};
use iot_emulator::identity::EmulatorCa;
use iot_emulator::registry::Registry;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// What DescribeEndpoint answers in these tests.
pub const MQTT_HOST: &str = "127.0.0.1";

pub fn control_plane(registry: &Arc<Registry>) -> ControlPlane {
    let template = crate::template_support::stack_template();
    let stack = StackTemplate::parse(&template, REGION, ACCOUNT).unwrap();
    ControlPlane::new(
        Arc::clone(registry),
        Arc::new(EmulatorCa::generate().unwrap()),
        ControlPlaneSettings {
            region: REGION.into(),
            account: ACCOUNT.into(),
            mqtt_host: MQTT_HOST.into(),
            rules: stack.rules,
        },
    )
}
