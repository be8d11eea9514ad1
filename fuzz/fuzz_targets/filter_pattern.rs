//! CloudWatch Logs filter patterns (FilterLogEvents' `filterPattern`): `pattern \0 message \0 message ...`.
//! Parse, then match each message; nothing may panic or overflow the stack, whatever the pattern's nesting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logs_filter::FilterPattern;

fuzz_target!(|data: &[u8]| {
    let parts = iot_presence_fuzz::parts(data);
    let Some((pattern, messages)) = parts.split_first() else {
        return;
    };
    let Ok(pattern) = FilterPattern::parse(Some(pattern)) else {
        return;
    };
    for message in messages {
        pattern.matches(message);
    }
});
