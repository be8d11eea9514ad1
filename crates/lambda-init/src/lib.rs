//! The init phase shared by this project's Lambda functions (style: a `main` that sets up tracing,
//! builds clients once, and runs the handler).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

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

/// The HTTPS client of every SDK client and credential provider: the SDK's default client (hyper 1,
/// rustls, the platform's native root certificates, proxy settings from the environment) with rustls on
/// *ring* instead of aws-lc. The emulator and the agent already use ring, so the workspace builds one
/// crypto provider, and aws-lc-sys (a slow C build) leaves the dependency tree.
///
/// Clients built from [`sdk_config`] get it already; a client built by hand (tests pointing one at a
/// local endpoint) passes it to its config builder's `http_client`.
pub fn https_client() -> SharedHttpClient {
    // What aws-smithy-runtime's `default_https_client` builds, with `CryptoMode::Ring`: its connector
    // settings (timeouts), the runtime's sleep, and HTTP(S)_PROXY / NO_PROXY as the latest behavior
    // version reads them.
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The SDK configuration from the Lambda environment: credentials, region, and any
/// `AWS_ENDPOINT_URL_*` override (how the functions are pointed at a local emulator). The credential
/// providers and every client built from it send through [`https_client`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
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
