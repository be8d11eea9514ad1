//! `iot-emulator subscribe <filter>...`: a live MQTT tail through the running emulator's
//! [`crate::dataplane::observe`] stream, as a service identity (no device policy applies).
//!
//! The stream is read line by line ([`LineSplitter`], bounded), each line decoded into a [`TailLine`], and
//! each message printed as `time topic payload` ([`format_message`]). When the emulator goes away, the
//! caller waits and subscribes again (what was published meanwhile is not seen; the warning says so).

use crate::dataplane::observe::{ObservedMessage, SUBSCRIBE_PATH};
use crate::percent;

use super::client::{self, ClientError, StreamingResponse};
use super::logs_tail::format_timestamp;

/// The longest line accepted from the stream: a 128 KiB payload as JSON-escaped text (at most 6 bytes per
/// byte for control characters) with room for the other fields.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Http(#[from] ClientError),
    #[error("HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("a line of the stream is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    #[error("unreadable line in the stream: {0}")]
    Decode(#[from] serde_json::Error),
}

impl SubscribeError {
    /// The emulator could not be reached or went away: worth waiting for it.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SubscribeError::Http(ClientError::Connect { .. } | ClientError::Response { .. })
        )
    }
}

/// The path and query that subscribe to `filters`.
pub fn subscribe_path(filters: &[String]) -> String {
    let query: Vec<String> = filters
        .iter()
        .map(|filter| format!("filter={}", percent::url_component(filter)))
        .collect();
    format!("{SUBSCRIBE_PATH}?{}", query.join("&"))
}

/// Opens the stream; an answer other than 200 is an error that says why (e.g. an invalid filter).
pub async fn open(base_url: &str, filters: &[String]) -> Result<Tail, SubscribeError> {
    let response = client::get_streaming(base_url, &subscribe_path(filters)).await?;
    if response.status != 200 {
        let status = response.status;
        let body = response.rest().await?;
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|json| json.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(SubscribeError::Refused {
            status,
            body: message,
        });
    }
    Ok(Tail {
        response,
        lines: LineSplitter::default(),
    })
}

/// One line of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailLine {
    Message(ObservedMessage),
    /// The running total of messages this watcher missed for falling behind.
    Dropped(u64),
    Heartbeat,
}

impl TailLine {
    pub fn parse(line: &[u8]) -> Result<TailLine, serde_json::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Dropped {
                dropped: u64,
            },
            Heartbeat {
                #[allow(dead_code)]
                heartbeat: i64,
            },
            Message(ObservedMessage),
        }
        Ok(match serde_json::from_slice(line)? {
            Wire::Dropped { dropped } => TailLine::Dropped(dropped),
            Wire::Heartbeat { .. } => TailLine::Heartbeat,
            Wire::Message(message) => TailLine::Message(message),
        })
    }
}

/// An open stream.
#[derive(Debug)]
pub struct Tail {
    response: StreamingResponse,
    lines: LineSplitter,
}

impl Tail {
    /// The next line; `None` when the emulator ended the stream (it shut down).
    pub async fn next(&mut self) -> Result<Option<TailLine>, SubscribeError> {
        loop {
            if let Some(line) = self.lines.next_line()? {
                return Ok(Some(TailLine::parse(&line)?));
            }
            match self.response.next_chunk().await? {
                Some(chunk) => self.lines.push(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// Cuts a byte stream into lines, holding at most [`MAX_LINE_BYTES`] of an unfinished one.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buffer: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, SubscribeError> {
        match self.buffer.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                Ok(Some(line))
            }
            None if self.buffer.len() > MAX_LINE_BYTES => Err(SubscribeError::LineTooLong),
            None => Ok(None),
        }
    }
}

/// `time topic payload` on one line: RFC 3339 UTC time, the payload as text with line breaks, tabs and other
/// control characters escaped (`\n`), or `base64:...` when it is not UTF-8.
pub fn format_message(message: &ObservedMessage) -> String {
    let payload = match (&message.payload, &message.payload_base64) {
        (Some(text), _) => escape_controls(text),
        (None, Some(base64)) => format!("base64:{base64}"),
        (None, None) => String::new(),
    };
    format!(
        "{} {} {payload}",
        format_timestamp(message.timestamp),
        message.topic
    )
}

fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            control if control.is_control() => {
                escaped.push_str(&format!("\\u{{{:x}}}", u32::from(control)));
            }
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::observe::ObservedPublisher;

    fn message(payload: Option<&str>, base64: Option<&str>) -> ObservedMessage {
        ObservedMessage {
            timestamp: 1_764_694_302_123,
            topic: "data/ratchet/temperature".into(),
            qos: 0,
            retain: false,
            publisher: ObservedPublisher::ClientId("ratchet".into()),
            payload: payload.map(str::to_owned),
            payload_base64: base64.map(str::to_owned),
        }
    }

    #[test]
    fn the_path_encodes_each_filter() {
        assert_eq!(
            subscribe_path(&["data/+/temperature".into(), "$aws/events/#".into()]),
            "/_emulator/subscribe?filter=data%2F%2B%2Ftemperature&filter=%24aws%2Fevents%2F%23"
        );
    }

    #[test]
    fn lines_are_cut_across_chunks_and_bounded() {
        let mut lines = LineSplitter::default();
        lines.push(b"{\"heartbeat\":1}\n{\"drop");
        assert_eq!(
            TailLine::parse(&lines.next_line().unwrap().unwrap()).unwrap(),
            TailLine::Heartbeat
        );
        assert!(lines.next_line().unwrap().is_none());
        lines.push(b"ped\":3}\n");
        assert_eq!(
            TailLine::parse(&lines.next_line().unwrap().unwrap()).unwrap(),
            TailLine::Dropped(3)
        );
        lines.push(&vec![b'x'; MAX_LINE_BYTES + 1]);
        assert!(matches!(
            lines.next_line(),
            Err(SubscribeError::LineTooLong)
        ));
    }

    #[test]
    fn a_message_line_round_trips_and_prints_on_one_line() {
        let original = message(Some("{\n \"celsius\": 41.2\n}"), None);
        let line = serde_json::to_vec(&original).unwrap();
        let TailLine::Message(parsed) = TailLine::parse(&line).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(parsed, original);
        assert_eq!(
            format_message(&parsed),
            "2025-12-02T16:51:42.123Z data/ratchet/temperature {\\n \"celsius\": 41.2\\n}"
        );
        assert_eq!(
            format_message(&message(None, Some("/wA="))),
            "2025-12-02T16:51:42.123Z data/ratchet/temperature base64:/wA="
        );
        assert_eq!(escape_controls("a\u{7}b"), "a\\u{7}b");
    }
}
