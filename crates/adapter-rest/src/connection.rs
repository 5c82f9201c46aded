//! Serving HTTP/1.1 connections with bounds a client cannot outlast: the accept loop holds
//! connections in the registry (`limits.max_connections`, the longest-idle closed first to make
//! room, a 503 when every one is busy), headers and idle keep-alive are bounded by
//! `limits.header_timeout_secs`, and a request body must arrive within
//! `limits.body_timeout_secs` ([`TimedBody`]; the reply is then 408 and the connection closes).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aki_wiring::{Busy, Closed, Connection, Connections};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The bounds of one server's connections.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Request headers (and, on an idle keep-alive connection, the next request's) must arrive
    /// within this.
    pub header: Duration,
    /// A request body must arrive within this from its headers.
    pub body: Duration,
}

/// The answer to a connection beyond the limit when every held connection is busy.
const REFUSED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n";

/// Accepts connections on `listener` and serves `app` on each until `stopping`, then lets the
/// connections finish their requests and returns.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    connections: Arc<Connections>,
    bounds: Bounds,
    stopping: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let mut open = JoinSet::new();
    tokio::pin!(stopping);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = open.join_next(), if !open.is_empty() => continue,
            () = &mut stopping => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, or the peer gave up: wait instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(connection) = connections.admit() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        open.spawn(serve_one(stream, app.clone(), connection, Arc::clone(&connections), bounds, stopped.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    while open.join_next().await.is_some() {}
    Ok(())
}

/// One connection: hyper's HTTP/1.1 with the header timeout, each request marking it busy and
/// its body under the deadline; it closes early (after its request in flight) when the registry
/// needs its place or the server stops.
async fn serve_one(
    stream: TcpStream,
    app: Router,
    connection: Connection,
    registry: Arc<Connections>,
    bounds: Bounds,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let connection = Arc::new(connection);
    let on_request = Arc::clone(&connection);
    let counted = Arc::clone(&registry);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        // Busy from the end of the request's body (a client still trickling one can be closed
        // to make room) until its response has been written.
        let busy = BusySlot::default();
        if hyper::body::Body::is_end_stream(request.body()) {
            busy.fill(&on_request);
        }
        let (app, registry, on_body_end) = (app.clone(), Arc::clone(&counted), Arc::clone(&on_request));
        async move {
            let slot = busy.clone();
            let request = request.map(|body| Body::new(TimedBody::new(body, bounds.body, on_body_end, slot)));
            let mut response = app.oneshot(request).await.unwrap_or_else(|never: Infallible| match never {});
            if response.status() == StatusCode::REQUEST_TIMEOUT {
                registry.closed(Closed::BodyTimeout);
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<Response<Body>, Infallible>(response.map(|body| Body::new(Holding { inner: body, _busy: busy })))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(bounds.header).keep_alive(true);
    let served = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(served);
    let outcome = tokio::select! {
        outcome = served.as_mut() => Some(outcome),
        () = connection.evicted() => {
            // The request in flight, if any, is answered first; a client that does not read
            // its answer holds the place no longer than the header bound.
            served.as_mut().graceful_shutdown();
            tokio::time::timeout(bounds.header, served).await.ok()
        }
        _ = async { stopping.wait_for(|stop| *stop).await.map(drop) } => {
            served.as_mut().graceful_shutdown();
            Some(served.await)
        }
    };
    if let Some(Err(error)) = outcome
        && error.is_timeout()
    {
        registry.closed(Closed::HeaderTimeout);
    }
}

/// Where a request's busy mark lives: filled when its body has arrived, held by its response
/// body until that has been written.
#[derive(Clone, Default)]
struct BusySlot(Arc<std::sync::Mutex<Option<Busy>>>);

impl BusySlot {
    fn fill(&self, connection: &Connection) {
        let mut slot = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(connection.busy());
        }
    }
}

/// A response body that keeps its request's busy mark until it is dropped (written or
/// abandoned).
struct Holding {
    inner: Body,
    _busy: BusySlot,
}

impl hyper::body::Body for Holding {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Answers a connection that cannot be held with a 503 and closes it, reading (and dropping)
/// what the client sent for up to a second first, so the close does not reset the answer away.
async fn refuse(mut stream: TcpStream) {
    let linger = async {
        stream.write_all(REFUSED).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), linger).await;
}

/// The error a request body gives once its deadline passed; the body extractor answers 408.
#[derive(Debug)]
pub struct BodyTimedOut(pub Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body did not arrive within {} s", self.0.as_secs())
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body that fails with [`BodyTimedOut`] once `bound` has passed since its headers,
/// and marks its connection busy once it has all arrived.
pub struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    bound: Duration,
    connection: Arc<Connection>,
    busy: BusySlot,
}

impl TimedBody {
    fn new(inner: Incoming, bound: Duration, connection: Arc<Connection>, busy: BusySlot) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep(bound)), bound, connection, busy }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            if frame.is_none() || self.inner.is_end_stream() {
                self.busy.fill(&self.connection);
            }
            return Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(self.bound))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (a body-reading failure, through its sources) is a body deadline.
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        current = error.source();
    }
    false
}
