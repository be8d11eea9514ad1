//! The AWS IoT rules SQL subset: a parser and an evaluator with AWS's **Undefined** semantics, used by
//! the local emulator's rules engine and by tests that check what our Lambdas will receive.
//!
//! Behaviour follows `aws-iot-behaviour.md` section 5 (cited as "reference 5.x" in doc comments) and
//! the AWS IoT SQL reference pages it was built from. The supported subset, the version differences
//! and what is deliberately left out are listed in `docs/rules-sql.md`.
//!
//! ```
//! use iot_sql::{DeterministicContext, Message, Output, Rule, SqlVersion};
//! use serde_json::json;
//!
//! let rule = Rule::parse(
//!     "SELECT *, topic(2) AS thing, clientid() AS clientId, timestamp() AS receivedAt FROM 'device/+/lwt'",
//!     SqlVersion::V2016_03_23,
//! )?;
//! let payload = br#"{"reason":"unexpected"}"#;
//! let message = Message::mqtt("device/ratchet/lwt", payload, "ratchet", 1_700_000_000_000);
//! let output = rule.evaluate(&message, &mut DeterministicContext::default())?;
//! assert_eq!(
//!     output,
//!     Some(Output::Json(json!({
//!         "reason": "unexpected", "thing": "ratchet", "clientId": "ratchet", "receivedAt": 1_700_000_000_000_i64
//!     })))
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The crate does no I/O: time, client identity and UUIDs come from the [`Message`] and the
//! [`EvalContext`] the caller passes, so evaluation is deterministic under test.

mod ast;
mod error;
mod eval;
mod functions;
mod lexer;
mod operators;
mod parser;
mod rule;
mod template;
mod topic;
mod value;
mod version;

pub use error::{EvalError, ParseError, ParseErrorKind};
pub use eval::{BASIC_INGEST_PREFIX, DeterministicContext, EvalContext, Message, Output};
pub use rule::Rule;
pub use template::Template;
pub use topic::{
    MAX_TOPIC_BYTES, MAX_TOPIC_SLASHES, TopicError, TopicFilterError, TopicLimits, has_wildcards,
    is_basic_ingest, matches_valid_filter, topic_matches, validate_topic_filter,
};
pub use version::{SqlVersion, UnknownSqlVersion};
