//! The rule's `awsIotSqlVersion`.

use std::fmt;
use std::str::FromStr;

/// The SQL dialect a rule was created with (reference 5.1).
///
/// A rule keeps the version it was created with, and AWS uses **2015-10-08 when the property is
/// omitted**, so that is the `Default`. What 2016-03-23 adds (reference 5.1, 5.2, 5.3): nested object
/// queries, object/array literals, `SELECT VALUE` of a top-level array, `encode()`/`decode()`,
/// `isUndefined()`, and whole-number decimals such as `10.0` coming out as the Int `10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum SqlVersion {
    /// The original dialect, and the default when `awsIotSqlVersion` is omitted.
    #[default]
    V2015_10_08,
    /// The recommended dialect; all the project's rules use it (architecture section 3).
    V2016_03_23,
}

impl SqlVersion {
    /// The string AWS uses in `awsIotSqlVersion` and returns from `sql_version()`.
    pub fn as_str(self) -> &'static str {
        match self {
            SqlVersion::V2015_10_08 => "2015-10-08",
            SqlVersion::V2016_03_23 => "2016-03-23",
        }
    }

    /// Reads an optional `awsIotSqlVersion` property, applying AWS's default (reference 5.1).
    pub fn from_property(property: Option<&str>) -> Result<SqlVersion, UnknownSqlVersion> {
        property.map_or(Ok(SqlVersion::default()), str::parse)
    }
}

impl fmt::Display for SqlVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `awsIotSqlVersion` this crate does not implement (including AWS's moving `beta`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported awsIotSqlVersion {0:?}: expected \"2015-10-08\" or \"2016-03-23\"")]
pub struct UnknownSqlVersion(pub String);

impl FromStr for SqlVersion {
    type Err = UnknownSqlVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "2015-10-08" => Ok(SqlVersion::V2015_10_08),
            "2016-03-23" => Ok(SqlVersion::V2016_03_23),
            other => Err(UnknownSqlVersion(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_version_defaults_to_2015() {
        assert_eq!(SqlVersion::from_property(None), Ok(SqlVersion::V2015_10_08));
        assert_eq!(
            SqlVersion::from_property(Some("2016-03-23")),
            Ok(SqlVersion::V2016_03_23)
        );
        assert!(SqlVersion::from_property(Some("beta")).is_err());
        assert_eq!(SqlVersion::V2016_03_23.to_string(), "2016-03-23");
    }
}
