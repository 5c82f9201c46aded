//! Connections of the gRPC server held in the registry (`limits.max_connections`): each accepted
//! TCP stream is admitted (the connection that carried no bytes longest is closed to make room)
//! or closed at once; a held one reads as ended once the registry evicts it (its calls in
//! flight then fail), or when it has not sent the HTTP/2 preface within
//! `limits.header_timeout_secs` of opening (a client speaks first in HTTP/2; after that,
//! keep-alive pings find dead peers).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aki_wiring::{Closed, Connection, Connections};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The length of the HTTP/2 client preface: a client has spoken once it has sent this much.
const PREFACE: usize = 24;

/// A TCP stream holding its place in the registry until dropped.
pub struct Held {
    stream: TcpStream,
    connection: Connection,
    eviction: Pin<Box<tokio::sync::futures::OwnedNotified>>,
    /// Until it has sent the HTTP/2 preface: when it is closed for saying nothing.
    silent_until: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes it has sent, counted up to the preface's length.
    said: usize,
    registry: Arc<Connections>,
    ended: bool,
}

impl Held {
    fn new(stream: TcpStream, connection: Connection, registry: Arc<Connections>, first_bytes: Duration) -> Self {
        let eviction = Box::pin(connection.eviction());
        let silent_until = Some(Box::pin(tokio::time::sleep(first_bytes)));
        Self { stream, connection, eviction, silent_until, said: 0, registry, ended: false }
    }
}

/// The accepted streams of `listener` the registry admits; the others are closed at once. A held
/// one that sends nothing within `first_bytes` is closed.
pub fn incoming(
    listener: TcpListener,
    connections: Arc<Connections>,
    first_bytes: Duration,
) -> impl Stream<Item = std::io::Result<Held>> {
    TcpListenerStream::new(listener).filter_map(move |accepted| {
        let connections = Arc::clone(&connections);
        async move {
            match accepted {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    // Not admitted: dropped here, which closes it.
                    let held = connections.admit();
                    held.map(|connection| Ok(Held::new(stream, connection, Arc::clone(&connections), first_bytes)))
                }
                Err(error) => {
                    // Out of file descriptors, or the peer gave up: wait instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    None
                }
            }
        }
    })
}

impl AsyncRead for Held {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.ended || self.eviction.as_mut().poll(cx).is_ready() {
            // Evicted (or closed for silence): the connection reads as closed, and the server ends it.
            self.ended = true;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read_now = buf.filled().len() - before;
        if read_now > 0 {
            self.connection.touch();
            self.said = (self.said + read_now).min(PREFACE);
            if self.said == PREFACE {
                self.silent_until = None;
            }
        } else if read.is_pending()
            && let Some(silent) = self.silent_until.as_mut()
            && silent.as_mut().poll(cx).is_ready()
        {
            self.ended = true;
            self.registry.closed(Closed::Idle);
            return Poll::Ready(Ok(()));
        }
        read
    }
}

impl AsyncWrite for Held {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Connected for Held {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}
