//! A local AWS IoT Core (work in progress: see the modules).

pub mod broker;
pub mod dataplane;
pub mod identity;
pub mod logs;
pub mod registry;
pub mod shadow;
