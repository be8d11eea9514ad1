//! MQTT 3.1.1 packets as the broker reads them: the bytes of a connection, decoded packet after packet with the
//! broker's codec and maximum packet size (emulator/src/broker/session.rs: the 128 KB payload limit plus the 256-byte
//! topic limit plus 64 bytes of headers, reference 6.5). The topics and filters of what decodes go through AWS's
//! topic rules, as the broker checks them next, and every decoded packet must encode again.
#![no_main]

use bytes::BytesMut;
use iot_sql::{MAX_TOPIC_BYTES, TopicLimits, validate_topic_filter};
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::v4::Packet;

const MAX_PAYLOAD_BYTES: usize = 128 * 1024;
const MAX_PACKET_BYTES: usize = MAX_PAYLOAD_BYTES + MAX_TOPIC_BYTES + 64;

fuzz_target!(|data: &[u8]| {
    let mut stream = BytesMut::from(data);
    while let Ok(packet) = Packet::read(&mut stream, MAX_PACKET_BYTES) {
        match &packet {
            Packet::Publish(publish) => {
                if let Ok(topic) = std::str::from_utf8(&publish.topic) {
                    let _ = TopicLimits::AWS.check_topic_name(topic);
                }
            }
            Packet::Subscribe(subscribe) => {
                for filter in &subscribe.filters {
                    let _ = TopicLimits::AWS.check_topic_filter(&filter.path);
                    let _ = validate_topic_filter(&filter.path);
                }
            }
            Packet::Connect(connect) => {
                if let Some(will) = &connect.last_will {
                    let _ = TopicLimits::AWS.check_topic_name(&will.topic);
                }
            }
            _ => {}
        }
        let mut encoded = BytesMut::new();
        let _ = packet.write(&mut encoded, MAX_PACKET_BYTES);
    }
});
