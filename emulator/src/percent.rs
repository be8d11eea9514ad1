//! Percent-encoding of names (topics, things, log groups and streams) where they leave the emulator as
//! text: in URL paths and in file names. One encoder, the `percent-encoding` crate's, with the two
//! character sets those places allow; bytes outside a set become `%XX` (upper-case hex, UTF-8 bytes).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded: what a topic
/// or a thing name needs to be one URL path segment or query value.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Only `A-Z a-z 0-9 _ -` stay, so no name turns into `.`, `..`, a hidden file or a path separator.
const FILE_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// `text` as one URL path segment or query value.
pub fn url_component(text: &str) -> String {
    utf8_percent_encode(text, URL_COMPONENT).to_string()
}

/// `text` as (part of) a file name on any file system.
pub fn file_name(text: &str) -> String {
    utf8_percent_encode(text, FILE_NAME).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_percent_encoded() {
        assert_eq!(
            url_component("$aws/things/a b/shadow"),
            "%24aws%2Fthings%2Fa%20b%2Fshadow"
        );
        assert_eq!(url_component("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(url_component("é"), "%C3%A9");
    }

    #[test]
    fn file_names_keep_only_safe_bytes() {
        assert_eq!(file_name("/aws/lambda/x"), "%2Faws%2Flambda%2Fx");
        assert_eq!(file_name(".."), "%2E%2E");
        assert_eq!(file_name("pi-1_a"), "pi-1_a");
        assert_eq!(file_name("a~b"), "a%7Eb");
    }
}
