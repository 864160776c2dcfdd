//! Streaming through the proxy: server-sent events reach the browser event by event while the
//! upstream is still sending, over a route an `EventSource` can use (`csrf = "unsafe-methods"`:
//! it cannot send `X-CSRF`); an upstream that pauses longer than `upstream_idle_timeout_secs`
//! between two chunks has its response ended. The upstream is a small stand-in that sends one
//! event, then waits for the test to release the next one (a real event source cannot be made to
//! pause on cue).

mod common;

use common::Browser;
use common::attack::{AttackStack, SESSION_COOKIE};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// An event-stream upstream: each request gets `data: one`, then `data: two` once the test
/// calls `release`, then the end of the stream.
struct EventSourceUpstream {
    url: String,
    release: Arc<Notify>,
    authorization: Arc<Mutex<Vec<String>>>,
}

impl EventSourceUpstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let release = Arc::new(Notify::new());
        let authorization: Arc<Mutex<Vec<String>>> = Arc::default();
        let (notify, seen) = (release.clone(), authorization.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let (notify, seen) = (notify.clone(), seen.clone());
                tokio::spawn(async move {
                    let head = read_head(&mut stream).await;
                    let auth = head.lines().find_map(|l| {
                        l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: "))
                    });
                    seen.lock().unwrap().push(auth.unwrap_or("").to_string());
                    let start = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
                    let _ = stream.write_all(start.as_bytes()).await;
                    let _ = stream.write_all(chunk("data: one\n\n").as_bytes()).await;
                    notify.notified().await;
                    let _ = stream.write_all(chunk("data: two\n\n").as_bytes()).await;
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        Self { url, release, authorization }
    }
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

async fn stack_with_events(upstream: &EventSourceUpstream, idle_secs: u64) -> AttackStack {
    let url = upstream.url.clone();
    AttackStack::start(move |cfg| {
        let mut routes = cfg.doc["bff"]["routes"].as_array().cloned().unwrap_or_default();
        routes.push(json!({ "path": "/events", "upstream": url, "csrf": "unsafe-methods" }));
        cfg.set("bff.routes", Value::Array(routes)).set("bff.upstream_idle_timeout_secs", json!(idle_secs))
    })
    .await
}

/// Opens the stream as `EventSource` does: a same-origin `GET` with `Accept: text/event-stream`,
/// the session cookie and no custom header; the response is read as it streams.
async fn open_event_stream(browser: &Browser, stack: &AttackStack) -> reqwest::Response {
    let cookie = browser.session_cookie().expect("signed in");
    reqwest::Client::new()
        .get(stack.bff("/events/feed"))
        .header("Accept", "text/event-stream")
        .header("Sec-Fetch-Mode", "cors")
        .header("Sec-Fetch-Site", "same-origin")
        .header("Cookie", format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .expect("the BFF answers")
}

#[tokio::test]
async fn server_sent_events_reach_the_browser_one_by_one_while_the_upstream_is_still_sending() {
    let upstream = EventSourceUpstream::start().await;
    let stack = stack_with_events(&upstream, 60).await;
    let browser = stack.login().await;

    let mut res = open_event_stream(&browser, &stack).await;
    let first = tokio::time::timeout(Duration::from_secs(5), res.chunk()).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let first =
        first.expect("the first event arrives before the upstream sends the second").unwrap().unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    upstream.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(5), res.bytes()).await.unwrap().unwrap();
    assert_eq!(&rest[..], b"data: two\n\n");
    let auth = upstream.authorization.lock().unwrap().clone();
    assert!(
        auth.len() == 1 && auth[0].starts_with("Bearer "),
        "the stream carries the user's token: {auth:?}"
    );
}

#[tokio::test]
async fn an_upstream_that_pauses_longer_than_the_idle_timeout_has_its_response_ended() {
    let upstream = EventSourceUpstream::start().await;
    let stack = stack_with_events(&upstream, 1).await;
    let browser = stack.login().await;

    let mut res = open_event_stream(&browser, &stack).await;
    let first = res.chunk().await.unwrap().unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(10), res.bytes()).await;

    assert_eq!(&first[..], b"data: one\n\n");
    let rest = rest.expect("the BFF ends the paused response itself, long before the test gives up");
    assert!(rest.is_err() || rest.is_ok_and(|b| b.is_empty()), "no second event: the upstream never sent it");
    stack.assert_session_alive(&browser).await;
}
