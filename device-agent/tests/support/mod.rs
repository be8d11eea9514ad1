//! Test harness: a throw-away PKI (rcgen), a mosquitto 2 broker with mTLS and a per-client ACL on a free
//! 127.0.0.1 port, an observer client, the agent binary, and a fake AWS shadow service; one file each.
// Each test crate (and the footprint bench) uses a part of the harness.
#![allow(dead_code, unused_imports)]

mod agent;
mod fake_shadow;
mod mosquitto;
mod observer;
mod pki;

pub use agent::*;
pub use fake_shadow::*;
pub use mosquitto::*;
pub use observer::*;
pub use pki::*;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS, TlsConfiguration, Transport,
};
use serde_json::{Value, json};

pub const THING: &str = "ratchet";
