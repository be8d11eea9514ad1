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
//!   its response. Every request the emulator serves completes well within it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections one HTTP API holds open at most.
pub const MAX_CONNECTIONS_PER_API: usize = 128;
/// A connection with no traffic for this long is closed (what AWS front-ends such as ELB do by default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
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

    async fn serve(max_connections: usize, idle: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let bounded = BoundedListener::with_limits(listener, max_connections, idle);
        tokio::spawn(async move { axum::serve(bounded, router).await });
        address
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
