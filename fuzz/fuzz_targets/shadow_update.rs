//! Device Shadow requests: `payload \0 payload ...`, each an `/update` payload applied in turn to the same shadow
//! the way the emulator's shadow service does (`update_from_payload` with AWS's default limits), with a `/get` and
//! the delta after each; the last part is also read as a shadow topic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadow_doc::{
    GetRequest, ShadowConfig, ShadowId, ShadowName, ShadowRecord, ShadowTopic, get_response,
    update_from_payload,
};

fuzz_target!(|data: &[u8]| {
    let config = ShadowConfig::default();
    let shadow = ShadowId::new("ratchet", ShadowName::Classic).expect("a valid thing name");
    let mut record: Option<ShadowRecord> = None;
    let mut now_secs = 1_764_000_000;
    for payload in data.split(|byte| *byte == 0) {
        now_secs += 1;
        if let Ok(outcome) = update_from_payload(record.as_ref(), payload, &config, now_secs) {
            let _ = outcome.publications(&shadow);
            record = Some(ShadowRecord::Live(outcome.document));
        }
        let live = record.as_ref().and_then(ShadowRecord::live);
        let _ = get_response(live, &shadow, &GetRequest::default(), now_secs);
    }
    if let Some(topic) = data.split(|byte| *byte == 0).next_back() {
        let _ = ShadowTopic::parse(&String::from_utf8_lossy(topic));
    }
});
