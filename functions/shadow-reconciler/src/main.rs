use lambda_init::init_tracing;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use shadow_reconciler::Reconciler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let reconciler = Reconciler::from_env().await;
    let reconciler = &reconciler;
    let function_name = &redrive::function_name(env!("CARGO_PKG_NAME"));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A rule's event, or a batch of failed events replayed from the on-failure queue.
        redrive::invoke(event.payload, function_name, |event| async move {
            reconciler.handle(&event).await
        })
        .await
    }))
    .await
}
