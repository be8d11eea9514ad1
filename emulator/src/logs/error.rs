//! Errors of the CloudWatch Logs API, with AWS's exception names and HTTP statuses so the awsJson1.1
//! front-end and the in-process callers (rules engine) see the same thing.

/// A refused CloudWatch Logs request (or a failure of the state directory).
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("The specified log group does not exist.")]
    LogGroupNotFound,
    #[error("The specified log stream does not exist.")]
    LogStreamNotFound,
    #[error("The specified log group already exists")]
    LogGroupAlreadyExists,
    #[error("The specified log stream already exists")]
    LogStreamAlreadyExists,
    /// A parameter AWS would refuse, with AWS's message where we know it.
    #[error("{0}")]
    InvalidParameter(String),
    /// The state directory could not be read or written.
    #[error("log storage failed ({context}): {source}")]
    Storage {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A refused filter pattern is an `InvalidParameterException` with the pattern crate's text.
impl From<logs_filter::PatternError> for LogsError {
    fn from(error: logs_filter::PatternError) -> Self {
        Self::invalid(error.message())
    }
}

impl LogsError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidParameter(message.into())
    }

    pub(crate) fn storage(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Storage {
            context: context.into(),
            source,
        }
    }

    /// The `__type` of the awsJson1.1 error body, one of the exceptions the SDK models for these operations.
    pub fn exception_name(&self) -> &'static str {
        match self {
            Self::LogGroupNotFound | Self::LogStreamNotFound => "ResourceNotFoundException",
            Self::LogGroupAlreadyExists | Self::LogStreamAlreadyExists => {
                "ResourceAlreadyExistsException"
            }
            Self::InvalidParameter(_) => "InvalidParameterException",
            Self::Storage { .. } => "ServiceUnavailableException",
        }
    }

    /// CloudWatch Logs answers client errors with 400 and its own failures with 500.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Storage { .. } => 500,
            _ => 400,
        }
    }
}
