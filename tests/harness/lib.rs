//! The system tests' one harness: the whole emulator in this process with the stack from the CDK template
//! ([`stack::Stack`]), things provisioned with the template's device policy, the real function binaries behind
//! its Lambda service and the real device agent ([`binaries`]), and records and shadows read back through the
//! AWS SDKs. The stories beside it (`e2e_*.rs`, the SDK wire tests) and the latency bench build on it; the next
//! stories extend it rather than start their own.
//!
//! The MQTT test client, the served HTTP router, the stack template and the tool checks are the emulator's own
//! test support, included from `emulator/tests/` rather than copied, so that the emulator's tests and the system
//! tests share one of each.

#[path = "../../emulator/tests/broker_support/mod.rs"]
pub mod broker_support;
#[path = "../../emulator/tests/http_support/mod.rs"]
pub mod http_support;
#[path = "../../emulator/tests/template_support/mod.rs"]
pub mod template_support;
#[path = "../../emulator/tests/tool_support/mod.rs"]
pub mod tool_support;

pub mod binaries;
pub mod stack;
