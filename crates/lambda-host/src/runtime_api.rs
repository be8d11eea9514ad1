//! The Lambda Runtime API, 2018-06-01 revision.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// How an invocation ended, as the function reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum InvocationResult {
    /// `POST /runtime/invocation/{id}/response`.
    Response(Bytes),
    /// `POST /runtime/invocation/{id}/error`, with the `errorType`/`errorMessage` the runtime sent.
    Error {
        error_type: String,
        error_message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("the function did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the function reported an init error: {error_type}: {error_message}")]
    InitError {
        error_type: String,
        error_message: String,
    },
    #[error("the runtime API has shut down")]
    Closed,
    #[error("could not start the runtime API: {0}")]
    Bind(#[from] std::io::Error),
}

struct Pending {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
}

struct Shared {
    function_arn: String,
    queue_rx: Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: std::sync::Mutex<HashMap<String, oneshot::Sender<InvocationResult>>>,
    /// Number of `next` polls seen so far; a watch so callers can await the first one.
    polls: watch::Sender<u64>,
    first_poll_at: std::sync::Mutex<Option<Instant>>,
    init_error: watch::Sender<Option<(String, String)>>,
}

impl Shared {
    /// Resolves once an instance has reported an init error (`/runtime/init/error`), as that error. A watch
    /// keeps the latest value, so an error reported before this is awaited is not missed.
    async fn reported_init_error(&self) -> HostError {
        let mut init_error = self.init_error.subscribe();
        let (error_type, error_message) = init_error
            .wait_for(Option::is_some)
            .await
            .map(|reported| reported.clone().unwrap_or_default())
            .unwrap_or_default();
        HostError::InitError {
            error_type,
            error_message,
        }
    }
}

/// A Runtime API endpoint for one function, listening on a local port.
///
/// Invocations queue until an instance asks for the next one, so several instances of the same
/// function may poll one endpoint; each invocation goes to exactly one of them.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    queue_tx: mpsc::UnboundedSender<Pending>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Start serving on `addr` (use port 0 for any free port).
    pub async fn bind(
        addr: SocketAddr,
        function_arn: impl Into<String>,
    ) -> Result<Self, HostError> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // Unbounded as a channel, bounded in use: an instance is invoked only when idle (the emulator's Lambda
        // dispatcher and `invoke` both wait for the result), so at most one invocation is ever queued here.
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: function_arn.into(),
            queue_rx: Mutex::new(queue_rx),
            waiting: Default::default(),
            polls: watch::channel(0).0,
            first_poll_at: Default::default(),
            init_error: watch::channel(None).0,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "runtime API server stopped");
            }
        });
        Ok(Self {
            shared,
            queue_tx,
            addr,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Invoke synchronously: queue the event and wait for the function's answer.
    pub async fn invoke(
        &self,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<InvocationResult, HostError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .map_err(|_| HostError::Closed)?
            .insert(request_id.clone(), tx);
        let deadline_ms = epoch_ms() + timeout.as_millis() as u64;
        self.queue_tx
            .send(Pending {
                request_id: request_id.clone(),
                payload: payload.into(),
                deadline_ms,
            })
            .map_err(|_| HostError::Closed)?;

        let outcome = tokio::select! {
            result = rx => result.map_err(|_| HostError::Closed),
            error = self.shared.reported_init_error() => Err(error),
            _ = tokio::time::sleep(timeout) => Err(HostError::Timeout(timeout)),
        };
        if outcome.is_err()
            && let Ok(mut waiting) = self.shared.waiting.lock()
        {
            waiting.remove(&request_id);
        }
        outcome
    }

    /// Wait until an instance has asked for its first event (the end of its init phase) and
    /// return when that happened.
    pub async fn first_poll(&self) -> Result<Instant, HostError> {
        let mut polls = self.shared.polls.subscribe();
        tokio::select! {
            seen = polls.wait_for(|n| *n > 0) => { seen.map_err(|_| HostError::Closed)?; }
            error = self.shared.reported_init_error() => return Err(error),
        }
        self.shared
            .first_poll_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .ok_or(HostError::Closed)
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    if let Ok(mut first) = shared.first_poll_at.lock() {
        first.get_or_insert(now);
    }
    shared.polls.send_modify(|n| *n += 1);

    let pending = shared.queue_rx.lock().await.recv().await;
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &pending.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &pending.deadline_ms.to_string(),
    );
    set("lambda-runtime-invoked-function-arn", &shared.function_arn);
    set(
        "lambda-runtime-trace-id",
        &format!(
            "Root=1-{:08x}-{}",
            epoch_ms() / 1000,
            &pending.request_id.replace('-', "")[..24]
        ),
    );
    set("content-type", "application/json");
    (StatusCode::OK, headers, pending.payload).into_response()
}

fn complete(shared: &Shared, id: &str, result: InvocationResult) -> StatusCode {
    let sender = shared.waiting.lock().ok().and_then(|mut w| w.remove(id));
    match sender {
        Some(tx) => {
            // The invoker may have timed out and gone; the function's answer is then moot.
            let _ = tx.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    complete(&shared, &id, InvocationResult::Response(body))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error_message: String,
}

fn parse_error(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let error_type = if parsed.error_type.is_empty() {
        headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("Unhandled")
            .to_owned()
    } else {
        parsed.error_type
    };
    (error_type, parsed.error_message)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (error_type, error_message) = parse_error(&headers, &body);
    complete(
        &shared,
        &id,
        InvocationResult::Error {
            error_type,
            error_message,
        },
    )
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let parsed = parse_error(&headers, &body);
    tracing::warn!(error_type = %parsed.0, error_message = %parsed.1, "function init error");
    shared.init_error.send_replace(Some(parsed));
    StatusCode::ACCEPTED
}
