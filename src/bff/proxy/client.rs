//! The HTTP client for upstream calls: hyper-util's pooled client, used directly. reqwest (kept
//! for the provider) wraps that same client in redirect and retry layers, re-parses the URL
//! and boxes every future, which cost about a tenth of a proxied request's CPU; the proxy needs
//! none of it (it never follows redirects, it retries on its own terms).
//!
//! One client per actix worker ([`WorkerClient`]): a worker is a single-threaded runtime, and a
//! pooled connection is driven by a task on the runtime that opened it. With one client shared
//! by all workers, a request handled by one worker often rode a connection owned by another, and
//! every request and response crossed threads (a wake-up through the kernel each way).

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyDataStream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Errors a request body can fail with.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request body sent upstream.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BodyError>;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled upstream client.
pub type UpstreamHttp = Client<Connector, UpstreamBody>;

/// The upstream clients of one worker.
#[derive(Clone)]
pub struct WorkerClient {
    /// Pooled, keep-alive.
    pub(super) pooled: UpstreamHttp,
    /// Keeps no idle connection: for the one retry on a fresh connection, which must not pick
    /// another stale one.
    pub(super) fresh: UpstreamHttp,
}

impl WorkerClient {
    /// Builds the clients. Idle pooled connections close after `pool_idle_secs`, before the
    /// upstream's own keep-alive closes them (actix closes after 5 s, nginx after 75 s).
    pub fn new(pool_idle_secs: u64) -> Self {
        let build = |max_idle: usize| {
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(pool_idle_secs))
                .pool_max_idle_per_host(max_idle)
                .build(connector())
        };
        Self { pooled: build(usize::MAX), fresh: build(0) }
    }
}

/// TCP with Nagle off and a bounded connect, TLS (rustls, Mozilla's roots) for `https`
/// upstreams, HTTP/1.1.
fn connector() -> Connector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// No body.
pub fn empty_body() -> UpstreamBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// An in-memory body.
pub fn full_body(bytes: Bytes) -> UpstreamBody {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// A streamed body.
pub fn stream_body(
    stream: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> UpstreamBody {
    use futures_util::TryStreamExt;
    StreamBody::new(stream.map_ok(Frame::data).map_err(BodyError::from)).boxed_unsync()
}

/// An upstream's answer, its body not read yet.
pub struct UpstreamResponse(hyper::Response<Incoming>);

impl UpstreamResponse {
    pub(super) fn new(res: hyper::Response<Incoming>) -> Self {
        Self(res)
    }

    /// The status.
    pub fn status(&self) -> http::StatusCode {
        self.0.status()
    }

    /// The headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers()
    }

    /// The body as a stream of chunks, passed on as they arrive; it ends with an error when
    /// no chunk came for `idle` (the response head's own deadline is the caller's).
    pub fn into_stream(self, idle: Duration) -> IdleLimited<BodyDataStream<Incoming>> {
        IdleLimited::new(self.0.into_body().into_data_stream(), idle)
    }

    /// The body parsed as JSON, read up to `limit` bytes; `None` when it is longer, cut short
    /// or not that JSON.
    pub async fn json<T: serde::de::DeserializeOwned>(self, limit: usize) -> Option<T> {
        let bytes = Limited::new(self.0.into_body(), limit).collect().await.ok()?.to_bytes();
        serde_json::from_slice(&bytes).ok()
    }
}

/// A body stream cut off when it pauses longer than a limit between two chunks. The timer is
/// made only when the stream first has to wait (a small body that arrives with its head needs
/// none), and set again after every chunk.
pub struct IdleLimited<S> {
    inner: S,
    idle: Duration,
    /// The deadline while the stream waits; `None` before the first wait.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A chunk came since the timer was set: set it again before waiting.
    moved: bool,
    done: bool,
}

impl<S> IdleLimited<S> {
    fn new(inner: S, idle: Duration) -> Self {
        Self { inner, idle, sleep: None, moved: false, done: false }
    }
}

impl<S> Stream for IdleLimited<S>
where
    S: Stream<Item = Result<Bytes, hyper::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(item)) => {
                this.moved = true;
                Poll::Ready(Some(item.map_err(std::io::Error::other)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.idle;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if std::mem::take(&mut this.moved) {
                    sleep.as_mut().reset(deadline);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        tracing::info!(
                            idle_secs = this.idle.as_secs(),
                            "an upstream response paused too long; ended"
                        );
                        Poll::Ready(Some(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the upstream response paused too long",
                        ))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// The error and its causes on one line (hyper's own message is a category: "client error
/// (Connect)"); upstream errors carry no URL or credential.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// True when the error (or a cause) is an I/O timeout: a connect that did not complete.
pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            return true;
        }
        current = err.source();
    }
    false
}
