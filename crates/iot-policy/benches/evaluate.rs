//! Evaluations per second for the checks the broker makes on every message (reference 4.2), with the contract's
//! device policy: `cargo bench -p iot-policy --bench evaluate`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iot_policy::{
    ArnBuffer, ArnScope, CompiledPolicy, ConnectionContext, PolicyDocument, PolicySet, actions,
};

fn device_policy() -> PolicySet {
    let document =
        PolicyDocument::from_json_str(include_str!("../tests/fixtures/device-policy.json"))
            .expect("fixture policy parses");
    PolicySet::new(vec![CompiledPolicy::compile("device", &document)])
}

fn evaluation(criterion: &mut Criterion) {
    let policies = device_policy();
    let device = ConnectionContext::attached_thing("ratchet");
    let mut arns = ArnBuffer::new(ArnScope::new("us-east-1", "123456789012"));
    let mut group = criterion.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));

    group.bench_function("publish_allowed_decide", |bench| {
        bench.iter(|| {
            let resource = arns.topic(black_box("data/ratchet/temperature"));
            policies.decide(actions::PUBLISH, resource, black_box(&device))
        })
    });
    group.bench_function("publish_denied_other_device_decide", |bench| {
        bench.iter(|| {
            let resource = arns.topic(black_box("data/sprocket/temperature"));
            policies.decide(actions::PUBLISH, resource, black_box(&device))
        })
    });
    group.bench_function("receive_shadow_delta_decide", |bench| {
        bench.iter(|| {
            let resource = arns.topic(black_box("$aws/things/ratchet/shadow/update/delta"));
            policies.decide(actions::RECEIVE, resource, black_box(&device))
        })
    });
    group.bench_function("publish_allowed_evaluate_with_reasons", |bench| {
        bench.iter(|| {
            let resource = arns.topic(black_box("data/ratchet/temperature"));
            policies.evaluate(actions::PUBLISH, resource, black_box(&device))
        })
    });
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
