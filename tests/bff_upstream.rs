//! The BFF's pooled upstream connections: a keep-alive connection the upstream closes just as
//! the next request arrives is cured by one retry on a fresh connection, for idempotent
//! requests only. A real upstream cannot be made to close at that instant on demand, so a small
//! stub upstream does.

mod common;

use common::apps::metrics;
use common::{Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests the stub received, by `METHOD path`.
type Seen = Arc<Mutex<HashMap<String, usize>>>;

/// A stub upstream: on each connection it answers the first request with a keep-alive `200`,
/// then reads the next request on that connection and closes it without answering — the
/// upstream's keep-alive ending right as a reused connection carries a request.
async fn stub_upstream_closing_reused_connections() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen: Seen = Arc::default();
    let counts = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let counts = counts.clone();
            tokio::spawn(async move {
                let Some(first) = read_head(&mut stream).await else { return };
                *counts.lock().unwrap().entry(first).or_default() += 1;
                let body = "{\"ok\":true}";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let Some(second) = read_head(&mut stream).await else { return };
                *counts.lock().unwrap().entry(second).or_default() += 1;
                drop(stream);
            });
        }
    });
    (url, seen)
}

/// Reads one request head (the tests send no bodies) and returns `METHOD path`.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head).lines().next()?.to_string();
    let mut parts = line.split(' ');
    Some(format!("{} {}", parts.next()?, parts.next()?))
}

async fn stack_with_stub_route(upstream: &str) -> Stack {
    let cfg = StackConfig::new();
    let rs = cfg.doc["resource_server"]["audience"].clone();
    let cfg = cfg.set(
        "bff.routes",
        json!([{ "path": "/api", "upstream": rs }, { "path": "/stub", "upstream": upstream }]),
    );
    Stack::start_ready(cfg).await
}

/// How often the stub saw `method` on a path ending in `suffix` (the BFF may keep or strip the
/// route prefix; the test does not depend on which).
fn count(seen: &Seen, method: &str, suffix: &str) -> usize {
    let seen = seen.lock().unwrap();
    seen.iter()
        .filter(|(k, _)| k.starts_with(&format!("{method} ")) && k.ends_with(suffix))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn a_get_on_a_reused_connection_the_stub_upstream_closes_is_retried_once_on_a_fresh_one_and_succeeds() {
    let (upstream, seen) = stub_upstream_closing_reused_connections().await;
    let stack = stack_with_stub_route(&upstream).await;
    let browser = stack.login_as(USER).await;
    let warm = stack.api_get(&browser, "/stub/warm").await;
    assert_eq!(warm.status, 200, "{}", warm.body);

    let page = stack.api_get(&browser, "/stub/notes").await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["ok"], true);
    assert_eq!(
        count(&seen, "GET", "/notes"),
        2,
        "closed on the reused connection, then answered on a fresh one"
    );
    let metrics = metrics(&stack.bff_url).await;
    assert!(metrics.contains("cloakroom_upstream_retries_total 1"), "{metrics}");
}

#[tokio::test]
async fn a_post_on_a_reused_connection_the_stub_upstream_closes_is_never_retried_and_is_a_502() {
    let (upstream, seen) = stub_upstream_closing_reused_connections().await;
    let stack = stack_with_stub_route(&upstream).await;
    let browser = stack.login_as(USER).await;
    let warm = stack.api_get(&browser, "/stub/warm").await;
    assert_eq!(warm.status, 200, "{}", warm.body);

    let page = stack.api(&browser, Method::POST, "/stub/notes", None).await;

    assert_eq!(page.status, 502, "{}", page.body);
    assert_eq!(page.json()["error"], "upstream_unavailable", "{}", page.body);
    assert!(count(&seen, "POST", "/notes") <= 1, "a POST is sent at most once: {:?}", seen.lock().unwrap());
    let metrics = metrics(&stack.bff_url).await;
    assert!(metrics.contains("cloakroom_upstream_retries_total 0"), "{metrics}");
}
