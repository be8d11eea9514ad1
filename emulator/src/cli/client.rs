//! The HTTP client of the CLI subcommands (`shadow get`, `logs tail`, `publish`) that talk to a running
//! emulator: hyper's legacy client (hyper-util), already compiled in through axum and the AWS SDK. Plain
//! HTTP only, and one request per connection (no pool), as the subcommands make a handful of requests.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("only http://host:port URLs are supported, got {0:?}")]
    Url(String),
    #[error("cannot build the request to {url}: {source}")]
    Request {
        url: String,
        #[source]
        source: hyper::http::Error,
    },
    #[error("cannot reach {url}: {source} (is `iot-emulator up` running?)")]
    Connect {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("reading the response from {url}: {source}")]
    Response {
        url: String,
        #[source]
        source: hyper::Error,
    },
}

/// One response: status code, the restJson1 error name (`x-amzn-ErrorType`, without its `:` suffix) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub error_type: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends `method` to `base_url` (`http://host:port`) + `path_and_query` with `headers` and `body`.
pub async fn request(
    method: &str,
    base_url: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, ClientError> {
    let response = send(method, base_url, path_and_query, headers, body).await?;
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(':').next().unwrap_or(value).to_owned());
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|source| ClientError::Response {
            url: base_url.to_owned(),
            source,
        })?
        .to_bytes()
        .to_vec();
    Ok(Response {
        status,
        error_type,
        content_type,
        body,
    })
}

/// A response whose body is read as it arrives (the live tail of `subscribe`).
#[derive(Debug)]
pub struct StreamingResponse {
    pub status: u16,
    url: String,
    body: hyper::body::Incoming,
}

impl StreamingResponse {
    /// The next piece of the body; `None` once the server ended it.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(ClientError::Response {
                        url: self.url.clone(),
                        source,
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The rest of the body, for an error answer.
    pub async fn rest(self) -> Result<Vec<u8>, ClientError> {
        let url = self.url;
        Ok(self
            .body
            .collect()
            .await
            .map_err(|source| ClientError::Response { url, source })?
            .to_bytes()
            .to_vec())
    }
}

/// `GET base_url + path_and_query`, answering as soon as the response head arrives.
pub async fn get_streaming(
    base_url: &str,
    path_and_query: &str,
) -> Result<StreamingResponse, ClientError> {
    let response = send("GET", base_url, path_and_query, &[], b"").await?;
    Ok(StreamingResponse {
        status: response.status().as_u16(),
        url: base_url.to_owned(),
        body: response.into_body(),
    })
}

async fn send(
    method: &str,
    base_url: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
    let authority = base_url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|authority| !authority.is_empty() && !authority.contains('/'))
        .ok_or_else(|| ClientError::Url(base_url.to_owned()))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{authority}{path_and_query}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|source| ClientError::Request {
            url: base_url.to_owned(),
            source,
        })?;
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    client
        .request(request)
        .await
        .map_err(|source| ClientError::Connect {
            url: base_url.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    async fn echo_server() -> String {
        let router = axum::Router::new().route(
            "/echo/{name}",
            post(
                |axum::extract::Path(name): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap,
                 body: Bytes| async move {
                    let tag = headers
                        .get("x-tag")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    (
                        axum::http::StatusCode::CREATED,
                        format!("{name}|{tag}|{}", String::from_utf8_lossy(&body)),
                    )
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn sends_method_path_headers_and_body() {
        let url = echo_server().await;
        let response = request("POST", &url, "/echo/a%2Fb", &[("x-tag", "t")], b"hello")
            .await
            .unwrap();
        assert_eq!(response.status, 201);
        assert!(response.is_success());
        assert_eq!(response.body, b"a/b|t|hello");
        let missing = request("GET", &format!("{url}/"), "/nothing", &[], b"")
            .await
            .unwrap();
        assert_eq!(missing.status, 404);
    }

    #[tokio::test]
    async fn refuses_other_urls_and_reports_unreachable_servers() {
        for url in [
            "https://127.0.0.1:1",
            "http://127.0.0.1:1/path",
            "127.0.0.1:1",
        ] {
            assert!(matches!(
                request("GET", url, "/", &[], b"").await,
                Err(ClientError::Url(_))
            ));
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        assert!(matches!(
            request("GET", &closed, "/", &[], b"").await,
            Err(ClientError::Connect { .. })
        ));
    }
}
