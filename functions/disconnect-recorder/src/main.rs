use std::time::Duration;

use disconnect_recorder::Recorder;
use lambda_init::{init_tracing, now_ms};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let recorder = Recorder::from_env().await;
    recorder.warm_up(Duration::from_millis(1500)).await;
    let recorder = &recorder;
    let function_name = &redrive::function_name(env!("CARGO_PKG_NAME"));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A rule's event, or a batch of failed events replayed from the on-failure queue.
        redrive::invoke(event.payload, function_name, |event| async move {
            recorder.handle(&event, now_ms()).await
        })
        .await
    }))
    .await
}
