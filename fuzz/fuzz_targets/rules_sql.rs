//! Rules SQL: `sql \0 payload \0 topic`. The SQL is parsed as a rule in both SQL versions (and as a substitution
//! template, which embeds the same expression parser); a rule that parses is evaluated against the payload, once on
//! a Basic Ingest topic (FROM is not consulted there, so every rule runs) and once on the given topic.
#![no_main]

use iot_sql::{DeterministicContext, Message, Rule, SqlVersion, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = iot_presence_fuzz::parts(data);
    let Some(sql) = parts.first() else {
        return;
    };
    // The payload stays bytes: a binary (non-JSON) payload is a case of its own (reference 5.4).
    let payload = data
        .split(|byte| *byte == 0)
        .nth(1)
        .unwrap_or(br#"{"temperature":21.5}"#);
    let topic = parts.get(2).map_or("device/ratchet/data", String::as_str);
    for version in [SqlVersion::V2015_10_08, SqlVersion::V2016_03_23] {
        if let Ok(template) = Template::parse(sql, version) {
            let message = Message::mqtt(topic, payload, "ratchet", 1_764_000_000_000);
            let _ = template.render(&message, &mut DeterministicContext::default());
        }
        let Ok(rule) = Rule::parse(sql, version) else {
            continue;
        };
        for topic in ["$aws/rules/fuzz/device/ratchet/data", topic] {
            let message = Message::mqtt(topic, payload, "ratchet", 1_764_000_000_000);
            let _ = rule.evaluate(&message, &mut DeterministicContext::default());
        }
    }
});
