//! A WebSocket echo upstream that reports what reached it: every opening handshake's headers
//! (so a test can prove a Bearer token arrived and a cookie did not), how many connections were
//! made at all, and the close codes the BFF sent it. It echoes text and binary messages, offers
//! the subprotocols `chat.v2` and `chat.v1`, refuses every handshake below `/refuse` (403), and obeys two text commands: `close:<code>` closes
//! with that code, `big:<n>` answers with a text of `n` bytes. Plus the browser-side client the
//! tests use to reach the BFF.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, protocol::CloseFrame};

/// What the upstream saw.
#[derive(Default)]
struct Log {
    handshakes: Vec<Vec<(String, String)>>,
    closes: Vec<u16>,
}

/// A running WebSocket echo upstream.
#[derive(Clone)]
pub struct WsUpstream {
    /// Its base URL (`http://…`, as a route's `upstream`).
    pub url: String,
    log: Arc<Mutex<Log>>,
}

async fn serve(req: HttpRequest, body: web::Payload, log: web::Data<Arc<Mutex<Log>>>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    log.lock().unwrap().handshakes.push(headers);
    if req.path().starts_with("/refuse") {
        return HttpResponse::Forbidden().body("no sockets here");
    }
    let Ok((res, mut session, stream)) = actix_ws::handle_with_protocols(&req, body, &["chat.v2", "chat.v1"])
    else {
        return HttpResponse::Ok().body("plain request");
    };
    let mut stream = stream.max_frame_size(16 * 1024 * 1024);
    let log = log.get_ref().clone();
    actix_web::rt::spawn(async move {
        while let Some(Ok(msg)) = stream.recv().await {
            let sent = match msg {
                actix_ws::Message::Text(t) => {
                    if let Some(code) = t.strip_prefix("close:").and_then(|c| c.parse::<u16>().ok()) {
                        let reason = actix_ws::CloseReason { code: code.into(), description: None };
                        let _ = session.close(Some(reason)).await;
                        return;
                    }
                    if let Some(n) = t.strip_prefix("big:").and_then(|n| n.parse::<usize>().ok()) {
                        session.text("x".repeat(n)).await
                    } else {
                        session.text(t).await
                    }
                }
                actix_ws::Message::Binary(b) => session.binary(b).await,
                actix_ws::Message::Ping(p) => session.pong(&p).await,
                actix_ws::Message::Close(reason) => {
                    log.lock().unwrap().closes.push(reason.map_or(1005, |r| r.code.into()));
                    let _ = session.close(None).await;
                    return;
                }
                _ => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    res
}

impl WsUpstream {
    /// Starts it on a free port.
    pub fn start() -> WsUpstream {
        let log: Arc<Mutex<Log>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let app_log = log.clone();
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(app_log.clone())).default_service(web::to(serve))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        WsUpstream { url, log }
    }

    /// The headers of every request that reached it (lower-case names), in order.
    pub fn handshakes(&self) -> Vec<Vec<(String, String)>> {
        self.log.lock().unwrap().handshakes.clone()
    }

    /// Every value of header `name` in the last request that reached it.
    pub fn last(&self, name: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        let last = log.handshakes.last().expect("the upstream was reached");
        last.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    /// How many requests reached it.
    pub fn hits(&self) -> usize {
        self.log.lock().unwrap().handshakes.len()
    }

    /// The close codes it received.
    pub fn closes(&self) -> Vec<u16> {
        self.log.lock().unwrap().closes.clone()
    }

    /// Waits up to 3 s for a close frame to have reached it.
    pub async fn wait_for_close(&self) -> Vec<u16> {
        for _ in 0..60 {
            if !self.closes().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.closes()
    }
}

/// A client's socket (the browser's side of the BFF).
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a handshake with the BFF failed: the status and JSON `error` of its answer.
#[derive(Debug)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl Refused {
    /// The `error` code of the JSON body.
    pub fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        v["error"].as_str().unwrap_or_default().to_string()
    }
}

/// Opens a WebSocket to `http_url` (turned into `ws://`) as a browser would: the session
/// cookie when given, `Origin` when given, the subprotocols offered. The negotiated
/// subprotocol comes back with the socket.
pub async fn connect(
    http_url: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    protocols: &[&str],
) -> Result<(Ws, Option<String>), Refused> {
    let url = http_url.replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().expect("a ws URL");
    let headers = req.headers_mut();
    if let Some(c) = cookie {
        headers.insert("cookie", format!("{}={c}", cloakroom::bff::session::SESSION_COOKIE).parse().unwrap());
    }
    if let Some(o) = origin {
        headers.insert("origin", o.parse().unwrap());
    }
    if !protocols.is_empty() {
        headers.insert("sec-websocket-protocol", protocols.join(", ").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, res)) => {
            let protocol =
                res.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_string());
            Ok((ws, protocol))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(Refused {
            status: res.status().as_u16(),
            body: String::from_utf8_lossy(res.body().as_deref().unwrap_or_default()).into_owned(),
        }),
        Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
    }
}

/// The next data message (pings and pongs skipped), within 5 s.
pub async fn next_message(ws: &mut Ws) -> Message {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .expect("a frame");
        if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return msg;
        }
    }
}

/// Waits up to `within` for the socket to be closed, returning the close code (1006 when the
/// connection ended without a close frame) and how long it took.
pub async fn closed_within(ws: &mut Ws, within: Duration) -> (u16, Duration) {
    let started = std::time::Instant::now();
    let code = tokio::time::timeout(within, async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map_or(1005, |f: CloseFrame| f.code.into()),
                Ok(_) => continue,
                Err(_) => return 1006,
            }
        }
        1006
    })
    .await
    .unwrap_or_else(|_| panic!("the socket was not closed within {within:?}"));
    (code, started.elapsed())
}

/// Sends a text message.
pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}
