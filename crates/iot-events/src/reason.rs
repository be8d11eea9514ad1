//! `disconnectReason` of a `disconnected` lifecycle event (reference 1.4).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why AWS IoT ended a connection.
///
/// AWS adds reasons over time (`connect_failed` itself is newer than the 2023 docs), so an unknown
/// value is kept in [`DisconnectReason::Other`] instead of failing the whole event: a record with an
/// unfamiliar reason is far more useful than a rejected one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    AuthError,
    ClientInitiatedDisconnect,
    ClientError,
    ConnectionLost,
    DuplicateClientId,
    ForbiddenAccess,
    MqttKeepAliveTimeout,
    ServerError,
    ServerInitiatedDisconnect,
    ApiInitiatedDisconnect,
    Throttled,
    WebsocketTtlExpiration,
    CustomauthTtlExpiration,
    /// Fleet-indexing connectivity data uses these two as well (reference 1.4).
    Unknown,
    None,
    /// A value this crate does not know yet, kept verbatim.
    Other(String),
}

impl DisconnectReason {
    /// Every reason AWS documents, in the order of reference table 1.4.
    pub const DOCUMENTED: [DisconnectReason; 13] = [
        DisconnectReason::AuthError,
        DisconnectReason::ClientInitiatedDisconnect,
        DisconnectReason::ClientError,
        DisconnectReason::ConnectionLost,
        DisconnectReason::DuplicateClientId,
        DisconnectReason::ForbiddenAccess,
        DisconnectReason::MqttKeepAliveTimeout,
        DisconnectReason::ServerError,
        DisconnectReason::ServerInitiatedDisconnect,
        DisconnectReason::ApiInitiatedDisconnect,
        DisconnectReason::Throttled,
        DisconnectReason::WebsocketTtlExpiration,
        DisconnectReason::CustomauthTtlExpiration,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::AuthError => "AUTH_ERROR",
            Self::ClientInitiatedDisconnect => "CLIENT_INITIATED_DISCONNECT",
            Self::ClientError => "CLIENT_ERROR",
            Self::ConnectionLost => "CONNECTION_LOST",
            Self::DuplicateClientId => "DUPLICATE_CLIENTID",
            Self::ForbiddenAccess => "FORBIDDEN_ACCESS",
            Self::MqttKeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            Self::ServerError => "SERVER_ERROR",
            Self::ServerInitiatedDisconnect => "SERVER_INITIATED_DISCONNECT",
            Self::ApiInitiatedDisconnect => "API_INITIATED_DISCONNECT",
            Self::Throttled => "THROTTLED",
            Self::WebsocketTtlExpiration => "WEBSOCKET_TTL_EXPIRATION",
            Self::CustomauthTtlExpiration => "CUSTOMAUTH_TTL_EXPIRATION",
            Self::Unknown => "UNKNOWN",
            Self::None => "NONE",
            Self::Other(s) => s,
        }
    }

    /// Whether the broker publishes the client's Last Will for this reason (reference 1.4, 2.1).
    ///
    /// Only a clean MQTT DISCONNECT (or WebSocket close) suppresses the will. For `AUTH_ERROR` and
    /// `FORBIDDEN_ACCESS` AWS publishes it only if the connection had been established; callers
    /// that know a CONNECT never succeeded must not publish (there is no stored will then anyway).
    /// `API_INITIATED_DISCONNECT` publishes unless `preventWillMessage` was set, which the caller
    /// handles. Unknown reasons are treated as unexpected disconnects, the safe side for presence.
    pub fn publishes_will(&self) -> bool {
        !matches!(self, Self::ClientInitiatedDisconnect | Self::None)
    }

    /// Whether the device itself chose to go away (reference 1.3: `clientInitiatedDisconnect`).
    pub fn is_client_initiated(&self) -> bool {
        matches!(self, Self::ClientInitiatedDisconnect)
    }
}

impl FromStr for DisconnectReason {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = Self::DOCUMENTED
            .iter()
            .chain([Self::Unknown, Self::None].iter())
            .find(|r| r.as_str() == s)
            .cloned();
        Ok(known.unwrap_or_else(|| Self::Other(s.to_owned())))
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DisconnectReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DisconnectReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(s.parse().unwrap_or_else(|never| match never {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_reason_round_trips() {
        for reason in DisconnectReason::DOCUMENTED {
            let json = serde_json::to_string(&reason).unwrap();
            let back: DisconnectReason = serde_json::from_str(&json).unwrap();
            assert_eq!(back, reason);
            assert!(
                !matches!(back, DisconnectReason::Other(_)),
                "{json} not recognised"
            );
        }
    }

    #[test]
    fn unknown_reason_is_kept_verbatim() {
        let r: DisconnectReason = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(r, DisconnectReason::Other("SOMETHING_NEW".into()));
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"SOMETHING_NEW\"");
        assert!(r.publishes_will());
    }

    #[test]
    fn only_a_clean_disconnect_suppresses_the_will() {
        let suppressing: Vec<_> = DisconnectReason::DOCUMENTED
            .iter()
            .filter(|r| !r.publishes_will())
            .collect();
        assert_eq!(suppressing, [&DisconnectReason::ClientInitiatedDisconnect]);
    }
}
