//! Paging of the data plane's list operations (`maxResults` 1–200 and an opaque `nextToken`, the `iot-data`
//! model's `MaxResults` and `NextToken`). The token is the base64 of the last key returned, so a page
//! continues after it even when entries were added or removed meanwhile.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN_BASE64;

use super::error::DataPlaneError;

/// The model's `MaxResults` range.
const MAX_RESULTS: usize = 200;

/// `maxResults` as given, or `default`; outside 1–200 is InvalidRequestException.
pub(crate) fn page_size(
    max_results: Option<&str>,
    default: usize,
) -> Result<usize, DataPlaneError> {
    let Some(text) = max_results else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(size) if (1..=MAX_RESULTS).contains(&size) => Ok(size),
        _ => Err(DataPlaneError::invalid_request(format!(
            "maxResults must be an integer between 1 and {MAX_RESULTS}"
        ))),
    }
}

/// A decoded `nextToken`: the key the previous page ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageToken(String);

impl PageToken {
    pub(crate) fn encode(last_key: &str) -> String {
        TOKEN_BASE64.encode(last_key)
    }

    pub(crate) fn decode(token: &str) -> Result<PageToken, DataPlaneError> {
        let invalid = || DataPlaneError::invalid_request("Invalid nextToken");
        let bytes = TOKEN_BASE64.decode(token).map_err(|_| invalid())?;
        String::from_utf8(bytes)
            .map(PageToken)
            .map_err(|_| invalid())
    }

    pub(crate) fn key(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_invalid_requests() {
        let token = PageToken::encode("a/b c/ü");
        assert_eq!(PageToken::decode(&token).unwrap().key(), "a/b c/ü");
        assert_eq!(PageToken::decode("!!").unwrap_err().status, 400);
        assert_eq!(page_size(None, 20).unwrap(), 20);
        assert_eq!(page_size(Some("200"), 20).unwrap(), 200);
        for bad in ["0", "201", "x", "-1"] {
            assert_eq!(page_size(Some(bad), 20).unwrap_err().status, 400, "{bad}");
        }
    }
}
