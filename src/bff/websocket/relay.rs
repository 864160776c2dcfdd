//! One relayed WebSocket: frames both ways until one side closes, the socket idles, a message
//! is over the limit or the session ends. Backpressure: a frame read from one side is handed to
//! the other (whose sink waits until it can take it) before the next one is read, so no queue
//! grows without bound; the browser side's outgoing channel holds a few frames at most.
//!
//! | what ends it | the browser gets | the upstream gets |
//! |---|---|---|
//! | the browser closes (or goes) | its close echoed | the browser's close code |
//! | the upstream closes (or goes) | the upstream's close code | its close acknowledged |
//! | a message over `websocket_max_message_bytes` | 1009 | 1009 |
//! | no frame either way for `websocket_idle_timeout_secs` | 1001 | 1001 |
//! | the session ended or expired | 1008 | 1008 |
//! | a protocol or connection error | 1011 | 1011 |

use super::registry::{Registration, SocketRegistry};
use crate::bff::metrics::BffMetrics;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as UpstreamError, Message, Utf8Bytes};

/// The upstream's side of a relayed socket.
pub type UpstreamSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type UpstreamSink = SplitSink<UpstreamSocket, Message>;

/// `bff.websocket_max_message_bytes` and `bff.websocket_idle_timeout_secs`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message either way.
    pub max_message_bytes: usize,
    /// Longest time without a frame either way.
    pub idle: Duration,
}

/// The session a socket belongs to: its keyed hash and its deadline (Unix seconds, the
/// earlier of its idle and absolute expiry).
#[derive(Debug, Clone)]
pub struct SessionWatch {
    /// The keyed hash of the session id.
    pub hashed: String,
    /// When to read the session again.
    pub deadline: i64,
}

/// Why a relay ended.
#[derive(Debug)]
enum End {
    Browser(Option<CloseReason>),
    Upstream(Option<CloseFrame>),
    SessionEnded,
    Idle,
    TooLarge,
    Error,
}

impl End {
    /// The close code both sides get (for a peer's close: the code the other side gets).
    fn code(&self) -> u16 {
        match self {
            End::Browser(reason) => reason.as_ref().map_or(1000, |r| r.code.into()),
            End::Upstream(frame) => frame.as_ref().map_or(1000, |f| f.code.into()),
            End::SessionEnded => 1008,
            End::Idle => 1001,
            End::TooLarge => 1009,
            End::Error => 1011,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            End::Browser(_) => "browser",
            End::Upstream(_) => "upstream",
            End::SessionEnded => "session_ended",
            End::Idle => "idle",
            End::TooLarge => "too_large",
            End::Error => "error",
        }
    }

    fn description(&self) -> &'static str {
        match self {
            End::SessionEnded => "session ended",
            End::Idle => "idle timeout",
            End::TooLarge => "message too big",
            End::Error => "relay error",
            End::Browser(_) | End::Upstream(_) => "",
        }
    }
}

/// A code that may be sent in a close frame (RFC 6455 §7.4.1: 1005, 1006 and 1015 may not);
/// anything else becomes 1000.
fn sendable(code: u16) -> u16 {
    match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => code,
        _ => 1000,
    }
}

/// The two sides and what watches them.
pub struct Relay {
    /// The browser's outgoing frames.
    pub browser_tx: actix_ws::Session,
    /// The browser's incoming messages (continuations put together, up to the limit).
    pub browser_rx: AggregatedMessageStream,
    /// The upstream's socket, connected.
    pub upstream: UpstreamSocket,
    /// The limits.
    pub limits: Limits,
    /// The session, for a socket that has one.
    pub session: Option<SessionWatch>,
    /// Where sockets are registered by session.
    pub registry: SocketRegistry,
    /// The open-socket gauge and the close counter.
    pub metrics: Arc<BffMetrics>,
}

/// What the relay's loop watches besides the two sides.
struct Watch {
    registration: Option<Registration>,
    session: Option<SessionWatch>,
    registry: SocketRegistry,
    /// When a frame last slid the session (`bff.websocket_slides_session`).
    last_slide: Instant,
}

/// Within this much of the session's deadline, frames slide it more often than once per slide
/// interval, so that the write lands before the deadline (expiry is judged in whole seconds).
const NEAR_DEADLINE_MS: i64 = 2000;
/// How often frames slide the session near its deadline.
const NEAR_DEADLINE_EVERY: Duration = Duration::from_millis(500);

impl Watch {
    /// A frame went either way: slides the session's idle expiry when sockets do that, at most
    /// once per slide interval.
    fn activity(&mut self) {
        let (Some(session), Some(every)) = (&self.session, self.registry.slide_interval()) else {
            return;
        };
        let since = self.last_slide.elapsed();
        let near = session.deadline.saturating_mul(1000) - crate::clock::now_millis() < NEAR_DEADLINE_MS;
        if since >= every || (near && since >= NEAR_DEADLINE_EVERY) {
            self.registry.slide(&session.hashed);
            self.last_slide = Instant::now();
        }
    }

    /// Resolves when the registry says the session ended (never for a socket without one).
    async fn ended(&mut self) {
        let ended = match &mut self.registration {
            Some(r) => r.ended.wait_for(|ended| *ended).await.is_ok(),
            None => false,
        };
        if !ended {
            std::future::pending::<()>().await;
        }
    }

    /// At the session's deadline: `true` when it is over; else the next deadline is kept. A
    /// store failure is no end: the session is read again a second later.
    async fn session_over(&mut self) -> bool {
        let Some(session) = &mut self.session else { return false };
        match self.registry.deadline(&session.hashed).await {
            Ok(None) => true,
            Ok(Some(deadline)) => {
                session.deadline = deadline;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "a WebSocket's session could not be re-read");
                session.deadline = crate::clock::now() + 1;
                false
            }
        }
    }
}

/// One socket counted in `cloakroom_websocket_open` for as long as it lives, even when the
/// relay's task is dropped (the worker stopping).
struct OpenSocket(prometheus::IntGauge);

impl OpenSocket {
    fn count(metrics: &BffMetrics) -> Self {
        metrics.websocket_open.inc();
        Self(metrics.websocket_open.clone())
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Sleeps until Unix second `deadline` (never, without one).
async fn until(deadline: Option<i64>) {
    let Some(deadline) = deadline else { return std::future::pending().await };
    let wait = (deadline.saturating_mul(1000) - crate::clock::now_millis()).max(0);
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

/// Relays until either side or a watch ends it, closes both sides, and counts the close.
pub async fn run(relay: Relay) {
    let Relay { mut browser_tx, mut browser_rx, upstream, limits, session, registry, metrics } = relay;
    let open = OpenSocket::count(&metrics);
    let registration = session.as_ref().map(|s| registry.register(&s.hashed));
    let mut watch = Watch { registration, session, registry, last_slide: Instant::now() };
    let (mut up_tx, mut up_rx) = upstream.split();
    let mut idle_at = Instant::now() + limits.idle;
    let end = loop {
        let deadline = watch.session.as_ref().map(|s| s.deadline);
        let end = tokio::select! {
            biased;
            () = watch.ended() => Some(End::SessionEnded),
            () = tokio::time::sleep_until(idle_at) => Some(End::Idle),
            () = until(deadline) => watch.session_over().await.then_some(End::SessionEnded),
            m = browser_rx.recv() => {
                idle_at = Instant::now() + limits.idle;
                watch.activity();
                from_browser(m, &mut up_tx, &mut watch, limits.idle).await
            }
            m = up_rx.next() => {
                idle_at = Instant::now() + limits.idle;
                watch.activity();
                from_upstream(m, &mut browser_tx, &mut watch, limits.idle).await
            }
        };
        if let Some(end) = end {
            break end;
        }
    };
    drop(open);
    metrics.websocket_closes.with_label_values(&[end.label()]).inc();
    close_both(&end, browser_tx, up_tx, up_rx).await;
}

/// Waits for `send` (a side's sink taking a frame), but not past the idle timeout or the
/// session's end.
async fn bounded<E>(
    send: impl Future<Output = Result<(), E>>,
    watch: &mut Watch,
    idle: Duration,
) -> Option<End> {
    tokio::select! {
        sent = send => sent.err().map(|_| End::Error),
        () = watch.ended() => Some(End::SessionEnded),
        () = tokio::time::sleep(idle) => Some(End::Idle),
    }
}

/// One item from the browser, handed to the upstream.
async fn from_browser(
    item: Option<Result<AggregatedMessage, ProtocolError>>,
    up_tx: &mut UpstreamSink,
    watch: &mut Watch,
    idle: Duration,
) -> Option<End> {
    let msg = match item {
        None => return Some(End::Browser(None)),
        Some(Err(ProtocolError::Overflow)) => return Some(End::TooLarge),
        // The continuation limit of `AggregatedMessageStream` is an I/O error of its own.
        Some(Err(ProtocolError::Io(e))) if e.to_string().contains("maximum continuation size") => {
            return Some(End::TooLarge);
        }
        Some(Err(_)) => return Some(End::Error),
        Some(Ok(msg)) => msg,
    };
    let msg = match msg {
        AggregatedMessage::Text(text) => match Utf8Bytes::try_from(text.into_bytes()) {
            Ok(text) => Message::Text(text),
            Err(_) => return Some(End::Error),
        },
        AggregatedMessage::Binary(bytes) => Message::Binary(bytes),
        AggregatedMessage::Ping(bytes) => Message::Ping(bytes),
        AggregatedMessage::Pong(bytes) => Message::Pong(bytes),
        AggregatedMessage::Close(reason) => return Some(End::Browser(reason)),
    };
    bounded(up_tx.send(msg), watch, idle).await
}

/// One item from the upstream, handed to the browser.
async fn from_upstream(
    item: Option<Result<Message, UpstreamError>>,
    browser_tx: &mut actix_ws::Session,
    watch: &mut Watch,
    idle: Duration,
) -> Option<End> {
    let msg = match item {
        None => return Some(End::Upstream(None)),
        Some(Err(UpstreamError::Capacity(_))) => return Some(End::TooLarge),
        Some(Err(_)) => return Some(End::Error),
        Some(Ok(msg)) => msg,
    };
    match msg {
        Message::Text(text) => bounded(browser_tx.text(text.as_str()), watch, idle).await,
        Message::Binary(bytes) => bounded(browser_tx.binary(bytes), watch, idle).await,
        Message::Ping(bytes) => bounded(browser_tx.ping(&bytes), watch, idle).await,
        Message::Pong(bytes) => bounded(browser_tx.pong(&bytes), watch, idle).await,
        Message::Close(frame) => Some(End::Upstream(frame)),
        Message::Frame(_) => None,
    }
}

/// Closes both sides as `end` says (see the module's table), waiting at most a second for
/// the upstream to acknowledge.
async fn close_both(
    end: &End,
    browser_tx: actix_ws::Session,
    mut up_tx: UpstreamSink,
    mut up_rx: SplitStream<UpstreamSocket>,
) {
    let code = sendable(end.code());
    let (browser_reason, upstream_frame) = match end {
        End::Browser(reason) => {
            (reason.clone(), reason.as_ref().map(|r| frame(code, r.description.as_deref())))
        }
        End::Upstream(frame) => (
            frame
                .as_ref()
                .map(|f| CloseReason { code: code.into(), description: Some(f.reason.to_string()) }),
            None,
        ),
        other => (
            Some(CloseReason { code: code.into(), description: Some(other.description().into()) }),
            Some(frame(code, Some(other.description()))),
        ),
    };
    let _ = browser_tx.close(browser_reason).await;
    let acknowledged = async {
        if !matches!(end, End::Upstream(_)) {
            let _ = up_tx.send(Message::Close(upstream_frame)).await;
        }
        let _ = up_tx.close().await;
        while let Some(Ok(_)) = up_rx.next().await {}
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), acknowledged).await;
}

fn frame(code: u16, reason: Option<&str>) -> CloseFrame {
    CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason.unwrap_or_default()) }
}
