//! A local host for Lambda functions built on `lambda_runtime` (or any custom runtime).
//!
//! [`RuntimeApi`] serves the [Lambda Runtime API] on 127.0.0.1: a function process long-polls
//! `invocation/next`, runs the event, and posts `response` or `error`. [`FunctionProcess`] starts
//! the real function binary with the environment Lambda gives it. Tests use the pair to drive a
//! function exactly as Lambda does, rather than calling its handler; the emulator builds its
//! Lambda service on them.
//!
//! [Lambda Runtime API]: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

mod process;
mod runtime_api;

pub use process::{FunctionConfig, FunctionProcess, ProcessError};
pub use runtime_api::{HostError, InvocationResult, RuntimeApi};
