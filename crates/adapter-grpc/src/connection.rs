//! Connections of the gRPC server held in the registry (`limits.max_connections`): each accepted
//! TCP stream is admitted (the connection that carried no bytes longest is closed to make room)
//! or closed at once, and a held one reads as ended once the registry evicts it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aki_wiring::{Connection, Connections};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A TCP stream holding its place in the registry until dropped.
pub struct Held {
    stream: TcpStream,
    connection: Connection,
    eviction: Pin<Box<tokio::sync::futures::OwnedNotified>>,
    evicted: bool,
}

impl Held {
    fn new(stream: TcpStream, connection: Connection) -> Self {
        let eviction = Box::pin(connection.eviction());
        Self { stream, connection, eviction, evicted: false }
    }
}

/// The accepted streams of `listener` the registry admits; the others are closed at once.
pub fn incoming(listener: TcpListener, connections: Arc<Connections>) -> impl Stream<Item = std::io::Result<Held>> {
    TcpListenerStream::new(listener).filter_map(move |accepted| {
        let connections = Arc::clone(&connections);
        async move {
            match accepted {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    // Not admitted: dropped here, which closes it.
                    connections.admit().map(|connection| Ok(Held::new(stream, connection)))
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
        if self.evicted || self.eviction.as_mut().poll(cx).is_ready() {
            // Evicted: the connection reads as closed, and the server ends it.
            self.evicted = true;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.connection.touch();
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
