//! Faults survived, each injected for real where a real part can produce it, and judged by
//! what users see: Redis down and back, Redis stalled, the auth server down during a refresh,
//! an upstream that hangs or resets, and a graceful shutdown of the real binary on SIGTERM.

mod common;

use common::apps::{metrics, start_with_restartable_auth};
use common::browser::{assert_error_code, assert_session_cookie_untouched, call};
use common::redis::RedisServer;
use common::{Stack, StackConfig, USER};
use serde_json::json;
use std::time::{Duration, Instant};

async fn status_of(url: &str) -> Option<u16> {
    reqwest::get(url).await.ok().map(|r| r.status().as_u16())
}

async fn wait_for(url: &str, status: u16) {
    for _ in 0..200 {
        if status_of(url).await == Some(status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered {status}");
}

#[tokio::test]
async fn with_redis_down_users_get_503_with_retry_after_and_keep_their_cookie_and_service_resumes_when_it_is_back()
 {
    let redis = RedisServer::start_persistent();
    let stack = Stack::start_ready(StackConfig::new().set("bff.redis_url", json!(redis.url()))).await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie().expect("session cookie");

    redis.stop();
    for path in ["/bff/user", "/api/whoami"] {
        let page = stack.api_get(&browser, path).await;
        assert_error_code(&page, 503, "store_unavailable");
        assert!(page.header("retry-after").is_some(), "{path}");
        assert_session_cookie_untouched(&page);
    }
    assert_eq!(status_of(&stack.bff("/readyz")).await, Some(503));
    assert_eq!(status_of(&stack.bff("/healthz")).await, Some(200), "alive, not ready");
    assert_eq!(browser.session_cookie(), Some(cookie.clone()));

    redis.restart();
    wait_for(&stack.bff("/readyz"), 200).await;
    assert_eq!(stack.user(&browser).await.status, 200, "same cookie, same session");
    let me = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(browser.session_cookie(), Some(cookie));
}

#[tokio::test]
async fn a_stalled_redis_answers_every_one_of_many_concurrent_requests_with_503_within_the_store_timeout() {
    let redis = RedisServer::start();
    // The documented default store timeout.
    let stack = Stack::start_ready(
        StackConfig::new().set("bff.redis_url", json!(redis.url())).set("bff.redis_timeout_ms", json!(200)),
    )
    .await;
    let browser = stack.login_as(USER).await;

    redis.pause();
    let started = Instant::now();
    let calls = (0..60).map(|i| {
        let browser = &browser;
        let path = if i % 2 == 0 { "/bff/user" } else { "/api/whoami" };
        let base = stack.bff_url.clone();
        async move {
            let sent = Instant::now();
            let page = call(browser, &base, path).await;
            (page, sent.elapsed())
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let all_answered = started.elapsed();
    let healthz = status_of(&stack.bff("/healthz")).await;
    redis.resume();

    for (page, took) in &answers {
        assert_error_code(page, 503, "store_unavailable");
        assert!(page.header("retry-after").is_some());
        // Bounded by the store timeout (a pooled-connection wait plus one command), with room
        // for a loaded machine; without the bound these would hang as long as Redis does.
        assert!(*took < Duration::from_secs(3), "one request waited {took:?}");
    }
    assert!(all_answered < Duration::from_secs(4), "no pile-up: all 60 answered in {all_answered:?}");
    assert_eq!(healthz, Some(200));
    wait_for(&stack.bff("/readyz"), 200).await;
    let me = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(me.status, 200, "the session survived the stall: {}", me.body);
}

#[tokio::test]
async fn with_the_auth_server_down_a_due_refresh_is_503_and_keeps_the_session_and_the_next_request_after_it_is_back_refreshes()
 {
    let cfg = StackConfig::new()
        .set("auth_server.access_token_ttl_secs", json!(2))
        .set("bff.refresh_skew_secs", json!(1));
    let (stack, auth) = start_with_restartable_auth(cfg).await;
    wait_for(&stack.bff("/readyz"), 200).await;
    let browser = stack.login_as(USER).await;
    let before = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(before.status, 200, "{}", before.body);

    auth.stop().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = stack.api_get(&browser, "/api/whoami").await;
    assert_error_code(&page, 503, "auth_server_unavailable");
    assert!(page.header("retry-after").is_some());
    assert_session_cookie_untouched(&page);
    assert_eq!(stack.user(&browser).await.status, 200, "session kept");

    auth.start().await;
    let after = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(after.status, 200, "refreshed once the auth server is back: {}", after.body);
    assert_ne!(after.json()["jti"], before.json()["jti"], "a new access token");
    let metrics = metrics(&stack.bff_url).await;
    assert!(metrics.contains("cloakroom_token_refresh_total{outcome=\"success\"} 1"), "{metrics}");
}

/// A stub upstream for faults a real server does not produce on demand: it accepts every
/// connection and then either never answers (`Hang`) or resets it after reading the request
/// (`Reset`). Returns its base URL.
#[derive(Clone, Copy)]
enum Misbehaviour {
    Hang,
    Reset,
}

async fn stub_upstream(how: Misbehaviour) -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            match how {
                Misbehaviour::Hang => held.push(stream),
                Misbehaviour::Reset => {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    let std = stream.into_std().unwrap();
                    reset_on_close(&std);
                    drop(std);
                }
            }
        }
    });
    url
}

/// SO_LINGER with a zero timeout: closing sends RST instead of FIN.
fn reset_on_close(stream: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_LINGER");
}

async fn stack_with_route_to(upstream: &str) -> Stack {
    let cfg = StackConfig::new();
    let rs = cfg.doc["resource_server"]["audience"].clone();
    let cfg = cfg.set("bff.upstream_timeout_secs", json!(1)).set(
        "bff.routes",
        json!([{ "path": "/api", "upstream": rs }, { "path": "/bad", "upstream": upstream }]),
    );
    Stack::start_ready(cfg).await
}

#[tokio::test]
async fn a_stub_upstream_that_accepts_and_never_answers_is_a_504_within_the_upstream_timeout_and_the_session_is_untouched()
 {
    let stack = stack_with_route_to(&stub_upstream(Misbehaviour::Hang).await).await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie();

    let started = Instant::now();
    let page = stack.api_get(&browser, "/bad/anything").await;
    let took = started.elapsed();

    assert_error_code(&page, 504, "upstream_timeout");
    assert!(took >= Duration::from_millis(900), "waited for the upstream: {took:?}");
    assert!(took < Duration::from_secs(5), "cut off at upstream_timeout_secs = 1: {took:?}");
    assert_session_cookie_untouched(&page);
    assert_eq!(browser.session_cookie(), cookie);
    assert_eq!(stack.api_get(&browser, "/api/whoami").await.status, 200);
}

#[tokio::test]
async fn a_stub_upstream_that_resets_the_connection_is_a_502_and_the_session_is_untouched() {
    let stack = stack_with_route_to(&stub_upstream(Misbehaviour::Reset).await).await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie();

    let page = stack.api_get(&browser, "/bad/anything").await;

    assert_error_code(&page, 502, "upstream_unavailable");
    assert!(!page.body.contains("reset"), "no internal detail: {}", page.body);
    assert_session_cookie_untouched(&page);
    assert_eq!(browser.session_cookie(), cookie);
    assert_eq!(stack.api_get(&browser, "/api/whoami").await.status, 200);
}
