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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        recorder.handle(&event.payload, now_ms()).await
    }))
    .await
}
