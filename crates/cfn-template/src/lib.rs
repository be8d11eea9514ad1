//! Reading a synthesized CloudFormation template, so that what runs locally (the emulator) and what is audited
//! (`iot-policy audit`) is what `cdk deploy` would create (architecture.md section 1).
//!
//! Three parts, each small: [`resources`] lists a template's resources; [`resolve_intrinsics`] resolves what CDK
//! writes into properties (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`) for an account and region
//! ([`PseudoParameters`]); and a [`ResourceReferences`] hook lets a caller answer `Ref` / `Fn::GetAtt` of the
//! template's own resources the way CloudFormation would for the resource types it knows.
//!
//! ```
//! use cfn_template::{PseudoParameters, resolve_intrinsics};
//! use serde_json::json;
//!
//! let arn = json!({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iot:", {"Ref": "AWS::Region"}, ":",
//!                                    {"Ref": "AWS::AccountId"}, ":client/${iot:ClientId}"]]});
//! let pseudo = PseudoParameters::new("123456789012", "cn-north-1");
//! assert_eq!(
//!     resolve_intrinsics(&arn, &pseudo).unwrap(),
//!     json!("arn:aws-cn:iot:cn-north-1:123456789012:client/${iot:ClientId}")
//! );
//! ```

mod intrinsics;
mod pseudo;
mod resources;

pub use intrinsics::{
    IntrinsicError, ResourceReferences, resolve_intrinsics, resolve_intrinsics_with,
};
pub use pseudo::{PseudoParameters, partition_for_region};
pub use resources::{ReadError, Resource, parse_template, resources};
