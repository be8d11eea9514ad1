//! apply_update throughput on a realistic 1–2 KB shadow (a Pi agent's classic shadow plus config).
//!
//! Run: `cargo bench -p shadow-doc --bench apply_update`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use shadow_doc::{
    ShadowConfig, ShadowDocument, ShadowRecord, UpdateRequest, apply_update, update_from_payload,
};

fn realistic_document() -> ShadowDocument {
    let initial = json!({
        "state": {
            "desired": {
                "MOTOR": "ON",
                "telemetry": {"intervalSecs": 10, "unit": "C", "topics": ["data/ratchet/temperature", "data/ratchet/vibration"]},
                "thresholds": {"tempHigh": 70.5, "tempLow": 5.0, "vibrationMax": 0.8},
                "firmware": {"version": "1.4.2", "channel": "stable"},
                "schedule": [
                    {"day": "mon-fri", "on": "07:30", "off": "18:00"},
                    {"day": "sat", "on": "09:00", "off": "13:00"}
                ]
            },
            "reported": {
                "MOTOR": "OFF",
                "telemetry": {"intervalSecs": 10, "unit": "C", "topics": ["data/ratchet/temperature", "data/ratchet/vibration"]},
                "thresholds": {"tempHigh": 70.5, "tempLow": 5.0, "vibrationMax": 0.8},
                "firmware": {"version": "1.4.1", "channel": "stable", "bootedAt": 1764140000},
                "device": {"model": "Raspberry Pi 4 Model B Rev 1.5", "serial": "10000000a1b2c3d4", "os": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.6.51+rpt-rpi-v8"},
                "network": {"iface": "wlan0", "ssid": "workshop", "rssi": -61, "ip": "192.168.1.42"},
                "sensors": [
                    {"id": "cpu", "kind": "thermal_zone0", "ok": true},
                    {"id": "vib", "kind": "simulated", "ok": true}
                ],
                "agent": {"version": "0.1.0", "session": "0f6c2c1e-8b1f-4a8e-9e41-7d2b3c4d5e6f", "connectedAt": 1764140012, "outbox": 0},
                "lastErrors": [
                    {"at": 1764139000, "code": "SENSOR_TIMEOUT", "detail": "thermal_zone0 read took 2.1 s"},
                    {"at": 1764139500, "code": "MQTT_RECONNECT", "detail": "keep-alive timeout after 45 s, reconnected"}
                ],
                "temp": 48.3,
                "uptimeSecs": 86400
            }
        }
    });
    let request = UpdateRequest::parse(initial.to_string().as_bytes()).expect("valid");
    apply_update(None, &request, 1_764_140_000)
        .expect("accepted")
        .document
}

fn bench_apply_update(c: &mut Criterion) {
    let document = realistic_document();
    let size = document.state_size_bytes();
    assert!((1024..=2048).contains(&size), "state is {size} bytes");

    let report: Value = json!({
        "state": {"reported": {"MOTOR": "ON", "temp": 49.1, "agent": {"outbox": 2}}},
        "clientToken": "agent-7f3a"
    });
    let payload = report.to_string().into_bytes();
    let request = UpdateRequest::parse(&payload).expect("valid");

    let mut group = c.benchmark_group("apply_update");
    group.throughput(Throughput::Elements(1));
    // Baseline on the same (shared, noisy) machine: one deep copy of the stored document. An update
    // needs three (the new document, `previous` and `current` of the documents message).
    group.bench_function(format!("baseline: clone {size} B document"), |b| {
        b.iter(|| black_box(&document).clone())
    });
    group.bench_function(format!("merge 3 keys into {size} B state"), |b| {
        b.iter(|| {
            apply_update(
                Some(black_box(&document)),
                black_box(&request),
                1_764_140_100,
            )
        })
    });

    let config = ShadowConfig::default();
    let record = ShadowRecord::Live(document.clone());
    group.bench_function(format!("parse + apply + serialize, {size} B state"), |b| {
        b.iter(|| {
            let outcome =
                update_from_payload(Some(black_box(&record)), black_box(&payload), &config, 1)
                    .expect("accepted");
            let accepted = serde_json::to_vec(&outcome.accepted).expect("serializable");
            let documents = serde_json::to_vec(&outcome.documents).expect("serializable");
            let delta = outcome.delta.map(|delta| serde_json::to_vec(&delta));
            (accepted, documents, delta)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_apply_update);
criterion_main!(benches);
