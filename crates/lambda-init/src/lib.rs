//! The init phase shared by this project's Lambda functions (style: a `main` that sets up tracing,
//! builds clients once, and runs the handler).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// JSON logs, one object per line, level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging
/// controls) or `RUST_LOG`, default INFO. No timestamp: CloudWatch stamps every line already.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|level| EnvFilter::new(level.to_lowercase()))
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .init();
}

/// Throttling and 5xx are retried by the SDK's standard strategy: exponential backoff with full
/// jitter. Four attempts within a couple of seconds, then the invocation fails and Lambda's async
/// retry (minutes apart) takes over.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(4)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(2))
}

/// The SDK configuration from the Lambda environment: credentials, region, and any
/// `AWS_ENDPOINT_URL_*` override (how the functions are pointed at a local emulator).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .load()
        .await
}

/// Milliseconds since the epoch, the unit of every AWS IoT timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
