//! What the `iot-emulator` subcommands use to talk to a running emulator through its HTTP APIs: where
//! the APIs listen ([`endpoints`], written by `up`), an HTTP [`client`], the paging of `logs tail`
//! ([`logs_tail`]), the live MQTT tail ([`subscribe`]) and what `provision` warns about ([`provision`]). The binary only parses arguments and
//! prints.

pub mod client;
pub mod control_plane;
pub mod endpoints;
pub mod logs_tail;
pub mod provision;
pub mod subscribe;
