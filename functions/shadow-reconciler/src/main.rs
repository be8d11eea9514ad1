use lambda_init::{init_tracing, sdk_config};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use shadow_reconciler::{DEFAULT_CONNECTIVITY_SHADOW, DataPlaneStore, Reconciler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = sdk_config().await;
    let shadow = std::env::var("CONNECTIVITY_SHADOW_NAME")
        .unwrap_or_else(|_| DEFAULT_CONNECTIVITY_SHADOW.to_owned());
    let reconciler = Reconciler::new(
        DataPlaneStore::new(aws_sdk_iotdataplane::Client::new(&config)),
        shadow,
    );
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        reconciler.handle(&event.payload).await
    }))
    .await
}
