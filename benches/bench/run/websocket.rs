//! The WebSocket row: messages per second echoed by a tokio-tungstenite echo server, reached
//! directly and through cloakroom (`websocket = true` route, session cookie, own `Origin`),
//! in the same run, interleaved. Each socket sends a 32-byte text and waits for its echo before
//! the next one (one message in flight per socket), so the figure is round trips per second.

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How hard and how long.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Open sockets.
    pub sockets: usize,
    /// Seconds of warm-up per path.
    pub warmup_secs: u64,
    /// Seconds per measured run.
    pub secs: u64,
    /// Turns per path.
    pub rounds: u32,
}

/// Messages per second over all measured runs, per path.
#[derive(Debug, Clone)]
pub struct WsResult {
    /// The plan it ran.
    pub plan: Plan,
    /// Straight to the echo server.
    pub direct: f64,
    /// Through cloakroom.
    pub cloakroom: f64,
}

/// Starts the echo server on a free loopback port; returns its `http://` base URL.
pub async fn start_echo() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

/// One way to reach the echo server: its `ws://` URL and the handshake's extra headers.
pub struct Target {
    /// `ws://…`.
    pub url: String,
    /// Headers (cookie, origin) sent at the handshake.
    pub headers: Vec<(String, String)>,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(target: &Target) -> Result<Ws> {
    let mut req = target.url.as_str().into_client_request()?;
    for (name, value) in &target.headers {
        req.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes())?, value.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await.context("WebSocket handshake")?;
    Ok(ws)
}

/// `plan.sockets` sockets echoing for `secs`; the messages echoed per second.
async fn run_once(target: &Target, sockets: usize, secs: u64) -> Result<f64> {
    let mut opened = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        opened.push(open(target).await?);
    }
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|mut ws| {
            let count = count.clone();
            tokio::spawn(async move {
                let payload = "x".repeat(32);
                while Instant::now() < until {
                    ws.send(Message::text(payload.as_str())).await?;
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => count.fetch_add(1, Ordering::Relaxed),
                        other => bail!("no echo: {other:?}"),
                    };
                }
                let _ = ws.close(None).await;
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Warm-up, then the two paths in turn for `plan.rounds` rounds.
pub async fn measure(direct: &Target, through: &Target, plan: Plan) -> Result<WsResult> {
    for target in [direct, through] {
        run_once(target, plan.sockets, plan.warmup_secs).await?;
    }
    let (mut d, mut c) = (Vec::new(), Vec::new());
    for round in 1..=plan.rounds {
        for (label, target, out) in [("direct", direct, &mut d), ("cloakroom", through, &mut c)] {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mps = run_once(target, plan.sockets, plan.secs).await?;
            println!("  round {round}/{}: WebSocket echo {label:<10} {mps:>9.0} messages/s", plan.rounds);
            out.push(mps);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(WsResult { plan, direct: mean(&d), cloakroom: mean(&c) })
}
