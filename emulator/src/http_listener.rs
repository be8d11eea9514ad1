//! The listener under every HTTP API of the emulator (data plane, CloudWatch Logs, control plane): a bounded
//! number of connections, each closed when it goes quiet.
//!
//! Without it, about 1,100 idle HTTP connections used up the default 1,024 descriptors and locked every MQTT and
//! HTTP client out while they were held (issue 13). Policy:
//! - at most `max_connections` open connections per API; beyond that the listener stops accepting, so further
//!   clients wait in the kernel's listen backlog (bounded by the system) and take no descriptor of ours, and are
//!   accepted as soon as a connection closes;
//! - a connection on which nothing has been read or written for `idle_timeout` is closed: an idle keep-alive
//!   connection, a client that trickles its request byte by byte slower than that, or one that stops reading
//!   its response. Every request the emulator serves completes well within it;
//! - a request whose headers have not all arrived `HEADER_READ_TIMEOUT` after they began is refused and its
//!   connection closed (hyper's header-read timeout): a client trickling one header byte just inside the idle
//!   timeout can no longer hold a connection slot for ever.
//!
//! [`serve`] runs an API on such a listener and stops it gracefully: no new connections, requests under way
//! finish; dropping (aborting) the serving task closes every connection it holds.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

/// Connections one HTTP API holds open at most.
pub const MAX_CONNECTIONS_PER_API: usize = 128;
/// A connection with no traffic for this long is closed (what AWS front-ends such as ELB do by default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request's headers may take to arrive once they have begun (nginx's `client_header_timeout` is
/// 60 s; AWS documents none: every SDK sends its headers at once).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// After an accept error such as EMFILE, wait this long before accepting again instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(500);

/// A [`TcpListener`] that holds at most `max_connections` connections and closes idle ones; serve it with
/// `axum::serve`.
pub struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
}

impl BoundedListener {
    pub fn new(inner: TcpListener) -> Self {
        Self::with_limits(inner, MAX_CONNECTIONS_PER_API, IDLE_TIMEOUT)
    }

    pub fn with_limits(inner: TcpListener, max_connections: usize, idle_timeout: Duration) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            idle_timeout,
        }
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // The semaphore is never closed, so acquiring only waits.
            let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    return (
                        BoundedStream::new(stream, permit, self.idle_timeout),
                        address,
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting an HTTP connection failed; pausing");
                    drop(permit);
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Serves `router` over HTTP/1.1 on `listener` until `shutdown` completes, then lets the requests under way
/// finish (bound the wait by aborting the task: that closes every connection).
pub async fn serve(
    listener: BoundedListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, router, HEADER_READ_TIMEOUT, shutdown).await;
}

pub async fn serve_with(
    mut listener: BoundedListener,
    router: axum::Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    // Owned here, so aborting the serving task drops (closes) every connection.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (stream, _) = listener.accept() => {
                let service = TowerToHyperService::new(router.clone());
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "HTTP connection ended with an error");
                    }
                });
            }
            // Reap finished connections so the set stays as small as the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}

/// An accepted connection: holds its slot until dropped, and fails its reads and writes once nothing has moved
/// for the idle timeout (hyper then closes it).
pub struct BoundedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
}

impl BoundedStream {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, idle_timeout: Duration) -> Self {
        Self {
            stream,
            _permit: permit,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    fn progressed(&mut self) {
        let deadline = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }

    /// Pending I/O: an error once the idle deadline has passed (the timer wakes the task then).
    fn pending_or_timed_out<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "HTTP connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.pending_or_timed_out(cx),
        }
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.pending_or_timed_out(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => self.pending_or_timed_out(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.pending_or_timed_out(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn router() -> axum::Router {
        axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow ok"
                }),
            )
    }

    async fn serve_limited(
        max_connections: usize,
        idle: Duration,
        header_read_timeout: Duration,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let bounded = BoundedListener::with_limits(listener, max_connections, idle);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(
            bounded,
            router(),
            header_read_timeout,
            async move {
                let _ = stopped.await;
            },
        ));
        (address, stop, task)
    }

    async fn serve(max_connections: usize, idle: Duration) -> SocketAddr {
        let (address, stop, _task) =
            serve_limited(max_connections, idle, HEADER_READ_TIMEOUT).await;
        // Serves until the test's runtime ends.
        std::mem::forget(stop);
        address
    }

    /// Issue 13: the idle timeout alone let a client that trickles its headers (one byte just inside the idle
    /// timeout) hold a connection slot for ever; 128 such clients locked an API out.
    #[tokio::test]
    async fn headers_trickled_past_the_header_timeout_close_the_connection() {
        let (address, _stop, _task) =
            serve_limited(4, Duration::from_secs(60), Duration::from_millis(500)).await;
        let mut slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut closed = false;
        while started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"x").await.is_err() {
                closed = true;
                break;
            }
            let mut byte = [0u8; 256];
            if let Ok(read) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut byte)).await
            {
                // A 408 response or the end of the stream: either way, the server gave up on it.
                let _ = read;
                closed = true;
                break;
            }
        }
        assert!(closed, "a trickling client kept its connection for 5 s");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_graceful_stop_lets_a_request_under_way_finish_and_refuses_new_connections() {
        let (address, stop, task) =
            serve_limited(4, Duration::from_secs(60), HEADER_READ_TIMEOUT).await;
        let mut under_way = TcpStream::connect(address).await.unwrap();
        under_way
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let mut response = String::new();
        under_way.read_to_string(&mut response).await.unwrap();
        assert!(response.ends_with("slow ok"), "{response}");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server stops once its requests are done")
            .unwrap();
        assert!(get(address).await.is_err(), "a new connection was served");
    }

    async fn get(address: SocketAddr) -> io::Result<String> {
        let mut stream = TcpStream::connect(address).await?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_idle_timeout() {
        let address = serve(4, Duration::from_millis(200)).await;
        let mut silent = TcpStream::connect(address).await.unwrap();
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte))
            .await
            .expect("the server closes an idle connection");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    }

    #[tokio::test]
    async fn held_connections_beyond_the_bound_wait_and_others_are_served_when_one_closes() {
        let address = serve(2, Duration::from_secs(60)).await;
        let first = TcpStream::connect(address).await.unwrap();
        let _second = TcpStream::connect(address).await.unwrap();
        // Both slots are held by silent clients: a third request is not answered...
        let third = tokio::spawn(get(address));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!third.is_finished(), "served beyond the bound");
        // ... until a slot frees up.
        drop(first);
        let response = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("served once a connection closed")
            .unwrap()
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}
