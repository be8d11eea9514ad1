//! Warm cost per event: what one invocation costs in CPU once the sandbox is warm, without the
//! PutLogEvents round trip (the client answers from an in-process mock). Includes classification,
//! record building, JSON + EMF serialization, and the SDK's request pipeline (serialize, sign).
//!
//! `cargo bench -p disconnect-recorder --bench handler`

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::operation::put_log_events::PutLogEventsOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use criterion::{Criterion, criterion_group, criterion_main};
use disconnect_recorder::Recorder;
use iot_events::{DisconnectRecord, classify};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let disconnected = json!({
        "clientId": "ratchet", "timestamp": 1764144000456i64, "eventType": "disconnected",
        "sessionIdentifier": "a4666d2a7d844ae4ac5d7b38c9cb7967", "principalIdentifier": "1f8b9c",
        "clientInitiatedDisconnect": false, "disconnectReason": "CONNECTION_LOST", "versionNumber": 7
    });

    c.bench_function("record only (classify + build + serialize)", |b| {
        b.iter(|| match classify(std::hint::black_box(&disconnected)) {
            iot_events::Classified::Disconnected(e) => {
                DisconnectRecord::from_lifecycle(&e, 1).to_log_message(1)
            }
            _ => unreachable!(),
        })
    });

    let put = mock!(Client::put_log_events).then_output(|| PutLogEventsOutput::builder().build());
    let client = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, [&put]);
    let recorder = Recorder::new(client, "/iot/device-disconnects");
    c.bench_function("handle (record + SDK pipeline, no network)", |b| {
        b.iter(|| {
            rt.block_on(recorder.handle(std::hint::black_box(&disconnected), 1))
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
