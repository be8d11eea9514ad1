//! The CloudWatch Logs HTTP front-end: awsJson1.1, i.e. `POST /` with
//! `x-amz-target: Logs_20140328.<Operation>` and a JSON body (rust-ecosystem 2, "Wire protocols").
//! Errors are `{"__type": "<Exception>", "message": ...}` with AWS's status, which both the Rust SDK
//! and the AWS CLI decode into the modelled exception.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::LogsError;
use super::model::{
    DescribeLogGroupsRequest, DescribeLogStreamsRequest, FilterLogEventsRequest,
    GetLogEventsRequest, InputLogEvent,
};
use super::store::LogsStore;
use super::validation::MAX_BATCH_BYTES;

const TARGET_PREFIX: &str = "Logs_20140328.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The CloudWatch Logs API over a [`LogsStore`].
#[derive(Debug, Clone)]
pub struct LogsService {
    store: LogsStore,
}

/// A request that never reached the store: unknown target or unreadable body.
struct ProtocolError {
    exception: &'static str,
    message: String,
}

enum ApiError {
    Protocol(ProtocolError),
    Logs(LogsError),
}

impl From<LogsError> for ApiError {
    fn from(error: LogsError) -> Self {
        Self::Logs(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, exception, message) = match self {
            Self::Protocol(error) => (400, error.exception, error.message),
            Self::Logs(error) => {
                if let LogsError::Storage { .. } = &error {
                    tracing::error!(%error, "logs state directory failure");
                }
                (
                    error.http_status(),
                    error.exception_name(),
                    error.to_string(),
                )
            }
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &json!({ "__type": exception, "message": message }))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(request_id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", request_id);
    }
    response
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // An empty body is an empty object for operations without required members.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| {
        ApiError::Protocol(ProtocolError {
            exception: "SerializationException",
            message: error.to_string(),
        })
    })
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupRequest {
    log_group_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamRequest {
    log_group_name: String,
    log_stream_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutLogEventsRequest {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetentionRequest {
    log_group_name: String,
    retention_in_days: u32,
}

impl LogsService {
    pub fn new(store: LogsStore) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &LogsStore {
        &self.store
    }

    /// The axum router: serve it on its own port and point clients at it with `--endpoint-url` or
    /// `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(dispatch))
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(self.clone())
    }

    /// Run one operation by name on a JSON body, as the router does.
    fn call(&self, operation: &str, body: &[u8]) -> Result<Value, ApiError> {
        let store = &self.store;
        let empty = || json!({});
        Ok(match operation {
            "CreateLogGroup" => {
                store.create_log_group(&parse::<GroupRequest>(body)?.log_group_name)?;
                empty()
            }
            "DeleteLogGroup" => {
                store.delete_log_group(&parse::<GroupRequest>(body)?.log_group_name)?;
                empty()
            }
            "CreateLogStream" => {
                let request: StreamRequest = parse(body)?;
                store.create_log_stream(&request.log_group_name, &request.log_stream_name)?;
                empty()
            }
            "DeleteLogStream" => {
                let request: StreamRequest = parse(body)?;
                store.delete_log_stream(&request.log_group_name, &request.log_stream_name)?;
                empty()
            }
            "PutRetentionPolicy" => {
                let request: RetentionRequest = parse(body)?;
                store.put_retention_policy(&request.log_group_name, request.retention_in_days)?;
                empty()
            }
            "DeleteRetentionPolicy" => {
                store.delete_retention_policy(&parse::<GroupRequest>(body)?.log_group_name)?;
                empty()
            }
            "DescribeLogGroups" => {
                to_value(&store.describe_log_groups(&parse::<DescribeLogGroupsRequest>(body)?)?)
            }
            "DescribeLogStreams" => {
                to_value(&store.describe_log_streams(&parse::<DescribeLogStreamsRequest>(body)?)?)
            }
            "PutLogEvents" => {
                let request: PutLogEventsRequest = parse(body)?;
                to_value(&store.put_log_events(
                    &request.log_group_name,
                    &request.log_stream_name,
                    &request.log_events,
                )?)
            }
            "GetLogEvents" => {
                to_value(&store.get_log_events(&parse::<GetLogEventsRequest>(body)?)?)
            }
            "FilterLogEvents" => {
                to_value(&store.filter_log_events(&parse::<FilterLogEventsRequest>(body)?)?)
            }
            other => {
                return Err(ApiError::Protocol(ProtocolError {
                    exception: "UnknownOperationException",
                    message: format!("The emulator does not implement Logs operation {other}"),
                }));
            }
        })
    }
}

/// Largest request body: a full PutLogEvents batch plus its JSON framing (escapes can double a message).
pub const MAX_REQUEST_BYTES: usize = 4 * MAX_BATCH_BYTES;

async fn dispatch(
    State(service): State<LogsService>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // axum's own rejection is a plain-text 413; SDKs parse errors from `{"__type","message"}` only, so an
    // oversized request gets AWS's shape (InvalidParameterException: not retryable, as the request never fits).
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("The request body exceeds {MAX_REQUEST_BYTES} bytes")
            } else {
                rejection.body_text()
            };
            return json_response(
                status,
                &json!({ "__type": "InvalidParameterException", "message": message }),
            );
        }
    };
    let operation = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .and_then(|target| target.strip_prefix(TARGET_PREFIX));
    let Some(operation) = operation else {
        return ApiError::Protocol(ProtocolError {
            exception: "UnknownOperationException",
            message: "Missing or unknown x-amz-target".to_string(),
        })
        .into_response();
    };
    tracing::debug!(operation, "logs request");
    match service.call(operation, &body) {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client;

    /// A 10 MB body got axum's plain-text 413, which SDKs cannot parse (issue 13).
    #[tokio::test]
    async fn an_oversized_request_gets_a_413_in_aws_error_shape() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, LogsService::new(LogsStore::in_memory()).router()).await
        });
        let body = vec![b'x'; MAX_REQUEST_BYTES + 1];
        let target = format!("{TARGET_PREFIX}PutLogEvents");
        let response = client::request(
            "POST",
            &url,
            "/",
            &[("x-amz-target", &target), ("content-type", CONTENT_TYPE)],
            &body,
        )
        .await
        .unwrap();
        assert_eq!(response.status, 413);
        let error: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(error["__type"], "InvalidParameterException");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(&MAX_REQUEST_BYTES.to_string())
        );
        server.abort();
    }
}
