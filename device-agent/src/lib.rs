//! The Raspberry Pi device agent for AWS IoT.
//!
//! One task owns the MQTT connection (`connection`); the shadow sync (`shadow_sync`) and the telemetry
//! pipeline (`telemetry` -> `outbox` -> drainer) talk to it through channels. `main.rs` only parses flags,
//! sets up logging and calls `agent::run_agent` or `check::run_checks`.

pub mod actuator;
pub mod agent;
pub mod backoff;
pub mod check;
pub mod clock;
pub mod config;
pub mod connection;
pub mod outbox;
pub mod sensors;
pub mod shadow_sync;
pub mod shutdown;
pub mod telemetry;
pub mod ticker;
pub mod tls;
pub mod will;
