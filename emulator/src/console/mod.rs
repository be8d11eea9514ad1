//! The web console (`iot-emulator up --console-port`): the AWS IoT console's views that the workshop uses,
//! live, on 127.0.0.1, working offline. Every asset is compiled into the binary ([`ASSETS`]); nothing is
//! fetched from another host.
//!
//! The server is thin on purpose: it serves one page, and under `/api/` the emulator's own AWS-compatible
//! APIs, nested in-process so that the page calls them on its own origin (no CORS, no proxy):
//! - `/api/iot/...`: the control plane (ListThings, ListThingPrincipals, ListAttachedPolicies,
//!   GetThingConnectivityData, ...), exactly as `aws iot` reaches it;
//! - `/api/data/...`: the data plane (GetThingShadow, UpdateThingShadow, ListNamedShadowsForThing, Publish)
//!   and its live tail `/_emulator/subscribe` ([`crate::dataplane::observe`]). Its publisher is the service
//!   `console`, so messages the page publishes say where they came from;
//! - `/api/logs`: the CloudWatch Logs API (DescribeLogGroups, FilterLogEvents), as `aws logs` reaches it.
//!
//! Like the AWS console, the page acts as a service identity outside device policies (the AWS console acts
//! as an IAM principal); the MQTT test client page says so. What the page does with these APIs is in
//! `assets/console.js`: the things list, a thing's shadows with a desired-only, version-locked editor, the
//! MQTT test client (`/mqtt?subscribe=<url-encoded filter>`), and the logs (`/logs?group=...`: a live tail,
//! and for the disconnect records a table and a timeline per thing), and why the broker denied what it denied
//! (`/denied`, from `/_emulator/denials`).

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The console's name as a publisher (`publisher: {"service": "console"}` on the tail).
pub const CONSOLE_SERVICE_NAME: &str = "console";

/// The page, its script and its style: (path, content type, bytes).
pub const ASSETS: [(&str, &str, &str); 3] = [
    (
        "/assets/console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
    (
        "/assets/console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
];

/// The page's routes: each serves the same document, whose script shows the view the path names.
const PAGES: [&str; 6] = [
    "/",
    "/things",
    "/things/{thing}",
    "/mqtt",
    "/logs",
    "/denied",
];

/// The console's router: the page, its assets, and the APIs it calls under `/api/`.
pub fn router(control_plane: Router, data_plane: Router, logs: Router) -> Router {
    let mut router = Router::new();
    for page in PAGES {
        router = router.route(page, get(|| async { asset("/") }));
    }
    for (path, _, _) in ASSETS.iter().filter(|(path, _, _)| *path != "/") {
        router = router.route(path, get(move || async move { asset(path) }));
    }
    router
        .nest("/api/iot", control_plane)
        .nest("/api/data", data_plane)
        .nest("/api/logs", logs)
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such console page\n") })
}

fn asset(path: &str) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Nothing from anywhere else, and no inline script: the page works offline and cannot be made to run
    // what a payload contains.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{address}")
    }

    /// (status, content type, body) of GET `path`.
    async fn get_text(url: &str, path: &str) -> (u16, String, String) {
        let response = crate::cli::client::request("GET", url, path, &[], b"")
            .await
            .unwrap();
        let content_type = response.content_type.clone().unwrap_or_default();
        (
            response.status,
            content_type,
            String::from_utf8(response.body).unwrap(),
        )
    }

    fn api(name: &'static str) -> Router {
        Router::new().route("/ping", get(move || async move { name }))
    }

    #[tokio::test]
    async fn every_page_is_the_document_and_the_apis_are_nested() {
        let url = serve(router(api("iot"), api("data"), api("logs"))).await;
        for page in [
            "/",
            "/things",
            "/things/ratchet",
            "/mqtt?subscribe=%23",
            "/logs?group=%2Ft",
        ] {
            let (status, content_type, body) = get_text(&url, page).await;
            assert_eq!(
                (status, content_type.as_str()),
                (200, "text/html; charset=utf-8"),
                "{page}"
            );
            assert!(body.contains("/assets/console.js"), "{page}");
        }
        let (status, content_type, script) = get_text(&url, "/assets/console.js").await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "text/javascript; charset=utf-8")
        );
        assert!(script.contains("_emulator/subscribe"));
        assert_eq!(get_text(&url, "/api/iot/ping").await.2, "iot");
        assert_eq!(get_text(&url, "/api/data/ping").await.2, "data");
        assert_eq!(get_text(&url, "/api/logs/ping").await.2, "logs");
        assert_eq!(get_text(&url, "/elsewhere").await.0, 404);
    }

    #[test]
    fn the_page_loads_nothing_from_another_host() {
        for (path, _, body) in ASSETS {
            // The SVG namespace is a name, not a place the page loads from.
            let body = body.replace("'http://www.w3.org/2000/svg'", "");
            for needle in ["http://", "https://", "//cdn", "@import"] {
                assert!(!body.contains(needle), "{path} refers to {needle}");
            }
        }
    }
}
