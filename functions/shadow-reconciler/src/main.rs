use lambda_init::init_tracing;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use shadow_reconciler::Reconciler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let reconciler = Reconciler::from_env().await;
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        reconciler.handle(&event.payload).await
    }))
    .await
}
