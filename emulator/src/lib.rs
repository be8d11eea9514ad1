//! A local AWS IoT Core: broker, shadows, control-plane, data-plane and CloudWatch Logs APIs, rules engine, Lambda
//! service and a web console, wired together by [`app`]. See docs/emulator.md.

pub mod app;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod console;
pub mod controlplane;
pub mod dataplane;
mod durable;
pub mod http_listener;
pub mod identity;
pub mod lambda;
pub mod logs;
pub mod os_limits;
pub mod percent;
pub mod publish;
pub mod registry;
pub mod rules;
pub mod shadow;
pub mod state_lock;
