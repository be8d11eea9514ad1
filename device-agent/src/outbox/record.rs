//! The record codec: how one change to the outbox is laid out in a segment file.
//!
//! A record is `len: u32 LE | crc32(kind, body): u32 LE | kind: u8 | body`, where `len` counts the kind
//! byte and the body. The checksum makes a torn or flipped record detectable, so replay can stop there.

/// Length prefix + CRC-32.
pub(super) const RECORD_HEADER: usize = 8;
/// AWS's 128 KiB payload limit plus a 64 KiB topic, with room to spare; anything longer is corruption.
pub(super) const MAX_RECORD_BODY: usize = 256 * 1024;

// Record kinds (the first body byte).
/// First record of every segment: first seq, dropped total, reserved until, writer's boot id.
pub(super) const KIND_HEADER: u8 = 1;
/// A stored message: seq, topic length (u16 BE), topic, payload.
pub(super) const KIND_MESSAGE: u8 = 2;
/// Messages removed: dropped flag, count, seqs.
pub(super) const KIND_REMOVED: u8 = 3;
/// Messages refused by `drop-newest`: count.
pub(super) const KIND_REJECTED: u8 = 4;
/// `seq` numbers reserved below this value.
pub(super) const KIND_RESERVE: u8 = 5;
/// A run started at this seq, in this boot.
pub(super) const KIND_OPEN: u8 = 6;
/// A clean close: the next run continues at exactly this seq.
pub(super) const KIND_CLOSE: u8 = 7;

pub(super) fn encode_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(body);
    out.extend_from_slice(&((body.len() + 1) as u32).to_le_bytes());
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

/// A valid record at the start of `bytes`: (kind, body, bytes used).
pub(super) fn check_record(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (crc, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if len == 0 || len > MAX_RECORD_BODY || rest.len() < len {
        return None;
    }
    let content = &rest[..len];
    if crc32fast::hash(content) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (kind, body) = content.split_first()?;
    Some((*kind, body, RECORD_HEADER + len))
}

/// The body of a message record (the caller checks it against `MAX_RECORD_BODY`).
pub(super) fn message_body(seq: u64, topic_len: u16, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(10 + topic.len() + payload.len());
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(&topic_len.to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(payload);
    body
}

/// A message record's (seq, topic, payload).
pub(super) fn parse_message(kind: u8, body: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    if kind != KIND_MESSAGE {
        return None;
    }
    let (seq, rest) = body.split_first_chunk::<8>()?;
    let (topic_len, rest) = rest.split_first_chunk::<2>()?;
    let topic_len = usize::from(u16::from_be_bytes(*topic_len));
    if rest.len() < topic_len {
        return None;
    }
    let (topic, payload) = rest.split_at(topic_len);
    Some((u64::from_le_bytes(*seq), topic, payload))
}

pub(super) fn removal_body(dropped: bool, seqs: &[u64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(5 + seqs.len() * 8);
    body.push(u8::from(dropped));
    body.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
    for seq in seqs {
        body.extend_from_slice(&seq.to_le_bytes());
    }
    body
}

pub(super) fn put_boot(body: &mut Vec<u8>, boot_id: &Option<String>) {
    let id = boot_id.as_deref().unwrap_or("");
    body.push(id.len() as u8);
    body.extend_from_slice(id.as_bytes());
}

pub(super) fn read_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (value, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*value), rest))
}

pub(super) fn read_boot(bytes: &[u8]) -> Option<Option<String>> {
    let (len, rest) = bytes.split_first()?;
    let id = rest.get(..usize::from(*len))?;
    let id = std::str::from_utf8(id).ok()?;
    Some((!id.is_empty()).then(|| id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_record_round_trips_and_every_damage_is_caught() {
        let mut bytes = Vec::new();
        encode_record(
            &mut bytes,
            KIND_MESSAGE,
            &message_body(7, 3, "t/a", b"{\"x\":1}"),
        );
        let (kind, body, used) = check_record(&bytes).unwrap();
        assert_eq!((kind, used), (KIND_MESSAGE, bytes.len()));
        assert_eq!(
            parse_message(kind, body),
            Some((7, b"t/a".as_slice(), b"{\"x\":1}".as_slice()))
        );
        for cut in 0..bytes.len() {
            assert!(check_record(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(check_record(&flipped).is_none(), "flip at {at}");
        }
    }

    #[test]
    fn boot_ids_round_trip_and_an_empty_one_is_none() {
        for boot in [None, Some("0b6e2a4c".to_string())] {
            let mut body = Vec::new();
            put_boot(&mut body, &boot);
            assert_eq!(read_boot(&body), Some(boot));
        }
    }
}
