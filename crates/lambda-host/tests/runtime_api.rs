//! The Runtime API as a runtime client sees it, over real HTTP on 127.0.0.1.

use std::time::Duration;

use lambda_host::{HostError, InvocationResult, RuntimeApi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A bare HTTP/1.1 exchange, so the test depends on nothing but the wire format.
async fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} header in {head}"))
        .trim()
}

#[tokio::test]
async fn invocation_round_trip_and_error() {
    let api = RuntimeApi::bind(
        "127.0.0.1:0".parse().unwrap(),
        "arn:aws:lambda:us-east-1:000000000000:function:f",
    )
    .await
    .unwrap();
    let addr = api.address();

    let client = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let (status, head, body) =
                http(&addr, "GET", "/2018-06-01/runtime/invocation/next", "").await;
            assert_eq!(status, 200);
            assert_eq!(body, r#"{"n":1}"#);
            assert!(
                header(&head, "lambda-runtime-deadline-ms")
                    .parse::<u64>()
                    .is_ok()
            );
            assert_eq!(
                header(&head, "lambda-runtime-invoked-function-arn"),
                "arn:aws:lambda:us-east-1:000000000000:function:f"
            );
            let id = header(&head, "lambda-runtime-aws-request-id").to_owned();
            let (status, _, _) = http(
                &addr,
                "POST",
                &format!("/2018-06-01/runtime/invocation/{id}/response"),
                r#"{"ok":true}"#,
            )
            .await;
            assert_eq!(status, 202);

            let (_, head, _) = http(&addr, "GET", "/2018-06-01/runtime/invocation/next", "").await;
            let id = header(&head, "lambda-runtime-aws-request-id").to_owned();
            http(
                &addr,
                "POST",
                &format!("/2018-06-01/runtime/invocation/{id}/error"),
                r#"{"errorType":"Boom","errorMessage":"it broke"}"#,
            )
            .await;
        })
    };

    let first = api
        .invoke(r#"{"n":1}"#, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(first, InvocationResult::Response(r#"{"ok":true}"#.into()));
    let second = api.invoke("{}", Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        second,
        InvocationResult::Error {
            error_type: "Boom".into(),
            error_message: "it broke".into()
        }
    );
    client.await.unwrap();
    assert!(api.first_poll().await.is_ok());
}

#[tokio::test]
async fn unanswered_invocation_times_out_and_unknown_ids_are_refused() {
    let api = RuntimeApi::bind("127.0.0.1:0".parse().unwrap(), "arn")
        .await
        .unwrap();
    let err = api
        .invoke("{}", Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Timeout(_)), "{err}");
    let (status, _, _) = http(
        &api.address(),
        "POST",
        "/2018-06-01/runtime/invocation/no-such-id/response",
        "{}",
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn init_error_fails_the_pending_invocation() {
    let api = RuntimeApi::bind("127.0.0.1:0".parse().unwrap(), "arn")
        .await
        .unwrap();
    let addr = api.address();
    let reporter = tokio::spawn(async move {
        http(
            &addr,
            "POST",
            "/2018-06-01/runtime/init/error",
            r#"{"errorType":"Runtime.ConfigError","errorMessage":"missing env"}"#,
        )
        .await
    });
    let err = api.invoke("{}", Duration::from_secs(5)).await.unwrap_err();
    match err {
        HostError::InitError {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Runtime.ConfigError");
            assert_eq!(error_message, "missing env");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(reporter.await.unwrap().0, 202);
}
